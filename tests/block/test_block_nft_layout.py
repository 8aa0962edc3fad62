"""The nftables backend's generated transactions and parsing, with a recording runner."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence

import pytest

from scanguard_ids.block import registry
from scanguard_ids.block.common import normalize_ip, normalize_target
from scanguard_ids.block.nftables import NftablesBackend, NftLayout, parse_set_json
from scanguard_ids.clock import FixedClock
from scanguard_ids.config import BlockConfig
from scanguard_ids.errors import BackendError
from scanguard_ids.model import Block

# `nft -j list set inet sgt blocked4` from nft 1.0.6
LISTED = json.dumps({"nftables": [
    {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
    {"set": {"family": "inet", "name": "blocked4", "table": "sgt", "type": "ipv4_addr",
             "handle": 2, "size": 1000, "flags": ["timeout"], "timeout": 300,
             "elem": [{"elem": {"val": "192.0.2.9", "timeout": 100, "expires": 99}},
                      "192.0.2.10"]}}]})


def test_install_transaction() -> None:
    text = NftLayout("scanguard", 65536, 300, outbound=True).install()
    lines = text.splitlines()
    assert lines[:3] == [
        "add table inet scanguard",
        "add set inet scanguard blocked4 { type ipv4_addr; flags timeout; size 65536; "
        "timeout 300s; }",
        "add set inet scanguard blocked6 { type ipv6_addr; flags timeout; size 65536; "
        "timeout 300s; }",
    ]
    assert "add chain inet scanguard forward { type filter hook forward priority -150; " \
           "policy accept; }" in lines
    # flushes come after the chains exist and before the rules: a re-run replaces them
    assert lines.index("flush chain inet scanguard output") < lines.index(
        "add rule inet scanguard output ip daddr @blocked4 drop")
    assert "add rule inet scanguard input ip6 saddr @blocked6 drop" in lines
    assert "add rule inet scanguard forward ip6 daddr @blocked6 drop" in lines


def test_without_outbound_only_sources_are_dropped() -> None:
    text = NftLayout("sg", 10, 300, outbound=False).install()
    assert "daddr" not in text and "add rule inet sg forward ip saddr @blocked4 drop" in text


def test_per_block_transactions_are_idempotent_by_construction() -> None:
    lay = NftLayout("sg", 10, 300, True)
    assert lay.refresh(normalize_ip("2001:db8::7"), 60) == (
        "add element inet sg blocked6 { 2001:db8::7 timeout 60s }\n"
        "delete element inet sg blocked6 { 2001:db8::7 }\n"
        "add element inet sg blocked6 { 2001:db8::7 timeout 60s }\n")
    assert lay.drop(normalize_ip("192.0.2.7")).splitlines()[1] == \
        "delete element inet sg blocked4 { 192.0.2.7 }"
    assert lay.remove() == "add table inet sg\ndelete table inet sg\n"


def test_parse_set_json() -> None:
    assert parse_set_json(LISTED, 1000.0) == [Block("192.0.2.9", 1099.0), Block("192.0.2.10", None)]
    assert parse_set_json('{"nftables": []}', 0) == []


class FakeNft:
    """Records argv calls; answers list commands from a canned table."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str | None]] = []
        self.installed = False

    def __call__(self, argv: Sequence[str], stdin: str | None = None,
                 timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        self.calls.append((list(argv), stdin))
        if argv[:3] == ["nft", "-f", "-"]:
            if stdin and stdin.startswith("add table"):
                self.installed = "delete table" not in stdin
            return subprocess.CompletedProcess(argv, 0, "", "")
        if not self.installed:
            return subprocess.CompletedProcess(argv, 1, "", "Error: No such file or directory\n")
        if argv[:3] == ["nft", "-j", "list"]:
            out = LISTED if argv[-1] == "blocked4" else '{"nftables": []}'
            return subprocess.CompletedProcess(argv, 0, out, "")
        if argv[:3] == ["nft", "-t", "list"]:
            return subprocess.CompletedProcess(argv, 0, "table inet scanguard {\n}\n", "")
        raise AssertionError(argv)


def test_backend_over_nft_argv() -> None:
    nft = FakeNft()
    cfg = BlockConfig(clear_conntrack=False)
    b = NftablesBackend(cfg, FixedClock(1000.0), runner=nft, netlink=False)
    assert b.list() == [] and "not installed" in b.show()
    b.start()
    b.block("192.0.2.9", 100)
    b.unblock("2001:db8::5")
    scripts = [stdin or "" for argv, stdin in nft.calls if argv == ["nft", "-f", "-"]]
    assert scripts[1].startswith("add element inet scanguard blocked4 { 192.0.2.9 timeout 100s }")
    assert "delete element inet scanguard blocked6 { 2001:db8::5 }" in scripts[2]
    assert b.list() == [Block("192.0.2.9", 1099.0), Block("192.0.2.10", None)]
    assert "blocked4: 2 of 65536, blocked6: 0 of 65536" in b.show()
    b.remove()
    assert nft.calls[-1][1] == "add table inet scanguard\ndelete table inet scanguard\n"
    with pytest.raises(BackendError, match="not an IP"):
        b.block("nope", 1)


def test_failed_install_names_the_fix() -> None:
    def run(argv: Sequence[str], stdin: str | None = None,
            timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", "Error: Could not process rule: "
                                           "Operation not supported\n")

    b = NftablesBackend(BlockConfig(clear_conntrack=False), runner=run, netlink=False)
    with pytest.raises(BackendError, match="Operation not supported.*firewall remove"):
        b.start()


def test_registry_rejects_unknown_names() -> None:
    with pytest.raises(BackendError, match="unknown backend 'pf'"):
        registry.create("pf", BlockConfig())


def test_auto_prefers_ipset_then_nftables_then_explains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "ipset_unusable", lambda *a: None)
    assert registry.detect() == "ipset"
    monkeypatch.setattr(registry, "ipset_unusable", lambda *a: "ip_set netlink: EPROTONOSUPPORT")
    monkeypatch.setattr(registry, "nftables_unusable", lambda *a: None)
    assert registry.detect() == "nftables"
    monkeypatch.setattr(registry, "nftables_unusable", lambda *a: "command not found: nft")
    with pytest.raises(BackendError) as err:
        registry.detect()
    msg = str(err.value)
    assert "EPROTONOSUPPORT" in msg and "command not found: nft" in msg and "dry-run" in msg


