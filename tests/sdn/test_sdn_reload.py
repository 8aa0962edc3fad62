"""How the sdn-faucet backend asks Faucet to reload: signal, command, or nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from scanguard_ids.block.sdn.reload import (
    CommandReloader,
    NoReloader,
    SignalReloader,
    make_reloader,
)
from scanguard_ids.errors import BackendError


def fake_proc(tmp_path: Path, pid: int, cmdline: str) -> Path:
    d = tmp_path / "proc" / str(pid)
    d.mkdir(parents=True)
    (d / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode())
    return tmp_path / "proc"


def test_signal_reloader_checks_the_process(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, 4242, "/usr/bin/python3 /usr/bin/osken-manager faucet.faucet")
    fake_proc(tmp_path, 4343, "/usr/sbin/sshd -D")
    pid_file = tmp_path / "faucet.pid"
    pid_file.write_text("4242\n")
    assert SignalReloader(pid_file=pid_file, proc=proc).target() == 4242
    pid_file.write_text("4343\n")  # stale pid file, pid reused by something else
    with pytest.raises(BackendError, match="refusing"):
        SignalReloader(pid_file=pid_file, proc=proc).target()
    with pytest.raises(BackendError, match="not running"):
        SignalReloader(pid=5555, proc=proc).target()
    with pytest.raises(BackendError, match="pid file"):
        SignalReloader(pid_file=tmp_path / "missing.pid", proc=proc).target()
    with pytest.raises(BackendError):
        SignalReloader()


def test_signal_reloader_sends_sighup(tmp_path: Path) -> None:
    """A child that calls itself faucet, counting SIGHUPs."""
    code = ("import signal, sys, time\n"
            "n = []\n"
            "signal.signal(signal.SIGHUP, lambda *a: n.append(1))\n"
            "print('ready', flush=True)\n"
            "end = time.monotonic() + 10\n"
            "while len(n) < 2 and time.monotonic() < end:\n"
            "    time.sleep(0.01)\n"
            "print(len(n))\n")
    child = subprocess.Popen([sys.executable, "-c", code, "faucet"], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        r = SignalReloader(pid=child.pid)
        r.reload()
        time.sleep(0.05)
        r.reload()
        out, _ = child.communicate(timeout=15)
        assert out.strip() == "2"
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=5)


def test_command_reloader() -> None:
    seen: list[list[str]] = []

    def runner(argv: Sequence[str], stdin: str | None = None,
               timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        seen.append(list(argv))
        rc = 0 if argv[-1] == "faucet" else 5
        return subprocess.CompletedProcess(list(argv), rc, "", "unit not found")

    CommandReloader(["systemctl", "reload", "faucet"], runner).reload()
    assert seen == [["systemctl", "reload", "faucet"]]
    with pytest.raises(BackendError, match="unit not found"):
        CommandReloader(["systemctl", "reload", "gauge"], runner).reload()
    with pytest.raises(BackendError):
        CommandReloader([])


def test_make_reloader_precedence() -> None:
    assert isinstance(make_reloader(pid=1), SignalReloader)
    assert isinstance(make_reloader(pid_file="/run/faucet.pid"), SignalReloader)
    r = make_reloader()
    assert isinstance(r, CommandReloader) and r.argv == ["systemctl", "reload", "faucet"]
    assert isinstance(make_reloader(command=[]), NoReloader)
    NoReloader().reload()
