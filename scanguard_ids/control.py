"""The local control socket: one JSON request per line, one JSON answer per line.

Requests: {"cmd": "status"|"list"|"snapshot"|"block"|"unblock", ...}
Answers:  {"ok": true, "data": ...} or {"ok": false, "error": "..."}
Only root and the daemon's own user may talk to it (SO_PEERCRED), and the socket
file is created with a restrictive mode in a directory created root-only (0700; 0750 when the
mode gives the group access). A socket some live daemon still serves is never taken over.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import stat
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from scanguard_ids import statefiles
from scanguard_ids.errors import ControlError, ScanguardError

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Any]
MAX_REQUEST = 64 * 1024


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def _alive(path: str) -> bool:
    """Something accepts connections on the unix socket at ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:  # refused (stale), or not ours to reach: treat as stale
        return False
    finally:
        probe.close()
    return True


class ControlServer:
    """Serves requests on a unix stream socket from its own thread."""

    def __init__(self, path: str, handler: Handler, mode: int = 0o600) -> None:
        self.path = path
        self.handler = handler
        self.mode = mode
        self.requests = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def start(self) -> None:
        p = Path(self.path)
        statefiles.ensure_dir(str(p.parent), 0o750 if self.mode & 0o070 else 0o700)
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(os.lstat(p).st_mode):
                raise ControlError(f"control socket path {p} exists and is not a socket")
            if _alive(self.path):
                raise ControlError(f"control socket {p} is served by another running daemon")
            p.unlink()  # stale socket of a previous run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o777 & ~self.mode)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, self.mode)
        sock.listen(16)
        sock.setblocking(False)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._thread.start()
        log.info("control socket listening path=%s mode=%o", self.path, self.mode)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def _serve(self) -> None:
        assert self._sock is not None
        sel = selectors.DefaultSelector()
        sel.register(self._sock, selectors.EVENT_READ)
        while not self._stop.is_set():
            if not sel.select(timeout=0.2):
                continue
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            try:
                self._handle(conn)
            except Exception:  # a bad client must never kill the control thread
                self.errors += 1
                log.exception("control request failed")
            finally:
                conn.close()
        sel.close()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        uid = _peer_uid(conn)
        if uid not in (0, os.getuid()):
            self._send(conn, {"ok": False, "error": "permission denied"})
            return
        buf = b""
        while b"\n" not in buf and len(buf) < MAX_REQUEST:
            chunk = conn.recv(65536)
            if not chunk:
                break
            buf += chunk
        self.requests += 1
        try:
            req = orjson.loads(buf.split(b"\n", 1)[0])
            if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
                raise ValueError("request must be an object with a 'cmd' string")
        except (orjson.JSONDecodeError, ValueError) as exc:
            self.errors += 1
            self._send(conn, {"ok": False, "error": f"bad request: {exc}"})
            return
        try:
            data = self.handler(req)
            self._send(conn, {"ok": True, "data": data})
        except ScanguardError as exc:
            self._send(conn, {"ok": False, "error": str(exc)})

    @staticmethod
    def _send(conn: socket.socket, obj: dict[str, Any]) -> None:
        conn.sendall(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS) + b"\n")


def call(path: str, cmd: str, timeout: float = 5.0, **args: Any) -> Any:
    """Send one request to the daemon; returns its data or raises ControlError."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError(
                f"no daemon listening on {path} (is `scanguard run` running?)"
            ) from None
        except PermissionError:
            raise ControlError(f"permission denied on {path} (run as root)") from None
        sock.sendall(orjson.dumps({"cmd": cmd, **args}) + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    except TimeoutError:
        raise ControlError(f"daemon on {path} did not answer within {timeout}s") from None
    finally:
        sock.close()
    try:
        answer = orjson.loads(buf)
    except orjson.JSONDecodeError:
        raise ControlError("daemon sent a malformed answer") from None
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error", "unknown error")))
    return answer.get("data")
