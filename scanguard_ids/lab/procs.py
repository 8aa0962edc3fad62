"""Child processes of the lab: started bound to us, stopped by PID, never outliving us.

Every helper the lab starts (forwarder, listeners, Suricata, tcpdump, nmap, OVS, Faucet,
the protector) goes through :func:`spawn` (or :func:`spawn_logged`), which asks the
kernel to SIGKILL the child when the lab process dies (``PR_SET_PDEATHSIG``), and is
stopped with :func:`stop` (SIGTERM, then SIGKILL after a grace period), by its own PID
only. :func:`run` is :func:`scanguard_ids.children.run` raising :class:`LabError`.
:func:`signals_raise` turns SIGTERM/SIGHUP into :class:`LabInterrupted` so that the
``finally`` blocks that remove namespaces run on ``kill`` as they do on Ctrl-C; a
helper process's loop polls :func:`stop_on_signals`' flag instead.
"""

from __future__ import annotations

import contextlib
import logging
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from scanguard_ids import children
from scanguard_ids.errors import CommandError, ScanguardError

log = logging.getLogger(__name__)


class LabError(ScanguardError):
    """The lab could not be built or run (a component failed or timed out)."""


class LabInterrupted(LabError):
    """The lab was asked to stop (SIGINT/SIGTERM/SIGHUP); cleanup still runs."""


spawn = children.spawn
stop = children.stop

_Handler = Callable[[int, FrameType | None], None]


def _handle(signals: Sequence[signal.Signals], handler: _Handler) -> None:
    for s in signals:
        signal.signal(s, handler)


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise LabInterrupted(f"received {signal.Signals(signum).name}")


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise LabInterrupted (main thread only)."""
    sigs = (signal.SIGTERM, signal.SIGHUP)
    old = {s: signal.getsignal(s) for s in sigs}
    try:
        _handle(sigs, _raise)
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@dataclass(slots=True)
class StopFlag:
    """Set by SIGTERM or SIGINT once :func:`stop_on_signals` installed it."""

    requested: bool = False

    def set(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        self.requested = True


def stop_on_signals() -> StopFlag:
    """For a helper process's main loop: SIGTERM/SIGINT set the returned flag (for good),
    so the loop ends at its next check and the helper prints its counters and exits."""
    flag = StopFlag()
    _handle((signal.SIGTERM, signal.SIGINT), flag.set)
    return flag


def run(argv: Sequence[str], timeout: float, check: bool = True,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run to completion, bound to us; LabError naming the command on failure."""
    try:
        return children.run(argv, timeout=timeout, env=env, check=check, bound=True)
    except CommandError as exc:
        raise LabError(str(exc)) from exc


def spawn_logged(argv: Sequence[str], log_path: Path,
                 env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """:func:`spawn` with stdout+stderr appended to ``log_path`` (daemons: OVS, Faucet)."""
    with open(log_path, "ab") as out:
        return spawn(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                     env=dict(env) if env else None)


def wait_for(what: str, ready: Callable[[], bool], timeout: float,
             proc: subprocess.Popen[bytes] | None = None, interval: float = 0.05) -> float:
    """Poll ``ready`` until true (seconds taken); LabError on timeout or if proc died."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if ready():
            return time.monotonic() - start
        if proc is not None and proc.poll() is not None:
            raise LabError(f"{what}: pid {proc.pid} exited with {proc.returncode}")
        if time.monotonic() >= deadline:
            raise LabError(f"{what}: not ready within {timeout:g}s")
        time.sleep(interval)


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    """The first line of ``proc``'s stdout within ``timeout`` seconds (LabError otherwise)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.2))
        if ready:
            chunk = proc.stdout.read1(4096)  # type: ignore[attr-defined]
            if not chunk:
                break
            buf += chunk
            if b"\n" in buf:
                return buf.split(b"\n", 1)[0]
        elif proc.poll() is not None:
            break
    raise LabError(f"no output line from pid {proc.pid} in {timeout:.0f}s (exit {proc.poll()})")
