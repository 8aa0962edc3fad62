"""LabResult formatting: Table I beside the paper, the summary, JSON, Figures 1-3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanguard_ids.lab import analysis, report
from scanguard_ids.lab.report import LabResult, RunResult


def run(protection: bool, proto: str, n: int, counts: tuple[int, int, int], correct_open: int,
        correct_closed: int, truth_open: int = 100) -> RunResult:
    return RunResult(
        protection=protection, proto=proto, n_ports=n,
        counts=dict(zip(report.COLUMNS, counts, strict=True)), nmap_states={},
        truth_open=truth_open,
        correct_open=list(range(correct_open)), correct_closed=correct_closed, wrong=0,
        duration=12.34, nmap_argv=["nmap", "-sS"])


@pytest.fixture
def result() -> LabResult:
    r = LabResult(protector="scanguard")
    r.runs = [
        run(False, "tcp", 65_536, (100, 65_436, 0), 100, 65_436),
        run(False, "udp", 65_536, (100, 65_436, 0), 100, 65_436),
        run(True, "tcp", 65_536, (14, 120, 65_402), 14, 120),
        run(True, "udp", 65_536, (3, 40, 65_493), 3, 40),
        run(False, "tcp", 1_000, (20, 980, 0), 20, 980, truth_open=20),
        run(True, "tcp", 1_000, (5, 30, 965), 5, 30, truth_open=20),
    ]
    r.runs[2].reaction = analysis.Reaction(10.0, 10.01, None, 10.02, 0.002)
    r.runs[2].leaks = analysis.LeakReport([1, 2], [1, 2], [], [], 0)
    r.reaction_first = analysis.LatencyStats.of([20.0])
    r.reaction_trigger = analysis.LatencyStats.of([10.0])
    r.block_count = 2
    r.delay = {"requested_ms": 10.0, "one_way_ms": 10.4, "rtt_p50_ms": 20.8}
    r.sensor = {"transport": "socket", "alert_latency": {"n": 5, "p50_ms": 0.3, "p99_ms": 1.2}}
    return r


def test_run_picks_largest_or_asked_size(result: LabResult) -> None:
    assert result.run(True, "tcp").n_ports == 65_536  # type: ignore[union-attr]
    assert result.run(True, "tcp", 1_000).counts["open"] == 5  # type: ignore[union-attr]
    assert result.run(True, "udp", 1_000) is None


def test_table_i_lines(result: LabResult) -> None:
    lines = report.table_i(result).splitlines()
    assert lines[0].startswith("TABLE I") and "65536 ports" in lines[0]
    rows = {line[:36].strip(): line[36:].split() for line in lines[3:7]}
    assert rows["No protection (lab)"] == ["100", "65", "436", "0", "100", "65", "436", "0"]
    assert rows["No security utility (paper)"] == ["0", "65", "435", "101", "99", "65", "436", "1"]
    assert rows["scanguard (lab)"] == ["3", "40", "65", "493", "14", "120", "65", "402"]
    assert rows["Security utility activated (paper)"] == [
        "0", "1", "333", "64", "203", "14", "1", "262", "64", "260"]
    # Columns line up: every row as wide as the header of the columns.
    assert len({len(line) for line in lines[2:7]}) == 1


def test_accuracy_lines(result: LabResult) -> None:
    text = report.accuracy_lines(result)
    assert "TCP: open 14/100 (14.0%), closed 120/65436 (0.2%)" in text
    assert "UDP: open 3/100 (3.0%), closed 40/65436 (0.1%)" in text


def test_summary_mentions_measurements(result: LabResult) -> None:
    text = report.summary(result)
    assert "measured one-way 10.4 ms" in text
    assert "p50 0.3 ms, p99 1.2 ms (n=5)" in text
    assert "blocked 20.0 ms after the first response (10.0 ms after the threshold was met)" in text
    assert "(nmap scans): p50 20.0 ms, p99 20.0 ms (n=1)" in text
    assert "(scans + 0 trials): p50 10.0 ms" in text
    assert "Blocks: 2; open ports answered after the block: 0" in text
    assert "protected   tcp  65536 ports:    12.3 s" in text


def test_table_without_runs_uses_dashes() -> None:
    text = report.table_i(LabResult())
    assert "No protection (lab)" in text and " - " in text


def test_json_is_strict_and_complete(result: LabResult, tmp_path: Path) -> None:
    result.reaction_first = analysis.LatencyStats.of([])  # NaN -> null
    path = report.write_json(result, tmp_path / "r.json")
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert data["reaction_latency"]["from_first_response"]["p50_ms"] is None
    run0 = data["runs"][2]
    assert run0["correct_open_count"] == 14 and run0["reaction"]["from_first_ms"] == pytest.approx(
        20.0)
    assert run0["leaks"]["ok"] is True
    assert data["runs"][0]["reaction"] is None


def test_figure_series(result: LabResult) -> None:
    s = report.figure_series(result)
    assert s["closed_tcp"][True] == [(1_000, 30), (65_536, 120)]
    assert s["open_tcp"][False] == [(1_000, 20), (65_536, 100)]
    assert s["closed_udp"][True] == [(65_536, 40)]


def test_plot_writes_png(result: LabResult, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = report.plot(result, tmp_path / "fig.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_paper_table_sums_to_65536() -> None:
    for counts in report.PAPER_TABLE_I.values():
        assert sum(counts.values()) == 65_536


def test_write_outputs(result: LabResult, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    paths = report.write_outputs(result, tmp_path / "out")
    assert set(paths) == {"json", "table", "figures"}
    assert paths["table"].read_text().startswith("TABLE I")
    assert json.loads(paths["json"].read_text())["block_count"] == 2
