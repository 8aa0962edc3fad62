"""One node of the fleet: publishes what this daemon sees and decides, applies what others do.

Four threads, none on the hot path; decisions and evidence each have their own publisher and
reader (and so their own Redis connection), so a decision never waits behind a batch of
evidence on either side:

* the publishers drain what the engine hands over with its lock held (so it only enqueues and
  sets an Event the publisher is blocked on): response events (bounded; the oldest dropped
  and counted when Redis is slower than the sensors) and decisions (a bounded outbox that
  survives a Redis outage: what was decided while Redis was down is published when it
  returns, blocks that ended meanwhile dropped);
* the readers XREAD their stream from the last id seen, blocking, and hand other nodes'
  evidence to :meth:`Engine.feed_events` (one detector over the merged stream, dedup first)
  and their decisions to :meth:`Engine.apply_fleet` (allowlist first, never re-published).
  On every (re)connection the decision reader lists the active block keys, so a late or
  returning node applies what it missed. What the detector decides from an evidence entry
  is published once that entry is fed (one round trip), not decision by decision.

Idempotence: an entry from this node is skipped when it comes back; a decision is applied once
per (ip, decision id); and one older than the newest decision already seen for its address
is stale (a replayed block never undoes a later unblock, nor an old unblock a newer block).
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from scanguard_ids.clock import Clock
from scanguard_ids.config import FleetConfig
from scanguard_ids.fleet.bus import Bus, Entries, FleetError
from scanguard_ids.fleet.codec import FleetDecision, decode_decision, decode_events, encode_events
from scanguard_ids.model import Decision, ResponseEvent
from scanguard_ids.snapshot import FleetHealth, FleetPeer

if TYPE_CHECKING:
    from scanguard_ids.engine import Engine

log = logging.getLogger(__name__)

BLOCK_MS = 500  # one blocking XREAD at most; also how soon stop() is noticed
MAX_BACKOFF = 2.0  # seconds between reconnection attempts at most
MAX_REMEMBERED = 100_000  # (ip, id) pairs and per-address newest decision times kept
ENTRIES_PER_ROUND_TRIP = 64
SWITCH_INTERVAL_S = 0.0005  # sys.setswitchinterval while fleet mode runs (see start)


class FleetNode:
    """Engine sink (decisions) and tap (events) on one side, Redis on the other."""

    external = True  # leaves the host: a dry-run daemon skips it

    def __init__(self, engine: Engine, cfg: FleetConfig, bus: Bus, clock: Clock, node: str,
                 publish: bool = True) -> None:
        self.engine = engine
        self.cfg = cfg
        self.bus = bus
        self.clock = clock
        self.node = node
        self._node_b = node.encode()
        self.publish = publish
        self.counters: Counter[str] = Counter()
        self.connected = False
        self.error = ""
        self._synced = False  # the decision reader resynced since its last failure
        self.lag_ms = 0.0
        self._events: deque[ResponseEvent] = deque(maxlen=cfg.queue)
        self._outbox: list[FleetDecision] = []
        self._seq = 0
        self._mu = threading.Lock()  # outbox, idempotence maps, peers
        self._applied: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._newest: OrderedDict[str, float] = OrderedDict()  # ip -> newest decision ts
        self._peers: dict[str, tuple[float, float]] = {}  # node -> (monotonic seen, lag ms)
        self._after: dict[str, bytes] = {}
        self._evidence_reader = 0  # thread id of the evidence reader once it runs
        self._stop = threading.Event()
        self._wake = threading.Event()  # decisions to publish
        self._wake_events = threading.Event()  # evidence to publish
        self.ready = threading.Event()  # set after the first sync with Redis
        self._threads: list[threading.Thread] = []

    # -- life cycle ------------------------------------------------------------------------
    def attach(self) -> None:
        """Wire into the engine: its decisions carry our name, its fresh events and decisions
        come to us, its snapshot shows our health."""
        engine = self.engine
        with engine.lock:
            engine.node = self.node
            engine.tap = self.on_events
            engine.sinks.append(self)
            engine.fleet = self

    def start(self) -> None:
        # The publisher and the readers need the GIL for a few short steps each; while the
        # engine's thread is busy with a batch, every step would otherwise wait for the
        # interpreter's switch interval (5 ms): a decision took 12-16 ms to leave a busy
        # node (p99 45-90 ms), 1.6-1.8 ms (p99 5-7 ms) at 0.5 ms (bench/fleet.py).
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        for name, target in (("fleet-publish", self._publish_decisions_loop),
                             ("fleet-publish-ev", self._publish_events_loop),
                             ("fleet-read", self._read_decisions_loop),
                             ("fleet-read-ev", self._read_events_loop)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        self._wake_events.set()
        for t in self._threads:
            t.join(timeout)
        self.bus.close()

    # -- engine side (called with the engine's lock held: enqueue only) ------------------
    def on_events(self, events: list[ResponseEvent]) -> None:
        if not self.publish:
            return
        q = self._events
        over = len(q) + len(events) - self.cfg.queue
        if over > 0:
            self.counters["fleet_events_dropped"] += over
        q.extend(events)
        self._wake_events.set()

    def on_decision(self, d: Decision) -> None:
        if d.node not in ("", self.node) or d.action not in ("block", "unblock"):
            return  # applied from the fleet (never re-published), or an expiry (converges)
        now = self.clock.now()
        with self._mu:
            self._note(d.ip, now)
            if not self.publish or ("manual" if d.manual else "automatic") not in self.cfg.share:
                return
            self._seq += 1
            self._outbox.append(FleetDecision.of(d, self.node, now, self._seq))
            if len(self._outbox) > self.cfg.outbox:
                del self._outbox[0]
                self.counters["fleet_outbox_dropped"] += 1
        if threading.get_ident() == self._evidence_reader:
            return  # decided from fleet evidence: one wake per entry (see _evidence)
        self._wake.set()
        # Hand the GIL over now: the publisher needs no engine lock, and otherwise it waits
        # for this thread to block or for the interpreter's switch interval (5 ms) while
        # the engine goes on with the rest of its batch.
        time.sleep(0)

    # -- publishers --------------------------------------------------------------------------
    def _publish_decisions_loop(self) -> None:
        self._publish_loop(self._wake, self._flush_decisions)

    def _publish_events_loop(self) -> None:
        self._publish_loop(self._wake_events, self._flush_events)

    def _publish_loop(self, wake: threading.Event, flush: Callable[[], None]) -> None:
        backoff = 0.0
        while True:
            wake.wait(backoff or 1.0)  # set by the engine's sink/tap: no polling delay
            wake.clear()
            try:
                flush()
                backoff = 0.0
                self._ok()
            except FleetError as exc:
                self._failed(exc)
                backoff = min(MAX_BACKOFF, max(0.05, backoff * 2))
            if self._stop.is_set():
                return

    def _flush_decisions(self) -> None:
        with self._mu:
            todo, self._outbox = self._outbox, []
        if todo:
            now = self.clock.now()
            live = [fd for fd in todo if fd.action == "unblock" or fd.expires > now]
            self.counters["fleet_outbox_expired"] += len(todo) - len(live)
            try:
                self.bus.publish_decisions(live, now)
            except FleetError:
                with self._mu:  # keep them, oldest first, within the bound
                    self._outbox = (live + self._outbox)[-self.cfg.outbox:]
                raise
            self.counters["fleet_decisions_out"] += len(live)

    def _flush_events(self) -> None:
        q, size = self._events, self.cfg.batch
        while q:
            entries: list[dict[str, str | bytes]] = []
            sent = 0
            while q and len(entries) < ENTRIES_PER_ROUND_TRIP:
                batch = [q.popleft() for _ in range(min(size, len(q)))]
                entries.append(encode_events(batch, self.node))
                sent += len(batch)
            try:
                self.bus.publish_events(entries)
            except FleetError:
                self.counters["fleet_events_dropped"] += sent + len(q)
                q.clear()  # evidence is perishable: what is not shared now counts locally
                raise
            self.counters["fleet_events_out"] += sent

    # -- reader ------------------------------------------------------------------------------
    def _read_decisions_loop(self) -> None:
        """Decisions (and the resync of block keys on every (re)connection)."""
        backoff = 0.0
        synced = False
        stream = self.bus.decisions
        while not self._stop.is_set():
            try:
                if not synced:
                    self._sync()
                    synced = True
                    backoff = 0.0
                entries = self.bus.read({stream: self._after[stream]}, BLOCK_MS)
                self._ok()
            except FleetError as exc:
                self._synced = False
                self._failed(exc)
                synced = False
                backoff = min(MAX_BACKOFF, max(0.05, backoff * 2))
                self._stop.wait(backoff)
                continue
            self._handle(entries)

    def _read_events_loop(self) -> None:
        """Evidence, from where the first sync put us (the decision reader resyncs)."""
        backoff = 0.0
        stream = self.bus.events
        self._evidence_reader = threading.get_ident()
        while not self._stop.is_set():
            if not self.ready.wait(BLOCK_MS / 1000):
                continue
            try:
                entries = self.bus.read({stream: self._after[stream]}, BLOCK_MS)
                backoff = 0.0
                self._ok()
            except FleetError as exc:
                self._failed(exc)
                backoff = min(MAX_BACKOFF, max(0.05, backoff * 2))
                self._stop.wait(backoff)
                continue
            self._handle(entries)

    def _sync(self) -> None:
        """On (re)connection: resume both streams where we were (at their end the first time)
        and apply every active block key (what a late joiner or a returning node missed)."""
        for stream in (self.bus.events, self.bus.decisions):
            if stream not in self._after:
                self._after[stream] = self.bus.last_id(stream)
        for raw in self.bus.active_blocks():
            fd = decode_decision(raw)
            if fd is None:
                self.counters["fleet_garbage"] += 1
            else:
                self._apply(fd)
        if not self.connected:
            log.info("fleet connected node=%s url=%s", self.node, self.bus.url)
        self.connected = True
        self.error = ""
        self._synced = True
        self.ready.set()
        self._wake.set()  # publish what waited in the outbox

    def _handle(self, entries: Entries) -> None:
        now_ms = self.clock.now() * 1000
        for stream_b, rows in entries:
            stream = stream_b.decode()
            for eid, fields in rows:
                self._after[stream] = eid
                try:
                    if stream == self.bus.events:
                        self._evidence(fields, eid, now_ms)
                    elif fields.get(b"n") == self._node_b:
                        continue  # our own decision, back from Redis: not even decoded
                    else:
                        fd = decode_decision(fields.get(b"d"))
                        if fd is None:
                            self.counters["fleet_garbage"] += 1
                        else:
                            self._seen(fd.node, eid, now_ms)
                            self._apply(fd)
                except Exception:  # one bad entry must not stop the reader
                    self.counters["fleet_errors"] += 1
                    log.exception("fleet entry failed id=%s", eid)

    def _evidence(self, fields: dict[bytes, bytes], eid: bytes, now_ms: float) -> None:
        if fields.get(b"n") == self._node_b:
            return  # our own, back from Redis: already counted (not even decoded)
        got = decode_events(fields)
        if got is None:
            self.counters["fleet_garbage"] += 1
            return
        node, events, bad = got
        self.counters["fleet_garbage"] += bad
        if node == self.node:
            return  # our own, back from Redis: already counted
        self._seen(node, eid, now_ms)
        if events:
            self.counters["fleet_events_in"] += len(events)
            try:
                self.engine.feed_events(events, node)
            finally:
                # what the detector decided from this entry leaves in one round trip: a wake
                # (and a GIL hand-over) per decision cost a drained corpus ~30 % of its rate
                # (bench.run --only fleet); the delay is at most this one entry's detection
                if self._outbox:
                    self._wake.set()

    def _apply(self, fd: FleetDecision) -> None:
        if fd.node == self.node:
            return
        with self._mu:
            key = (fd.ip, fd.id)
            if key in self._applied:
                return
            self._applied[key] = None
            if len(self._applied) > MAX_REMEMBERED:
                self._applied.popitem(last=False)
            newest = self._newest.get(fd.ip)
            if newest is not None and fd.ts < newest:
                self.counters["fleet_stale"] += 1
                return
            self._note(fd.ip, fd.ts)
        self.counters["fleet_decisions_in"] += 1
        if fd.action == "block" and fd.expires <= self.clock.now():
            return
        self.engine.apply_fleet(fd.decision(), fd.expires)

    def _note(self, ip: str, ts: float) -> None:
        """The newest decision time known for ``ip`` (caller holds _mu)."""
        newest = self._newest
        newest[ip] = max(ts, newest.pop(ip, ts))
        if len(newest) > MAX_REMEMBERED:
            newest.popitem(last=False)

    def _seen(self, node: str, eid: bytes, now_ms: float) -> None:
        try:
            lag = max(0.0, now_ms - int(eid.split(b"-", 1)[0]))
        except ValueError:
            lag = 0.0
        self.lag_ms = lag
        with self._mu:
            self._peers[node] = (self.clock.monotonic(), lag)

    def _ok(self) -> None:
        """A round trip succeeded. Four loops talk to Redis: one that failed while Redis was
        coming back (an attempt in flight before it listened) may report after the decision
        reader's resync marked the node connected, and nothing would mark it again; any
        later success does, once that resync happened."""
        if not self.connected and self._synced:
            self.connected = True
            self.error = ""

    def _failed(self, exc: FleetError) -> None:
        with self._mu:
            self.counters["fleet_errors"] += 1
        if self.connected or not self.error:
            log.error("fleet unreachable node=%s error=%s (detecting and blocking locally)",
                      self.node, exc)
        self.connected = False
        self.error = str(exc)

    # -- status ------------------------------------------------------------------------------
    def health(self) -> FleetHealth:
        now = self.clock.monotonic()
        with self._mu:
            peers: Sequence[FleetPeer] = [
                FleetPeer(name, round(now - seen, 3), round(lag, 3))
                for name, (seen, lag) in sorted(self._peers.items())
            ]
            outbox = len(self._outbox)
        return FleetHealth(node=self.node, url=self.bus.url, connected=self.connected,
                           queued=len(self._events), outbox=outbox, lag_ms=round(self.lag_ms, 3),
                           error=self.error, peers=tuple(peers))

    def counter_values(self) -> dict[str, int]:
        keys = ("fleet_events_in", "fleet_events_out", "fleet_decisions_in",
                "fleet_decisions_out", "fleet_errors", "fleet_garbage")
        return {**{k: 0 for k in keys}, **self.counters}


def connect(engine: Engine, cfg: FleetConfig, clock: Clock, publish: bool = True) -> FleetNode:
    """The daemon's fleet node: named (fleet.node or the host name), attached, started.
    Never waits for Redis: an unreachable Redis is retried in the background."""
    node = cfg.node or socket.gethostname()
    bus = Bus(cfg.url, cfg.prefix, cfg.events_maxlen, cfg.decisions_maxlen)
    fleet = FleetNode(engine, cfg, bus, clock, node, publish=publish)
    fleet.attach()
    fleet.start()
    log.info("fleet mode node=%s url=%s prefix=%s share=%s", node, bus.url, cfg.prefix,
             ",".join(cfg.share))
    return fleet
