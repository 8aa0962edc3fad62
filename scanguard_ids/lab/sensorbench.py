"""How long Suricata takes from a response on the wire to its EVE alert line.

:class:`EveCollector` receives EVE lines in a thread, from the sensor's unix stream
socket (which it binds) or by tailing eve.json with a 1 ms poll, and stamps each
alert with its arrival time. The alert's own ``timestamp`` is the capture time of the
packet (kernel timestamp of the frame on the victim's veth), so
``arrival - timestamp`` is the sensor's alert latency. :func:`measure` sends paced
single probes to closed ports and collects one latency per response.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scanguard_ids.clock import Clock, SystemClock
from scanguard_ids.lab.analysis import LatencyStats
from scanguard_ids.timefmt import parse_eve_ts

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Arrival:
    arrived: float
    record: dict[str, object]


@dataclass(slots=True)
class EveCollector:
    """Collect alert records with arrival times, from a socket path or a file path."""

    source: Path
    kind: str  # "socket" | "file"
    clock: Clock = field(default_factory=SystemClock)
    arrivals: list[Arrival] = field(default_factory=list)
    max_records: int = 1_000_000
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _sock: socket.socket | None = None

    def start(self) -> None:
        if self.kind == "socket":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.source)
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._sock.bind(str(self.source))
            self._sock.listen(8)
            self._sock.setblocking(False)
            target = self._run_socket
        else:
            target = self._run_file
        self._thread = threading.Thread(target=target, name="eve-collector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.source)

    def _keep(self, line: bytes) -> None:
        now = self.clock.now()
        try:
            rec = json.loads(line)
        except ValueError:
            return
        if isinstance(rec, dict) and rec.get("event_type") == "alert" \
                and len(self.arrivals) < self.max_records:
            self.arrivals.append(Arrival(now, rec))

    def _run_socket(self) -> None:
        """Accept Suricata's unix_stream connections; newline-delimited records."""
        assert self._sock is not None
        sel = selectors.DefaultSelector()
        sel.register(self._sock, selectors.EVENT_READ, None)
        bufs: dict[int, bytes] = {}
        while not self._stop.is_set():
            for key, _ in sel.select(timeout=0.2):
                if key.data is None:
                    conn, _ = self._sock.accept()
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, b"")
                    bufs[conn.fileno()] = b""
                    continue
                if not isinstance(key.fileobj, socket.socket):
                    continue
                conn = key.fileobj
                try:
                    data = conn.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(conn)
                    bufs.pop(conn.fileno(), None)
                    conn.close()
                    continue
                *lines, bufs[conn.fileno()] = (bufs[conn.fileno()] + data).split(b"\n")
                for line in lines:
                    self._keep(line)
        for key in list(sel.get_map().values()):
            if key.data is not None:
                key.fileobj.close()  # type: ignore[union-attr]
        sel.close()

    def _run_file(self) -> None:
        buf = b""
        fh = None
        while not self._stop.is_set():
            if fh is None:
                try:
                    fh = open(self.source, "rb")  # noqa: SIM115 - kept open across polls
                    fh.seek(0, os.SEEK_END)
                except FileNotFoundError:
                    self._stop.wait(0.01)
                    continue
            chunk = fh.read(1 << 20)
            if not chunk:
                self._stop.wait(0.001)
                continue
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self._keep(line)
        if fh is not None:
            fh.close()


@contextlib.contextmanager
def collecting(source: Path, kind: str) -> Iterator[EveCollector]:
    col = EveCollector(source, kind)
    col.start()
    try:
        yield col
    finally:
        col.stop()


def latencies(arrivals: list[Arrival], sids: set[int] | None = None) -> list[float]:
    """Per alert: arrival time minus the packet's capture time, in ms (first alert per
    packet only, as one response may match several signatures)."""
    seen: set[tuple[object, ...]] = set()
    out: list[float] = []
    for a in arrivals:
        alert = a.record.get("alert")
        sid = alert.get("signature_id") if isinstance(alert, dict) else None
        if sids is not None and sid not in sids:
            continue
        key = (a.record.get("timestamp"), a.record.get("src_port"), a.record.get("dest_port"))
        if key in seen:
            continue
        seen.add(key)
        ts = a.record.get("timestamp")
        if isinstance(ts, str):
            out.append((a.arrived - parse_eve_ts(ts)) * 1000.0)
    return out


def measure(source: Path, kind: str, send: Callable[[list[int]], object], ports: list[int],
            settle: float = 0.5) -> LatencyStats:
    """Alert latency of probes ``send(ports)`` makes, collected from ``source``.

    For a socket, one warm-up probe first lets Suricata connect (it connects lazily)."""
    with collecting(source, kind) as col:
        if kind == "socket" and ports:
            send(ports[:1])
            time.sleep(1.0)
            ports = ports[1:]
        before = len(col.arrivals)
        send(ports)
        time.sleep(settle)
        return LatencyStats.of(latencies(col.arrivals[before:]))
