"""The gateway polygon end to end, short: 32 hosts behind a router running real Suricata and
``scanguard run``; masscan sweeps one port, nmap three, without and with protection.

What holds today: the 3-port sweep is blocked (the vertical rule counts distinct ports) and
learns fewer closed endpoints with protection. A single-port sweep covers one port only,
so today it is never blocked: those expectations wait for the sweep tier in detect/.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from nsutil import need_root_and

from scanguard_ids.lab import gateway
from scanguard_ids.lab.gateway_report import GatewayResult, Row, summary

pytestmark = [pytest.mark.root, pytest.mark.suricata, pytest.mark.slow]

TOOLS = ("masscan", "nmap", "suricata", "tcpdump", "ipset", "iptables")
PREFIX = f"gw{os.getpid() % 100_000}"  # per process: other runs may be going on
SWEEPS = ("masscan-tcp-1", "nmap-sS-3")


def namespaces(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    names = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
    return [n for n in names
            if n.startswith(prefix) and len(n) == len(prefix) + 7 and n[len(prefix)] in "srvh"]


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> GatewayResult:
    need_root_and(TOOLS)
    before = set(namespaces(PREFIX))
    opts = gateway.GatewayOptions(hosts=32, sweeps=SWEEPS, prefix=PREFIX,
                                  outdir=tmp_path_factory.mktemp("gateway"), sweep_timeout=30)
    res = gateway.run_gateway(opts)
    assert set(namespaces(PREFIX)) == before, "namespaces left behind"
    print(summary(res))
    return res


def row(res: GatewayResult, sweep: str, protection: bool) -> Row:
    r = res.row(sweep, protection)
    assert r is not None, f"no row {sweep} protection={protection}"
    return r


@pytest.mark.parametrize("sweep", SWEEPS)
def test_unprotected_sweeps_learn_the_network(result: GatewayResult, sweep: str) -> None:
    r = row(result, sweep, False)
    assert r.exit == 0
    assert r.open_learned == r.truth_open > 0
    assert r.closed_learned >= 0.9 * r.truth_closed
    assert r.wrong == 0
    assert r.blocked is None


def test_three_port_sweep_is_blocked(result: GatewayResult) -> None:
    free, guarded = row(result, "nmap-sS-3", False), row(result, "nmap-sS-3", True)
    assert guarded.blocked is not None
    assert guarded.reaction_ms is not None and 0 <= guarded.reaction_ms < 2_000
    assert guarded.closed_learned < free.closed_learned
    assert guarded.open_after_block == 0
    assert guarded.wrong == 0


def test_single_port_sweep_is_blocked(result: GatewayResult) -> None:
    # the sweep rule (detect.hosts): at most 5 closed endpoints plus those in flight, and no
    # open endpoint answered after the block
    r = row(result, "masscan-tcp-1", True)
    assert r.blocked is not None
    assert r.goal is True
    assert r.open_after_block == 0


def test_outputs_written(result: GatewayResult, tmp_path: Path) -> None:
    from scanguard_ids.lab import gateway_report

    paths = gateway_report.write_outputs(result, tmp_path)
    assert "masscan-tcp-1" in paths["table"].read_text()
    assert '"rows"' in paths["json"].read_text()
