"""The count-and-port threshold: pure, driven by the events' own timestamps.

Rule: block a remote address once at least ``count`` responses covering at least
``ports`` distinct local ports fall within ``window`` seconds of event time
(a set of responses qualifies when its newest minus its oldest timestamp is
<= ``window``). A response without a local port (``local_port`` None: the EVE
line carried no packet) counts toward ``count`` but adds no distinct port, so
port-less responses alone can never satisfy ``ports``.

Event order: Suricata threads write EVE lines independently, so events arrive
out of timestamp order. Each address keeps its evidence sorted by time and a
new event is checked against every window that contains it; the decision's
``ts`` is the end of the earliest qualifying window known at that moment. A
late event that would have met the threshold earlier (it arrives while the
address is already blocked) moves the block's event-time start and end back,
so suppression and re-blocking match what the time-sorted stream does.
Guarantee: if every event arrives less than ``reorder`` seconds (event time)
behind the newest event seen before it, and ``ttl > reorder``, the blocked
addresses, their block counts, strikes and ttls equal those of the sorted
stream, and each decision's ``ts`` is at most ``reorder`` after the sorted
one (property-tested against a plain reference model). Events older than
``newest - window - reorder`` are dropped as ``too_late``; those between that
and ``newest - reorder`` still count, best effort. Evictions (``max_tracked``),
the evidence cap (``max_events_per_ip``) and :meth:`Detector.expire` with a
``now`` ahead of event time are load shedding / policy and fall outside it.

Blocking: a decision consumes the evidence; until the block ends (event time
``< ts + ttl``) the address's responses are only counted as ``suppressed``.
Afterwards a fresh scan can produce a new decision (with escalated ttl, see
:mod:`scanguard_ids.detect.offenders`).

No wall clock is read here: ``now`` is passed in where needed.
"""

from __future__ import annotations

import heapq
import logging
import math
from bisect import bisect_left, insort
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from itertools import islice
from typing import TypeAlias

from scanguard_ids.config import DetectConfig
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.offenders import Offenders, Strike
from scanguard_ids.model import Decision, Kind, ResponseEvent

log = logging.getLogger(__name__)

#: Stored port of a response without a local port (sorts before real ports).
_NO_PORT = -1
#: Distinct (kind, sensor) pairs whose tuples are shared between events.
_MAX_TAGS = 1024
#: How many of the least recently seen addresses eviction looks at for a single response.
_EVICT_SCAN = 32

# What a response was besides its time and port: (kind, sensor), one shared tuple per pair.
_Tag: TypeAlias = tuple[Kind, str]
# One piece of evidence: (event ts, local port or _NO_PORT, tag); it sorts like the
# flat (ts, port, kind, sensor). An address seen once costs its key, this 3-tuple, a
# float and (for ports above 256) an int.
_Item: TypeAlias = tuple[float, int, _Tag]
# Tracked state of an address: its only response (compact), or a time-sorted list.
_State: TypeAlias = _Item | list[_Item]


@dataclass(slots=True)
class DetectorStats:
    """Counters since start. ``tracked``/``blocked`` are current sizes."""

    events: int = 0  # fed, all of them
    allowlisted: int = 0  # dropped: the remote address is allowlisted
    suppressed: int = 0  # the address was already blocked (event time)
    too_late: int = 0  # older than newest - window - reorder
    evicted: int = 0  # tracked addresses (or block states) dropped by the max_tracked cap
    idle: int = 0  # tracked addresses dropped as idle (no use for any later event)
    blocks: int = 0  # decisions made
    tracked: int = 0  # addresses with evidence now
    blocked: int = 0  # addresses with block state now (see Detector.blocked_until)


@dataclass(frozen=True, slots=True)
class WatchEntry:
    """An address that drew responses within the window but is not blocked (yet)."""

    ip: str
    responses: int  # responses in the window
    ports: int  # distinct local ports among them
    count_needed: int  # thresholds, for "2/3 responses, 1/2 ports"
    ports_needed: int
    window_left: float  # seconds until the oldest of them leaves the window
    first_seen: float
    last_seen: float
    kinds: tuple[str, ...]
    port_list: tuple[int, ...]  # the distinct ports, sorted
    strikes: int  # earlier offences still remembered


