"""Child processes of the lab: started bound to us, stopped by PID, never outliving us.

Every helper the lab starts (forwarder, listeners, Suricata, tcpdump, nmap, the
protector) goes through :func:`spawn`, which asks the kernel to SIGKILL the child
when the lab process dies (``PR_SET_PDEATHSIG``), and is stopped with :func:`stop`
(SIGTERM, then SIGKILL after a grace period), by its own PID only.
:func:`signals_raise` turns SIGTERM/SIGHUP into :class:`LabInterrupted` so that the
``finally`` blocks that remove namespaces run on ``kill`` as they do on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import select
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from types import FrameType

from scanguard_ids import children
from scanguard_ids.errors import ScanguardError

log = logging.getLogger(__name__)



class LabError(ScanguardError):
    """The lab could not be built or run (a component failed or timed out)."""


class LabInterrupted(LabError):
    """The lab was asked to stop (SIGINT/SIGTERM/SIGHUP); cleanup still runs."""


spawn = children.spawn
stop = children.stop


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise LabInterrupted(f"received {signal.Signals(signum).name}")


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise LabInterrupted (main thread only)."""
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        for s in old:
            signal.signal(s, _raise)
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run(argv: Sequence[str], timeout: float,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run to completion with a timeout; raises LabError naming the command on failure."""
    try:
        res = subprocess.run(list(argv), text=True, capture_output=True, timeout=timeout,
                             preexec_fn=children.die_with_parent)
    except subprocess.TimeoutExpired:
        raise LabError(f"timed out after {timeout:.0f}s: {' '.join(argv)}") from None
    if check and res.returncode != 0:
        raise LabError(f"exit {res.returncode}: {' '.join(argv)}: {res.stderr.strip()[-500:]}")
    return res


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
