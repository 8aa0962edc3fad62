"""Prefix blocks against the real kernel, only inside namespaces these tests create.

For ipset (iptables-nft and, if present, python-iptables on the legacy tables) and
nftables: a block of an IPv6 /64 and of an IPv4 /24 drops two different addresses of
each, leaves addresses outside them alone, is listed as the prefix, survives a restart
(another instance lists it, start() again keeps it), unblock lifts it, a short one expires
by itself. And the upgrade: the sets, rules and blocks of the address-only layout are
adopted by start(), and remove() then leaves nothing.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from blocklab import Lab
from nsutil import run_in_netns
from test_block_kernel import IPT, KINDS, OPEN, SHUT, _skip_unavailable, ruleset, wait_unblocked

from scanguard_ids.block.ipset import IpsetBackend
from scanguard_ids.block.iptables import IptablesRules
from scanguard_ids.block.nftables import NftablesBackend, NftLayout
from scanguard_ids.config import BlockConfig
from scanguard_ids.lab.netns import Netns, run

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("host_untouched")]

NET6, NET4 = "2001:db8:0:1::/64", "198.51.100.0/24"
IN6, IN4 = ("2001:db8:0:1::5", "2001:db8:0:1::6"), ("198.51.100.5", "198.51.100.6")
OUT6, OUT4 = "2001:db8:0:2::7", "203.0.113.7"  # same link, other prefixes: never blocked


def add_prefix_hosts(lab: Lab) -> None:
    """Give the scanner two addresses in each blocked prefix and one outside; the victim
    reaches them on its link."""
    for addr in (*IN6, OUT6):
        lab.scanner.run(["ip", "addr", "add", f"{addr}/128", "dev", "scan0", "nodad"])
    for addr in (*IN4, OUT4):
        lab.scanner.run(["ip", "addr", "add", f"{addr}/32", "dev", "scan0"])
    for net in (NET6, "2001:db8:0:2::/64", NET4, "203.0.113.0/24"):
        lab.victim.run(["ip", "route", "add", net, "dev", "victim0"])


def reach_all(lab: Lab) -> dict[str, bool]:
    """Ping only (TCP as well for the first address of each prefix): enough to tell."""
    out = {src: lab.reach(src) == OPEN for src in (IN6[0], IN4[0])}
    out.update({src: lab.ping(lab.scanner, lab.pair.victim6 if ":" in src else
                              lab.pair.victim4, src) for src in (IN6[1], IN4[1], OUT6, OUT4)})
    return out


ALL_OPEN = dict.fromkeys((*IN6, *IN4, OUT6, OUT4), True)
PREFIXES_SHUT = {**dict.fromkeys((*IN6, *IN4), False), OUT6: True, OUT4: True}


@pytest.mark.parametrize("kind", list(KINDS))
def test_prefix_block_really_blocks(kind: str, lab: Lab) -> None:
    _skip_unavailable(kind)
    cfg = BlockConfig(max_set_size=4096)
    add_prefix_hosts(lab)
    assert reach_all(lab) == ALL_OPEN

    def install_and_block() -> list[Any]:
        b = KINDS[kind](cfg)
        b.start()
        b.block(NET6, 300)
        b.block(NET4, 300)
        b.block(lab.pair.scanner4, 300)  # an address block next to them
        listed = b.list()
        b.stop()
        return listed

    listed = run_in_netns(lab.victim.name, install_and_block)
    assert {x.ip for x in listed} == {NET6, NET4, lab.pair.scanner4}
    assert reach_all(lab) == PREFIXES_SHUT
    assert lab.reach(lab.pair.scanner4) == SHUT and lab.reach(lab.pair.scanner6) == OPEN
    assert not lab.ping(lab.victim, IN6[1]) and lab.ping(lab.victim, OUT6)  # outbound too

    # A restart: another instance lists the kernel's prefixes, start() again keeps them.
    def restart() -> tuple[list[Any], float, list[Any], float]:
        b = KINDS[kind](cfg)
        adopted, listed_at = b.list(), time.time()
        b.start()
        b.block(NET6, 100)  # a present prefix: the timeout is refreshed
        after = b.list()
        return adopted, listed_at, after, time.time()

    # each expiry is judged against the clock when its listing was taken (start() may take
    # seconds on a loaded machine)
    adopted, listed_at, after, now = run_in_netns(lab.victim.name, restart)
    assert {x.ip for x in adopted} == {NET6, NET4, lab.pair.scanner4}
    assert all(x.expires is not None and 290 < x.expires - listed_at <= 301
               for x in adopted), adopted
    left = {x.ip: x.expires - now for x in after if x.expires is not None}
    assert 95 < left[NET6] <= 101 and left[NET4] > 290, left
    assert reach_all(lab) == PREFIXES_SHUT

    # Unblock (twice, and a prefix never blocked): the prefixes get through again.
    def unblock() -> list[Any]:
        b = KINDS[kind](cfg)
        for target in (NET6, NET4, NET6, NET4, "2001:db8:9::/64", lab.pair.scanner4):
            b.unblock(target)
        return b.list()

    assert run_in_netns(lab.victim.name, unblock) == []
    assert reach_all(lab) == ALL_OPEN

    # Expiry: a 2 s prefix block is gone without anyone touching it.
    run_in_netns(lab.victim.name, lambda: [KINDS[kind](cfg).block(n, 2) for n in (NET6, NET4)])
    assert not lab.ping(lab.scanner, lab.pair.victim6, IN6[1])
    wait_unblocked(lab, kind, cfg)
    assert reach_all(lab) == ALL_OPEN

    def remove() -> str:
        b = KINDS[kind](cfg)
        b.block(NET6, 300)
        b.remove()
        return b.show()

    assert "not installed" in run_in_netns(lab.victim.name, remove)
    after_rules = ruleset(kind, lab.victim)
    assert "SCANGUARD" not in after_rules and "scanguard" not in after_rules, after_rules
    assert lab.victim.run(["ipset", "list", "-n"]).stdout.strip() == ""
    assert reach_all(lab) == ALL_OPEN


def _old_ipset_layout() -> None:
    """What the address-only version installed: hash:ip sets, a chain of two rules each."""
    import socket

    from pyroute2.ipset import IPSet

    with IPSet() as sock:
        for v, fam in ((4, socket.AF_INET), (6, socket.AF_INET6)):
            sock.create(f"scanguard{v}", stype="hash:ip", family=fam, timeout=300,
                        maxelem=65536)
        sock.add("scanguard4", "192.0.2.2", timeout=300)
    IptablesRules("scanguard4", "scanguard6", "SCANGUARD", True, "nft").install()


def _old_nft_layout(ns: Netns) -> None:
    script = "".join(line + "\n" for line in
                     NftLayout("scanguard", 65536, 300, True).install().splitlines()
                     if "blocked4n" not in line and "blocked6n" not in line)
    run(ns.argv(["nft", "-f", "-"]), input=script)
    ns.run(["nft", "add", "element", "inet", "scanguard", "blocked4",
            "{ 192.0.2.2 timeout 300s }"])


@pytest.mark.parametrize("kind", ["ipset-nft", "nftables"])
def test_upgrade_from_the_address_only_layout(kind: str, lab: Lab) -> None:
    _skip_unavailable(kind)
    add_prefix_hosts(lab)
    assert reach_all(lab) == ALL_OPEN
    if kind in IPT:
        run_in_netns(lab.victim.name, _old_ipset_layout)
    else:
        _old_nft_layout(lab.victim)
    old_rules = ruleset(kind, lab.victim)
    assert "blocked4n" not in old_rules and "scanguard4n" not in old_rules
    assert lab.reach(lab.pair.scanner4) == SHUT  # the old block bites

    def upgrade() -> tuple[list[Any], str]:
        cfg = BlockConfig(clear_conntrack=False)
        b: IpsetBackend | NftablesBackend = (IpsetBackend(cfg, iptables="nft") if kind in IPT
                                             else NftablesBackend(cfg))
        b.start()
        b.block(NET6, 300)
        b.block(NET4, 300)
        return b.list(), b.show()

    listed, shown = run_in_netns(lab.victim.name, upgrade)
    assert {x.ip for x in listed} == {"192.0.2.2", NET6, NET4}  # the old block is kept
    assert lab.reach(lab.pair.scanner4) == SHUT
    assert reach_all(lab) == PREFIXES_SHUT
    if kind in IPT:
        assert "-A SCANGUARD -m set --match-set scanguard6n src -j DROP" in shown
        for tool in IPT[kind]:  # the jump is still there once, at the top
            rules = lab.victim.run([tool, "-S", "INPUT"]).stdout.splitlines()
            assert rules.count("-A INPUT -j SCANGUARD") == 1 and rules[1].endswith("SCANGUARD")
    else:
        assert "blocked6n: 1 of 65536" in shown

    def remove() -> str:
        b = (IpsetBackend(BlockConfig(), iptables="nft") if kind in IPT
             else NftablesBackend(BlockConfig()))
        b.remove()
        return b.show()

    assert "not installed" in run_in_netns(lab.victim.name, remove)
    after = ruleset(kind, lab.victim)
    assert "SCANGUARD" not in after and "scanguard" not in after, after
    assert lab.victim.run(["ipset", "list", "-n"]).stdout.strip() == ""
    assert reach_all(lab) == ALL_OPEN
