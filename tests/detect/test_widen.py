"""IPv6 prefix groups under reordering across their addresses: a late response of another
address widens an address block to the prefix; a prefix block is never narrowed.

The reordering guarantee (detector docstring, tests/detect/test_detector.py) is exact while
the addresses of one prefix keep their relative order; these are the two cases beyond it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness import make_rig, rst

from scanguard_ids import config
from scanguard_ids.config import DetectConfig
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.detector import Detector
from scanguard_ids.model import Kind, ResponseEvent

T0 = 1_700_000_000.0
PREFIX = "2001:db8::/64"


def ev(ts: float, ip: str, port: int | None) -> ResponseEvent:
    return ResponseEvent(T0 + ts, ip, "2001:db8:1::1", port, "tcp", Kind.TCP_RST, 9_400_000, "")


def detector(**kw: object) -> Detector:
    return Detector(DetectConfig(**kw), Allowlist())  # type: ignore[arg-type]


def test_late_response_of_another_address_widens_the_block_to_the_prefix() -> None:
    """Time order: ::b at 58 (no port), ::a at 60.5: the window that decides holds two
    addresses, so the prefix is blocked. Arrival order: ::a first (blocked alone), then
    ::b: the address block becomes the prefix's, and its strike moves with it."""
    det = detector(count=1, ports=1, reorder=30.0, ttl=40, policy="paper")
    first = det.feed(ev(60.5, "2001:db8::a", 1))
    assert first is not None and first.ip == "2001:db8::a"
    assert det.offenders.strikes("2001:db8::a", T0 + 60.5) == 1
    wide = det.feed(ev(58.0, "2001:db8::b", None))
    assert wide is not None
    assert (wide.ip, wide.widens, wide.ts, wide.count, wide.ttl, wide.strikes) == (
        PREFIX, "2001:db8::a", T0 + 60.5, 2, 40, 1)
    assert wide.reason.endswith("; widens 2001:db8::a")
    assert wide.to_dict()["widens"] == "2001:db8::a"
    assert det.offenders.strikes("2001:db8::a", T0 + 61) == 0
    assert det.offenders.strikes(PREFIX, T0 + 61) == 1
    assert det.blocked_until("2001:db8::a") is None
    assert det.blocked_until(PREFIX) == T0 + 60.5 + 40
    # the whole prefix is blocked now: a third address's response is suppressed
    before = det.stats.suppressed
    assert det.feed(ev(62.0, "2001:db8::c", 2)) is None
    assert det.stats.suppressed == before + 1
    assert det.stats.blocks == 2


def test_a_late_response_before_the_window_is_consumed_without_widening() -> None:
    """::b's late response precedes the block but lies outside the window that decided:
    the decision consumed it (it cannot count again), and the name stays the address."""
    det = detector(count=2, ports=2, window=5.0, reorder=30.0, ttl=60)
    assert det.feed(ev(50.0, "2001:db8::a", 1)) is None
    d = det.feed(ev(51.0, "2001:db8::a", 2))
    assert d is not None and d.ip == "2001:db8::a"
    assert det.feed(ev(40.0, "2001:db8::b", 3)) is None  # late, 11 s before the trigger
    assert det.blocked_until("2001:db8::a") == T0 + 51.0 + 60
    assert det.blocked_until(PREFIX) is None
    # consumed: with a fresh response of ::b it does not make a window of two
    assert det.feed(ev(41.0, "2001:db8::b", 4)) is None
    assert det.stats.blocks == 1


def test_a_prefix_decision_is_not_narrowed() -> None:
    """Time order: ::b at 0 (port 1), ::b at 0 (no port) block ::b alone at 0; ::a at 0.5
    then draws nothing. Arrival order ::b (port), ::a, ::b (no port): at ::a's arrival the
    window holds two addresses and the prefix is blocked; the late ::b response moves the
    trigger back to 0 but the prefix block stays (it was backed by evidence of two
    addresses when it was decided; narrowing would unblock addresses that did draw
    responses)."""
    det = detector(count=2, ports=1, window=5.0, reorder=3.0, ttl=4)
    assert det.feed(ev(0.0, "2001:db8::b", 1)) is None
    d = det.feed(ev(0.5, "2001:db8::a", None))
    assert d is not None and (d.ip, d.ts) == (PREFIX, T0 + 0.5)
    assert det.feed(ev(0.0, "2001:db8::b", None)) is None
    assert det.blocked_until(PREFIX) == T0 + 0.0 + d.ttl  # the trigger moved back
    assert det.blocked_until("2001:db8::b") is None


def test_a_late_response_that_meets_a_threshold_alone_is_its_own_decision() -> None:
    """Time order: ::b at 58 (a port: count 1 met) is blocked alone, then ::a at 60.5 is.
    Arrival order ::a, ::b gives the same two address blocks (nothing widened)."""
    det = detector(count=1, ports=1, reorder=30.0, ttl=40)
    a = det.feed(ev(60.5, "2001:db8::a", 1))
    b = det.feed(ev(58.0, "2001:db8::b", 2))
    assert a is not None and b is not None
    assert [(a.ip, a.ts), (b.ip, b.ts, b.widens)] == [
        ("2001:db8::a", T0 + 60.5), ("2001:db8::b", T0 + 58.0, "")]


def test_a_late_response_that_completes_an_earlier_window_widens_it_back() -> None:
    """Time order: ::b at 58 and ::a at 59 (two ports) decide at 59 on two addresses: the
    prefix. Arrival order ::a 59, ::a 60.5 (blocked alone at 60.5), then ::b 58: widened,
    its trigger moved back to 59."""
    det = detector(count=2, ports=2, reorder=30.0, ttl=60)
    assert det.feed(ev(59.0, "2001:db8::a", 22)) is None
    a = det.feed(ev(60.5, "2001:db8::a", 23))
    assert a is not None and a.ip == "2001:db8::a"
    wide = det.feed(ev(58.0, "2001:db8::b", 24))
    assert wide is not None
    assert (wide.ip, wide.widens, wide.ts, wide.ports) == (PREFIX, "2001:db8::a", T0 + 59.0,
                                                           (22, 24))
    assert det.blocked_until(PREFIX) == T0 + 59.0 + wide.ttl


def test_the_engine_blocks_the_prefix_a_widening_names(tmp_path: Path) -> None:
    """Through Engine.process (the case above): the address block, then the widening,
    journalled with ``widens``; the backend holds the prefix (the address block stays until
    its ttl)."""
    cfg = config.Config()
    cfg = replace(cfg, detect=replace(cfg.detect, count=2, ports=2, reorder=30.0))
    rig = make_rig(tmp_path, cfg, T0 + 61)
    local = "2001:db8:1::1"
    rig.feed(rst("2001:db8::a", 22, T0 + 59.0, local), rst("2001:db8::a", 23, T0 + 60.5, local))
    rig.feed(rst("2001:db8::b", 24, T0 + 58.0, local))
    records = rig.journal()
    assert [(r["action"], r["ip"], r["widens"]) for r in records] == [
        ("block", "2001:db8::a", ""), ("block", PREFIX, "2001:db8::a")]
    assert {PREFIX, "2001:db8::a"} <= rig.blocked()
    (row,) = [d for d in rig.engine.snapshot().decisions if d.ip == PREFIX]
    assert row.widens == "2001:db8::a"