@dataclass(frozen=True, slots=True)
class DetectorSnapshot:
    """What the UI shows of the detector at ``ts``: thresholds, watch list, counters."""

    ts: float
    count: int  # threshold: responses ...
    ports: int  # ... to this many distinct ports ...
    window: float  # ... within this many seconds
    watching: tuple[WatchEntry, ...]  # closest to a block first, at most ``limit``
    total: int  # addresses with responses in the window (watching may be cut short)
    blocked: int  # addresses the detector holds blocked at ts
    stats: DetectorStats


@dataclass(slots=True)
class _Block:
    """Block state of one address (event time)."""

    trigger: float  # event time the threshold was met (-inf: adopted)
    until: float
    ttl: int
    evidence: list[_Item] | None  # what the decision consumed; None when adopted
    since: float  # end of the block before (-inf: none): older events belong to it


class Detector:
    """Per remote address: count responses, decide blocks. See the module docstring."""

    __slots__ = (
        "_allow",
        "_blocks",
        "_count",
        "_ended",
        "_fresh",
        "_heap",
        "_late",
        "_max_events",
        "_max_tracked",
        "_need_ports",
        "_newest",
        "_stats",
        "_tags",
        "_tracked",
        "_window",
        "cfg",
        "offenders",
    )

    def __init__(
        self, cfg: DetectConfig, allowlist: Allowlist, offenders: Offenders | None = None
    ) -> None:
        self.offenders = offenders if offenders is not None else Offenders(cfg)
        self._settings(cfg, allowlist)
        self._tracked: OrderedDict[str, _State] = OrderedDict()  # least recently seen first
        self._blocks: dict[str, _Block] = {}
        self._heap: list[tuple[float, str]] = []  # (until, ip); stale entries skipped
        self._ended: deque[str] = deque(maxlen=max(1024, cfg.max_tracked))
        self._fresh: deque[_Block] = deque()  # blocks still holding their evidence
        self._newest = -math.inf
        self._tags: dict[_Tag, _Tag] = {}
        self._stats = DetectorStats()

    def _settings(self, cfg: DetectConfig, allowlist: Allowlist) -> None:
        self.cfg = cfg
        self._allow = allowlist
        self._count = cfg.count
        self._need_ports = cfg.ports
        self._window = float(cfg.window)
        self._late = float(cfg.window + cfg.reorder)
        self._max_tracked = cfg.max_tracked
        self._max_events = cfg.max_events_per_ip

    def reconfigure(self, cfg: DetectConfig, allowlist: Allowlist) -> None:
        """Apply a reloaded config, keeping evidence, block state and offender history.

        Newly allowlisted addresses lose their evidence; caps are applied at once.
        Blocks already decided keep their end; new thresholds apply from the next event.
        """
        self._settings(cfg, allowlist)
        self.offenders.reconfigure(cfg)
        tracked = self._tracked
        for ip in [ip for ip in tracked if ip in allowlist]:
            del tracked[ip]
        while len(tracked) > cfg.max_tracked:
            tracked.popitem(last=False)
            self._stats.evicted += 1
        for st in tracked.values():
            if isinstance(st, list) and len(st) > cfg.max_events_per_ip:
                del st[: len(st) - cfg.max_events_per_ip]
        if len(self._blocks) > cfg.max_tracked:
            self._cap_blocks()
        self._ended = deque(self._ended, maxlen=max(1024, cfg.max_tracked))

    # -- the hot path -------------------------------------------------------------------

    def feed(self, ev: ResponseEvent) -> Decision | None:
        """Count one response; return a block decision when this one tips the balance."""
        stats = self._stats
        stats.events += 1
        ip = ev.remote
        if ip in self._allow:
            stats.allowlisted += 1
            return None
        ts = ev.ts
        if ts > self._newest:
            self._newest = ts
            self._advance(ts - self._late)
        elif ts < self._newest - self._late:
            stats.too_late += 1
            return None
        if self._blocks:
            # Block state outlives the block by window + reorder (event time), so
            # that late responses from within the block are still suppressed.
            blk = self._blocks.get(ip)
            if blk is not None and ts < blk.until:
                stats.suppressed += 1
                if blk.evidence is not None and blk.since <= ts < blk.trigger:
                    self._late_evidence(ip, blk, self._item(ev))
                return None
        item = self._item(ev)
        tracked = self._tracked
        st = tracked.get(ip)
        if st is None:
            tracked[ip] = item
            if len(tracked) > self._max_tracked:
                self._evict()
            if self._count == 1:
                return self._check(ip, [item], ts)
            return None
        tracked.move_to_end(ip)
        if isinstance(st, list):
            insort(st, item)
            cutoff = self._newest - self._late
            while st[0][0] < cutoff:
                del st[0]
            if len(st) > self._max_events:
                del st[0]
        else:
            st = [st, item] if st <= item else [item, st]
            tracked[ip] = st
        if len(st) < self._count:
            return None
        return self._check(ip, st, ts)

    def _item(self, ev: ResponseEvent) -> _Item:
        port = ev.local_port
        key = (ev.kind, ev.sensor)
        return (ev.ts, _NO_PORT if port is None else port, self._tags.get(key) or self._share(key))

    def _share(self, tag: _Tag) -> _Tag:
        """Remember a (kind, sensor) pair so the evidence of all events shares one tuple."""
        if len(self._tags) < _MAX_TAGS:
            self._tags[tag] = tag
        return tag

    def _advance(self, cutoff: float) -> None:
        """Event time moved on: drop state no later event can use (amortised O(1))."""
        tracked = self._tracked
        while tracked:
            ip = next(iter(tracked))
            st = tracked[ip]
            if (st[-1][0] if isinstance(st, list) else st[0]) >= cutoff:
                break
            del tracked[ip]
            self._stats.idle += 1
        heap = self._heap
        while heap and heap[0][0] < cutoff:
            until, ip = heapq.heappop(heap)
            blk = self._blocks.get(ip)
            if blk is not None and blk.until == until:
                del self._blocks[ip]
                self._ended.append(ip)
        # No acceptable event can precede these triggers any more: free their evidence.
        fresh = self._fresh
        while fresh and fresh[0].trigger < cutoff:
            fresh.popleft().evidence = None

    def _evict(self) -> None:
        """Over max_tracked: the least evidence goes first. Among the _EVICT_SCAN least
        recently seen addresses, the first with a single response is dropped, else the least
        recently seen: a spoofed flood of fresh sources cannot push out an address that
        already drew several responses while singles are there to go (docs/security.md)."""
        tracked = self._tracked
        for ip, st in islice(tracked.items(), _EVICT_SCAN):
            if not isinstance(st, list):
                del tracked[ip]
                break
        else:
            tracked.popitem(last=False)
        self._stats.evicted += 1

    def _cap_blocks(self) -> None:
        """Keep at most max_tracked block states: the soonest to end go first."""
        blocks, heap = self._blocks, self._heap
        while len(blocks) > self._max_tracked:
            if heap:
                until, ip = heapq.heappop(heap)
                blk = blocks.get(ip)
                if blk is None or blk.until != until:
                    continue
            else:  # only blocks without an end (adopted): the oldest goes
                ip = next(iter(blocks))
            del blocks[ip]
            self._stats.evicted += 1

    def _first_window(self, st: list[_Item], ts: float, limit: float) -> tuple[int, int] | None:
        """The earliest qualifying window of ``st`` that contains time ``ts``.

        Only windows ending at an event time in [ts, min(ts + window, limit)) are
        looked at: the others do not contain ``ts`` and were checked before.
        Returns the slice bounds (lo, hi) of the window's events.
        """
        window, need_count, need_ports = self._window, self._count, self._need_ports
        n = len(st)
        j = bisect_left(st, (ts,))
        while j < n:
            end = st[j][0]
            if end - ts > window or end >= limit:
                return None
            hi = j + 1
            while hi < n and st[hi][0] == end:
                hi += 1
            lo = bisect_left(st, (end - window,), 0, j)
            if hi - lo >= need_count:
                if need_ports <= 1:
                    if any(st[k][1] != _NO_PORT for k in range(lo, hi)):
                        return lo, hi
                else:
                    ports = {st[k][1] for k in range(lo, hi)}
                    ports.discard(_NO_PORT)
                    if len(ports) >= need_ports:
                        return lo, hi
            j = hi
        return None

    def _check(self, ip: str, st: list[_Item], ts: float) -> Decision | None:
        found = self._first_window(st, ts, math.inf)
        if found is None:
            return None
        lo, hi = found
        end = st[hi - 1][0]
        self._tracked.pop(ip, None)
        strike = self.offenders.offend(ip, end)
        before = self._blocks.get(ip)
        blk = _Block(end, end + strike.ttl, strike.ttl, st,
                     -math.inf if before is None else before.until)
        self._blocks[ip] = blk
        heapq.heappush(self._heap, (blk.until, ip))
        self._fresh.append(blk)
        if len(self._blocks) > self._max_tracked:
            self._cap_blocks()
        self._compact()
        self._stats.blocks += 1
        return _decision(ip, st[lo:hi], end, strike)

    def _late_evidence(self, ip: str, blk: _Block, item: _Item) -> None:
        """A response older than the block's trigger: maybe the threshold was met earlier."""
        ev = blk.evidence
        if ev is None:
            return
        insort(ev, item)
        if len(ev) > self._max_events:
            ev.pop()  # the newest matter least for an earlier trigger
        found = self._first_window(ev, item[0], blk.trigger)
        if found is None:
            return
        trigger = ev[found[1] - 1][0]
        log.debug("detect late-trigger ip=%s trigger=%.6f was=%.6f", ip, trigger, blk.trigger)
        blk.trigger = trigger
        blk.until = trigger + blk.ttl
        heapq.heappush(self._heap, (blk.until, ip))

    # -- control ------------------------------------------------------------------------

    def adopt(self, ip: str, until: float) -> None:
        """The kernel already blocks ``ip`` until ``until`` (epoch s; inf = no timeout)."""
        self._tracked.pop(ip, None)
        self._blocks[ip] = _Block(-math.inf, until, 0, None, -math.inf)
        if math.isfinite(until):
            heapq.heappush(self._heap, (until, ip))
        if len(self._blocks) > self._max_tracked:
            self._cap_blocks()

    def release(self, ip: str) -> None:
        """Forget the block state and the evidence of ``ip`` (manual unblock, expiry)."""
        blk = self._blocks.pop(ip, None)
        if blk is not None:
            blk.evidence = None
            self._compact()
        self._tracked.pop(ip, None)

    def _compact(self) -> None:
        """Drop heap and ``_fresh`` entries of block states that are gone.

        A spoofed flood whose blocks the engine refuses (safety valve) releases them by the
        thousand a second; their (until, ip) heap entries would otherwise stay for the ttl
        and their evidence for window + reorder (~880 B per source, docs/security.md).
        Rebuilt once they are more than twice the live states: amortised O(1).
        """
        blocks = self._blocks
        if len(self._heap) > 2 * len(blocks) + 1024:
            self._heap = [(b.until, ip) for ip, b in blocks.items() if math.isfinite(b.until)]
            heapq.heapify(self._heap)
        if len(self._fresh) > 2 * len(blocks) + 1024:
            held = {id(b) for b in blocks.values()}
            self._fresh = deque(b for b in self._fresh if id(b) in held and b.evidence)

    def expire(self, now: float) -> list[str]:
        """Drop block state that ended by ``now``; return those addresses.

        Also returns blocks that ended earlier in event time and were dropped
        while feeding.
        """
        ended = list(self._ended)
        self._ended.clear()
        heap, blocks = self._heap, self._blocks
        while heap and heap[0][0] <= now:
            until, ip = heapq.heappop(heap)
            blk = blocks.get(ip)
            if blk is not None and blk.until == until:
                del blocks[ip]
                ended.append(ip)
        return ended

    def blocked_until(self, ip: str) -> float | None:
        """End (event time) of the block state held for ``ip``, None if there is none.

        Block state is kept until window + reorder (event time) after the block
        ended, or until :meth:`expire` / :meth:`release` drop it.
        """
        blk = self._blocks.get(ip)
        return None if blk is None else blk.until

    # -- read-only views ----------------------------------------------------------------

    @property
    def stats(self) -> DetectorStats:
        """A copy of the counters, with the current sizes filled in."""
        return replace(self._stats, tracked=len(self._tracked), blocked=len(self._blocks))

    @property
    def newest(self) -> float:
        """The newest event time seen (-inf before the first event)."""
        return self._newest

    def snapshot(self, now: float, limit: int = 200) -> DetectorSnapshot:
        """Addresses with responses in the window ending at ``now``, closest to a block first.

        O(tracked addresses) but cheap for the many addresses seen once: only the
        most recently seen of those can make the list.
        """
        start = now - self._window
        need_count, need_ports = self._count, self._need_ports
        lim = max(0, limit)
        candidates: list[tuple[str, list[_Item] | tuple[_Item]]] = []
        singles = 0
        for ip, st in reversed(self._tracked.items()):  # most recently seen first
            if isinstance(st, list):
                candidates.append((ip, st))
            elif st[0] >= start:
                singles += 1
                if singles <= lim:
                    candidates.append((ip, (st,)))
        total = max(0, singles - lim)  # singles in the window that were not looked at
        ranked: list[tuple[tuple[float, int, float], str, list[_Item]]] = []
        for ip, evidence in candidates:
            items = [e for e in evidence if e[0] >= start]
            if not items:
                continue
            n = len(items)
            p = len({e[1] for e in items} - {_NO_PORT})
            progress = min(min(n, need_count) / need_count, min(p, need_ports) / need_ports)
            ranked.append(((progress, n + p, items[-1][0]), ip, items))
        total += len(ranked)
        top = heapq.nlargest(lim, ranked, key=lambda r: r[0])
        watching = tuple(
            _watch_entry(ip, items, now, self._window, need_count, need_ports,
                         self.offenders.strikes(ip, now))
            for _, ip, items in top
        )
        return DetectorSnapshot(
            ts=now,
            count=need_count,
            ports=need_ports,
            window=self._window,
            watching=watching,
            total=total,
            blocked=sum(1 for b in self._blocks.values() if b.until > now),
            stats=self.stats,
        )


