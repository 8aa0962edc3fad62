"""The distributed-scan alarm end to end: scapy pcaps -> real Suricata with the pack ->
`scanguard replay --format json`: exactly the expected alarms, nobody blocked unless the
shield is on, and then exactly the scan's sources."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from pcaps import HOME_NET
from pcaps_distributed import DISTRIBUTED, SERVER, TARGET

from scanguard_ids import suricata

pytestmark = pytest.mark.suricata

SCANGUARD = [sys.executable, "-m", "scanguard_ids.cli"]


@pytest.fixture(scope="module")
def eves(tmp_path_factory: pytest.TempPathFactory, rules_path: Path) -> dict[str, Path]:
    if not _have_suricata():
        pytest.skip("suricata binary not found")
    root = tmp_path_factory.mktemp("distributed")
    return {
        name: suricata.run_pcap(s.build(root / "pcap"), rules_path, HOME_NET, root / name,
                                timeout=60)
        for name, s in DISTRIBUTED.items()
    }


def _have_suricata() -> bool:
    try:
        suricata.find_suricata()
    except suricata.SuricataError:
        return False
    return True


def replay(eve: Path, *extra: str, fmt: str = "json") -> tuple[list[dict], str]:
    res = subprocess.run([*SCANGUARD, "replay", "--format", fmt, *extra, str(eve)],
                         capture_output=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    if fmt != "json":
        return [], res.stdout.decode() + res.stderr.decode()
    return [orjson.loads(x) for x in res.stdout.splitlines()], res.stderr.decode()


def alerts_by_remote(eve: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in eve.read_bytes().splitlines():
        rec = orjson.loads(line)
        if rec.get("event_type") == "alert":
            out[rec["dest_ip"]] = out.get(rec["dest_ip"], 0) + 1
    return out


@pytest.mark.parametrize("name", sorted(DISTRIBUTED))
def test_alarms_exactly_as_expected_and_blocks_nobody(eves: dict[str, Path], name: str) -> None:
    scenario = DISTRIBUTED[name]
    records, summary = replay(eves[name])
    assert [r for r in records if r["action"] == "block"] == [], summary
    alarms = [r for r in records if r["action"] == "alarm"]
    ends = [r for r in records if r["action"] == "alarm-end"]
    assert [a["target"] for a in alarms] == list(scenario.expect_alarms), summary
    assert [e["target"] for e in ends] == list(scenario.expect_alarms)
    assert f"alarms={len(scenario.expect_alarms)} " in summary and "decisions=0 " in summary
    for a, e in zip(alarms, ends, strict=True):
        assert a["distinct_sources"] >= 20 and len(a["ports"]) >= 5 and a["detect_only"]
        assert set(a["sources"]) <= scenario.sources and a["sources"] == sorted(a["sources"])
        assert e["since"] == a["ts"] and e["distinct_sources"] == len(scenario.sources)
        assert {"first_seen", "last_seen", "until", "window", "responses"} <= a.keys()


def test_the_scan_really_is_below_the_per_address_threshold(eves: dict[str, Path]) -> None:
    per_source = alerts_by_remote(eves["distributed_scan"])
    assert set(per_source) == DISTRIBUTED["distributed_scan"].sources
    assert max(per_source.values()) == 2  # Suricata saw every probe's response


def test_look_alike_alarms_as_endpoint_target(eves: dict[str, Path], tmp_path: Path) -> None:
    """Counting endpoints instead of hosts would page the operator on every restart."""
    conf = tmp_path / "endpoint.toml"
    conf.write_text('[alarm]\ntarget = "endpoint"\n')
    records, _ = replay(eves["service_restart"], "--config", str(conf))
    assert [r["target"] for r in records if r["action"] == "alarm"] == [f"{SERVER}:443/tcp"]


def test_shield_blocks_the_sources_for_a_short_while(eves: dict[str, Path], tmp_path: Path
                                                     ) -> None:
    conf = tmp_path / "shield.toml"
    conf.write_text("[alarm]\nshield = true\nshield_ttl = 45\n")
    records, summary = replay(eves["distributed_scan"], "--config", str(conf))
    blocks = [r for r in records if r["action"] == "block"]
    assert sorted(b["ip"] for b in blocks) == sorted(DISTRIBUTED["distributed_scan"].sources)
    for b in blocks:
        assert b["ttl"] == 45 and not b["manual"]
        assert b["reason"] == f"shield: distributed scan on {TARGET}"
    (alarm,) = [r for r in records if r["action"] == "alarm"]
    assert not alarm["detect_only"] and "alarms=1 " in summary
    quiet, _ = replay(eves["service_restart"], "--config", str(conf))
    assert quiet == []


def test_text_format_and_mode_off(eves: dict[str, Path], tmp_path: Path) -> None:
    _, text = replay(eves["distributed_scan"], fmt="text")
    assert f" alarm {TARGET} sources=" in text and f" alarm-end {TARGET} " in text
    assert "alarms=1 " in text
    conf = tmp_path / "off.toml"
    conf.write_text('[alarm]\nmode = "off"\n')
    records, summary = replay(eves["distributed_scan"], "--config", str(conf))
    assert records == [] and "alarms=0 " in summary
