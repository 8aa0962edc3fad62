"""Issue 2's acceptance: `scanguard replay --format json` on EVE from real Suricata blocks
exactly the scanners of every scenario pcap, and nothing else."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest
from pcaps import SCENARIOS

pytestmark = pytest.mark.suricata

SCANGUARD = [sys.executable, "-m", "scanguard_ids.cli"]


def replay(*files: Path, extra: tuple[str, ...] = ()) -> tuple[list[dict], str]:
    res = subprocess.run(
        [*SCANGUARD, "replay", "--format", "json", *extra, *map(str, files)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    return [orjson.loads(x) for x in res.stdout.splitlines()], res.stderr.decode()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_blocks_exactly_its_scanners(suricata_runner, name: str) -> None:
    scenario = SCENARIOS[name]
    decisions, summary = replay(suricata_runner.eve(name))
    assert all(d["action"] == "block" for d in decisions)
    assert {d["ip"] for d in decisions} == set(scenario.expect_blocked), summary
    assert len(decisions) == scenario.expect_block_count, summary
    for d in decisions:
        assert d["count"] >= 3 and len(d["ports"]) >= 2 and d["ttl"] >= 300
        assert {"ts", "reason", "first_seen", "last_seen", "strikes"} <= d.keys()
    assert "bad_lines=0" in summary


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shuffled_lines_give_the_same_blocks(suricata_runner, tmp_path: Path, seed: int) -> None:
    """Suricata's threads write out of order: a shuffled file must decide the same."""
    lines = suricata_runner.eve("mixed_scan").read_bytes().splitlines()
    random.Random(seed).shuffle(lines)
    shuffled = tmp_path / "shuffled.json"
    shuffled.write_bytes(b"\n".join(lines) + b"\n")
    want, _ = replay(suricata_runner.eve("mixed_scan"))
    got, _ = replay(shuffled)
    assert Counter(d["ip"] for d in got) == Counter(d["ip"] for d in want)


def test_paper_policy_and_thresholds_from_cli(suricata_runner) -> None:
    eve = suricata_runner.eve("mixed_scan")
    strict, _ = replay(eve, extra=("--count", "50"))
    assert strict == []
    paper, _ = replay(eve, extra=("--policy", "paper"))
    assert paper and all(d["ttl"] == 300 for d in paper)


def test_text_format_and_summary(suricata_runner) -> None:
    res = subprocess.run(
        [*SCANGUARD, "replay", str(suricata_runner.eve("syn_scan_v4"))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0
    assert " block " in res.stdout and "ttl=300" in res.stdout
    assert "decisions=" in res.stderr and "lines=" in res.stderr
