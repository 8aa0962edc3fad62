"""One OpenFlow 1.3 connection to a switch's passive listener (unix or TCP), bounded waits.

Targets are written as OVS writes them: ``unix:/run/openvswitch/br0.mgmt`` (the
bridge's own management socket, what ``ovs-ofctl br0`` uses) or
``tcp:ADDR:PORT`` for a switch configured with a passive listener
(``ovs-vsctl set-controller br0 ptcp:6634:127.0.0.1`` adds one on OVS; hardware
switches call it a listening or "passive" OpenFlow port).

:meth:`OfConnection.transact` sends a batch of messages followed by a BARRIER and
reads until the barrier's reply: every error the switch raised for the batch has
arrived by then, and so has every multipart reply. Echo requests are answered while
waiting; anything else the switch sends (port status, flow removed) is skipped.
"""

from __future__ import annotations

import itertools
import logging
import socket
import time
from dataclasses import dataclass, field

from scanguard_ids.block.sdn import ofp13
from scanguard_ids.errors import BackendError

log = logging.getLogger(__name__)


def parse_target(target: str) -> tuple[int, str | tuple[str, int]]:
    """``unix:PATH`` or ``tcp:HOST:PORT`` (``tcp:[v6]:PORT``) -> (family, address)."""
    kind, _, rest = target.partition(":")
    if kind == "unix" and rest:
        return socket.AF_UNIX, rest
    if kind == "tcp" and rest:
        host, _, port = rest.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if host and port.isdigit():
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            return fam, (host, int(port))
    raise BackendError(f"OpenFlow target {target!r}: expected unix:PATH or tcp:HOST:PORT")


@dataclass(slots=True)
class Reply:
    """What came back for one transaction."""

    errors: list[tuple[int, str]] = field(default_factory=list)  # (xid, meaning)
    multipart: list[tuple[int, bytes]] = field(default_factory=list)  # (xid, body)


class OfConnection:
    def __init__(self, target: str, timeout: float = 5.0) -> None:
        self.target = target
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = b""
        self._xids = itertools.count(1)

    def xid(self) -> int:
        return next(self._xids) & 0xFFFFFFFF

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        """Open the socket and agree on OpenFlow 1.3 (the switch must offer it)."""
        self.close()
        family, addr = parse_target(self.target)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(addr)
            self._sock = sock
            sock.sendall(ofp13.hello(self.xid()))
            deadline = time.monotonic() + self.timeout
            while True:
                h, body = self._read(deadline)
                if h.type == ofp13.HELLO:
                    if h.version < ofp13.VERSION:
                        raise BackendError(f"{self.target}: the switch speaks OpenFlow "
                                           f"version {h.version}, not 1.3 (set the bridge's "
                                           "protocols to include OpenFlow13)")
                    return
                if h.type == ofp13.ERROR:
                    raise BackendError(f"{self.target}: {ofp13.parse_error(body)}")
        except OSError as exc:
            self.close()
            raise BackendError(f"OpenFlow connection to {self.target}: {exc}") from None
        except BackendError:
            self.close()
            raise

    def _read(self, deadline: float) -> tuple[ofp13.Header, bytes]:
        assert self._sock is not None
        while True:
            if len(self._buf) >= ofp13.Header.SIZE:
                try:
                    h = ofp13.header(self._buf)
                except ofp13.DecodeError as exc:
                    raise BackendError(f"{self.target}: {exc}") from None
                if len(self._buf) >= h.length:
                    body = self._buf[ofp13.Header.SIZE:h.length]
                    self._buf = self._buf[h.length:]
                    return h, body
            left = deadline - time.monotonic()
            if left <= 0:
                raise BackendError(f"{self.target}: no OpenFlow reply within "
                                   f"{self.timeout:g}s")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise BackendError(f"{self.target}: the switch closed the connection")
            self._buf += chunk

    def transact(self, messages: list[bytes]) -> Reply:
        """Send messages + BARRIER; collect errors and multipart replies until its reply."""
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        bxid = self.xid()
        try:
            self._sock.sendall(b"".join(messages) + ofp13.barrier(bxid))
            reply = Reply()
            deadline = time.monotonic() + self.timeout
            while True:
                h, body = self._read(deadline)
                if h.type == ofp13.BARRIER_REPLY and h.xid == bxid:
                    return reply
                if h.type == ofp13.ERROR:
                    reply.errors.append((h.xid, ofp13.parse_error(body)))
                elif h.type == ofp13.MULTIPART_REPLY:
                    reply.multipart.append((h.xid, body))
                elif h.type == ofp13.ECHO_REQUEST:
                    self._sock.sendall(ofp13.echo_reply(h.xid, body))
        except OSError as exc:
            self.close()
            raise BackendError(f"OpenFlow connection to {self.target}: {exc}") from None
        except BackendError:
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._buf = b""
