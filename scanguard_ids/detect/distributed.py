"""The distributed-scan alarm: many remote addresses, one or two probes each, on one target.

Pure and clock-free like :mod:`scanguard_ids.detect.detector`: event time comes from the
events, ``now`` is passed in where needed.

Target: a local address (``target = "host"``, the default: a distributed scan spreads the
ports of one host over its sources) or a local endpoint (``"endpoint"``: address, protocol
and port; responses without a port have no endpoint and are skipped as ``no_port``).

Rule: a window of event time *qualifies* when the responses of one target whose timestamps
lie in ``[e - window, e]`` (``e`` the time of one of them) come from at least ``sources``
distinct remote addresses and cover at least ``ports`` distinct local ports (host targets;
port-less responses add no port). An alarm is raised at the first qualifying ``e`` and lasts
``hold`` seconds of event time (``until = e + hold``); the next one is raised at the first
qualifying ``e >= until``. So a scan that goes on re-raises its alarm every ``hold`` seconds,
and an "alarm-end" record follows each alarm once event time (or ``expire(now)``) passes
``until``. Allowlisted remote addresses are not counted.

Event order: out-of-order events are inserted in time order and every window containing one
that could qualify is re-checked (see Cost); a late event that makes an earlier window
qualify moves the alarm's trigger (and ``until``) back, as the detector moves a block.
Guarantee, for ``hold > reorder`` and
every event arriving less than ``reorder`` seconds (event time) behind the newest seen
before it: the alarms (target, trigger, until) equal those of the time-sorted stream, and
each alarm record is emitted at most ``reorder`` after the sorted stream's (property-tested
against a plain model). The proof is the detector's: a late event is at most ``reorder``
behind, so it can only move a trigger that is less than ``reorder`` old, and no event past
the moved ``until`` can have arrived yet. Events older than ``newest - window - reorder`` are
dropped as ``too_late``. The caps (``max_targets``, ``max_responses``) are load shedding and
fall outside the guarantee: a flood of spoofed sources keeps the newest ``max_responses``
responses of a target, which still qualify as long as that is at least ``sources`` (a cold
target, see Cost, over the cap keeps the latest half to arrive).

Cost: no window can qualify on a target whose responses within reach of a late event (the
last ``2 * window + reorder`` seconds) come from fewer than ``sources`` remote addresses.
Such a target is *cold*: it keeps its responses in arrival order with a superset of their
remotes, so a feed (late or not) is an append; :meth:`DistributedDetector.feed_block`, what
replay calls, inlines that. At ``sources`` remotes (counted exactly, stale ones cleared)
it turns *hot*: its responses become (ts, remote, port) tuples (a cold target keeps
references to the decoded events, so a cold feed allocates nothing), sorted, with counters
of the window ending at its newest response (a feed in order is O(1) amortised), and the
windows containing the response that turned it, or any later late one, are re-checked.
Once its alarm has ended and its remotes thinned out it goes cold again.
``bench/alarm_speed.py`` measures what the alarm costs ``scanguard replay``.

Shield (opt-in policy): while an alarm lasts, every address drawing a response on its target
(from ``window`` before the trigger to ``until``) gets a short block decision, once per
``shield_ttl``. Anyone can spoof those sources, hence off by default, short TTLs and the
allowlist still applying.
"""

from __future__ import annotations

import heapq
import logging
import math
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TypeAlias

from scanguard_ids.config.schema import AlarmConfig
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.giveback import oversized
from scanguard_ids.model import Decision, ResponseEvent

log = logging.getLogger(__name__)

#: Sources and ports listed in one alarm record (sorted, then cut).
SHOWN = 32
#: Shield blocks remembered (addresses blocked less than shield_ttl ago), at most.
_MAX_SHIELDED = 65_536
_NO_PORT = -1

# A target: a local address, or (address, proto, port) for endpoint targets.
_Key: TypeAlias = str | tuple[str, str, int]
# One response: (event ts, remote address, local port or _NO_PORT).
_Item: TypeAlias = tuple[float, str, int]
# One response of a cold target: the decoded event itself (no new object per response), or
# an item it kept from when it was hot.
_Cold: TypeAlias = ResponseEvent | _Item


