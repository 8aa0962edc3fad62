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
from collections.abc import Callable
from dataclasses import fields, replace
from operator import attrgetter
from typing import Any, Protocol

from scanguard_ids import config
from scanguard_ids.block.base import Backend
from scanguard_ids.block.eviction import EvictionQueue
from scanguard_ids.block.livepeers import LivePeers
from scanguard_ids.block.pending import PendingQueue
from scanguard_ids.block.ratelimit import Refusal, SafetyValve
from scanguard_ids.clock import Clock
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.dedup import Deduper
from scanguard_ids.detect.detector import Detector
from scanguard_ids.detect.distributed import Alarm, DistributedDetector
from scanguard_ids.detect.offenders import Offenders
from scanguard_ids.detect.timeguard import TimeGuard
from scanguard_ids.errors import ScanguardError
from scanguard_ids.eve.decode import Decoder
from scanguard_ids.eve.source import Source, health_of
from scanguard_ids.giveback import malloc_trim, oversized
from scanguard_ids.journal import Journal
from scanguard_ids.model import Block, Decision, ResponseEvent, ip_text, parse_target
from scanguard_ids.snapshot import FleetHealth, Snapshot
from scanguard_ids.snapshot_build import Evidence, build

log = logging.getLogger(__name__)

HISTORY_SECONDS = 300
RECENT_DECISIONS = 50
MAX_PORT_COUNTERS = 4096
SMALL_SET = 64  # up to this many blocks, read the kernel's sets every SMALL_SYNC_S
SMALL_SYNC_S = 5.0  # (a listing costs ~5 us of CPU per entry on ipset's raw netlink path,
FULL_SYNC_S = 15.0  # ~40 us through pyroute2 or ~0.7 ms per call for an empty set)
PENDING_MAX = 1024  # decisions the rate valve deferred, retried best evidence first
MAX_SPELLINGS = 4096  # cached canonical forms of IPv6 / IPv4-mapped spellings


