from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from scanguard_ids import config
from scanguard_ids.config import render
from scanguard_ids.errors import ConfigError

REPO = Path(__file__).parent.parent
EXAMPLE = REPO / "examples" / "scanguard.toml"
STALE = "stale: run `python -m scanguard_ids.config.render` to regenerate"


def test_example_file_is_generated_from_the_definition() -> None:
    assert EXAMPLE.read_text() == render.example(), STALE


def test_readme_table_is_generated_from_the_definition() -> None:
    readme = (REPO / "README.md").read_text()
    assert render.splice_readme(readme) == readme, STALE
    for section in fields(config.Config()):
        for f in fields(getattr(config.Config(), section.name)):
            assert f"`{section.name}.{f.name}`" in readme


def test_example_documents_every_key_with_its_default() -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    defaults = config.Config()
    for section in fields(defaults):
        sec_default = getattr(defaults, section.name)
        assert section.name in data, f"[{section.name}] missing from the example"
        for f in fields(sec_default):
            assert f.name in data[section.name], f"{section.name}.{f.name} undocumented"
    loaded = config.load(EXAMPLE)
    # the example shows the defaults, except the EVE path an operator points at
    assert loaded.detect == defaults.detect
    assert loaded.block == defaults.block


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"detect": {"bogus": 1}}, "detect.bogus"),
        ({"nope": {}}, "nope"),
        ({"detect": {"count": "3"}}, "detect.count"),
        ({"detect": {"count": 0}}, "detect.count"),
        ({"detect": {"ports": 5}}, "detect.ports"),
        ({"detect": {"window": -1}}, "detect.window"),
        ({"detect": {"ttl": True}}, "detect.ttl"),
        ({"detect": {"policy": "fast"}}, "detect.policy"),
        ({"detect": {"allowlist": ["10.0.0.0/33"]}}, "detect.allowlist[0]"),
        ({"detect": {"allowlist": "10.0.0.0/8"}}, "detect.allowlist"),
        ({"detect": {"max_ttl": 10}}, "detect.max_ttl"),
        ({"eve": {"socket_type": "tcp"}}, "eve.socket_type"),
        ({"eve": {"sids": [1, "x"]}}, "eve.sids[1]"),
        ({"block": {"backend": "pf"}}, "block.backend"),
        ({"block": {"set_name": "a b"}}, "block.set_name"),
        ({"detect": 3}, "detect"),
        ({"detect": {"window": float("nan")}}, "detect.window"),
        ({"detect": {"strike_memory": float("inf")}}, "detect.strike_memory"),
        ({"detect": {"escalation": float("nan")}}, "detect.escalation"),
        ({"block": {"max_blocks_per_second": float("inf")}}, "block.max_blocks_per_second"),
        ({"eve": {"poll_interval": 0.0005}}, "eve.poll_interval"),
        ({"eve": {"socket_mode": 0o1777}}, "eve.socket_mode"),
        ({"detect": {"ttl": 2_147_484}}, "detect.ttl"),
        ({"sdn": {"openflow_table": 255}}, "sdn.openflow_table"),
        ({"sdn": {"faucet_min_reload_interval": float("-inf")}}, "sdn.faucet_min_reload_interval"),
    ],
)
def test_bad_values_name_their_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.from_dict(data)
    assert err.value.key == key
    assert str(err.value).startswith(key + ":")


def test_ints_accepted_for_floats_and_sid_block() -> None:
    cfg = config.from_dict({"detect": {"window": 5}, "eve": {"sids": [42]}})
    assert cfg.detect.window == 5.0
    assert config.sid_set(cfg) == {42}
    assert config.SID_FIRST in config.sid_set(config.Config())


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[detect\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(bad)


def test_every_float_key_rejects_nan_and_inf() -> None:
    for section in fields(config.Config()):
        default = getattr(config.Config(), section.name)
        for f in fields(default):
            if type(getattr(default, f.name)) is not float:
                continue
            for bad in (float("nan"), float("inf"), float("-inf")):
                with pytest.raises(ConfigError) as err:
                    config.from_dict({section.name: {f.name: bad}})
                assert err.value.key == f"{section.name}.{f.name}"


def test_non_utf8_and_directory_configs_name_the_option(tmp_path: Path) -> None:
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe[detect]\n")
    with pytest.raises(ConfigError, match="not UTF-8") as err:
        config.load(binary)
    assert err.value.key == "--config"
    with pytest.raises(ConfigError, match="directory"):
        config.load(tmp_path)


def test_reload_keeps_restart_keys_and_names_them() -> None:
    old = config.from_dict({"eve": {"paths": ["/a"]}, "sdn": {"openflow_table": 3}})
    new = config.from_dict({"eve": {"paths": ["/b"]}, "detect": {"count": 5},
                            "block": {"backend": "nftables", "max_set_size": 10}})
    assert config.restart_keys(old, new) == ["eve.paths", "block.backend", "sdn.openflow_table"]
    applied = config.reloadable(old, new)
    assert applied.detect.count == 5 and applied.block.max_set_size == 10
    assert applied.eve.paths == ("/a",) and applied.block.backend == "auto"
    assert applied.sdn.openflow_table == 3  # [sdn] is no longer dropped by a reload
    config.validate(applied)
