"""The max_tracked eviction policy: singles go first, but not before they had their chance."""

from __future__ import annotations

import random

from scanguard_ids.config import DetectConfig
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.detector import Detector
from scanguard_ids.model import Kind, ResponseEvent

T0 = 1_700_000_000.0


def ev(ts: float, ip: str, port: int) -> ResponseEvent:
    return ResponseEvent(ts, ip, "192.0.2.1", port, "tcp", Kind.TCP_RST)


def spoofed(i: int) -> str:
    return f"198.18.{i >> 8 & 255}.{i & 255}"


def scanners(n: int) -> list[str]:
    return [f"203.0.113.{i}" for i in range(1, n + 1)]


def test_a_flood_of_singles_never_evicts_an_address_with_several_responses() -> None:
    """More addresses with two responses at the head of the LRU order than the old
    32-entry look-ahead: a flood 20x the cap of fresh single-response sources evicts
    only its own singles, and every scanner still blocks on its third response."""
    cap = 100
    det = Detector(DetectConfig(max_tracked=cap), Allowlist())
    held = scanners(cap // 2 - 1)  # just under half the table
    t = T0
    for ip in held:
        det.feed(ev(t, ip, 1))
        det.feed(ev(t, ip, 2))
        t += 0.001
    for i in range(20 * cap):
        assert det.feed(ev(t, spoofed(i), 22)) is None
        t += 0.001
    assert det.stats.evicted == len(held) + 20 * cap - cap
    for ip in held:
        assert det.feed(ev(t, ip, 3)) is not None, ip  # its two responses survived


def test_a_single_lives_for_half_the_cap_of_arrivals() -> None:
    """A table full of addresses with two responses (a flood of pairs, say) does not make
    a new single the first to go: the least recently seen pairs go until half the cap of
    new addresses arrived after it."""
    cap = 100
    det = Detector(DetectConfig(max_tracked=cap), Allowlist())
    pairs = [spoofed(i) for i in range(cap)]
    t = T0
    for ip in pairs:
        det.feed(ev(t, ip, 1))
        det.feed(ev(t, ip, 2))
        t += 0.001
    scanner = "203.0.113.1"
    det.feed(ev(t, scanner, 1))  # its first response: the table is full of pairs
    for i in range(cap, cap + cap // 2 - 1):  # fewer than cap / 2 arrivals after it
        det.feed(ev(t, spoofed(i), 1))
        t += 0.001
    det.feed(ev(t, scanner, 2))
    assert det.feed(ev(t, scanner, 3)) is not None
    assert det.feed(ev(t, pairs[0], 3)) is None  # the least recently seen pair was dropped


def test_the_singles_queue_stays_bounded() -> None:
    cap = 50
    det = Detector(DetectConfig(max_tracked=cap), Allowlist())
    rng = random.Random(3)
    t = T0
    for i in range(40 * cap):  # 1, 2 or 3 responses (a decision) per spoofed source
        ip = spoofed(i)
        for port in range(1, rng.randint(1, 3) + 1):
            det.feed(ev(t, ip, port))
        t += 0.001
        assert det.stats.tracked <= cap
        assert len(det._single_keys) <= 2 * cap + 1024
    # Below the cap with event time moving on: stale entries leave as their time passes.
    det = Detector(DetectConfig(), Allowlist())
    for i in range(5000):
        det.feed(ev(T0 + i * 0.1, spoofed(i), 1))
        det.feed(ev(T0 + i * 0.1, spoofed(i), 2))
    assert len(det._single_keys) <= det.stats.tracked + 16
    # Decisions leave stale entries behind; compact() drops them once they dominate.
    det = Detector(DetectConfig(), Allowlist())
    for i in range(3000):
        for port in (1, 2, 3):
            det.feed(ev(T0, spoofed(i), port))
    assert det.stats.tracked == 0 and len(det._single_keys) == 3000
    assert det.compact() == 1 and len(det._single_keys) == 0
