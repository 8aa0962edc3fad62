"""Edge detection on EVE from real Suricata: sweeps, -T0 scans and /64 rotation are blocked,
the everyday look-alikes are not (tests/pcaps_edge.py), with `scanguard replay` defaults."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from pcaps_edge import EDGE, HOME_NET

from scanguard_ids import suricata

pytestmark = pytest.mark.suricata

RULES = Path(__file__).resolve().parent.parent / "rules" / "scanguard.rules"


@pytest.fixture(scope="module")
def edge_eve(tmp_path_factory: pytest.TempPathFactory, suricata_runner) -> dict[str, Path]:
    """name -> eve.json of that scenario, Suricata run once per scenario with HOME_NET."""
    root = tmp_path_factory.mktemp("edge")
    return {
        name: suricata.run_pcap(s.build(root / "pcap"), RULES, HOME_NET, root / "eve" / name,
                                timeout=60)
        for name, s in EDGE.items()
    }


def replay(eve: Path) -> tuple[list[dict], str]:
    res = subprocess.run([sys.executable, "-m", "scanguard_ids.cli", "replay", "--format",
                          "json", str(eve)], capture_output=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    return [orjson.loads(x) for x in res.stdout.splitlines()], res.stderr.decode()


@pytest.mark.parametrize("name", sorted(EDGE))
def test_edge_scenario(edge_eve: dict[str, Path], name: str) -> None:
    scenario = EDGE[name]
    decisions, summary = replay(edge_eve[name])
    assert "bad_lines=0" in summary
    got = {d["ip"]: (d["tier"], d["rule"]) for d in decisions}
    assert got == dict(scenario.expect), (summary, decisions)
    assert len(decisions) == scenario.block_count, decisions
    for d in decisions:
        assert d["action"] == "block" and not d["detect_only"] and d["ttl"] >= 300
    if "count" in scenario.extra:
        (d,) = decisions
        assert d["count"] == scenario.extra["count"]
        span = datetime.fromisoformat(d["last_seen"]) - datetime.fromisoformat(d["first_seen"])
        assert span.total_seconds() == pytest.approx(scenario.extra["span"], abs=1.0)


def test_the_pack_alerts_on_every_response_of_the_look_alikes(edge_eve: dict[str, Path]) -> None:
    """The look-alikes stay unblocked by the detector's rule, not for lack of alerts."""
    want = {"monitor_poll": 120, "two_web_servers": 6, "nat_office": 40}
    for name, n in want.items():
        lines = [orjson.loads(x) for x in edge_eve[name].read_bytes().splitlines()]
        alerts = [x for x in lines if x.get("event_type") == "alert"]
        assert len(alerts) == n, name
