"""Run a Python callable inside a network namespace (for root tests).

``run_in_netns(ns, fn, *args)`` forks; the child joins the namespace with
setns(2) and calls ``fn``; its return value (or exception) comes back pickled
through a pipe. Everything the child does - netlink sockets, libiptc, and the
commands it starts - happens in that namespace only, never in the host's.
The parent is never moved, so a failing test cannot leave pytest in a namespace.

Tests import it as ``from nsutil import run_in_netns`` (tests/ is on sys.path: the
rootdir conftest.py, no __init__.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import select
import signal
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"


class ChildError(RuntimeError):
    """The callable raised something that could not be pickled back, or the child died."""


def _setns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _child(ns: str, wfd: int, fn: Callable[..., Any], args: tuple[Any, ...],
           kwargs: dict[str, Any]) -> None:
    code = 0
    try:
        try:
            _setns(ns)
            payload: tuple[Any, ...] = ("ok", fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - shipped to the parent
            payload = ("err", exc, traceback.format_exc())
        try:
            data = pickle.dumps(payload)
        except Exception as exc:  # noqa: BLE001 - unpicklable result or exception
            data = pickle.dumps(("err", ChildError(f"unpicklable result: {exc!r}"),
                                 traceback.format_exc() if payload[0] == "ok" else payload[2]))
        with os.fdopen(wfd, "wb") as fh:
            fh.write(data)
    except BaseException:  # noqa: BLE001 - never return into pytest in the child
        code = 1
    finally:
        os._exit(code)


def run_in_netns(ns: str, fn: Callable[..., T], *args: Any, timeout: float = 60.0,
                 **kwargs: Any) -> T:
    """Call ``fn(*args, **kwargs)`` in a forked child that joined netns ``ns``.

    Returns its result, or re-raises its exception (with the child's traceback
    attached as a note). The child is killed (by PID) after ``timeout`` seconds.
    """
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(rfd)
        _child(ns, wfd, fn, args, kwargs)
    os.close(wfd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        with os.fdopen(rfd, "rb", buffering=0) as fh:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"callable in netns {ns} ran longer than {timeout}s")
                ready, _, _ = select.select([fh], [], [], left)
                if not ready:
                    continue
                chunk = fh.read(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
    if not chunks:
        raise ChildError(f"child in netns {ns} died without a result (wait status {status})")
    payload = pickle.loads(b"".join(chunks))
    if payload[0] == "ok":
        return payload[1]  # type: ignore[no-any-return]
    exc = payload[1]
    exc.add_note(f"--- in netns {ns} ---\n{payload[2]}")
    raise exc


def need_root_and(tools: tuple[str, ...], scanguard: bool = False) -> None:
    """Skip the test unless it runs as root with every tool in ``tools`` on the PATH (and,
    with ``scanguard``, the installed console script the labs start)."""
    import shutil

    import pytest

    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)}")
    if scanguard:
        from scanguard_ids.lab import protect

        if not protect.SCANGUARD_BIN.exists():
            pytest.skip("scanguard console script not installed")
