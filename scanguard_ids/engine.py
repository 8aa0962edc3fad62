"""Lines in, blocks out: decoder -> detector -> safety valve -> backend -> journal.

Thread-safe (one lock); sources call process() from their own threads, so a line
is acted on in the thread that read it, with no queue hop on the hot path.
Holds only what the UI needs beyond the kernel's own state: evidence of blocks,
per-second history, top ports, recent decisions.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Protocol

from scanguard_ids import config
from scanguard_ids.block.base import Backend
from scanguard_ids.block.ratelimit import SafetyValve
from scanguard_ids.clock import Clock
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.dedup import Deduper
from scanguard_ids.detect.detector import Detector
from scanguard_ids.detect.offenders import Offenders
from scanguard_ids.errors import ScanguardError
from scanguard_ids.eve.decode import Decoder
from scanguard_ids.eve.source import Source, health_of
from scanguard_ids.journal import Journal
from scanguard_ids.model import Block, Decision, ResponseEvent
from scanguard_ids.snapshot import DecisionRow, FleetHealth, Snapshot
from scanguard_ids.snapshot_build import Evidence, build

log = logging.getLogger(__name__)

HISTORY_SECONDS = 300
RECENT_DECISIONS = 50
MAX_PORT_COUNTERS = 4096
SMALL_SET = 64  # up to this many blocks, read the kernel's sets every SMALL_SYNC_S
SMALL_SYNC_S = 5.0  # (a listing costs ~5 us of CPU per entry on ipset's raw netlink path,
FULL_SYNC_S = 15.0  # ~40 us through pyroute2 or ~0.7 ms per call for an empty set)


class BlockRefused(ScanguardError):
    """A manual block was refused (allowlisted address, safety valve...)."""


class DecisionSink(Protocol):
    """Something that wants every recorded decision (metrics, CrowdSec, the fleet bus...).

    Called with the engine's lock held, right after the journal: it must return quickly
    (hand work to its own thread) and a failure is logged and counted, never raised.
    """

    def on_decision(self, d: Decision) -> None: ...


class FleetView(Protocol):
    """What the engine shows of fleet mode (scanguard_ids.fleet.node.FleetNode)."""

    def health(self) -> FleetHealth: ...

    def counter_values(self) -> dict[str, int]: ...


class Engine:
    def __init__(
        self,
        cfg: config.Config,
        backend: Backend,
        clock: Clock,
        allowlist: Allowlist,
        journal: Journal,
        offenders: Offenders | None = None,
    ) -> None:
        self.cfg = cfg
        self.backend = backend
        self.clock = clock
        self.allowlist = allowlist
        self.journal = journal
        self.decoder = Decoder(config.sid_set(cfg), max_line_bytes=cfg.eve.max_line_bytes)
        self.offenders = offenders if offenders is not None else Offenders(cfg.detect)
        self.detector = Detector(cfg.detect, allowlist, self.offenders)
        self.valve = SafetyValve(cfg.block.max_blocks_per_second, cfg.block.max_set_size, clock)
        self.lock = threading.RLock()
        self.started = clock.now()
        self.counters: Counter[str] = Counter()
        self.active: dict[str, Block] = {}  # last view of the kernel, refreshed by sync()
        self.evidence: dict[str, Evidence] = {}
        self.recent: deque[DecisionRow] = deque(maxlen=RECENT_DECISIONS)
        self.ports: Counter[tuple[int, str]] = Counter()
        self._history: deque[int] = deque([0] * HISTORY_SECONDS, maxlen=HISTORY_SECONDS)
        self._history_sec = int(clock.now())
        self.sources: list[Source] = []
        self.sinks: list[DecisionSink] = []
        self.dedup = _deduper(cfg)
        self._last_full_sync = float("-inf")
        # fleet mode (scanguard_ids.fleet): who decides here, and who gets the fresh events
        self.node = ""
        self.tap: Callable[[list[ResponseEvent]], None] | None = None  # lock held: enqueue only
        self.fleet: FleetView | None = None

    # -- hot path -----------------------------------------------------------------
    def process(self, lines: list[bytes], source: str = "") -> None:
        with self.lock:
            self.counters["events"] += len(lines)
            tap = self.tap
            fresh = self._consume(self.decoder.decode_batch(lines), tap is not None)
            if tap is not None and fresh:
                tap(fresh)

    def feed_events(self, events: list[ResponseEvent], origin: str) -> None:
        """Responses another fleet node decoded (``origin``): the same dedup, detector and
        enforcement as our own, but not handed to the tap (they are already shared)."""
        with self.lock:
            self.counters["fleet_events"] += len(events)
            self._consume(events, False)

    def _consume(self, events: Iterable[ResponseEvent], keep: bool) -> list[ResponseEvent]:
        """Dedup, count and detect; returns the events counted when ``keep`` (for the tap)."""
        seen = self.dedup.seen
        fresh: list[ResponseEvent] = []
        for ev in events:
            if seen(ev):
                self.counters["duplicates"] += 1
                continue
            if keep:
                fresh.append(ev)
            self.counters["responses"] += 1
            self._tick(1)
            if ev.local_port is not None and (
                len(self.ports) < MAX_PORT_COUNTERS or (ev.local_port, ev.proto) in self.ports
            ):
                self.ports[(ev.local_port, ev.proto)] += 1
            decision = self.detector.feed(ev)
            if decision is not None:
                self._enforce(decision)
        return fresh

    def _tick(self, n: int) -> None:
        sec = int(self.clock.now())
        gap = sec - self._history_sec
        if gap > 0:
            self._history.extend([0] * min(gap, HISTORY_SECONDS))
            self._history_sec = sec
        self._history[-1] += n

    def _enforce(self, d: Decision) -> bool:
        ok, why = self.valve.allow(len(self.active))
        if not ok:
            self.counters["valve_drops"] += 1
            self.detector.release(d.ip)  # let a later response try again
            log.debug("action=refused ip=%s reason=%s", d.ip, why)
            return False
        try:
            self.backend.block(d.ip, d.ttl)
        except ScanguardError as exc:
            self.counters["backend_errors"] += 1
            self.detector.release(d.ip)
            log.error("action=block-failed ip=%s error=%s", d.ip, exc)
            return False
        now = self.clock.now()
        self.active[d.ip] = Block(d.ip, now + d.ttl)
        self.evidence[d.ip] = Evidence(d.ttl, now, d.ports, d.count, d.strikes, d.manual, d.reason,
                                       d.node or self.node)
        self.counters["blocks"] += 1
        self._record(d)
        log.info("action=block ip=%s ttl=%d count=%d ports=%s strikes=%d manual=%s reason=%r",
                 d.ip, d.ttl, d.count, ",".join(map(str, d.ports)), d.strikes, d.manual, d.reason)
        return True

    def _record(self, d: Decision) -> None:
        """Every decision: kept for the UI, journaled, handed to the sinks (never raises)."""
        if self.node and not d.node:
            d = replace(d, node=self.node)
        self.recent.append(DecisionRow.of(d))
        self.journal.write(d)
        for sink in self.sinks:
            try:
                sink.on_decision(d)
            except Exception:  # a faulty sink never stops the pipeline
                self.counters["sink_errors"] += 1
                log.exception("decision sink failed sink=%s", type(sink).__name__)

    # -- operator actions -----------------------------------------------------------
    def manual_block(self, ip: str, ttl: int | None = None) -> Decision:
        ttl = int(ttl or self.cfg.detect.ttl)
        if ip in self.allowlist or ("/" in ip and self.allowlist.overlaps(ip)):
            raise BlockRefused(f"{ip} is or contains an allowlisted address "
                               "(detect.allowlist or an address of this host)")
        now = self.clock.now()
        d = Decision(ts=now, action="block", ip=ip, ttl=ttl, reason="manual block", manual=True,
                     first_seen=now, last_seen=now)
        with self.lock:
            if not self._enforce(d):
                raise BlockRefused(f"block of {ip} refused (safety valve or backend error; "
                                   "see log)")
            self.detector.adopt(ip, now + ttl)
        return d

    def manual_unblock(self, ip: str, reason: str = "manual unblock") -> Decision:
        now = self.clock.now()
        d = Decision(ts=now, action="unblock", ip=ip, reason=reason, manual=True)
        with self.lock:
            self.backend.unblock(ip)
            self.detector.release(ip)
            self.active.pop(ip, None)
            self.evidence.pop(ip, None)
            self.counters["unblocks"] += 1
            self._record(d)
        log.info("action=unblock ip=%s reason=%r", ip, reason)
        return d

    # -- fleet mode -------------------------------------------------------------------------
    def apply_fleet(self, d: Decision, expires: float = 0.0) -> bool:
        """Apply a block/unblock another node decided (``d.node``) until ``expires`` (epoch s):
        the allowlist first, then the backend with the remaining time; journaled with the
        deciding node, never re-published (the fleet sink skips another node's decisions).
        Idempotent: a block already held at least as long is left alone. True if applied."""
        now = self.clock.now()
        with self.lock:
            if d.action == "unblock":
                if d.ip not in self.active:
                    return False
                try:
                    self.backend.unblock(d.ip)
                except ScanguardError as exc:
                    self.counters["backend_errors"] += 1
                    log.error("action=unblock-failed ip=%s error=%s", d.ip, exc)
                    return False
                self.detector.release(d.ip)
                self.active.pop(d.ip, None)
                self.evidence.pop(d.ip, None)
                self.counters["unblocks"] += 1
                self._record(d)
                log.info("action=unblock ip=%s node=%s reason=%r", d.ip, d.node, d.reason)
                return True
            if d.ip in self.allowlist or ("/" in d.ip and self.allowlist.overlaps(d.ip)):
                self.counters["fleet_refused"] += 1
                log.warning("action=refused ip=%s node=%s reason=allowlisted", d.ip, d.node)
                return False
            until = expires or now + d.ttl
            ttl = math.ceil(until - now)
            held = self.active.get(d.ip)
            if ttl <= 0 or (held is not None and (held.expires is None
                                                  or held.expires >= until - 1)):
                return False
            if not self._enforce(replace(d, ttl=ttl)):
                return False
            self.detector.adopt(d.ip, until)
            self.offenders.remember(d.ip, d.strikes, now)
            return True

    # -- the kernel is the source of truth -----------------------------------------
    def adopt(self) -> int:
        """On start: take over the blocks the kernel already holds."""
        blocks = self.backend.list()
        now = self.clock.now()
        with self.lock:
            for b in blocks:
                self._take_over(b, now, "adopted")
                self.active[b.ip] = b
        if blocks:
            log.info("adopted blocks from the kernel count=%d", len(blocks))
        return len(blocks)

    def sync(self, full: bool | None = None) -> None:
        """Forget blocks that ended; reconcile with the kernel's sets.

        Listing a large set costs ~5 us per entry on ipset's raw path (~50 ms for 10 000;
        ~40 us through pyroute2 and the other backends), so with many blocks the kernel is
        read every FULL_SYNC_S, with few every SMALL_SYNC_S; expiry in between is computed
        from the timeouts we set, so it is noticed within a call.
        """
        now = self.clock.monotonic()
        if full is None:
            every = SMALL_SYNC_S if len(self.active) <= SMALL_SET else FULL_SYNC_S
            full = now - self._last_full_sync >= every
        current: dict[str, Block] | None = None
        if full:
            try:
                current = {b.ip: b for b in self.backend.list()}
                self._last_full_sync = now
            except ScanguardError as exc:
                self.counters["backend_errors"] += 1
                log.error("listing blocks failed: %s", exc)
        wall = self.clock.now()
        with self.lock:
            if current is None:  # between full reads: the timeouts we set tell what ended
                current = {
                    ip: b for ip, b in self.active.items() if b.expires is None or b.expires > wall
                }
            for ip in [ip for ip in self.active if ip not in current]:
                self._expired(ip, wall)
            for ip, b in current.items():
                if ip not in self.active:  # added behind our back (another tool, adoption race)
                    self._take_over(b, wall, "external")
            self.active = current
            self.detector.expire(wall)
            self._tick(0)

    def _take_over(self, b: Block, now: float, reason: str) -> None:
        """Track a block we did not make (held at start, or added by another tool)."""
        until = b.expires if b.expires is not None else now + self.cfg.detect.ttl
        self.detector.adopt(b.ip, until)
        self.evidence.setdefault(b.ip, Evidence(int(max(0, until - now)), now, reason=reason))

    def _expired(self, ip: str, now: float) -> None:
        self.detector.release(ip)
        ev = self.evidence.pop(ip, None)
        self.counters["expired"] += 1
        d = Decision(ts=now, action="expire", ip=ip, ttl=ev.ttl if ev else 0,
                     reason="block timed out in the kernel")
        self._record(d)
        log.info("action=expire ip=%s", ip)

    def reconfigure(self, cfg: config.Config) -> None:
        """Apply a reloaded config, keeping tracked state, blocks and offender history."""
        with self.lock:
            self.cfg = cfg
            self.decoder = Decoder(config.sid_set(cfg), max_line_bytes=cfg.eve.max_line_bytes)
            self.detector.reconfigure(cfg.detect, self.allowlist)
            fresh = _deduper(cfg)
            if (fresh.tolerance, fresh.keep) != (self.dedup.tolerance, self.dedup.keep):
                self.dedup = fresh
            self.valve = SafetyValve(cfg.block.max_blocks_per_second, cfg.block.max_set_size,
                                     self.clock)

    # -- what the UI and status read ------------------------------------------------
    def snapshot(self, watch_limit: int = 200, block_limit: int = 500) -> Snapshot:
        sources = tuple(health_of(src) for src in self.sources)
        fleet = self.fleet.health() if self.fleet is not None else None
        fleet_counters = self.fleet.counter_values() if self.fleet is not None else None
        now = self.clock.now()
        with self.lock:
            self._tick(0)
            return build(
                now=now,
                started=self.started,
                backend=self.backend.info.name,
                detect=self.cfg.detect,
                watch=self.detector.snapshot(now, limit=watch_limit),
                active=self.active,
                evidence=self.evidence,
                counters=self.counters,
                bad_lines=self._bad_lines(),
                no_port=self.decoder.stats.no_port,
                journal_errors=self.journal.errors,
                history=self._history,
                ports=self.ports,
                decisions=self.recent,
                sources=sources,
                block_limit=block_limit,
                fleet=fleet,
                fleet_counters=fleet_counters,
            )

    def _bad_lines(self) -> int:
        """Lines the decoder could not use (the one "bad lines" figure)."""
        s = self.decoder.stats
        return s.bad_json + s.oversized + s.binary + s.missing_fields


def _deduper(cfg: config.Config) -> Deduper:
    """In fleet mode responses are kept longer: other sensors' copies arrive late."""
    return Deduper(cfg.eve.dedup_tolerance, keep=cfg.fleet.dedup_keep if cfg.fleet.url else 0.0)
