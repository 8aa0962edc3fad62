from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from scanguard_ids import config
from scanguard_ids.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "examples" / "scanguard.toml"


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
