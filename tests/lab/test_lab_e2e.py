"""The polygon end to end, small: real namespaces, listeners, Suricata, nmap, protector.

~60 s in all. The stand-in protector (standin_protector.py, tests only) always runs;
the real ``scanguard run`` runs too when its console script is installed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nsutil import need_root_and

from scanguard_ids.lab import protect, runner
from scanguard_ids.lab.report import LabResult, summary

pytestmark = [pytest.mark.root, pytest.mark.suricata]

STANDIN = Path(__file__).with_name("standin_protector.py")
TOOLS = ("nmap", "suricata", "tcpdump", "ipset", "iptables", "ethtool")


@pytest.fixture(autouse=True)
def _need_root_and_tools() -> None:
    need_root_and(TOOLS)


def standin() -> protect.CommandProtector:
    return protect.CommandProtector(
        name="standin",
        argv_for=lambda ctx: [sys.executable, str(STANDIN), "--eve", str(ctx.eve_file),
                              "--journal", str(ctx.workdir / "journal.jsonl"),
                              "--ttl", str(ctx.ttl), "--max-seconds", "300"],
        journal_for=lambda ctx: ctx.workdir / "journal.jsonl",
        ready_marker="standin running")


def namespaces(prefix: str) -> list[str]:
    """Lab namespaces made with this prefix (topology names them prefix + v/s/p + 6 hex)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    names = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
    return [n for n in names
            if n.startswith(prefix) and len(n) == len(prefix) + 7 and n[len(prefix)] in "vsp"]


def counts(res: LabResult, protection: bool, proto: str) -> tuple[int, int, int]:
    run = res.run(protection, proto)
    assert run is not None, f"no run protection={protection} proto={proto}"
    return len(run.correct_open), run.correct_closed, run.truth_open


def test_unprotected_scan_finds_every_open_and_closed_port(tmp_path: Path) -> None:
    opts = runner.LabOptions(sizes=(300,), protected=False, sensor_probes=10, settle=0.2,
                             outdir=tmp_path, prefix="lu", scan_timeout=120)
    res = runner.run_lab(opts)
    print(summary(res))
    for proto in ("tcp", "udp"):
        run = res.run(False, proto)
        assert run is not None and run.n_ports == 300
        # nmap-services' most popular ports below 300 are open; all others closed.
        assert 10 < run.truth_open < 100
        assert run.counts == {"open": run.truth_open, "closed": 300 - run.truth_open,
                              "filtered": 0}
        assert len(run.correct_open) == run.truth_open and run.wrong == 0
        assert run.duration < 30
        assert run.nmap_argv[:4] == ["nmap", "-n", "-Pn", "-sS" if proto == "tcp" else "-sU"]
    assert res.sensor["alert_latency"]["n"] == 10
    assert res.sensor["alert_latency"]["p50_ms"] < 50
    assert namespaces("lu") == []


PROTECTORS = ["standin", "scanguard"]


@pytest.mark.parametrize("which", PROTECTORS)
def test_protection_reduces_what_nmap_learns(tmp_path: Path, which: str) -> None:
    if which == "scanguard":
        if not protect.SCANGUARD_BIN.exists():
            pytest.skip("scanguard console script not installed")
        protector: protect.Protector = protect.scanguard_protector()
        transport = "socket"
    else:
        protector, transport = standin(), "file"
    opts = runner.LabOptions(sizes=(1_000,), delay_ms=5.0, protector=protector,
                             eve_transport=transport, sensor_probes=10, latency_trials=2,
                             settle=0.2, outdir=tmp_path, prefix="lp", scan_timeout=180)
    res = runner.run_lab(opts)
    print(summary(res))
    assert res.delay["one_way_ms"] == pytest.approx(5.0, abs=2.5)
    for proto in ("tcp", "udp"):
        u_open, u_closed, truth_open = counts(res, False, proto)
        p_open, p_closed, _ = counts(res, True, proto)
        assert u_open == truth_open and u_closed == 1_000 - truth_open
        assert p_closed < u_closed / 2, f"{proto}: protection did not hide closed ports"
        assert p_open <= u_open
        run = res.run(True, proto)
        assert run is not None and run.reaction is not None and run.reaction.blocked is not None
        assert run.leaks is not None and run.leaks.after_block == []
        assert run.leaks.responses_after_block == 0
    assert res.block_count >= 2
    assert res.leaks_after_block == 0
    assert res.reaction_trigger.n >= 3 and res.reaction_trigger.p50_ms < 1_000
    data = json.loads((tmp_path / "protected-tcp-1000" / "setwatch.jsonl").read_text()
                      .splitlines()[0])
    assert data["event"] == "ready"
    assert namespaces("lp") == []


INTERRUPTED = """
import sys, time
from scanguard_ids.lab import procs, topology
with procs.signals_raise(), topology.build(delay_ms=2, prefix="li") as t:
    print(" ".join(n.name for n in t.namespaces()), t.forwarder.pid, flush=True)
    time.sleep(60)
"""


def test_sigterm_removes_namespaces_and_forwarder() -> None:
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        *names, fwd = proc.stdout.readline().split()
        assert len(names) == 3 and all(n in namespaces("li") for n in names)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not set(names) & set(namespaces("li"))
    deadline = time.monotonic() + 5
    while Path(f"/proc/{fwd}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{fwd}").exists()
