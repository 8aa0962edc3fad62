"""Child processes of the SDN lab (OVS daemons, Faucet): started bound to us, stopped by PID.

Each child asks the kernel to SIGKILL it when the thread that started it dies
(``PR_SET_PDEATHSIG``), so a crashed test or lab leaves no switch or controller
running; :func:`stop` sends SIGTERM, then SIGKILL after a grace period, to that one
PID only. ``ip netns exec`` execs its command, so the PID we hold is the daemon's.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from scanguard_ids import children
from scanguard_ids.errors import BackendError

log = logging.getLogger(__name__)

def spawn(argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
          ) -> subprocess.Popen[bytes]:
    """Start argv (a list) with stdout+stderr appended to log_path."""
    with open(log_path, "ab") as out:
        return children.spawn(argv, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT, env=dict(env) if env else None)


stop = children.stop


def run(argv: Sequence[str], timeout: float = 15.0,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run to completion; a failure or a hang becomes BackendError naming the command."""
    try:
        res = subprocess.run(list(argv), text=True, capture_output=True, timeout=timeout,
                             env=dict(env) if env else None, check=False)
    except FileNotFoundError:
        raise BackendError(f"command not found: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise BackendError(f"timed out after {timeout:g}s: {' '.join(argv)}") from None
    if res.returncode != 0:
        raise BackendError(f"exit {res.returncode}: {' '.join(argv)}: "
                           f"{(res.stderr or res.stdout).strip()[-500:]}")
    return res


def wait_for(what: str, ready: Callable[[], bool], timeout: float,
             proc: subprocess.Popen[bytes] | None = None, interval: float = 0.05) -> float:
    """Poll ``ready`` until true (seconds taken); BackendError on timeout or if proc died."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if ready():
            return time.monotonic() - start
        if proc is not None and proc.poll() is not None:
            raise BackendError(f"{what}: pid {proc.pid} exited with {proc.returncode}")
        if time.monotonic() >= deadline:
            raise BackendError(f"{what}: not ready within {timeout:g}s")
        time.sleep(interval)
