"""Suricata's own Redis output as an EVE source (`eve-log: filetype: redis, mode: rpush`).

Suricata 7 RPUSHes one EVE record per list element; this source pops them in batches (BLPOP
for the first, waiting, then LPOP COUNT for what else is there) and hands the raw lines to the
engine, like a file or socket source. A list element is popped once: exactly one daemon must
read each list (docs/fleet.md: one list per sensor, read by the daemon on that sensor's host;
its evidence then reaches the others through the fleet stream). Redis down: the thread retries
every RETRY_S and Suricata's own output buffers or drops meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from scanguard_ids.clock import Clock, SystemClock
from scanguard_ids.eve.source import SourceHealth
from scanguard_ids.fleet.bus import redact

log = logging.getLogger(__name__)

WAIT_S = 0.5  # one BLPOP at most; also how soon stop() is noticed
RETRY_S = 1.0


class RedisListSource:
    def __init__(self, url: str, key: str, sink: Callable[[list[bytes], str], None],
                 batch: int = 1000, max_line_bytes: int = 1_048_576,
                 clock: Clock | None = None) -> None:
        self.url = redact(url)
        self.key = key
        self.sink = sink
        self.batch = batch
        self.max_line_bytes = max_line_bytes
        self.clock = clock or SystemClock()
        self.r = redis.Redis.from_url(url, socket_timeout=WAIT_S + 5, socket_connect_timeout=2)
        self.lines = 0
        self.bytes = 0
        self.oversized = 0
        self.read_errors = 0
        self.sink_errors = 0
        self.connected = False
        self.error = ""
        self.last_read: float | None = None
        self._rate = (self.clock.monotonic(), 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return f"{self.url} {self.key}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"eve-redis {self.key}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                got = self.r.blpop([self.key], timeout=WAIT_S)
                if not got:
                    self._up()
                    continue
                rest = self.r.lpop(self.key, self.batch - 1) if self.batch > 1 else None
            except redis.RedisError as exc:
                self.read_errors += 1
                if self.connected or not self.error:
                    log.error("eve redis source unreachable url=%s key=%s error=%s",
                              self.url, self.key, exc)
                self.connected = False
                self.error = str(exc)
                self._stop.wait(RETRY_S)
                continue
            self._up()
            lines = [got[1], *(rest or [])]
            self._deliver([ln for ln in lines if isinstance(ln, bytes)])

    def _up(self) -> None:
        if not self.connected:
            log.info("eve redis source reading url=%s key=%s", self.url, self.key)
        self.connected = True
        self.error = ""

    def _deliver(self, lines: list[bytes]) -> None:
        keep = [ln for ln in lines if len(ln) <= self.max_line_bytes]
        self.oversized += len(lines) - len(keep)
        self.lines += len(keep)
        self.bytes += sum(map(len, keep))
        self.last_read = self.clock.now()
        try:
            self.sink(keep, self.name)
        except Exception:  # a sink failure never stops the reader
            self.sink_errors += 1
            log.exception("eve redis sink failed key=%s", self.key)

    def health(self) -> SourceHealth:
        now = self.clock.monotonic()
        t0, n0 = self._rate
        rate = (self.lines - n0) / (now - t0) if now - t0 > 0 else 0.0
        self._rate = (now, self.lines)
        running = self._thread is not None and self._thread.is_alive()
        return SourceHealth(
            name=self.name, kind="redis", ok=self.connected and running, lines=self.lines,
            lines_per_s=rate, detail=self.error or f"list {self.key}", exists=self.connected,
            running=running, bytes=self.bytes, oversized=self.oversized,
            sink_errors=self.sink_errors, last_read=self.last_read, read_errors=self.read_errors,
        )
