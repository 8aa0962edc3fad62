"""Child processes bound to us: the kernel kills them if we die; we stop them by PID only.

Used by the lab (forwarder, listeners, Suricata, nmap, the protector) and the SDN backends'
helpers (OVS daemons, Faucet).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
from collections.abc import Sequence

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
#: Resolved once at import: the forked child (preexec_fn) must not dlopen or import
#: anything, another thread of the parent may have held those locks at fork time.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(argv: Sequence[str], **kw: object) -> subprocess.Popen[bytes]:
    """Start ``argv`` (a list, never a shell string); the kernel kills it if we die."""
    log.debug("action=spawn argv=%s", " ".join(argv))
    return subprocess.Popen(list(argv), preexec_fn=die_with_parent, **kw)  # type: ignore[call-overload]


def stop(proc: subprocess.Popen[bytes] | None, grace: float = 5.0) -> int | None:
    """SIGTERM this one PID, SIGKILL it after ``grace`` seconds; return its exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("action=kill pid=%d reason=no-exit-after-sigterm", proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=grace)
    return proc.returncode
