"""How the sdn-faucet backend asks Faucet to apply a changed ACL file.

Faucet reloads its configuration on SIGHUP (os-ken's ``osken-manager`` process) and,
when started with ``FAUCET_CONFIG_STAT_RELOAD=1``, also by itself when it notices a
changed file (it looks every 3-5 s). Three ways to ask, chosen by configuration:

* :class:`SignalReloader` - SIGHUP to a PID, given directly or read from a pid file
  on every reload (Faucet may have restarted). The process's command line must
  mention faucet, so a stale pid file never signals an unrelated process.
* :class:`CommandReloader` - an argv such as ``systemctl reload faucet`` (the
  packaged unit's ExecReload sends the SIGHUP) or ``docker kill --signal=HUP faucet``.
* :class:`NoReloader` - nothing: Faucet watches the files itself (slow, 3-5 s).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from scanguard_ids.block.common import Runner, check_result, run_argv
from scanguard_ids.errors import BackendError

log = logging.getLogger(__name__)

DEFAULT_COMMAND = ("systemctl", "reload", "faucet")


class Reloader(Protocol):
    description: str

    def reload(self) -> None:
        """Ask Faucet to re-read its configuration; BackendError if that was impossible."""
        ...


class SignalReloader:
    def __init__(self, pid: int | None = None, pid_file: str | Path | None = None,
                 proc: Path = Path("/proc")) -> None:
        if (pid is None) == (pid_file is None):
            raise BackendError("SignalReloader needs exactly one of pid, pid_file")
        self.pid = pid
        self.pid_file = Path(pid_file) if pid_file is not None else None
        self.proc = proc
        self.description = (f"SIGHUP to pid {pid}" if pid is not None
                            else f"SIGHUP to the pid in {pid_file}")

    def target(self) -> int:
        if self.pid is not None:
            pid = self.pid
        else:
            assert self.pid_file is not None
            try:
                pid = int(self.pid_file.read_text().split()[0])
            except (OSError, ValueError, IndexError) as exc:
                raise BackendError(f"Faucet pid file {self.pid_file}: {exc}") from None
        try:
            cmdline = (self.proc / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            raise BackendError(f"Faucet (pid {pid}) is not running") from None
        if b"faucet" not in cmdline:
            raise BackendError(f"pid {pid} is not Faucet ({cmdline.decode(errors='replace')!r}"
                               "); refusing to signal it")
        return pid

    def reload(self) -> None:
        pid = self.target()
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            raise BackendError(f"Faucet (pid {pid}) exited") from None
        except PermissionError:
            raise BackendError(f"not allowed to signal Faucet (pid {pid})") from None


class CommandReloader:
    def __init__(self, argv: Sequence[str], runner: Runner = run_argv,
                 timeout: float = 15.0) -> None:
        if not argv:
            raise BackendError("reload command is empty")
        self.argv = list(argv)
        self._run = runner
        self.timeout = timeout
        self.description = "command " + " ".join(self.argv)

    def reload(self) -> None:
        check_result(self._run(self.argv, timeout=self.timeout), "Faucet reload command")


class NoReloader:
    description = "none (Faucet runs with FAUCET_CONFIG_STAT_RELOAD=1)"

    def reload(self) -> None:
        return None


def make_reloader(pid: int | None = None, pid_file: str | None = None,
                  command: Sequence[str] | None = DEFAULT_COMMAND,
                  runner: Runner = run_argv) -> Reloader:
    """pid, else pid_file, else command (an empty command: Faucet stat-reloads)."""
    if pid is not None:
        return SignalReloader(pid=pid)
    if pid_file:
        return SignalReloader(pid_file=pid_file)
    if command:
        return CommandReloader(command, runner)
    return NoReloader()
