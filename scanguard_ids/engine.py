"""Lines in, blocks out: decoder -> detector -> safety valve -> backend -> journal.

Thread-safe (one lock); sources call process() from their own threads, so a line
is acted on in the thread that read it, with no queue hop on the hot path.
Holds only what the UI needs beyond the kernel's own state: evidence of blocks,
per-second history, top ports, recent decisions.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from dataclasses import replace
from typing import Protocol

from scanguard_ids import config
from scanguard_ids.block.base import Backend
from scanguard_ids.block.livepeers import LivePeers
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
from scanguard_ids.model import Block, Decision
from scanguard_ids.snapshot import DecisionRow, Snapshot
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


def is_external(sink: object) -> bool:
    """A sink that reaches beyond this host (CrowdSec, the fleet bus) sets ``external = True``:
    a dry run never hands it anything."""
    return bool(getattr(sink, "external", False))


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
        self.dedup = Deduper(cfg.eve.dedup_tolerance)
        self._last_full_sync = float("-inf")
        #: nothing leaves the host and every journal record says so (docs/security.md)
        self.dry_run = backend.info.name == "dry-run"
        #: remotes with a live two-way connection (block/livepeers.py); None = not checked
        self.livepeers: LivePeers | None = None

    # -- hot path -----------------------------------------------------------------
    def process(self, lines: list[bytes], source: str = "") -> None:
        with self.lock:
            self.counters["events"] += len(lines)
            seen = self.dedup.seen
            for ev in self.decoder.decode_batch(lines):
                if seen(ev):
                    self.counters["duplicates"] += 1
                    continue
                self.counters["responses"] += 1
                self._tick(1)
                if ev.local_port is not None and (
                    len(self.ports) < MAX_PORT_COUNTERS or (ev.local_port, ev.proto) in self.ports
                ):
                    self.ports[(ev.local_port, ev.proto)] += 1
                decision = self.detector.feed(ev)
                if decision is not None:
                    self._enforce(decision)

    def _tick(self, n: int) -> None:
        sec = int(self.clock.now())
        gap = sec - self._history_sec
        if gap > 0:
            self._history.extend([0] * min(gap, HISTORY_SECONDS))
            self._history_sec = sec
        self._history[-1] += n

    def _enforce(self, d: Decision) -> bool:
        if self._framed(d):
            return False
        ok, why = self.valve.allow(len(self.active))
        if not ok:
            self.counters["valve_drops"] += 1
            self.detector.release(d.ip)  # let a later response try again
            self._unstrike(d)  # no strike for a block never made
            log.debug("action=refused ip=%s reason=%s", d.ip, why)
            return False
        try:
            self.backend.block(d.ip, d.ttl)
        except ScanguardError as exc:
            self.counters["backend_errors"] += 1
            self.detector.release(d.ip)
            self._unstrike(d)
            log.error("action=block-failed ip=%s error=%s", d.ip, exc)
            return False
        now = self.clock.now()
        self.active[d.ip] = Block(d.ip, now + d.ttl)
        self.evidence[d.ip] = Evidence(d.ttl, now, d.ports, d.count, d.strikes, d.manual, d.reason)
        self.counters["blocks"] += 1
        self._record(d)
        log.info("action=block ip=%s ttl=%d count=%d ports=%s strikes=%d manual=%s reason=%r",
                 d.ip, d.ttl, d.count, ",".join(map(str, d.ports)), d.strikes, d.manual, d.reason)
        return True

    def _unstrike(self, d: Decision) -> None:
        """Take back the strike the detector recorded for ``d``: under a spoofed flood the
        valve refuses most decisions, and their strikes would push real repeat offenders
        out of the bounded history."""
        if d.provenance == "responses":
            self.offenders.forgive(d.ip, 1)

    def _framed(self, d: Decision) -> bool:
        """Response evidence against a live peer is what a spoofer can forge: journal it as
        "suspected-framing", do not enforce it, take its strike back (docs/security.md).
        The detector keeps its block state, so the same address is recorded at most once
        per ttl however many forged probes follow."""
        peers = self.livepeers
        if peers is None or d.provenance != "responses" or d.ip not in peers:
            return False
        self._unstrike(d)
        self.counters["suspected_framing"] += 1
        self._record(replace(d, action="suspected-framing",
                             reason=f"live peer, not blocked: {d.reason}"))
        log.warning("action=suspected-framing ip=%s count=%d ports=%s reason=%r", d.ip,
                    d.count, ",".join(map(str, d.ports)), d.reason)
        return True

    def _record(self, d: Decision) -> None:
        """Every decision: kept for the UI, journaled, handed to the sinks (never raises)."""
        self.recent.append(DecisionRow.of(d))
        if self.dry_run:
            self.journal.write(d, dry_run=True)
        else:
            self.journal.write(d)
        for sink in self.sinks:
            if self.dry_run and is_external(sink):
                continue
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
                     first_seen=now, last_seen=now, provenance="manual")
        with self.lock:
            if not self._enforce(d):
                raise BlockRefused(f"block of {ip} refused (safety valve or backend error; "
                                   "see log)")
            self.detector.adopt(ip, now + ttl)
        return d

    def manual_unblock(self, ip: str, reason: str = "manual unblock", *,
                       manual: bool = True) -> Decision:
        now = self.clock.now()
        d = Decision(ts=now, action="unblock", ip=ip, reason=reason, manual=manual,
                     provenance="manual" if manual else "")
        with self.lock:
            self.backend.unblock(ip)
            self.detector.release(ip)
            if manual:  # an operator's pardon: a re-framing must not find escalated strikes
                self.offenders.forgive(ip)
            self.active.pop(ip, None)
            self.evidence.pop(ip, None)
            self.counters["unblocks"] += 1
            self._record(d)
        log.info("action=unblock ip=%s reason=%r", ip, reason)
        return d

    def update_allowlist(self, allowlist: Allowlist, reason: str) -> list[str]:
        """Use ``allowlist`` from now on. Blocks of addresses it now covers are lifted at once
        (journal action "unblock" with ``reason``) and their evidence and strikes forgotten:
        an address that became ours, or was allowlisted by a reload, is never left blocked."""
        with self.lock:
            self.allowlist = allowlist
            self.detector.reconfigure(self.cfg.detect, allowlist)  # drops their evidence
            lifted = [ip for ip in list(self.active) if ip in allowlist]
            for ip in lifted:
                self.offenders.forget(ip)
                try:
                    self.manual_unblock(ip, reason=reason, manual=False)
                except ScanguardError as exc:
                    self.counters["backend_errors"] += 1
                    log.error("action=unblock-failed ip=%s reason=%r error=%s", ip, reason, exc)
        return lifted

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
        if self.livepeers is not None:
            self.livepeers.refresh()  # off the lock: at most one read a second
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
            if cfg.eve.dedup_tolerance != self.dedup.tolerance:
                self.dedup = Deduper(cfg.eve.dedup_tolerance)
            self.valve = SafetyValve(cfg.block.max_blocks_per_second, cfg.block.max_set_size,
                                     self.clock)

    # -- what the UI and status read ------------------------------------------------
    def snapshot(self, watch_limit: int = 200, block_limit: int = 500) -> Snapshot:
        sources = tuple(health_of(src) for src in self.sources)
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
                # lines a source dropped as oversized never reached the decoder: count them too
                bad_lines=self._bad_lines() + sum(h.oversized for h in sources),
                no_port=self.decoder.stats.no_port,
                journal_errors=self.journal.errors,
                history=self._history,
                ports=self.ports,
                decisions=self.recent,
                sources=sources,
                block_limit=block_limit,
            )

    def _bad_lines(self) -> int:
        """Lines the decoder could not use (the one "bad lines" figure)."""
        s = self.decoder.stats
        return s.bad_json + s.oversized + s.binary + s.missing_fields
