"""Child processes: the one way to run a command, and long-lived children bound to us.

:func:`run` runs a command to completion (argv list, never a shell string; a missing
binary, a hang or, when checked, a non-zero exit raise :class:`CommandError`); the
enforcement backends (``block.common.run_argv``) and the lab go through it.
:func:`spawn` starts a child that the kernel kills if we die; :func:`stop` stops it by
its PID only. Used by the lab (forwarder, listeners, Suricata, nmap, OVS, Faucet, the
protector).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
from collections.abc import Mapping, Sequence

from scanguard_ids.errors import CommandError

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
#: Resolved once at import: the forked child (preexec_fn) must not dlopen or import
#: anything, another thread of the parent may have held those locks at fork time.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def run(argv: Sequence[str], *, timeout: float, stdin: str | None = None,
        env: Mapping[str, str] | None = None, check: bool = True,
        bound: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion, text output captured.

    CommandError naming the command if it is not found, outlives ``timeout`` (it is
    killed) or, with ``check``, exits non-zero (the message ends with its stderr, or
    stdout, tail). ``bound``: the kernel kills it if we die (:func:`die_with_parent`).
    """
    args = list(argv)
    try:
        res = subprocess.run(args, input=stdin, capture_output=True, text=True,
                             timeout=timeout, env=dict(env) if env is not None else None,
                             preexec_fn=die_with_parent if bound else None, check=False)
    except FileNotFoundError:
        raise CommandError(f"command not found: {args[0]}") from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"timed out after {timeout:g}s: {' '.join(args)}") from None
    if check and res.returncode != 0:
        raise CommandError(f"exit {res.returncode}: {' '.join(args)}: "
                           f"{(res.stderr or res.stdout).strip()[-500:]}")
    return res


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
