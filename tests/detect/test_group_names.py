"""The one index from an IPv6 prefix group to the names holding block state for it
(``Detector._group_names``: the group's CIDR or "", then its addresses blocked on their own):
feed finds a group's block and its address blocks through it, it holds entries only for
prefix groups, and one prune rule keeps it bounded by the block states."""

from __future__ import annotations

import ipaddress

from scanguard_ids.config import DetectConfig
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.detector import Detector, _Block, _live_names
from scanguard_ids.model import Kind, ResponseEvent

T0 = 1_700_000_000.0


def ev(ts: float, ip: str, port: int | None) -> ResponseEvent:
    return ResponseEvent(T0 + ts, ip, "2001:db8:1::1", port, "tcp", Kind.TCP_RST, 9_400_000, "")


def detector(**kw: object) -> Detector:
    return Detector(DetectConfig(**kw), Allowlist())  # type: ignore[arg-type]


def test_ipv4_and_single_address_ipv6_blocks_add_no_entry() -> None:
    det = detector(count=1, ports=1)
    assert det.feed(ev(1.0, "198.51.100.7", 1)) is not None
    assert det._group_names == {}
    det128 = detector(count=1, ports=1, prefix6=128)
    d = det128.feed(ev(1.0, "2001:db8::a", 1))
    assert d is not None and d.ip == "2001:db8::a"
    assert det128._group_names == {}


def test_one_entry_holds_the_groups_cidr_and_its_address_blocks() -> None:
    det = detector(count=1, ports=1, reorder=30.0, ttl=40)
    a = det.feed(ev(10.0, "2001:db8::a", 1))
    assert a is not None and a.ip == "2001:db8::a"
    assert list(det._group_names.values()) == [("", "2001:db8::a")]
    det.adopt("2001:db8::/64", T0 + 100)
    assert list(det._group_names.values()) == [("2001:db8::/64", "2001:db8::a")]
    before = det.stats.suppressed
    assert det.feed(ev(11.0, "2001:db8::c", 2)) is None  # the group's block, found by key
    assert det.stats.suppressed == before + 1
    det.release("2001:db8::/64")
    c = det.feed(ev(12.0, "2001:db8::c", 3))  # no group block now; ::a's does not take it
    assert c is not None and (c.ip, c.widens) == ("2001:db8::c", "")
    # one entry still: the released CIDR's name is stale (its block is gone) until pruned
    [held] = det._group_names.values()
    assert held[0] in ("", "2001:db8::/64") and held[1:] == ("2001:db8::a", "2001:db8::c")
    det.release("2001:db8::a")
    assert det.feed(ev(13.0, "2001:db8::d", None)) is None  # reads the entry: ::a is gone
    assert list(det._group_names.values()) == [("", "2001:db8::c")]


def test_the_index_stays_bounded_by_address_blocks_and_still_widens() -> None:
    det = detector(count=1, ports=1, reorder=30.0, ttl=40, policy="paper", max_tracked=50)
    addrs = []
    for i in range(3000):  # each /64 blocked by one address; block state capped at 50
        net = ipaddress.IPv6Network(((0x20010DB8 << 96) | (i << 64), 64))
        ip = str(net.network_address + 10)
        addrs.append(ip)
        d = det.feed(ev(60.5 + i * 0.001, ip, 1))
        assert d is not None and d.ip == ip
        assert len(det._group_names) <= 2 * len(det._blocks) + 1024
    assert det.stats.blocked <= 50
    assert len(det._group_names) < 3000  # pruned on the way
    # the last group's address block is widened by a late response of another address
    last = ipaddress.IPv6Network(((0x20010DB8 << 96) | (2999 << 64), 64))
    wide = det.feed(ev(61.0, str(last.network_address + 11), None))
    assert wide is not None and (wide.ip, wide.widens) == (str(last), addrs[-1])
    assert det.blocked_until(str(last)) is not None
    # the first group's address block is gone: nothing of it to widen
    first = ipaddress.IPv6Network((0x20010DB8 << 96, 64))
    d = det.feed(ev(61.0, str(first.network_address + 11), None))
    assert d is None or d.widens == ""
    assert det.blocked_until(str(first)) is None


def test_live_names_drops_the_names_without_block_state() -> None:
    blk = _Block(0.0, 1.0, 1, None, 0.0)
    blocks = {"2001:db8::/64": blk, "2001:db8::a": blk}
    held = ("2001:db8::/64", "2001:db8::a")
    assert _live_names(held, blocks) is held  # nothing gone: the same tuple
    assert _live_names(("2001:db8::/64", "2001:db8::b", "2001:db8::a"), blocks) == held
    assert _live_names(("2001:db8:1::/64", "2001:db8::a"), blocks) == ("", "2001:db8::a")
    assert _live_names(("2001:db8::/64", "2001:db8::b"), blocks) == ("2001:db8::/64",)
    assert _live_names(("2001:db8:1::/64", "2001:db8::b"), blocks) is None
    assert _live_names(("", "2001:db8::b"), blocks) is None
    assert _live_names(("2001:db8:1::/64",), blocks) is None