def target_name(key: _Key) -> str:
    """How a target is shown: ``192.0.2.1``, ``192.0.2.1:443/tcp``, ``[2001:db8::1]:53/udp``."""
    if isinstance(key, str):
        return key
    local, proto, port = key
    host = f"[{local}]" if ":" in local else local
    return f"{host}:{port}/{proto}"


@dataclass(frozen=True, slots=True)
class Alarm:
    """One distributed-scan alarm ("alarm") or its end ("alarm-end") on one target."""

    action: str  # "alarm" | "alarm-end"
    ts: float  # the trigger (alarm) or the end (alarm-end), event time
    target: str
    sources: tuple[str, ...]  # sorted, at most SHOWN
    distinct_sources: int
    responses: int
    ports: tuple[int, ...]  # distinct local ports, sorted, at most SHOWN
    window: float
    first_seen: float
    last_seen: float
    since: float  # the trigger
    until: float  # when the alarm ends (event time)
    detect_only: bool = True  # False: the shield blocks the sources

    def to_dict(self) -> dict[str, object]:
        from scanguard_ids.timefmt import iso

        return {
            "ts": iso(self.ts),
            "action": self.action,
            "target": self.target,
            "sources": list(self.sources),
            "distinct_sources": self.distinct_sources,
            "responses": self.responses,
            "ports": list(self.ports),
            "window": self.window,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "since": iso(self.since),
            "until": iso(self.until),
            "detect_only": self.detect_only,
        }


@dataclass(slots=True)
class DistributedStats:
    """Counters since start; ``targets``/``active`` are current sizes."""

    events: int = 0
    allowlisted: int = 0
    no_port: int = 0  # endpoint targets: responses without a port
    too_late: int = 0
    evicted: int = 0  # targets dropped by the max_targets cap
    idle: int = 0  # targets dropped as idle
    alarms: int = 0
    ended: int = 0
    shield_blocks: int = 0
    targets: int = 0
    active: int = 0


@dataclass(slots=True)
class _Episode:
    """One alarm of one target while it lasts."""

    trigger: float
    until: float
    first_seen: float
    last_seen: float
    responses: int
    sources: set[str]  # capped at max_responses
    ports: set[int]
    ended: bool = False


@dataclass(slots=True)
class _Target:
    """Responses of one target: cold (``remotes`` set) or hot (``remotes`` None).

    Cold: ``cold`` in arrival order (the events themselves) and ``remotes`` the set of their
    remote addresses, fewer than ``sources``: no window can qualify, so a response is only
    appended. Hot: ``items`` time-sorted, with counters of the window ending at the newest.
    """

    items: list[_Item] = field(default_factory=list)  # hot only
    cold: list[_Cold] = field(default_factory=list)  # cold only
    remotes: set[str] | None = field(default_factory=set)  # cold only
    lo: int = 0  # hot: items[lo:] lie within window of the newest item
    srcs: dict[str, int] = field(default_factory=dict)  # hot: remote -> responses in items[lo:]
    ports: dict[int, int] = field(default_factory=dict)  # hot: port -> responses in items[lo:]
    cool_at: float = -math.inf  # hot: when (event time) to try going cold again
    alarm: _Episode | None = None  # the latest alarm
    prev_until: float = -math.inf  # until of the alarm before it