def _watch_entry(ip: str, items: list[_Item], now: float, window: float, need_count: int,
                 need_ports: int, strikes: int) -> WatchEntry:
    ports = tuple(sorted({e[1] for e in items} - {_NO_PORT}))
    return WatchEntry(
        ip=ip,
        responses=len(items),
        ports=len(ports),
        count_needed=need_count,
        ports_needed=need_ports,
        window_left=max(0.0, items[0][0] + window - now),
        first_seen=items[0][0],
        last_seen=items[-1][0],
        kinds=tuple(sorted({str(e[2][0]) for e in items})),
        port_list=ports,
        strikes=strikes,
    )


def _decision(ip: str, window: list[_Item], ts: float, strike: Strike) -> Decision:
    ports = tuple(sorted({e[1] for e in window} - {_NO_PORT}))
    kinds = tuple(sorted({str(e[2][0]) for e in window}))
    sensors = tuple(sorted({e[2][1] for e in window} - {""}))
    first, last = window[0][0], window[-1][0]
    no_port = sum(1 for e in window if e[1] == _NO_PORT)
    reason = (
        f"{len(window)} responses to {len(ports)} port{'s' if len(ports) != 1 else ''}"
        f"{f' (+{no_port} without port)' if no_port else ''}"
        f" in {last - first:.1f}s ({', '.join(kinds)})"
    )
    if strike.strikes > 1:
        reason += f"; strike {strike.strikes}"
    return Decision(
        ts=ts,
        action="block",
        ip=ip,
        ttl=strike.ttl,
        count=len(window),
        ports=ports,
        reason=reason,
        first_seen=first,
        last_seen=last,
        strikes=strike.strikes,
        sensors=sensors,
        kinds=kinds,
        provenance="responses",
    )
