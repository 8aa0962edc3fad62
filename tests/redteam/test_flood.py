"""A flood of spoofed sources: every structure it touches stays bounded, the real scanner in
it is still caught, and the benchmark's quick run stays under the RSS bound."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness import T0, make_rig, rst  # noqa: E402

from bench import flood  # noqa: E402
from bench.common import Context  # noqa: E402
from scanguard_ids import config  # noqa: E402

CAP = 2000


def _small() -> config.Config:
    return config.Config().replace("detect", max_tracked=CAP, max_offenders=CAP)


def test_structures_stay_bounded_and_refused_blocks_leave_no_strike(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, _small())
    sid = config.SID_FIRST
    done = 0
    for _ in range(30):
        lines, t = flood.flood_lines(done, 1000, sid)
        rig.clock.set(t)
        rig.feed(*lines)
        done += 1000
    e = rig.engine
    det = e.detector
    stats = det.stats
    assert stats.blocks > 5000 and e.counters["valve_drops"] > 5000  # the valve refused most
    assert stats.tracked <= CAP and stats.blocked <= CAP
    assert len(det._heap) <= 2 * stats.blocked + 1024
    assert len(det._fresh) <= 2 * stats.blocked + 1024
    # only blocks actually made are remembered as strikes
    assert len(e.offenders) <= e.counters["blocks"]
    assert len(e.evidence) <= e.counters["blocks"]


def test_a_flood_of_singles_does_not_push_a_scanner_out(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, _small())
    scanner = "203.0.113.50"
    rig.feed(rst(scanner, 22, T0), rst(scanner, 23, T0 + 0.1))  # 2 of 3 responses
    # 5x the cap of fresh spoofed sources, one response each
    sid = config.SID_FIRST
    for k in range(5 * CAP // 100):
        lines = [flood._LINE % (flood._stamp(T0 + 1 + k * 0.01), 20, flood._addr(3 * i), sid)
                 for i in range(k * 100, k * 100 + 100)]
        rig.feed(*lines)
    assert rig.engine.detector.stats.evicted >= 4 * CAP
    rig.feed(rst(scanner, 24, T0 + 20))
    assert scanner in rig.blocked()


def test_quick_flood_benchmark_stays_under_the_bound() -> None:
    sec = flood.run(Context(quick=True))
    rss = [r for r in sec.rows if r.figure.startswith("RSS at")]
    assert len(rss) == 4 and all(r.passed for r in rss), [(r.figure, r.value) for r in rss]
