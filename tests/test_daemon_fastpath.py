"""`scanguard run --fast-path` in namespaces: the kernel stops a burst of new ports, the daemon
adopts and journals it within a second, with either block backend; unblock lifts both."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from blocklab import PORT, Lab, host_firewall, listening_lab, tcp_ok
from nsutil import run_in_netns
from test_daemon_live import Daemon, wait_for

pytestmark = [pytest.mark.root]


def probe(dst: str, ports: list[int]) -> None:
    """In the scanner ns: one SYN to each port back to back."""
    socks = []
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        with contextlib.suppress(OSError):
            s.connect((dst, port))
        socks.append(s)
    time.sleep(0.2)
    for s in socks:
        s.close()


@pytest.fixture
def lab() -> Iterator[Lab]:
    before = host_firewall()
    with listening_lab("sgq") as lab:
        yield lab
    assert host_firewall() == before, "the host namespace's firewall changed"


@pytest.mark.parametrize("backend", ["ipset", "nftables"])
def test_fast_path_block_adopted_journaled_and_unblocked(
    lab: Lab, tmp_path: Path, backend: str
) -> None:
    (tmp_path / "eve.json").touch()
    d = Daemon(lab, tmp_path, backend, "--eve", str(tmp_path / "eve.json"), "--fast-path")
    d.start()
    try:
        victim, scanner = lab.pair.victim4, lab.pair.scanner4
        assert run_in_netns(lab.scanner.name, tcp_ok, victim, PORT)
        run_in_netns(lab.scanner.name, probe, victim, list(range(1, 40)))
        t0 = time.time()
        rows = wait_for(lambda: [r for r in d.call("list") if r["ip"] == scanner], 5,
                        "the fast-path block in `list`")
        assert rows[0]["by"] == "fast-path"
        rec = [r for r in d.journal() if r["ip"] == scanner and r["action"] == "block"]
        assert rec and rec[0]["sensors"] == ["fast-path"]
        assert rec[0]["reason"].startswith("fast path")
        # housekeeping reads the sets once a second (measured on the journal's own clock:
        # a `list` call costs a CLI start of its own)
        took = datetime.fromisoformat(rec[0]["ts"]).timestamp() - t0
        assert took < 1.1, took
        assert not run_in_netns(lab.scanner.name, tcp_ok, victim, PORT)
        d.call("unblock", scanner)
        assert wait_for(lambda: run_in_netns(lab.scanner.name, tcp_ok, victim, PORT), 5,
                        "the scanner reaching the listener again")
    finally:
        assert d.stop() == 0
