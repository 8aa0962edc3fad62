"""The fast path's generated nft transactions, tested without a kernel."""

from __future__ import annotations

import pytest

from scanguard_ids.block.fastpath import FastPathLayout, parse_ports
from scanguard_ids.config import FastpathConfig, from_dict
from scanguard_ids.errors import ConfigError


def test_host_placement_meters_source_port_pairs_in_input() -> None:
    text = FastPathLayout(table="fp", burst=4, rate=2).install(["192.0.2.0/24", "::1/128"])
    lines = text.splitlines()
    assert "add chain inet fp input { type filter hook input priority -155; policy accept; }" \
        in lines
    assert "add rule inet fp input ip saddr @blocked4 drop" in lines
    assert "add rule inet fp probe4 ip saddr . meta l4proto . th dport @seen4 return" in lines
    assert ("add rule inet fp charge6 update @meter6 { ip6 saddr limit rate over 2/second "
            "burst 4 packets } counter name tripped add @blocked6 { ip6 saddr } drop") in lines
    assert "add element inet fp allow4 { 192.0.2.0/24 }" in lines
    assert "add element inet fp allow6 { ::1/128 }" in lines
    # every chain is flushed before it is refilled: re-running install never doubles rules
    assert lines.index("flush chain inet fp probe4") < lines.index(
        "add rule inet fp probe4 ip saddr @allow4 return")


def test_gateway_placement_counts_destinations_too() -> None:
    text = FastPathLayout(placement="gateway").install()
    assert "hook forward" in text and "hook input" not in text
    assert "ip saddr . ip daddr . meta l4proto . th dport @seen4" in text
    assert "type ipv6_addr . ipv6_addr . inet_proto . inet_service" in text


def test_detect_mode_drops_nothing() -> None:
    text = FastPathLayout(mode="detect").install()
    assert " drop" not in text
    assert "add @would_block4 { ip saddr } return" in text


def test_live_peers_learned_from_both_directions_bytes() -> None:
    text = FastPathLayout(live_bytes=500).install()
    assert ("ct state established ct original bytes > 500 ct reply bytes > 500 "
            "ip saddr != @live4 update @live4 { ip saddr }") in text


def test_excluded_ports_and_forget() -> None:
    lay = FastPathLayout(table="fp", exclude_ports=parse_ports(["50000-51000", "21", 21]))
    assert "add element inet fp exclude { 21, 50000-51000 }" in lay.install()
    assert lay.forget("2001:db8::7").splitlines()[:2] == [
        "add element inet fp blocked6 { 2001:db8::7 }",
        "delete element inet fp blocked6 { 2001:db8::7 }"]
    assert lay.remove() == "add table inet fp\ndelete table inet fp\n"


@pytest.mark.parametrize("bad", ["0", "70000", "9-3", "ftp", "1-"])
def test_bad_ports_refused_by_the_config(bad: str) -> None:
    with pytest.raises(ConfigError, match="fastpath.exclude_ports"):
        from_dict({"fastpath": {"exclude_ports": [bad]}})


def test_config_maps_to_layout() -> None:
    cfg = from_dict({"fastpath": {"mode": "detect", "burst": 6, "exclude_ports": ["21"]}})
    lay = FastPathLayout.from_config(cfg.fastpath)
    assert (lay.mode, lay.burst, lay.exclude_ports) == ("detect", 6, ((21, 21),))
    assert FastpathConfig().mode == "off"