def canonical(ip: str) -> str:
    """The one spelling the kernel lists: IPv4-mapped IPv6 as IPv4, IPv6 compressed and
    lower-case, without a zone id (``fe80::1%eth0`` -> ``fe80::1``). Unparseable text is
    returned as it is (the backend refuses it later)."""
    bare = (ip.split("%", 1)[0] if "%" in ip else ip).strip()
    if "/" not in bare:
        text = ip_text(bare)
        return ip if text is None else text
    try:
        target = parse_target(bare)
    except ValueError:
        return ip
    return str(target)


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
        self.alarms = _alarms(cfg, allowlist)
        self.cfg_alarm = cfg.alarm
        self.valve = SafetyValve.with_reserves(cfg.block, clock)
        self.lock = threading.RLock()
        self.started = clock.now()
        self.counters: Counter[str] = Counter()
        self.active: dict[str, Block] = {}  # last view of the kernel, refreshed by sync()
        self.evidence: dict[str, Evidence] = {}
        # the decisions themselves: their rows (ISO times) are made only for a snapshot
        self.recent: deque[Decision] = deque(maxlen=RECENT_DECISIONS)
        self.ports: Counter[tuple[int, str]] = Counter()
        self._history: deque[int] = deque([0] * HISTORY_SECONDS, maxlen=HISTORY_SECONDS)
        self._history_sec = int(clock.now())
        self.sources: list[Source] = []
        self.sinks: list[DecisionSink] = []
        self.dedup = _deduper(cfg)
        self._last_full_sync = float("-inf")
        self.guard = TimeGuard(cfg.detect.window + cfg.detect.reorder, cfg.detect.max_future)
        self._spellings: dict[str, str] = {}
        self.pending = PendingQueue()
        # eviction candidates: (strikes, ports, responses, expires, seq, ip); stale entries
        # (seq no longer the address's) are skipped
        self.evictable = EvictionQueue()  # automatic blocks, weakest first
        self._evict_logged = float("-inf")
        # while sync() lists the kernel: what changed meanwhile (ip -> "block" / "unblock")
        self._since_list: dict[str, str] | None = None
        #: nothing leaves the host and every journal record says so (docs/security.md)
        self.dry_run = backend.info.name == "dry-run"
        # fleet mode (scanguard_ids.fleet): who decides here, and who gets the fresh events
        self.node = ""
        self.tap: Callable[[list[ResponseEvent]], None] | None = None  # lock held: enqueue only
        self.fleet: FleetView | None = None
        #: remotes with a live two-way connection (block/livepeers.py); None = not checked
        self.livepeers: LivePeers | None = None
        #: times a flood's tables were rebuilt and freed memory handed back (_give_back)
        self.trims = 0

    # -- hot path -----------------------------------------------------------------
    def process(self, lines: list[bytes], source: str = "") -> None:
        with self.lock:
            self.counters["events"] += len(lines)
            tap = self.tap
            fresh = self._consume(self.decoder.decode_batch(lines), tap is not None)
            if tap is not None and fresh:
                tap(fresh)

    def feed_events(self, events: list[ResponseEvent], origin: str) -> None:
        """Responses another fleet node decoded (``origin``): the same dedup, time guard,
        detector and enforcement as our own, but not handed to the tap (already shared)."""
        with self.lock:
            self.counters["fleet_events"] += len(events)
            self._consume(events, False)

    def _consume(self, events: list[ResponseEvent], keep: bool) -> list[ResponseEvent]:
        """Dedup, time guard, count and detect; returns the events counted when ``keep``
        (for the fleet tap).

        The hot path of a flood: one pass with the per-event steps inlined (dedup runs over
        the batch first: it depends on nothing the later steps change); the per-second
        history, the response counter and the per-port counters are added once per batch
        (same lock, same sums).
        """
        counters = self.counters
        fresh_events = self.dedup.fresh(events)
        if len(fresh_events) != len(events):
            counters["duplicates"] += len(events) - len(fresh_events)
        guard, detector = self.guard, self.detector
        bound = guard.bound(self.clock.now())
        late = guard.late
        run = guard.run
        alarms = self.alarms
        # the allowlist is looked up once per event, here, and the answer handed to the alarm
        # and the detector (Allowlist.__contains__ inline: the cached answer, else most misses
        # by first octet)
        allow = self.allowlist
        known, heads4, lookup = allow.known, allow.heads4, allow.lookup
        feed = detector.feed
        waiting = self.pending.by_ip
        ports = self.ports
        # an upper bound of detector.newest (the newest ts fed): an event within late of it
        # is not behind, without asking the detector
        high = detector.newest
        shift = guard.shift  # read again after the guard's calls that change it
        fresh: list[ResponseEvent] = []
        seen_ports: list[tuple[int, str]] = []
        counted = 0
        try:
            for ev in fresh_events:
                remote = ev.remote
                if ":" in remote:  # one spelling per address (IPv6, IPv4-mapped, zone id)
                    ev.remote = remote = self._spelling(remote)
                if shift:
                    ev.ts += shift
                ts = ev.ts
                if ts > bound:
                    future = guard.future(ev, bound - guard.max_future)
                    shift = guard.shift
                    if future:
                        counters["future"] += 1
                        continue
                    ts = ev.ts  # future() dropped the shift
                if keep:
                    fresh.append(ev)
                counted += 1
                port = ev.local_port
                if port is not None:
                    seen_ports.append((port, ev.proto))
                if ts >= high - late:
                    if ts > high:
                        high = ts
                    if run:
                        guard.ok()
                elif ts < detector.newest - late:
                    stepped = guard.behind(ev, detector.newest)
                    shift = guard.shift
                    if stepped:
                        counters["clock_steps"] += 1
                        log.warning("action=clock-step shift=%.1f: event time stepped back, "
                                    "later events are shifted", guard.shift)
                        for e in stepped:
                            high = max(high, e.ts)
                            self._judge(e)
                    continue
                elif run:
                    guard.ok()
                # _judge(ev), inlined
                allowed = known(remote)
                cached = allowed is not None
                if not cached:
                    allowed = (":" in remote or remote[:remote.find(".")] in heads4) \
                        and lookup(remote)
                if alarms is not None:
                    alarm = alarms.feed(ev, allowed)
                    if alarm is not None:
                        self._alarmed(alarm)
                decision = feed(ev, allowed, cached)
                if decision is not None:
                    self._decided(decision)
                elif waiting:
                    p = waiting.get(remote)
                    if p is not None:
                        self.pending.bump(p, p.score + 1)
        finally:
            if counted:
                counters["responses"] += counted
                self._tick(counted)
            if seen_ports:  # counted per batch: a flood's batch holds a few ports
                for pk, n in Counter(seen_ports).items():
                    if pk in ports or len(ports) < MAX_PORT_COUNTERS:
                        ports[pk] += n
        if waiting:
            self._drain()
        return fresh

    def _judge(self, ev: ResponseEvent) -> None:
        alarms = self.alarms
        if alarms is not None:
            alarm = alarms.feed(ev)
            if alarm is not None:
                self._alarmed(alarm)
        decision = self.detector.feed(ev)
        if decision is not None:
            self._decided(decision)
        elif self.pending:
            p = self.pending.get(ev.remote)
            if p is not None:
                self.pending.bump(p, p.score + 1)

    def _alarmed(self, alarm: Alarm) -> None:
        """An alarm raised (or ended) while feeding: recorded, and the shield's blocks (if
        alarm.shield) go through the valves."""
        self._alarm(alarm)
        alarms = self.alarms
        if alarms is not None:
            for shield in alarms.take_blocks():
                self._enforce(shield)

    def _decided(self, decision: Decision) -> None:
        if decision.detect_only:  # detect.sweep / detect.slow = "detect": a trial
            self.counters["would_block"] += 1
            self._record(replace(decision, action="would-block"))
            log.info("action=would-block ip=%s tier=%s rule=%s reason=%r", decision.ip,
                     decision.tier, decision.rule, decision.reason)
        else:
            self._enforce(decision)

    def _alarm(self, a: Alarm) -> None:
        """A distributed-scan alarm raised or ended: journaled, counted, logged."""
        if a.action == "alarm":
            self.counters["alarms"] += 1
            log.warning("action=alarm target=%s sources=%d responses=%d ports=%s until=%.0f",
                        a.target, a.distinct_sources, a.responses,
                        ",".join(map(str, a.ports)), a.until)
        else:
            log.info("action=alarm-end target=%s sources=%d", a.target, a.distinct_sources)
        self.journal.write(a, **({"dry_run": True} if self.dry_run else {}))

    def _spelling(self, ip: str) -> str:
        known = self._spellings.get(ip)
        if known is None:
            if len(self._spellings) >= MAX_SPELLINGS:
                self._spellings.clear()
            known = self._spellings[ip] = canonical(ip)
        return known

    def _tick(self, n: int) -> None:
        sec = int(self.clock.now())
        gap = sec - self._history_sec
        if gap > 0:
            self._history.extend([0] * min(gap, HISTORY_SECONDS))
            self._history_sec = sec
        self._history[-1] += n

    def _enforce(self, d: Decision, *, priority: bool = False) -> bool:
        """Apply one decision through the valves. Strikes: the detector recorded one for
        ``d``; it is taken back unless the block lands (a refused block is no offence).

        Set full: the weakest automatic block is evicted to make room (block/eviction.py).
        Rate short: a detector decision waits in ``pending`` (its strike taken back, the
        detector keeps suppressing the address) and is retried by _drain, best evidence
        first, from the tokens reserved for priority blocks.
        """
        if self.livepeers is not None and self._framed(d):
            return False
        ip = d.ip
        active = self.active
        valve = self.valve
        refresh = ip in active
        victim = None
        if not refresh and len(active) >= valve.limit(d.manual):
            victim = self.evictable.victim(active)
        held = len(active) - (victim is not None)
        refusal = valve.admit(ip, held, refresh, manual=d.manual, priority=priority)
        failed = refusal is None and victim is not None and not self._evict(victim, ip)
        if refusal is not None or failed:
            # a flood's decisions mostly end here (rate): the reason is spelled out only
            # for a debug log
            self.counters["valve_drops"] += 1
            if not d.manual:
                self.offenders.retract(ip, d.strikes)
                if refusal is Refusal.RATE and self._defer(d):
                    if log.isEnabledFor(logging.DEBUG):
                        log.debug("action=deferred ip=%s reason=%s", ip,
                                  valve.why(refusal, held))
                    return False
            self.detector.release(ip)  # let a later response try again
            if log.isEnabledFor(logging.DEBUG):
                log.debug("action=refused ip=%s reason=%s", ip, "full: eviction failed"
                          if refusal is None else valve.why(refusal, held))
            return False
        try:
            self.backend.block(ip, d.ttl)
        except ScanguardError as exc:
            self.counters["backend_errors"] += 1
            if not d.manual:
                self.offenders.retract(ip, d.strikes)
            self.detector.release(ip)
            log.error("action=block-failed ip=%s error=%s", ip, exc)
            return False
        now = self.clock.now()
        self.active[ip] = Block(ip, now + d.ttl)
        self.evidence[ip] = Evidence(d.ttl, now, d.ports, d.count, d.strikes, d.manual, d.reason,
                                    d.node or self.node)
        if self._since_list is not None:
            self._since_list[ip] = "block"
        if d.manual:
            self.evictable.discard(ip)
        else:
            self.evictable.add(ip, d.strikes, len(d.ports), d.count, now + d.ttl,
                               len(self.active))
        self.counters["blocks"] += 1
        self._record(d)
        log.info("action=block ip=%s ttl=%d count=%d ports=%s strikes=%d manual=%s reason=%r",
                 ip, d.ttl, d.count, ",".join(map(str, d.ports)), d.strikes, d.manual, d.reason)
        return True

    # -- valves under pressure (docs/security.md "Valves under attack") ------------------
    def _evict(self, ip: str, for_ip: str) -> bool:
        try:
            self.backend.unblock(ip)
        except ScanguardError as exc:
            self.counters["backend_errors"] += 1
            log.error("action=evict-failed ip=%s error=%s", ip, exc)
            self.evictable.discard(ip)  # try another next time
            return False
        self.evictable.discard(ip)
        self.detector.release(ip)
        self.active.pop(ip, None)
        ev = self.evidence.pop(ip, None)
        if self._since_list is not None:
            self._since_list[ip] = "unblock"
        self.counters["evicted"] += 1
        now = self.clock.now()
        self._record(Decision(ts=now, action="evict", ip=ip, ttl=ev.ttl if ev else 0,
                              count=ev.responses if ev else 0, ports=ev.ports if ev else (),
                              strikes=ev.strikes if ev else 0,
                              reason=f"set full (block.max_set_size = {self.valve.max_set_size}):"
                                     f" room for {for_ip}"))
        log.debug("action=evict ip=%s for=%s active=%d", ip, for_ip, len(self.active))
        mono = self.clock.monotonic()
        if mono - self._evict_logged >= 1.0:  # a flood of evictions does not flood the log
            self._evict_logged = mono
            log.warning("action=evict ip=%s for=%s active=%d evicted=%d: the set is full "
                        "(block.max_set_size)", ip, for_ip, len(self.active),
                        self.counters["evicted"])
        return True

    def _defer(self, d: Decision) -> bool:
        """Queue a rate-refused detector decision; False if the queue has no room for it."""
        pending = self.pending
        by_ip = pending.by_ip
        p = by_ip.get(d.ip)
        if p is not None:
            pending.bump(p, d.count)
            return True
        if len(by_ip) >= PENDING_MAX:
            low = pending.weakest()
            weakest = by_ip.get(low) if low is not None else None
            if low is None or weakest is None or weakest.score >= d.count:
                return False
            pending.pop(low)
            self.detector.release(low)
            self.counters["pending_dropped"] += 1
        pending.add(d, d.count, self.clock.monotonic())
        self.counters["deferred"] += 1
        return True

    def _drain(self) -> None:
        """Retry deferred decisions while tokens last, most evidence first; the strike is
        recorded again now (and taken back again if the retry is refused)."""
        pending, valve = self.pending, self.valve
        max_age = float(self.cfg.detect.ttl)
        now = self.clock.monotonic()
        while pending and valve.tokens() >= 1.0:
            ip = pending.strongest()
            p = pending.pop(ip) if ip is not None else None
            if ip is None or p is None:
                break
            if now - p.since > max_age:
                self.detector.release(ip)
                self.counters["pending_dropped"] += 1
                continue
            strike = self.offenders.offend(ip, p.d.ts)
            d = replace(p.d, ttl=strike.ttl, strikes=strike.strikes,
                        count=max(p.d.count, p.score))
            self.counters["retried"] += 1
            if not self._enforce(d, priority=True):
                break

    def _framed(self, d: Decision) -> bool:
        """Response evidence against a live peer is what a spoofer can forge: journal it as
        "suspected-framing", do not enforce it, take its strike back (docs/security.md).
        The detector keeps its block state, so the same address is recorded at most once
        per ttl however many forged probes follow."""
        peers = self.livepeers
        if peers is None or d.provenance != "responses" or d.ip not in peers:
            return False
        self.offenders.retract(d.ip, d.strikes)
        self.counters["suspected_framing"] += 1
        self._record(replace(d, action="suspected-framing",
                             reason=f"live peer, not blocked: {d.reason}"))
        log.warning("action=suspected-framing ip=%s count=%d ports=%s reason=%r", d.ip,
                    d.count, ",".join(map(str, d.ports)), d.reason)
        return True

    def _record(self, d: Decision) -> None:
        """Every decision: kept for the UI, journaled, handed to the sinks (never raises)."""
        if self.node and not d.node:
            d = with_node(d, self.node)
        self.recent.append(d)
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
        ip = canonical(ip)
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

    def adopt_fast_path(self, ip: str, reason: str, block: bool = True) -> Decision | None:
        """A source the kernel fast path stopped (block) or would have (detect): one
        journaled decision (sensors "fast-path"); with ``block`` also the main backend's
        block, with the repeat-offender ttl, so expiry, unblock and strikes apply as usual.
        None when it is already blocked or allowlisted."""
        with self.lock:
            if ip in self.active or ip in self.allowlist:
                return None
            now = self.clock.now()
            strike = self.offenders.offend(ip, now) if block else None
            d = Decision(ts=now, action="block" if block else "would-block", ip=ip,
                         ttl=strike.ttl if strike else 0, reason=reason, first_seen=now,
                         last_seen=now, strikes=strike.strikes if strike else 1,
                         sensors=("fast-path",))
            if not block:
                self._record(d)
                return d
            if not self._enforce(d):
                return None
            self.detector.adopt(ip, now + d.ttl)
            return d

    def manual_unblock(self, ip: str, reason: str = "manual unblock", *,
                       manual: bool = True) -> Decision:
        ip = canonical(ip)
        now = self.clock.now()
        d = Decision(ts=now, action="unblock", ip=ip, reason=reason, manual=manual,
                     provenance="manual" if manual else "")
        with self.lock:
            self.backend.unblock(ip)
            if self._since_list is not None:
                self._since_list[ip] = "unblock"
            self.pending.pop(ip)
            self.evictable.discard(ip)
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
            if self.alarms is not None:
                self.alarms.set_allowlist(allowlist)
            lifted = [ip for ip in list(self.active) if ip in allowlist]
            for ip in lifted:
                self.offenders.forget(ip)
                try:
                    self.manual_unblock(ip, reason=reason, manual=False)
                except ScanguardError as exc:
                    self.counters["backend_errors"] += 1
                    log.error("action=unblock-failed ip=%s reason=%r error=%s", ip, reason, exc)
        return lifted

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
            with self.lock:
                self._since_list = {}  # blocks and unblocks made while the kernel is listed
            try:
                current = {canonical(b.ip) if ":" in b.ip else b.ip: b
                           for b in self.backend.list()}
                self._last_full_sync = now
            except ScanguardError as exc:
                self.counters["backend_errors"] += 1
                log.error("listing blocks failed: %s", exc)
        if self.livepeers is not None:
            self.livepeers.refresh()  # off the lock: at most one read a second
        wall = self.clock.now()
        with self.lock:
            changed, self._since_list = self._since_list, None
            if current is not None and changed:
                # the listing may predate these: the engine's view of them is newer
                for ip, what in changed.items():
                    if what == "block" and ip in self.active:
                        current.setdefault(ip, self.active[ip])
                    elif what == "unblock":
                        current.pop(ip, None)
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
            # Block state is in event time: a block decided from a backlog ends (event time)
            # long before now, yet runs its ttl in the kernel from now. Expire by event time.
            self.detector.expire(min(wall, self.detector.newest))
            if self.alarms is not None:
                for ended in self.alarms.expire(min(wall, self.alarms.newest)):
                    self._alarm(ended)
            if self.pending:
                self._drain()
            self._tick(0)
            self._give_back()

    def _give_back(self) -> None:
        """After a flood: rebuild the tables it left far emptier than their peak and, when
        one was, hand the freed heap back to the kernel (scanguard_ids/giveback.py). O(1)
        when nothing shrank."""
        rebuilt = self.detector.compact() + self.dedup.compact()
        if self.alarms is not None:
            rebuilt += self.alarms.compact()
        if oversized(self.evidence):
            self.evidence = dict(self.evidence)
            rebuilt += 1
        if rebuilt:
            trimmed = malloc_trim()
            self.trims += 1
            log.info("action=give-back tables=%d malloc_trim=%s", rebuilt, trimmed)

    def _take_over(self, b: Block, now: float, reason: str) -> None:
        """Track a block we did not make (held at start, or added by another tool)."""
        until = b.expires if b.expires is not None else now + self.cfg.detect.ttl
        self.detector.adopt(b.ip, until)
        # not known to be ours: evicted before any evidence-backed block (docs/security.md)
        self.evictable.add(b.ip, 0, 0, 0, until, len(self.active))
        self.evidence.setdefault(b.ip, Evidence(int(max(0, until - now)), now, reason=reason))

    def _expired(self, ip: str, now: float) -> None:
        self.detector.release(ip)
        self.evictable.discard(ip)
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
            if cfg.alarm != self.cfg_alarm:
                self.alarms = _alarms(cfg, self.allowlist)
                self.cfg_alarm = cfg.alarm
            fresh = _deduper(cfg)
            if (fresh.tolerance, fresh.keep) != (self.dedup.tolerance, self.dedup.keep):
                self.dedup = fresh
            self.valve = SafetyValve.with_reserves(cfg.block, self.clock)
            self.guard.late = float(cfg.detect.window + cfg.detect.reorder)
            self.guard.max_future = float(cfg.detect.max_future)

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
                alarms=tuple(self.alarms.active()) if self.alarms is not None else (),
                active=self.active,
                evidence=self.evidence,
                counters=self.counters,
                # lines a source dropped as oversized never reached the decoder: count them too
                bad_lines=self.decoder.stats.bad + sum(h.oversized for h in sources),
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


_DECISION_FIELDS = tuple(f.name for f in fields(Decision))
_NODE_AT = _DECISION_FIELDS.index("node")
_BEFORE_NODE = attrgetter(*_DECISION_FIELDS[:_NODE_AT])
_AFTER_NODE = attrgetter(*_DECISION_FIELDS[_NODE_AT + 1:])


def with_node(d: Decision, node: str) -> Decision:
    """``replace(d, node=node)`` at about half its cost (no keyword dict built from
    fields() per call): every decision of a fleet node goes through it."""
    values: tuple[Any, ...] = (*_BEFORE_NODE(d), node, *_AFTER_NODE(d))
    return Decision(*values)


def _deduper(cfg: config.Config) -> Deduper:
    """In fleet mode responses are kept longer: other sensors' copies arrive late."""
    return Deduper(cfg.eve.dedup_tolerance, keep=cfg.fleet.dedup_keep if cfg.fleet.url else 0.0)


def _alarms(cfg: config.Config, allowlist: Allowlist) -> DistributedDetector | None:
    """The distributed-scan alarm (alarm.mode "off": none, and no cost on the hot path)."""
    if cfg.alarm.mode == "off":
        return None
    return DistributedDetector(cfg.alarm, cfg.detect.reorder, allowlist)