def test_nftables_probe_reads_nft() -> None:
    ok = registry.nftables_unusable(
        lambda argv, stdin=None, timeout=30.0: subprocess.CompletedProcess(argv, 0, "", ""))
    assert ok is None
    bad = registry.nftables_unusable(
        lambda argv, stdin=None, timeout=30.0: subprocess.CompletedProcess(
            argv, 1, "", "Error: Operation not permitted\n"))
    assert bad is not None and "Operation not permitted" in bad


# `nft -j list set inet sgt blocked6n` from nft 1.0.6 (an interval set)
LISTED_NETS = json.dumps({"nftables": [
    {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
    {"set": {"family": "inet", "name": "blocked6n", "table": "sgt", "type": "ipv6_addr",
             "handle": 1, "size": 100, "flags": ["interval", "timeout"], "timeout": 300,
             "elem": [{"elem": {"val": {"prefix": {"addr": "2001:db8:1:2::", "len": 64}},
                                "timeout": 30, "expires": 29}}]}}]})


def test_install_adds_interval_sets_for_prefixes() -> None:
    lines = NftLayout("sg", 100, 300, outbound=True).install().splitlines()
    for v, key in ((4, "ipv4_addr"), (6, "ipv6_addr")):
        assert (f"add set inet sg blocked{v}n {{ type {key}; flags interval, timeout; "
                "size 100; timeout 300s; }") in lines
    # the address sets keep the definition of the older layout: a re-run completes it
    assert "add set inet sg blocked6 { type ipv6_addr; flags timeout; size 100; " \
           "timeout 300s; }" in lines
    for rule in ("input ip6 saddr @blocked6n drop", "forward ip saddr @blocked4n drop",
                 "forward ip daddr @blocked4n drop", "output ip6 daddr @blocked6n drop"):
        assert f"add rule inet sg {rule}" in lines
    # the sets exist before the rules that name them
    assert lines.index("add set inet sg blocked4n { type ipv4_addr; flags interval, timeout; "
                       "size 100; timeout 300s; }") < lines.index(
        "add rule inet sg input ip saddr @blocked4n drop")


def test_prefix_transactions_use_the_interval_sets() -> None:
    lay = NftLayout("sg", 10, 300, True)
    net = normalize_target("2001:db8:1:2::/64")
    assert lay.refresh(net, 60) == (
        "add element inet sg blocked6n { 2001:db8:1:2::/64 timeout 60s }\n"
        "delete element inet sg blocked6n { 2001:db8:1:2::/64 }\n"
        "add element inet sg blocked6n { 2001:db8:1:2::/64 timeout 60s }\n")
    assert lay.drop(normalize_target("198.51.100.0/24")).splitlines()[1] == \
        "delete element inet sg blocked4n { 198.51.100.0/24 }"
    assert lay.set_of(normalize_target("192.0.2.9/32")) == "blocked4"


def test_parse_interval_set_json() -> None:
    assert parse_set_json(LISTED_NETS, 1000.0) == [Block("2001:db8:1:2::/64", 1029.0)]


def test_backend_blocks_prefixes_over_nft_argv() -> None:
    nft = FakeNft()
    b = NftablesBackend(BlockConfig(clear_conntrack=False), FixedClock(1000.0), runner=nft,
                        netlink=True)  # netlink is for addresses; prefixes go through nft -f
    nft.installed = True
    b.block("2001:db8:1:2::/64", 30)
    b.unblock("198.51.100.0/24")
    scripts = [stdin or "" for argv, stdin in nft.calls if argv == ["nft", "-f", "-"]]
    assert scripts[0].startswith("add element inet scanguard blocked6n { 2001:db8:1:2::/64 "
                                 "timeout 30s }")
    assert "delete element inet scanguard blocked4n { 198.51.100.0/24 }" in scripts[1]
    b.list()
    listed = [argv[-1] for argv, _ in nft.calls if argv[:3] == ["nft", "-j", "list"]]
    assert listed == ["blocked4", "blocked6", "blocked4n", "blocked6n"]
    with pytest.raises(BackendError, match="host bits set"):
        b.block("2001:db8:1:2::1/64", 30)
