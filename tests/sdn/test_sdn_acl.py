"""The Faucet ACL file: rendering, reading back, and what Faucet itself accepts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from scanguard_ids.block.sdn.acl import HEADER, AclFormatError, AclLayout, faucet_yaml
from scanguard_ids.lab.sdn import faucetproc

BLOCKS = {"198.51.100.7": 1_800_000_000.25, "2001:db8::7": 1_800_000_300.5,
          "192.0.2.9": 1_800_000_100.0}


def _rules(text: str, name: str = "scanguard") -> list[dict[str, object]]:
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return [r["rule"] for r in json.loads(body)["acls"][name]]


@pytest.mark.parametrize("outbound", [True, False])
def test_render_parse_roundtrip(outbound: bool) -> None:
    layout = AclLayout("scanguard", outbound=outbound)
    text = layout.render(BLOCKS)
    assert text.startswith(HEADER)
    assert layout.parse(text) == pytest.approx(BLOCKS, abs=0.001)
    rules = _rules(text)
    assert len(rules) == len(BLOCKS) * (2 if outbound else 1) + 1
    assert rules[-1]["actions"] == {"allow": 1}
    assert all(r["actions"] == {"allow": 0} for r in rules[:-1])


def test_rule_fields_per_family() -> None:
    rules = _rules(AclLayout().render(BLOCKS))
    by_match = {(r.get("ipv4_src") or r.get("ipv4_dst") or r.get("ipv6_src")
                 or r.get("ipv6_dst"), r["eth_type"]) for r in rules[:-1]}
    assert ("198.51.100.7", 0x0800) in by_match
    assert ("2001:db8::7", 0x86DD) in by_match
    # IPv4 first, in address order; stable output for equal input
    assert [r.get("ipv4_src") for r in rules[:4:2]] == ["192.0.2.9", "198.51.100.7"]
    assert AclLayout().render(dict(reversed(BLOCKS.items()))) == AclLayout().render(BLOCKS)


def test_mapped_and_spelled_addresses_are_normalised() -> None:
    text = AclLayout().render({"::ffff:192.0.2.5": 5.0})
    assert AclLayout().parse(text) == {"192.0.2.5": 5.0}
    assert '"ipv4_src": "192.0.2.5"' in text


def test_without_terminal_allow_an_empty_acl_still_has_a_rule() -> None:
    layout = AclLayout(terminal_allow=False)
    rules = _rules(layout.render({}))
    assert rules == [{"description": "scanguard placeholder (no blocks)", "eth_type": 0x0800,
                      "ipv4_src": "255.255.255.255", "actions": {"allow": 0}}]
    assert layout.parse(layout.render({})) == {}
    assert all(r["actions"] == {"allow": 0} for r in _rules(layout.render(BLOCKS)))


@pytest.mark.parametrize("text", [
    "acls:\n  scanguard:\n    - rule: {actions: {allow: 1}}\n",  # the operator's own file
    HEADER + "{not json",
    HEADER + '{"acls": {"other": []}}',
    HEADER + '{"acls": {"scanguard": [{"rule": {"description": "scanguard ip=nope '
             'expires=1"}}]}}',
])
def test_foreign_or_damaged_files_are_refused(text: str) -> None:
    with pytest.raises(AclFormatError):
        AclLayout().parse(text)


def test_other_names() -> None:
    layout = AclLayout("sg-edge")
    assert layout.parse(layout.render(BLOCKS)) == pytest.approx(BLOCKS, abs=0.001)
    with pytest.raises(AclFormatError):
        AclLayout("scanguard").parse(layout.render(BLOCKS))


def test_faucet_yaml_names_ports_and_includes_the_acl() -> None:
    doc = json.loads(faucet_yaml("/x/acl.yaml", "scanguard", {2: "ps0", 1: "pv0"}, 7))
    assert doc["include"] == ["/x/acl.yaml"]
    ifs = doc["dps"]["sw1"]["interfaces"]
    assert ifs["pv0"] == {"number": 1, "native_vlan": "lab", "acls_in": ["scanguard"]}
    assert ifs["ps0"]["number"] == 2
    assert doc["dps"]["sw1"]["dp_id"] == 7


def test_faucet_accepts_the_file(tmp_path: Path) -> None:
    """Faucet's own validator loads the config with our ACL (description keys included)."""
    checker = faucetproc.find("check_faucet_config")
    if checker is None:
        pytest.skip("faucet is not installed (pip install faucet)")
    acl = tmp_path / "scanguard-acl.yaml"
    conf = tmp_path / "faucet.yaml"
    conf.write_text(faucet_yaml(str(acl), "scanguard", {1: "p1", 2: "p2"}, 1))
    for layout, blocks in ((AclLayout(), BLOCKS), (AclLayout(terminal_allow=False), {})):
        acl.write_text(layout.render(blocks))
        res = subprocess.run([checker, str(conf)], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    acl.write_text(AclLayout().render({}).replace('"allow": 1', '"allow": 1, "expires": 5'))
    res = subprocess.run([checker, str(conf)], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0, "Faucet should refuse unknown rule keys (why we use description)"
