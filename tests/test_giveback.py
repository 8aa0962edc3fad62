"""After a flood the engine rebuilds emptied tables and hands freed memory back."""

from __future__ import annotations

import sys
from collections import OrderedDict

from scanguard_ids import giveback
from scanguard_ids.detect.dedup import Deduper
from scanguard_ids.model import Kind, ResponseEvent


def test_oversized_sees_an_emptied_table_not_a_full_or_small_one() -> None:
    for cls in (dict, OrderedDict):
        d = cls((f"11.0.{i // 256}.{i % 256}", i) for i in range(50_000))
        assert not giveback.oversized(d)  # full
        for k in list(d)[:49_990]:
            del d[k]
        assert giveback.oversized(d)  # ten entries in a 50 000-entry table
        rebuilt = cls(d)
        assert not giveback.oversized(rebuilt) and list(rebuilt) == list(d)
        assert sys.getsizeof(rebuilt) < sys.getsizeof(d) // 100
    assert not giveback.oversized({i: i for i in range(10)})


def test_malloc_trim_is_guarded() -> None:
    assert giveback.malloc_trim() in (True, False)  # glibc here; False elsewhere, never raises


def test_dedup_fresh_matches_seen_and_compacts() -> None:
    def ev(ts: float, port: int) -> ResponseEvent:
        return ResponseEvent(ts, "203.0.113.9", "192.0.2.1", port, "tcp", Kind.TCP_RST)

    stream = [ev(1.0 + (i // 7) * 0.02, 20 + i % 5) for i in range(500)]
    one = Deduper(tolerance=0.05, max_keys=64)
    kept = [e for e in stream if not one.seen(e)]
    batch = Deduper(tolerance=0.05, max_keys=64)
    assert batch.fresh(stream[:123]) + batch.fresh(stream[123:]) == kept
    assert batch.duplicates == one.duplicates and len(batch) == len(one)
    big = Deduper(tolerance=0.0, max_keys=100_000)
    big.fresh([ev(5.0, i) for i in range(30_000)])  # one instant: all kept
    big.fresh([ev(1e9, 1)])  # everything older than the tolerance is forgotten
    assert len(big) == 1 and big.compact() == 1 and big.compact() == 0


def test_engine_gives_the_flood_tables_back_once_event_time_moved_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.harness import T0, make_rig, rst

    rig = make_rig(tmp_path)
    engine = rig.engine
    for b in range(20):  # 20 000 spoofed sources, one RST each
        rig.feed(*(rst(f"11.{b}.{i // 256}.{i % 256}", 22, ts=T0 + b * 0.01)
                   for i in range(1000)))
    assert engine.detector.stats.tracked > 10_000
    engine.sync(full=True)
    assert engine.trims == 0  # still in the window: nothing to give back
    later = T0 + engine.cfg.detect.window + engine.cfg.detect.reorder + 10
    rig.clock.set(later)
    rig.feed(rst("203.0.113.7", 22, ts=later))
    engine.sync(full=True)
    assert engine.detector.stats.tracked < 10 and engine.trims == 1
    assert not giveback.oversized(engine.detector._tracked)
    engine.sync(full=True)
    assert engine.trims == 1  # nothing more shrank


def test_tune_gc_raises_the_young_threshold_and_freezes_what_exists() -> None:
    """Process-wide: checked in a child interpreter, not in the test process."""
    import subprocess
    import sys

    code = ("import gc; from scanguard_ids import giveback; before = gc.get_threshold(); "
            "giveback.tune_gc(); after = gc.get_threshold(); "
            "print(after[0], after[1:] == before[1:], gc.get_freeze_count() > 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    from scanguard_ids.giveback import GC_THRESHOLD0

    assert out == [str(GC_THRESHOLD0), "True", "True"]
