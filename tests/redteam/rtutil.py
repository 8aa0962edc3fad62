"""Shared by the red-team tests: start `scanguard run` as a subprocess, ask it, stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from waiting import wait_for  # tests/waiting.py (tests/ is on sys.path)

REPO = Path(__file__).resolve().parents[2]
SCANGUARD = [sys.executable, "-m", "scanguard_ids.cli"]
SAMPLE = REPO / "tests" / "data" / "eve" / "mixed_scan.eve.json"
ENV = {**os.environ, "PYTHONPATH": str(REPO)}




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
