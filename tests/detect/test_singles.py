"""The two tracking tables: addresses with a single response in a plain dict (``_singles``, in
arrival order through the singles queue), those with two or more as lists in an OrderedDict
(``_tracked``, least recently seen first). Everything that reads tracked state sees both."""

from __future__ import annotations

from dataclasses import replace

from scanguard_ids.config import DetectConfig
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.detector import Detector
from scanguard_ids.model import Kind, ResponseEvent

T0 = 1_700_000_000.0


def ev(ts: float, ip: str, port: int | None = 22) -> ResponseEvent:
    return ResponseEvent(ts, ip, "192.0.2.1", port, "tcp", Kind.TCP_RST, 9_400_000, "")


def where(det: Detector, key: str) -> str:
    if key in det._singles:
        assert key not in det._tracked
        return "single"
    return "list" if key in det._tracked else "-"


def test_a_single_turns_into_a_list_at_its_second_response() -> None:
    det = Detector(DetectConfig(), Allowlist(()))
    det.feed(ev(T0 + 1, "198.51.100.1", 1))
    assert where(det, "198.51.100.1") == "single" and det.stats.tracked == 1
    det.feed(ev(T0, "198.51.100.1", 1))  # older: the list is still time-sorted
    assert where(det, "198.51.100.1") == "list" and det.stats.tracked == 1
    assert [e[0] for e in det._tracked["198.51.100.1"]] == [T0, T0 + 1]
    det.feed(ev(T0 + 2, "198.51.100.2", 1))
    assert det.stats.tracked == 2
    assert det.feed(ev(T0 + 2, "198.51.100.1", 2)) is not None  # 3 responses, 2 ports
    assert where(det, "198.51.100.1") == "-" and det.stats.tracked == 1


def test_idle_singles_and_lists_both_expire_and_singles_go_to_the_slow_tier() -> None:
    cfg = DetectConfig()
    det = Detector(cfg, Allowlist(()))
    det.feed(ev(T0, "198.51.100.1", 1))
    det.feed(ev(T0, "198.51.100.2", 1))
    det.feed(ev(T0 + 1, "198.51.100.2", 1))  # a list
    late = T0 + 1 + cfg.window + cfg.reorder + 1
    det.feed(ev(late, "203.0.113.9", 1))
    assert where(det, "198.51.100.1") == "-" and where(det, "198.51.100.2") == "-"
    assert det.stats.idle == 2 and det.stats.tracked == 1
    assert len(det._single_keys) == 1  # the stale entries left the queue
    # the one-off address is remembered by the slow tier: its next response makes a record
    det.feed(ev(late + 1, "198.51.100.1", 2))
    assert det.stats.slow_tracked == 2  # 198.51.100.2's record, and now 198.51.100.1's


def test_eviction_takes_the_older_front_when_the_oldest_single_is_young() -> None:
    for single_first in (False, True):
        det = Detector(DetectConfig(max_tracked=8), Allowlist(()))  # a single ages at 4
        t = T0 + 10
        lists = [f"198.51.100.{i}" for i in range(1, 6)]
        for ip in lists:
            det.feed(ev(t, ip, 1))
            det.feed(ev(t, ip, 1))
            t += 0.1
        # the oldest single: arrived after the lists, but (out of order) maybe older
        det.feed(ev(T0 if single_first else t, "203.0.113.1", 1))
        for i in (2, 3, 4):
            det.feed(ev(t, f"203.0.113.{i}", 1))
        assert det.stats.tracked == 8 and det.stats.evicted == 1
        gone = "203.0.113.1" if single_first else lists[0]
        assert where(det, gone) == "-"
        assert all(where(det, ip) != "-" for ip in {*lists, "203.0.113.1"} - {gone})


def test_eviction_prefers_old_singles_over_lists() -> None:
    det = Detector(DetectConfig(max_tracked=8), Allowlist(()))
    det.feed(ev(T0, "198.51.100.1", 1))
    det.feed(ev(T0, "198.51.100.1", 1))
    for i in range(1, 40):
        det.feed(ev(T0 + i, f"203.0.113.{i}", 1))
        assert det.stats.tracked <= 8
    assert where(det, "198.51.100.1") == "list"  # the oldest of all, but it drew two


def test_snapshot_shows_singles_and_lists() -> None:
    det = Detector(DetectConfig(), Allowlist(()))
    det.feed(ev(T0, "198.51.100.1", 1))
    det.feed(ev(T0 + 1, "198.51.100.1", 2))
    for i in range(1, 6):
        det.feed(ev(T0 + 1 + i, f"203.0.113.{i}", 1))
    snap = det.snapshot(T0 + 10)
    assert snap.total == 6 and snap.stats.tracked == 6
    assert snap.watching[0].ip == "198.51.100.1" and snap.watching[0].responses == 2
    assert {w.ip for w in snap.watching[1:]} == {f"203.0.113.{i}" for i in range(1, 6)}
    few = det.snapshot(T0 + 10, limit=3)  # only the most recently seen singles are looked at
    assert few.total == 6
    assert [w.ip for w in few.watching] == ["198.51.100.1", "203.0.113.5", "203.0.113.4"]


def test_release_adopt_and_reconfigure_reach_both_tables() -> None:
    det = Detector(DetectConfig(), Allowlist(()))
    for ip, n in (("198.51.100.1", 1), ("198.51.100.2", 2), ("198.51.100.3", 1),
                  ("198.51.100.4", 2), ("198.51.100.5", 1), ("198.51.100.6", 2)):
        for k in range(n):
            det.feed(ev(T0 + k, ip, 1))
    det.release("198.51.100.1")
    det.release("198.51.100.2")
    det.adopt("198.51.100.3", T0 + 100)
    det.adopt("198.51.100.4", T0 + 100)
    assert det.stats.tracked == 2
    cfg = replace(det.cfg, max_tracked=1)
    det.reconfigure(cfg, Allowlist(()))
    # the least recently seen goes: 198.51.100.5 (a single at T0) before .6 (newest at T0 + 1)
    assert det.stats.tracked == 1 and where(det, "198.51.100.6") == "list"
    det.reconfigure(cfg, Allowlist(("198.51.100.6",)))
    assert det.stats.tracked == 0
    det.reconfigure(replace(cfg, max_tracked=100), Allowlist(()))
    det.feed(ev(T0 + 2, "198.51.100.7", 1))
    det.feed(ev(T0 + 2, "198.51.100.8", 1))
    det.reconfigure(cfg, Allowlist(("198.51.100.8",)))
    assert det.stats.tracked == 1 and where(det, "198.51.100.7") == "single"


def test_compact_rebuilds_a_singles_table_a_flood_left_empty() -> None:
    cfg = DetectConfig()
    det = Detector(cfg, Allowlist(()))
    for i in range(30_000):
        det.feed(ev(T0 + i * 1e-4, f"11.0.{i >> 8}.{i & 255}", 1))
    later = T0 + 3 + cfg.window + cfg.reorder
    det.feed(ev(later, "203.0.113.1", 1))
    assert det.stats.tracked == 1
    assert det.compact() >= 1 and det.compact() == 0
    assert list(det._singles) == ["203.0.113.1"]
