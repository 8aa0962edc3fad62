"""Shared by the red-team tests: start `scanguard run` as a subprocess, ask it, stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from harness import rst  # tests/harness.py: one EVE alert line of a TCP RST
from waiting import wait_for  # tests/waiting.py (tests/ is on sys.path)

REPO = Path(__file__).resolve().parents[2]
SCANGUARD = [sys.executable, "-m", "scanguard_ids.cli"]
SAMPLE = REPO / "tests" / "data" / "eve" / "mixed_scan.eve.json"
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
VICTIM4, SCANNER4 = "192.0.2.1", "192.0.2.2"  # scanguard_ids.lab.netns.victim_scanner


def spoofed_lines(ips: list[str], ts: float, local: str = VICTIM4) -> bytes:
    """EVE alerts a spoofed scan draws from each of ``ips``: 3 RSTs over 3 ports (just enough
    for a block), each address in turn."""
    return b"".join(rst(ip, port, ts, local) + b"\n" for ip in ips for port in (21, 23, 25))


def spoof_ips(n: int, first: int = 0) -> list[str]:
    """``n`` distinct addresses from 198.51.100.0/24 then 203.0.113.0/24 (at most 508)."""
    pool = [f"198.51.100.{i}" for i in range(1, 255)] + [f"203.0.113.{i}" for i in range(1, 255)]
    assert first + n <= len(pool)
    return pool[first:first + n]


def suricata_scan(tmp: Path, remote: str = SCANNER4, local: str = VICTIM4,
                  ports: tuple[int, ...] = (21, 23, 25, 110, 111)) -> bytes:
    """Real Suricata EVE alerts (``suricata -r`` of a SYN scan of closed ports, timestamped
    now) of ``remote`` scanning ``local``; one line per RST."""
    from pcaps import Capture, tcp_closed  # tests/pcaps.py (scapy: imported when needed)

    from scanguard_ids import suricata

    cap = Capture(start=int(time.time()))
    for i, port in enumerate(ports):
        tcp_closed(cap, 0.01 * i, remote, local, port)
    tmp.mkdir(parents=True, exist_ok=True)
    eve = suricata.run_pcap(cap.write(tmp / "scan.pcap"), REPO / "rules" / "scanguard.rules",
                            [f"{local}/32"], tmp, timeout=60)
    lines = [ln for ln in eve.read_bytes().splitlines() if b'"event_type":"alert"' in ln]
    assert len(lines) == len(ports), lines
    return b"".join(ln + b"\n" for ln in lines)


def kernel_set(ns: str, name: str = "scanguard4") -> set[str]:
    """The addresses in ipset ``name`` inside namespace ``ns`` (the kernel's truth)."""
    res = subprocess.run(["ip", "netns", "exec", ns, "ipset", "save", name],
                         capture_output=True, text=True, timeout=10, check=True)
    return {ln.split()[2] for ln in res.stdout.splitlines() if ln.startswith("add ")}


def journal(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def call(ctl: Path, *args: str, prefix: tuple[str, ...] = (), check: bool = True) -> Any:
    res = subprocess.run([*prefix, *SCANGUARD, *args, "--socket", str(ctl), "--json"],
                         capture_output=True, timeout=30, check=False, env=ENV)
    if not check:
        return res
    assert res.returncode == 0, res.stderr
    return orjson.loads(res.stdout) if res.stdout.strip() else None


class Daemon:
    """`scanguard run ARGS` with its log in ``log``; stop() sends SIGTERM and returns rc."""

    def __init__(self, args: list[str], log: Path, ctl: Path, prefix: tuple[str, ...] = (),
                 umask: int | None = None) -> None:
        self.ctl = ctl
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        pre = (lambda: os.umask(umask)) if umask is not None else None
        self.proc = subprocess.Popen([*prefix, *SCANGUARD, "run", "--socket", str(ctl), *args],
                                     stdout=self._log, stderr=self._log, env=ENV,
                                     preexec_fn=pre)

    def wait_ready(self, timeout: float = 20) -> None:
        wait_for(lambda: self.ctl.exists() or self.proc.poll() is not None, timeout,
                 "control socket")
        assert self.proc.poll() is None, self.log()

    def status(self) -> dict[str, Any]:
        return call(self.ctl, "status", prefix=())  # type: ignore[no-any-return]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL (a crash): no shutdown path runs."""
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self._log.close()
