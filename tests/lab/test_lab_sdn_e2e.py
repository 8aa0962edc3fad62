"""The polygon with the blocks in a switch (Table II): real OVS, Faucet, Suricata, nmap, daemon.

Small: 1000 TCP ports, 5 ms each way, two reaction-latency trials; ~25 s per backend.
Skipped without root, the lab's tools, OVS, Faucet (for sdn-faucet) or the
``scanguard`` console script.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from nsutil import need_root_and

from scanguard_ids.lab import runner, setwatch, topology
from scanguard_ids.lab.report import summary

pytestmark = [pytest.mark.root, pytest.mark.suricata, pytest.mark.timeout(150)]

TOOLS = ("nmap", "suricata", "tcpdump", "ipset", "ethtool")


def _need(backend: str) -> None:
    need_root_and(TOOLS)
    controller = runner.SWITCH[backend][0]
    why = topology.switch_missing(controller) if controller else None
    if why:
        pytest.skip(why)
    need_root_and((), scanguard=True)


def _namespaces(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    return [line.split()[0] for line in out.stdout.splitlines()
            if line.startswith(prefix)]


@pytest.mark.parametrize("backend", ["sdn-openflow", "sdn-faucet"])
def test_switch_blocks_the_scanner(tmp_path: Path, backend: str) -> None:
    _need(backend)
    prefix = "lq"
    opts = runner.LabOptions(sizes=(1_000,), protos=("tcp",), delay_ms=5.0, backend=backend,
                             eve_transport="socket", sensor_probes=5, latency_trials=2,
                             settle=0.2, outdir=tmp_path, prefix=prefix, scan_timeout=120)
    res = runner.run_lab(opts)
    print(summary(res))
    assert summary(res).startswith("TABLE II")
    assert res.switch["backend"] == backend
    unprot, prot = res.run(False, "tcp"), res.run(True, "tcp")
    assert unprot is not None and prot is not None
    assert unprot.correct_closed == 1_000 - unprot.truth_open  # the switch forwards everything
    # The scanner was dropped in the switch during its scan, and the trials' addresses too.
    assert prot.decisions >= 1 and prot.blocks >= 1
    assert prot.reaction is not None and prot.reaction.blocked is not None
    assert all(t.blocked is not None for t in res.latency_trials)
    assert res.leaks_after_block == 0
    limit_ms = 200 if backend == "sdn-openflow" else 5_000
    assert res.reaction_trigger.n == 3 and res.reaction_trigger.p50_ms < limit_ms
    if backend == "sdn-openflow":  # blocks in milliseconds: most of the scan is lost
        assert prot.correct_closed < unprot.correct_closed / 2
    else:  # Faucet needs ~0.5 s, about this scan's length: it may end before the block
        assert prot.correct_closed <= unprot.correct_closed
    events = setwatch.read_events(tmp_path / "protected-tcp-1000" / "flowwatch.jsonl")
    assert events[0]["event"] == "ready"
    assert any(e.get("ip") == "192.0.2.2" and e["event"] == "add" for e in events)
    assert (tmp_path / "switch" / "ovs" / "ovs-vswitchd.log").exists()
    assert _namespaces(prefix + runner.SWITCH[backend][1]) == []
