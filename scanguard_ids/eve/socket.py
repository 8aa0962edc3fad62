"""EVE over a unix socket that scanguard binds and Suricata's eve-log writes to.

Suricata (``filetype: unix_dgram`` / ``unix_stream``) is always the *client*: it connects
to the path at start-up, warns "Error connecting to socket ... (will keep trying)" when
nothing is bound there, and retries on later writes (at most every 500 ms). Every record
ends in a newline. Events written while nobody listens are dropped by Suricata. In live
mode Suricata sends with MSG_DONTWAIT, so a reader that falls behind loses records on the
Suricata side (not visible here); in -r (offline) mode the writes block instead.

* unix_dgram: one record per datagram. The queue of a unix datagram socket is limited in
  *datagrams* by net.unix.max_dgram_qlen (per network namespace, read when the socket is
  created, reported in health; the kernel default is 10, systemd raises it to 512). With
  10, a live Suricata loses records in any burst the reader thread is a few ms late for;
  raise it or prefer unix_stream (its queue is the ~200 KiB socket buffer). A record
  larger than Suricata's send buffer cannot be sent at all. Datagrams longer than
  max_line_bytes arrive truncated (MSG_TRUNC) and are counted as oversized.
* unix_stream: newline-delimited; several connections (reconnects, several Suricatas)
  are split per connection, each holding its own partial line.

The socket file is created under a temporary name, given its mode, then renamed into
place, so a client never sees it with the wrong permissions. A directory we create for it is
0750 and belongs to ``gid`` (the Suricata user's group), so only root and that group reach
the socket. unix_stream peers are also checked (SO_PEERCRED) against ``allowed_uids``; a
refused peer is closed, counted (``peers_refused``) and logged once per uid. unix_dgram has
no peer credentials: there the directory's and the socket's permissions are the protection.
A stale socket file at the path is replaced; a live one (something accepts connections) or a
non-socket is an error.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import pwd
import selectors
import socket
import stat
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from scanguard_ids import statefiles
from scanguard_ids.clock import Clock, SystemClock
from scanguard_ids.errors import ScanguardError
from scanguard_ids.eve.lines import DEFAULT_MAX_LINE, LineSplitter, RateMeter, Sink
from scanguard_ids.eve.source import SourceHealth

log = logging.getLogger(__name__)

KINDS = ("unix_dgram", "unix_stream")
RCVBUF = 8 << 20
RECV_SIZE = 1 << 20
MAX_BATCH = 4096  # datagrams / reads per sink call


@dataclass(slots=True)
class SocketStats:
    lines: int = 0
    bytes: int = 0
    datagrams: int = 0
    oversized: int = 0
    unterminated: int = 0
    connections: int = 0  # open now
    connections_total: int = 0
    rejected: int = 0  # connections over max_connections
    read_errors: int = 0
    peers_refused: int = 0  # unix_stream peers whose uid is not allowed


#: The user Suricata runs as on Debian/Ubuntu packages (``--user suricata``).
SURICATA_USER = "suricata"


def suricata_ids() -> tuple[int, int] | None:
    """(uid, gid) of the ``suricata`` user, None if there is no such user."""
    try:
        pw = pwd.getpwnam(SURICATA_USER)
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid


def default_uids() -> tuple[int, ...]:
    """Who may write EVE to our socket when eve.socket_uids is empty: root, this process's
    user, and the ``suricata`` user if it exists (resolved now, at start)."""
    uids = [0, os.geteuid()]
    ids = suricata_ids()
    if ids is not None:
        uids.append(ids[0])
    return tuple(dict.fromkeys(uids))


def peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _max_dgram_qlen() -> int | None:
    try:
        with open("/proc/sys/net/unix/max_dgram_qlen", "rb") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return None


class SocketSource:
    """Owns (binds) a unix socket and hands batches of lines to sink(lines, name)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        sink: Sink,
        *,
        kind: str = "unix_dgram",
        name: str | None = None,
        mode: int = 0o660,
        gid: int | None = None,
        rcvbuf: int = RCVBUF,
        max_line_bytes: int = DEFAULT_MAX_LINE,
        max_connections: int = 64,
        allowed_uids: Iterable[int] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.path = os.path.abspath(os.fspath(path))
        self.sink = sink
        self.kind = kind
        self.name = name or self.path
        self.mode = mode
        self.gid = gid
        self.rcvbuf = rcvbuf
        self.max_line_bytes = max_line_bytes
        self.max_connections = max_connections
        #: unix_stream: uids allowed to connect (None: anyone the file permissions let in)
        self.allowed_uids = frozenset(allowed_uids) if allowed_uids is not None else None
        self._refused_uids: set[int] = set()
        self.stats = SocketStats()
        self.sink_errors = 0
        self.last_read: float | None = None
        self._clock = clock or SystemClock()
        self._rate = RateMeter()
        self._sock: socket.socket | None = None
        self._ident: tuple[int, int] | None = None  # (dev, ino) of the file we bound
        self._sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(
            target=self._run, name=f"eve-{kind}:{os.path.basename(self.path)}", daemon=True
        )
        self._qlen = _max_dgram_qlen() if kind == "unix_dgram" else None
        # one receive buffer, reused (a fresh 1 MiB buffer per read costs page faults)
        self._buf = bytearray(max_line_bytes + 1 if kind == "unix_dgram" else RECV_SIZE)
        self._view = memoryview(self._buf)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Bind the socket (it exists when this returns), then read in a thread."""
        try:
            self._sock = self._bind()
        except OSError as exc:
            raise ScanguardError(
                f"{self.path}: cannot bind the EVE socket: {exc.strerror}"
            ) from None
        self._sel.register(self._sock, selectors.EVENT_READ, None)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread.start()
        log.info("eve_socket_bound path=%s kind=%s mode=%o", self.path, self.kind, self.mode)
        if self._qlen is not None and self._qlen < 256:
            log.warning(
                "eve_socket_short_queue path=%s max_dgram_qlen=%d hint=%s",
                self.path,
                self._qlen,
                "raise net.unix.max_dgram_qlen (e.g. 512) before starting, or use unix_stream",
            )

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive() or self._thread.ident is not None:
            self._thread.join(timeout)

    @property
    def bound(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return self._ident == (st.st_dev, st.st_ino) and stat.S_ISSOCK(st.st_mode)

    def health(self) -> SourceHealth:
        st = self.stats
        exists = self.bound
        running = self._thread.is_alive()
        return SourceHealth(
            name=self.path,
            kind=self.kind,
            ok=exists and running,
            lines=st.lines,
            lines_per_s=round(self._rate.rate(self._clock.monotonic(), st.lines), 1),
            detail=f"{st.connections} clients" if self.kind == "unix_stream" else "bound",
            exists=exists,
            running=running,
            bytes=st.bytes,
            oversized=st.oversized,
            unterminated=st.unterminated,
            sink_errors=self.sink_errors,
            last_read=self.last_read,
            datagrams=st.datagrams,
            connections=st.connections,
            connections_total=st.connections_total,
            rejected=st.rejected,
            read_errors=st.read_errors,
            peers_refused=st.peers_refused,
            max_dgram_qlen=self._qlen,
        )

    # -- binding ------------------------------------------------------------------------

    def _sock_type(self) -> int:
        return socket.SOCK_DGRAM if self.kind == "unix_dgram" else socket.SOCK_STREAM

    def _check_existing(self) -> None:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise ScanguardError(f"{self.path} exists and is not a socket; not replacing it")
        probe = socket.socket(socket.AF_UNIX, self._sock_type())
        probe.settimeout(1.0)
        try:
            probe.connect(self.path)
        except ConnectionRefusedError:
            return  # stale: nobody is bound to it
        except OSError as exc:
            if exc.errno == errno.EPROTOTYPE:
                raise ScanguardError(f"{self.path} is in use by a socket of another type") from None
            raise ScanguardError(
                f"{self.path}: cannot probe existing socket: {exc.strerror}"
            ) from None
        finally:
            probe.close()
        raise ScanguardError(f"{self.path} is in use by another process")

    def _bind(self) -> socket.socket:
        parent = os.path.dirname(self.path)
        statefiles.ensure_dir(parent, 0o750, self.gid)
        self._check_existing()
        sock = socket.socket(socket.AF_UNIX, self._sock_type())
        try:
            self._set_rcvbuf(sock)
            tmp = os.path.join(parent, f".{os.path.basename(self.path)}.{os.getpid()}.tmp")
            direct = len(os.fsencode(tmp)) > 107  # sun_path limit: bind in place instead
            where = self.path if direct else tmp
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(os.lstat(where).st_mode):
                    os.unlink(where)
            sock.bind(where)
            if self.kind == "unix_stream":
                sock.listen(16)
            os.chmod(where, self.mode)
            if self.gid is not None:
                os.chown(where, -1, self.gid)
            if not direct:
                os.rename(tmp, self.path)
            st = os.stat(self.path)
            self._ident = (st.st_dev, st.st_ino)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    def _set_rcvbuf(self, sock: socket.socket) -> None:
        force = getattr(socket, "SO_RCVBUFFORCE", 33)
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, self.rcvbuf)  # root: above rmem_max
        except OSError:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)

    def _unlink(self) -> None:
        if self.bound:  # never remove a successor's socket
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    # -- reading ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                out: list[bytes] = []
                for key, _ in self._sel.select(timeout=1.0):
                    if key.data == "wake":
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(64)
                    elif key.data is None and self.kind == "unix_dgram":
                        self._read_dgrams(out)
                    elif key.data is None:
                        self._accept()
                    else:
                        self._read_conn(key.fileobj, key.data, out)  # type: ignore[arg-type]
                self._deliver(out)
                self._rate.sample(self._clock.monotonic(), self.stats.lines)
        finally:
            self._close_all()

    def _deliver(self, out: list[bytes]) -> None:
        if not out:
            return
        self.stats.lines += len(out)
        self.last_read = self._clock.now()
        try:
            self.sink(out, self.name)
        except Exception:
            self.sink_errors += 1
            log.exception("eve_sink_failed source=%s lines=%d", self.name, len(out))

    def _read_dgrams(self, out: list[bytes]) -> None:
        assert self._sock is not None
        buf, view = self._buf, self._view
        for _ in range(MAX_BATCH):
            try:
                n, _anc, flags, _addr = self._sock.recvmsg_into([buf])
            except BlockingIOError:
                return
            except OSError as exc:
                self.stats.read_errors += 1
                log.warning("eve_socket_read_failed path=%s error=%s", self.path, exc.strerror)
                return
            self.stats.datagrams += 1
            self.stats.bytes += n
            if flags & socket.MSG_TRUNC:
                self.stats.oversized += 1
                continue
            record = view[:n].tobytes()
            if record.endswith(b"\n"):
                record = record[:-1]
            if len(record) > self.max_line_bytes:
                self.stats.oversized += 1
                continue
            if b"\n" in record:  # not Suricata's framing, but keep every line
                out.extend(line for line in record.split(b"\n") if line)
            elif record:
                out.append(record)

    def _accept(self) -> None:
        assert self._sock is not None
        for _ in range(64):
            try:
                conn, _addr = self._sock.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                self.stats.read_errors += 1
                log.warning("eve_socket_accept_failed path=%s error=%s", self.path, exc.strerror)
                return
            if self.stats.connections >= self.max_connections:
                self.stats.rejected += 1
                log.warning(
                    "eve_socket_rejected path=%s max_connections=%d",
                    self.path,
                    self.max_connections,
                )
                conn.close()
                continue
            if not self._peer_allowed(conn):
                conn.close()
                continue
            conn.setblocking(False)
            self._sel.register(conn, selectors.EVENT_READ, LineSplitter(self.max_line_bytes))
            self.stats.connections += 1
            self.stats.connections_total += 1
            log.info(
                "eve_socket_connected path=%s connections=%d", self.path, self.stats.connections
            )

    def _peer_allowed(self, conn: socket.socket) -> bool:
        if self.allowed_uids is None:
            return True
        try:
            uid = peer_uid(conn)
        except OSError as exc:
            uid = -1
            log.warning("eve_socket_peercred_failed path=%s error=%s", self.path, exc.strerror)
        if uid in self.allowed_uids:
            return True
        self.stats.peers_refused += 1
        if uid not in self._refused_uids:  # once per uid: a looping client cannot flood the log
            self._refused_uids.add(uid)
            log.warning("eve_socket_peer_refused path=%s uid=%d allowed=%s", self.path, uid,
                        ",".join(map(str, sorted(self.allowed_uids))))
        return False

    def _read_conn(self, conn: socket.socket, splitter: LineSplitter, out: list[bytes]) -> None:
        before = splitter.oversized
        closed = False
        for _ in range(16):  # bounded per round, so one busy client cannot starve others
            try:
                n = conn.recv_into(self._buf, RECV_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                self.stats.read_errors += 1
                log.warning("eve_socket_read_failed path=%s error=%s", self.path, exc.strerror)
                closed = True
                break
            if not n:
                closed = True
                break
            self.stats.bytes += n
            splitter.feed(self._view[:n].tobytes(), out)
            if n < RECV_SIZE:
                break
        self.stats.oversized += splitter.oversized - before
        if closed:
            if splitter.flush(out):
                self.stats.unterminated += 1
            self._sel.unregister(conn)
            conn.close()
            self.stats.connections -= 1
            log.info(
                "eve_socket_disconnected path=%s connections=%d", self.path, self.stats.connections
            )

    def _close_all(self) -> None:
        for key in list(self._sel.get_map().values()):
            if isinstance(key.data, LineSplitter):
                self.stats.connections -= 1
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(key.fileobj)
            if key.fileobj is not self._wake_r:
                key.fileobj.close()  # type: ignore[union-attr]
        self._unlink()
        self._sock = None
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()