class DistributedDetector:
    """Per target: count distinct remote addresses, raise alarms. See the module docstring."""

    def __init__(self, cfg: AlarmConfig, reorder: float = 30.0,
                 allowlist: Allowlist | None = None) -> None:
        self.cfg = cfg
        self._allow = allowlist if allowlist is not None else Allowlist()
        self._known = self._allow.known  # see set_allowlist
        self._heads4 = self._allow.heads4
        self._host = cfg.target == "host"
        self._sources = cfg.sources
        self._ports = cfg.ports if self._host else 1
        self._window = float(cfg.window)
        self._hold = float(cfg.hold)
        self._late = float(cfg.window + reorder)  # older events are too late
        self._keep = float(2 * cfg.window + reorder)  # responses a late event can still use
        self._max_targets = cfg.max_targets
        self._max_items = cfg.max_responses
        self._shield = cfg.shield
        self._targets: OrderedDict[_Key, _Target] = OrderedDict()  # least recently seen first
        self._heap: list[tuple[float, int, _Key]] = []  # (until, seq, key); stale ones skipped
        self._seq = 0
        self._ended: list[Alarm] = []
        self._blocks: list[Decision] = []
        self._shielded: dict[str, float] = {}  # address -> shield block end (event time)
        self._newest = -math.inf
        self._next_idle = -math.inf
        self._idle_every = max(1.0, self._window / 2)  # event time between idle passes
        self._wake = -math.inf  # event time at which _advance has work: min(heap, next_idle)
        self._stats = DistributedStats()

    # -- the hot path -------------------------------------------------------------------

    def feed(self, ev: ResponseEvent, allowed: bool | None = None) -> Alarm | None:
        """Count one response; return an alarm when it raises one.

        ``allowed``: the caller's answer to ``ev.remote in allowlist`` (the engine looks it
        up once per event), None to look it up here."""
        stats = self._stats
        stats.events += 1
        remote = ev.remote
        if allowed is None:  # ``remote in self._allow``, inline (Detector.feed does the same)
            allowed = self._known(remote)
            if allowed is None:
                allowed = (":" in remote or remote[:remote.find(".")] in self._heads4) and \
                    self._allow.lookup(remote)
        port = ev.local_port
        targets = self._targets
        key: _Key
        if self._host:
            key = ev.local
            t = targets.get(key)
            # A remote a cold target already holds counts (it was not allowlisted then).
            if allowed and (t is None or t.remotes is None or remote not in t.remotes):
                stats.allowlisted += 1
                return None
            if port is None:
                port = _NO_PORT
        else:
            if allowed:
                stats.allowlisted += 1
                return None
            if port is None:
                stats.no_port += 1
                return None
            key = (ev.local, ev.proto, port)
            t = targets.get(key)
        ts = ev.ts
        if ts > self._newest:
            self._newest = ts
            if ts >= self._wake:
                self._advance(ts)
                t = targets.get(key)  # it may have been dropped as idle
        elif ts < self._newest - self._late:
            stats.too_late += 1
            return None
        if t is None:
            t = targets[key] = _Target()
            if len(targets) > self._max_targets:
                self._evict()
        else:
            targets.move_to_end(key)
        remotes = t.remotes
        if remotes is not None:  # cold: no window can qualify without this response
            cold = t.cold
            cold.append(ev)
            if remote not in remotes:
                remotes.add(remote)
                if len(remotes) >= self._sources:
                    return self._heat(key, t, (ts, remote, port))
            if len(cold) > self._max_items:
                self._compact(t)
            return None
        items = t.items
        item = (ts, remote, port)
        if not items or ts >= items[-1][0]:
            items.append(item)
            srcs, ports = t.srcs, t.ports
            srcs[remote] = srcs.get(remote, 0) + 1
            if port >= 0:
                ports[port] = ports.get(port, 0) + 1
            start = ts - self._window
            if items[t.lo][0] < start:
                self._slide(t, start)
            if len(items) > self._max_items:
                self._drop_oldest(t)
            ep = t.alarm
            if ep is not None and ts < ep.until:
                ep.responses += 1
                ep.last_seen = ts
                # _during adds a new source or port while its set is under the cap: a flood
                # of sources fills it once, then costs no call per response
                if self._shield or (remote not in ep.sources and
                                    len(ep.sources) < self._max_items) or (
                        port not in ep.ports and port >= 0 and len(ep.ports) < self._max_items):
                    self._during(key, ep, item)
                return None
            if len(srcs) >= self._sources and len(ports) >= self._ports:
                return self._raise(key, t, ts, t.lo, len(items))
            if ts >= t.cool_at:
                self._cool(t)
            return None
        return self._late_item(key, t, item)

    def feed_block(self, events: Sequence[ResponseEvent]
                   ) -> list[tuple[int, list[Alarm], list[Decision]]]:
        """:meth:`feed` each event in turn; what replay calls per decoded block.

        Returns ``(index, records, blocks)`` for each event that raised an alarm: the
        "alarm-end" records due before it and its "alarm", then the shield's blocks (as
        ``expire(-inf)`` and ``take_blocks()`` right after ``feed`` would). The common case,
        a host target still cold and a remote it already holds, is :meth:`feed` inlined.
        """
        out: list[tuple[int, list[Alarm], list[Decision]]] = []
        if not self._host:
            for i, ev in enumerate(events):
                self._feed_one(i, ev, out)
            return out
        targets, late, cap = self._targets, self._late, self._max_items
        get, to_end = targets.get, targets.move_to_end
        newest, wake = self._newest, self._wake
        floor = newest - late  # older is too late
        slow = 0
        last = None  # the target moved to the end last (most recently seen already)
        for i, ev in enumerate(events):
            local = ev.local
            t = get(local)
            if t is not None:
                remotes = t.remotes
                if remotes is not None:
                    remote = ev.remote
                    if remote in remotes:
                        ts = ev.ts
                        if floor <= ts < wake:  # neither too late nor _advance due
                            if ts > newest:
                                newest, floor = ts, ts - late
                            if t is not last:
                                to_end(local)
                                last = t
                            cold = t.cold
                            cold.append(ev)
                            if len(cold) > cap:
                                self._compact(t)
                            continue
            self._newest = newest
            self._feed_one(i, ev, out)  # feed() counts it
            last = None
            slow += 1
            newest, wake = self._newest, self._wake
            floor = newest - late
        self._newest = newest
        self._stats.events += len(events) - slow
        return out

    def _feed_one(self, i: int, ev: ResponseEvent,
                  out: list[tuple[int, list[Alarm], list[Decision]]]) -> None:
        alarm = self.feed(ev)
        if alarm is not None:
            out.append((i, [*self.expire(-math.inf), alarm],
                        self.take_blocks() if self._shield else []))
        elif self._shield and self._blocks:
            out.append((i, [], self.take_blocks()))

    def _heat(self, key: _Key, t: _Target, item: _Item) -> Alarm | None:
        """A cold target reached ``sources`` remotes: sort and count it, check ``item``'s
        windows (the only ones that can qualify: none did without it)."""
        items = [e if isinstance(e, tuple) else
                 (e.ts, e.remote, _NO_PORT if e.local_port is None else e.local_port)
                 for e in t.cold]
        items.sort()
        del items[:bisect_left(items, (self._newest - self._keep,))]  # no late event uses them
        if len(items) > self._max_items:
            del items[:len(items) - self._max_items]
        t.remotes = {it[1] for it in items}
        if len(t.remotes) < self._sources:
            t.cold = [*items]
            return None
        t.items, t.cold = items, []
        lo = bisect_left(items, (items[-1][0] - self._window,))
        srcs: dict[str, int] = {}
        ports: dict[int, int] = {}
        for _, remote, port in items[lo:]:
            srcs[remote] = srcs.get(remote, 0) + 1
            if port >= 0:
                ports[port] = ports.get(port, 0) + 1
        t.remotes, t.lo, t.srcs, t.ports = None, lo, srcs, ports
        t.cool_at = self._newest + self._window
        return self._recheck(key, t, item)

    def _cool(self, t: _Target) -> None:
        """A hot target without a running alarm goes cold again once fewer than ``sources``
        remotes are left among the responses a late event can still use (checked at most
        once per ``window`` of event time)."""
        t.cool_at = self._newest + self._window
        ep = t.alarm
        if len(t.srcs) >= self._sources or (ep is not None and not ep.ended):
            return
        items = t.items
        cut = bisect_left(items, (self._newest - self._keep,))
        remotes = {it[1] for it in items[cut:]}
        if len(remotes) < self._sources:
            t.cold, t.items = [*items[cut:]], []
            t.remotes, t.lo, t.srcs, t.ports = remotes, 0, {}, {}

    def _compact(self, t: _Target) -> None:
        """Cold, over the cap: keep the latest half to arrive (the newest, give or take the
        disorder). Cheap: no sort; stale responses and remotes are cleared by :meth:`_heat`."""
        del t.cold[:len(t.cold) - self._max_items // 2]

    def _slide(self, t: _Target, start: float) -> None:
        """Move the counted window's start to ``start``; forget what no late event can use."""
        items, srcs, ports = t.items, t.srcs, t.ports
        lo = t.lo
        while items[lo][0] < start:
            _, remote, port = items[lo]
            n = srcs[remote] - 1  # _dec, inline
            if n:
                srcs[remote] = n
            else:
                del srcs[remote]
            if port >= 0:
                n = ports[port] - 1
                if n:
                    ports[port] = n
                else:
                    del ports[port]
            lo += 1
        keep = self._newest - self._keep
        if lo > 16 and items[0][0] < keep:
            cut = min(lo, bisect_left(items, (keep,)))
            del items[:cut]
            lo -= cut
        t.lo = lo

    def _drop_oldest(self, t: _Target) -> None:
        """Over the cap: forget the oldest eighth at once (amortised, like a ring buffer)."""
        items = t.items
        cut = max(1, len(items) - self._max_items, self._max_items // 8)
        counted = cut - t.lo
        if counted > 0:  # some of them were counted in the window
            srcs, ports = t.srcs, t.ports
            for _, remote, port in items[t.lo:cut]:
                n = srcs[remote] - 1  # _dec, inline
                if n:
                    srcs[remote] = n
                else:
                    del srcs[remote]
                if port >= 0:
                    n = ports[port] - 1
                    if n:
                        ports[port] = n
                    else:
                        del ports[port]
        t.lo = max(0, t.lo - cut)
        del items[:cut]

    def _late_item(self, key: _Key, t: _Target, item: _Item) -> Alarm | None:
        """An event older than the target's newest: insert it, re-check its windows."""
        items = t.items
        idx = bisect_left(items, item)
        items.insert(idx, item)
        if idx >= t.lo:  # within the window of the newest: counted
            _inc(t.srcs, item[1])
            if item[2] >= 0:
                _inc(t.ports, item[2])
        else:
            t.lo += 1
        if len(items) > self._max_items:
            self._drop_oldest(t)
        return self._recheck(key, t, item)

    def _recheck(self, key: _Key, t: _Target, item: _Item) -> Alarm | None:
        """Hot, ``item`` just added out of order: the alarm's evidence, and every window
        containing it that may raise or move an alarm."""
        items = t.items
        ts = item[0]
        ep = t.alarm
        window = self._window
        if ep is not None and not ep.ended and ep.trigger - window <= ts < ep.until:
            ep.responses += 1
            ep.last_seen = max(ep.last_seen, ts)
            self._during(key, ep, item)
        if ep is not None and (ep.trigger <= ts and ts + window < ep.until):
            return None  # every window containing it lies within the alarm
        found = self._first_window(t, ts)
        if found is None:
            return None
        e, lo, hi = found
        if ep is not None and e < ep.trigger:  # the alarm started earlier than we knew
            log.debug("alarm late-trigger target=%s trigger=%.6f was=%.6f",
                      target_name(key), e, ep.trigger)
            ep.trigger, ep.until, ep.first_seen = e, e + self._hold, items[lo][0]
            self._push(ep.until, key)
            if self._shield:
                for it in items[lo:hi]:
                    self._shield_block(key, ep, it)
            return None
        return self._raise(key, t, e, lo, hi)

    def _first_window(self, t: _Target, ts: float) -> tuple[float, int, int] | None:
        """The earliest qualifying window containing ``ts`` whose end may raise or move an
        alarm: ``(end, lo, hi)`` with ``items[lo:hi]`` its responses."""
        items, window = t.items, self._window
        n = len(items)
        ep = t.alarm
        j = bisect_left(items, (ts,))
        a = bisect_left(items, (ts - window,))
        b = bisect_left(items, (math.nextafter(ts + window, math.inf),), j)
        # Every window containing ts lies within items[a:b]: too few sources or ports there,
        # and none can qualify (the common case, checked at C speed).
        if b - a < self._sources or len({it[1] for it in items[a:b]}) < self._sources:
            return None
        if self._ports > 1 and len({it[2] for it in items[a:b]} - {_NO_PORT}) < self._ports:
            return None
        srcs: dict[str, int] = {}
        ports: dict[int, int] = {}
        k = a
        while j < n:
            e = items[j][0]
            if e > ts + window:
                return None
            hi = j + 1
            while hi < n and items[hi][0] == e:
                hi += 1
            for _, remote, port in items[k:hi]:
                srcs[remote] = srcs.get(remote, 0) + 1
                if port >= 0:
                    ports[port] = ports.get(port, 0) + 1
            k = hi
            start = e - window
            while items[a][0] < start:
                _, remote, port = items[a]
                _dec(srcs, remote)
                if port >= 0:
                    _dec(ports, port)
                a += 1
            if len(srcs) >= self._sources and len(ports) >= self._ports and (
                ep is None
                or e >= ep.until
                or (not ep.ended and t.prev_until <= e < ep.trigger)
            ):
                return e, a, hi
            j = hi
        return None

    def _raise(self, key: _Key, t: _Target, e: float, lo: int, hi: int) -> Alarm:
        old = t.alarm
        if old is not None:
            if not old.ended:
                self._end(key, old)
            t.prev_until = old.until
        window = t.items[lo:hi]
        ep = _Episode(
            trigger=e,
            until=e + self._hold,
            first_seen=window[0][0],
            last_seen=e,
            responses=len(window),
            sources={it[1] for it in window},
            ports={it[2] for it in window if it[2] >= 0},
        )
        t.alarm = ep
        self._push(ep.until, key)
        self._stats.alarms += 1
        if self._shield:
            for it in window:
                self._shield_block(key, ep, it)
        alarm = self._record("alarm", key, ep, e)
        log.info("action=alarm target=%s sources=%d ports=%d responses=%d until=%.3f",
                 alarm.target, alarm.distinct_sources, len(ep.ports), ep.responses, ep.until)
        return alarm

    def _during(self, key: _Key, ep: _Episode, item: _Item) -> None:
        """A response on a target under alarm: evidence, and the shield."""
        ts, remote, port = item
        if len(ep.sources) < self._max_items:
            ep.sources.add(remote)
        if port >= 0 and len(ep.ports) < self._max_items:
            ep.ports.add(port)
        if self._shield:
            self._shield_block(key, ep, item)

    def _shield_block(self, key: _Key, ep: _Episode, item: _Item) -> None:
        ts, remote, port = item
        until = self._shielded.get(remote)
        if until is not None and ts < until:
            return
        ttl = self.cfg.shield_ttl
        if len(self._shielded) >= _MAX_SHIELDED:
            self._shielded.pop(next(iter(self._shielded)))
        self._shielded[remote] = ts + ttl
        self._stats.shield_blocks += 1
        self._blocks.append(Decision(
            ts=max(ts, ep.trigger),
            action="block",
            ip=remote,
            ttl=ttl,
            count=1,
            ports=() if port < 0 else (port,),
            reason=f"shield: distributed scan on {target_name(key)}",
            first_seen=ts,
            last_seen=ts,
        ))

    def _push(self, until: float, key: _Key) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (until, self._seq, key))
        if until < self._wake:
            self._wake = until

    def _advance(self, now: float) -> None:
        """Event time (or the clock) reached ``now``: end alarms, drop idle targets."""
        heap, targets = self._heap, self._targets
        while heap and heap[0][0] <= now:
            until, _, key = heapq.heappop(heap)
            t = targets.get(key)
            ep = t.alarm if t is not None else None
            if ep is not None and not ep.ended and ep.until == until:
                self._end(key, ep)
        if now >= self._next_idle:
            self._next_idle = now + self._idle_every
            self._drop_idle(now)
        self._wake = min(heap[0][0] if heap else math.inf, self._next_idle)

    def _drop_idle(self, now: float) -> None:
        """Drop the targets no late event can use any more (least recently seen first), and
        the shield's ended blocks."""
        targets = self._targets
        cutoff = self._newest - self._keep
        while targets:
            key = next(iter(targets))
            t = targets[key]
            ep = t.alarm
            if self._last_seen(t) >= cutoff or (ep is not None and (
                    not ep.ended or ep.until > self._newest - self._late)):
                break  # (a late event's window may end before an alarm's until: no new one)
            del targets[key]
            self._stats.idle += 1
        if len(self._shielded) > 1024:
            for ip in [ip for ip, u in self._shielded.items() if u <= now]:
                del self._shielded[ip]

    def _last_seen(self, t: _Target) -> float:
        """The newest response of a target, or (cold: arrival order) an upper bound: the last
        one to arrive plus ``late`` (none arrives more than that behind the newest)."""
        if t.remotes is None:
            return t.items[-1][0] if t.items else -math.inf
        if not t.cold:
            return -math.inf
        last = t.cold[-1]
        return (last[0] if isinstance(last, tuple) else last.ts) + self._late

    def _evict(self) -> None:
        key, t = self._targets.popitem(last=False)
        self._stats.evicted += 1
        if t.alarm is not None and not t.alarm.ended:
            self._end(key, t.alarm)

    def _end(self, key: _Key, ep: _Episode) -> None:
        ep.ended = True
        self._stats.ended += 1
        self._ended.append(self._record("alarm-end", key, ep, ep.until))
        log.info("action=alarm-end target=%s sources=%d responses=%d",
                 target_name(key), len(ep.sources), ep.responses)

    def _record(self, action: str, key: _Key, ep: _Episode, ts: float) -> Alarm:
        return Alarm(
            action=action,
            ts=ts,
            target=target_name(key),
            sources=tuple(sorted(ep.sources)[:SHOWN]),
            distinct_sources=len(ep.sources),
            responses=ep.responses,
            ports=tuple(sorted(ep.ports)[:SHOWN]),
            window=self._window,
            first_seen=ep.first_seen,
            last_seen=ep.last_seen,
            since=ep.trigger,
            until=ep.until,
            detect_only=not self._shield,
        )

    # -- control ------------------------------------------------------------------------

    def expire(self, now: float) -> list[Alarm]:
        """"alarm-end" records of alarms that ended by event time or by ``now``.

        A ``now`` ahead of event time ends alarms early (policy, outside the guarantee).
        """
        self._advance(now)
        ended, self._ended = self._ended, []
        return ended

    def compact(self) -> int:
        """Rebuild the tables a flood left far emptier than their peak (a dict never
        shrinks); returns how many were rebuilt."""
        rebuilt = 0
        if oversized(self._targets):
            self._targets = OrderedDict(self._targets)
            rebuilt += 1
        if oversized(self._shielded):
            self._shielded = dict(self._shielded)
            rebuilt += 1
        return rebuilt

    def set_allowlist(self, allowlist: Allowlist) -> None:
        """Use ``allowlist`` from the next event on (an address became ours, a reload)."""
        self._allow = allowlist
        self._known = allowlist.known
        self._heads4 = allowlist.heads4

    def take_blocks(self) -> list[Decision]:
        """Shield block decisions made since the last call (always empty with shield off)."""
        blocks, self._blocks = self._blocks, []
        return blocks

    # -- read-only views ----------------------------------------------------------------

    def active(self) -> list[Alarm]:
        """Alarms not ended yet, newest trigger first, with their evidence so far."""
        out = [self._record("alarm", key, t.alarm, t.alarm.trigger)
               for key, t in self._targets.items() if t.alarm is not None and not t.alarm.ended]
        out.sort(key=lambda a: (-a.since, a.target))
        return out

    @property
    def stats(self) -> DistributedStats:
        active = sum(1 for t in self._targets.values() if t.alarm and not t.alarm.ended)
        return replace(self._stats, targets=len(self._targets), active=active)

    @property
    def newest(self) -> float:
        return self._newest


def _inc(counts: dict, k: object) -> None:  # type: ignore[type-arg]
    counts[k] = counts.get(k, 0) + 1


def _dec(counts: dict, k: object) -> None:  # type: ignore[type-arg]
    n = counts[k] - 1
    if n:
        counts[k] = n
    else:
        del counts[k]
