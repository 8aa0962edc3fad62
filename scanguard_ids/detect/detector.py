"""The count-and-target thresholds: pure, driven by the events' own timestamps.

Rule (fast tier): block a remote once at least ``count`` responses fall within
``window`` seconds of event time (a set of responses qualifies when its newest
minus its oldest timestamp is <= ``window``) and they cover either at least
``ports`` distinct ports of one local host (a vertical scan; on a single host this
is "distinct local ports") or at least ``hosts`` distinct local hosts (a sweep:
one port across many hosts; ``detect.sweep``). The targets are local endpoints
(address, port). A response without a local port (``local_port`` None: the EVE
line carried no packet) counts toward ``count`` but adds no target.

Slow tier (``detect.slow``, :mod:`scanguard_ids.detect.slow`): the same rule with
``slow_window`` / ``slow_count`` / ``slow_ports`` / ``slow_hosts``, so a scan at
one probe per minutes still adds up; it asks more evidence than the fast tier.
The fast tier is checked first; a decision names its ``tier`` and ``rule``.
A tier or rule in "detect" mode returns decisions flagged ``detect_only``: they
consume the evidence but hold no block state and record no strike.

Groups: IPv4 evidence is counted per address; IPv6 evidence per ``prefix6``
prefix (rotating through a /64 is no evasion), except for prefixes that hold an
allowlisted address (then per address). A decision names the address when all of
its window's evidence came from that one address, else the prefix as a CIDR. A group
is held compactly (see :data:`_Item`): a short key and each response's host bits, not the
address text; the address is named in its canonical text (``model.ip_text``), which is what
the decoder, the engine and the fleet codec feed.

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
stream (the arrivals sorted by time; equal times keep their arrival order), and each
decision's ``ts`` is at most ``reorder`` after the sorted
one (property-tested against a plain reference model, both tiers), provided the
addresses of one IPv6 prefix group keep their relative order. Across them the name is
decided with what has arrived: a late response of another address of the prefix that
precedes an address block's trigger is that block's evidence (it is consumed), and if it
falls in the window that decided, the block is widened to the prefix (a decision with
``widens`` naming the address; its strike moves to the prefix). A prefix decision is never
narrowed to an address (tests/detect/test_widen.py). Events older than
``newest - window - reorder`` are dropped as ``too_late``; those between that
and ``newest - reorder`` still count, best effort. Evictions (``max_tracked``),
the evidence caps (``max_events_per_ip``, ``slow_max_events``), the slow tier's
caps and shared buckets and :meth:`Detector.expire` with a ``now`` ahead of event
time are load shedding / policy and fall outside it.

Blocking: a decision consumes the evidence; until the block ends (event time
``< ts + ttl``) the address's responses are only counted as ``suppressed``.
Afterwards a fresh scan can produce a new decision (with escalated ttl, see
:mod:`scanguard_ids.detect.offenders`).

No wall clock is read here: ``now`` is passed in where needed.
"""

from __future__ import annotations

import heapq
import ipaddress
import logging
import math
from binascii import a2b_base64, b2a_base64
from bisect import bisect_left, insort
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from operator import itemgetter
from socket import AF_INET6, inet_ntop, inet_pton
from typing import TypeAlias

from scanguard_ids.config import DetectConfig
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.offenders import Offenders, Strike
from scanguard_ids.detect.slow import SlowTier, push
from scanguard_ids.giveback import oversized
from scanguard_ids.model import Decision, ResponseEvent, decision_of

log = logging.getLogger(__name__)

#: Stored port of a response without a local port (sorts before real ports).
_NO_PORT = -1
_PORT = itemgetter(1)
_TAG = itemgetter(2)
#: Distinct tags whose tuples are shared between events.
_MAX_TAGS = 4096
#: IPv6 address -> group key entries remembered (a small cache, cleared when full: a flood
#: of distinct addresses costs the key computation, not memory per address).
_MAX_GROUPS = 1024
_ZERO10 = bytes(10)
#: Share of max_tracked: how many new addresses must have arrived after the oldest address
#: with a single response before eviction takes it ahead of the least recently seen one.
_SINGLE_AGE_SHARE = 2

# What a response was besides its time and port: (kind, sensor, local address); one shared
# tuple per value.
_Tag: TypeAlias = tuple[str, ...]
# One piece of evidence: (event ts, local port or _NO_PORT, tag), plus the remote address's
# host bits (an int: the address less its group's prefix) when it is counted in an IPv6
# prefix group; it sorts like the flat (ts, port, kind, sensor, local[, host]). An address
# seen once costs its key, this tuple, a float, the host int and (for ports above 256) an int.
_Item: TypeAlias = tuple[float, int, _Tag] | tuple[float, int, _Tag, int]
# The key evidence is tracked under is a str: the address text (IPv4, prefix6 = 128, a prefix
# holding an allowlisted address), or for an IPv6 prefix group the base64 of the prefix's
# leading ceil(prefix6 / 8) bytes, "/" and its length ("IAENuKvNEjQ=/64": 64 B against 80 B for
# "2001:db8:abcd:1234::/64"; a str, so every tracking dict keeps CPython's compact str-key
# layout). Only a group key holds "/" and it never holds ":" or "."; it turns into the CIDR
# text for a decision, a view or release/adopt (:func:`_cidr_text`, :func:`_address`); block
# state names the CIDR text, found from the key through ``Detector._group_names``.
# Tracked state of an address: its only response (compact, in Detector._singles), or a
# time-sorted list (in Detector._tracked).
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
    detected: int = 0  # decisions flagged detect_only (among blocks)
    tracked: int = 0  # addresses with evidence now
    blocked: int = 0  # addresses with block state now (see Detector.blocked_until)
    slow_tracked: int = 0  # groups with slow-tier evidence (two responses or more) now


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
        "_allow6",
        "_allow_known",
        "_allow_heads4",
        "_allow_lookup",
        "_blocks",
        "_cidr_keys",
        "_count",
        "_due",
        "_ended",
        "_fast_targets",
        "_fresh",
        "_group_names",
        "_groups",
        "_head",
        "_head1",
        "_heap",
        "_host6",
        "_late",
        "_max_events",
        "_max_late",
        "_mask6",
        "_max_tracked",
        "_need_hosts",
        "_one_target_idle",
        "_need_ports",
        "_newest",
        "_prefix6",
        "_single_age",
        "_single_items",
        "_single_keys",
        "_singles",
        "_singles_cap",
        "_slow",
        "_slow_params",
        "_stats",
        "_suffix6",
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
        self._slow: SlowTier | None = None
        self._settings(cfg, allowlist)
        # Tracked addresses in two tables: those that drew two responses or more (a list each),
        # least recently seen first (an OrderedDict: move_to_end on each response), and those
        # with a single response, in a plain dict (~53 B less an entry than an OrderedDict's:
        # what a spoofed flood's one-off sources are). A single is never refreshed (a second
        # response moves it to _tracked as a list), so its arrival order is its recency: the
        # two queues below, oldest first (key and item in parallel). A queue entry whose
        # address no longer holds that very item in _singles is stale and skipped (see
        # _evict); _trim_singles bounds them.
        self._tracked: OrderedDict[str, list[_Item]] = OrderedDict()
        self._singles: dict[str, _Item] = {}
        self._single_keys: deque[str] = deque()
        self._single_items: deque[_Item] = deque()
        self._blocks: dict[str, _Block] = {}
        # Prefix group key -> the names that hold block state for it: first the CIDR text its
        # own block state is held under (a group decision or an adopted CIDR; "" for none),
        # then its addresses holding block state of their own (an IPv6 decision names the
        # address when all its evidence came from it): a late response of another address of
        # the group may belong to that decision (see _member_late). Only prefix groups get
        # an entry. Names whose block is gone are stale: skipped, and dropped by
        # _prune_groups (one rule, _live_names) once the entries outnumber twice the blocks.
        self._group_names: dict[str, tuple[str, ...]] = {}
        self._cidr_keys: dict[str, str] = {}  # CIDR text -> group key of recent decisions
        self._heap: list[tuple[float, str]] = []  # (until, ip); stale entries skipped
        self._ended: deque[str] = deque(maxlen=max(1024, cfg.max_tracked))
        self._fresh: deque[_Block] = deque()  # blocks still holding their evidence
        self._newest = -math.inf
        # _advance has work only once its cutoff passes ``_due``: the least of the least
        # recently seen list's newest time (that group is ``_head``), the oldest single's time
        # (``_head1``), the heap's first end and the first fresh block's trigger; -inf
        # whenever one of them may have gone down.
        self._due = -math.inf
        self._head: str | None = None
        self._head1: str | None = None
        self._tags: dict[_Tag, _Tag] = {}
        self._stats = DetectorStats()

    def _settings(self, cfg: DetectConfig, allowlist: Allowlist) -> None:
        self.cfg = cfg
        self._allow = allowlist
        self._allow_known = allowlist.known
        self._allow_lookup = allowlist.lookup
        self._allow_heads4 = allowlist.heads4
        self._count = cfg.count
        self._need_ports = cfg.ports
        self._window = float(cfg.window)
        self._late = float(cfg.window + cfg.reorder)
        self._max_tracked = cfg.max_tracked
        self._single_age = max(1, cfg.max_tracked // _SINGLE_AGE_SHARE)
        self._singles_cap = 2 * cfg.max_tracked + 1024
        self._max_events = cfg.max_events_per_ip
        self._max_late = max(cfg.max_events_per_ip,
                             cfg.slow_max_events if cfg.slow != "off" else 0)
        self._need_hosts = cfg.hosts if cfg.sweep != "off" else 0
        # Distinct endpoints a fast window needs at least.
        self._fast_targets = min(max(1, cfg.ports), self._need_hosts or cfg.ports)
        # Slow tier thresholds (window, count, ports, hosts): never less than the fast tier's.
        self._slow_params = (max(float(cfg.slow_window), self._window),
                             max(cfg.slow_count, cfg.count), max(cfg.slow_ports, cfg.ports),
                             max(cfg.slow_hosts, cfg.hosts) if cfg.sweep != "off" else 0)
        _, slow_count, slow_ports, slow_hosts = self._slow_params
        # Distinct endpoints a slow window needs at least (see slow.py): the cheap pre-check.
        targets = min(slow_ports, slow_hosts) if slow_hosts else slow_ports
        # One endpoint can meet neither tier (see feed): both need two distinct targets.
        self._one_target_idle = self._fast_targets > 1 and targets > 1
        if cfg.slow == "off":
            self._slow = None
        elif self._slow is None:
            self._slow = SlowTier(cfg.slow_window, cfg.reorder, cfg.slow_max_tracked,
                                  cfg.slow_max_events, slow_count, targets)
        else:
            self._slow.settings(cfg.slow_window, cfg.reorder, cfg.slow_max_tracked,
                                cfg.slow_max_events, slow_count, targets)
        self._prefix6 = cfg.prefix6
        self._groups: dict[str, tuple[str, int | None]] = {}  # address -> (key, host bits)
        self._suffix6 = f"/{cfg.prefix6}"
        self._mask6 = ((1 << 128) - 1) ^ ((1 << (128 - cfg.prefix6)) - 1)
        self._host6 = (1 << (128 - cfg.prefix6)) - 1
        # allowlisted IPv6 networks as (first, last) integers
        self._allow6 = [(int(n.network_address), int(n.broadcast_address))
                        for n in (ipaddress.ip_network(x, strict=False)
                                  for x in allowlist.networks) if n.version == 6]

    def reconfigure(self, cfg: DetectConfig, allowlist: Allowlist) -> None:
        """Apply a reloaded config, keeping evidence, block state and offender history.

        Newly allowlisted addresses lose their evidence; caps are applied at once.
        Blocks already decided keep their end; new thresholds apply from the next event.
        """
        self._settings(cfg, allowlist)
        self.offenders.reconfigure(cfg)
        self._due = -math.inf
        tracked, singles = self._tracked, self._singles
        for table in (tracked, singles):
            for ip in [ip for ip in table if _key_text(ip) in allowlist]:
                del table[ip]  # a single's queue entry goes stale
        while len(tracked) + len(singles) > cfg.max_tracked:
            self._pop_oldest()
            self._stats.evicted += 1
        for st in tracked.values():
            if len(st) > cfg.max_events_per_ip:
                del st[: len(st) - cfg.max_events_per_ip]
        if len(self._blocks) > cfg.max_tracked:
            self._cap_blocks()
        self._ended = deque(self._ended, maxlen=max(1024, cfg.max_tracked))

    # -- the hot path -------------------------------------------------------------------

    def feed(self, ev: ResponseEvent, allowed: bool | None = None, cached: bool = True
             ) -> Decision | None:
        """Count one response; return a block decision when this one tips the balance.

        ``allowed``: the caller's answer to ``ev.remote in allowlist`` (the engine looks it
        up once per event for the alarm and for this) and ``cached``, whether the
        allowlist's cache held it; None to look it up here."""
        # The hot path, written flat: no calls for the common cases (an allowlist cache hit,
        # a known tag, an address seen before whose response is the newest it drew).
        stats = self._stats
        stats.events += 1
        ip = ev.remote
        if allowed is None:
            allowed = self._allow_known(ip)
            cached = allowed is not None
            if not cached:  # most misses: no allowlisted IPv4 network has this first octet
                allowed = (":" in ip or ip[:ip.find(".")] in self._allow_heads4) and \
                    self._allow_lookup(ip)
        if allowed:
            stats.allowlisted += 1
            return None
        ts = ev.ts
        newest = self._newest
        slow = self._slow
        if ts > newest:
            self._newest = newest = ts
            cutoff = ts - self._late
            if cutoff > self._due or (slow is not None and ts - slow.keep > slow.due):
                self._advance(cutoff)
        elif ts < newest - self._late:
            stats.too_late += 1
            return None
        key = ip
        host = None
        if ":" in ip and self._prefix6 < 128:
            key, host = self._groups.get(ip) or self._group(ip)
        blocks = self._blocks
        if blocks:
            # Block state outlives the block by window + reorder (event time), so
            # that late responses from within the block are still suppressed.
            bkey: str | None = ip
            blk = blocks.get(ip)
            if (blk is None or ts >= blk.until) and host is not None:
                # the address's own block first, then its group's (named by its CIDR), then
                # those of the group's other addresses (one lookup: _group_names)
                names = self._group_names.get(key)
                bkey = None if names is None else names[0]
                blk = blocks.get(bkey) if bkey else None  # "": the group has no block
                if names is not None and len(names) > 1 and (blk is None or ts >= blk.until):
                    late = self._member_late(key, names, host, ev)
                    if late is not None:
                        return late[0]
            if blk is not None and ts < blk.until:
                stats.suppressed += 1
                if blk.evidence is not None and blk.since <= ts < blk.trigger:
                    self._late_evidence(bkey or ip, blk, self._item(ev, host))
                return None
        port = ev.local_port
        if port is None:
            port = _NO_PORT
        local = ev.local
        tag: _Tag = (ev.kind, ev.sensor, local)
        tag = self._tags.get(tag) or self._share(tag)
        item: _Item = (ts, port, tag) if host is None else (ts, port, tag, host)
        tracked = self._tracked
        st = tracked.get(key)
        if st is not None:  # seen twice or more: a list, least recently seen first
            tracked.move_to_end(key)
            if key == self._head:
                self._due = -math.inf
            push(st, item, newest - self._late, self._max_events)
        elif (one := (singles := self._singles).get(key)) is not None:  # its second response
            del singles[key]  # its queue entry goes stale
            if key == self._head1:
                self._due = -math.inf
            st = [one, item] if one <= item else [item, one]
            tracked[key] = st
            if len(tracked) == 1:
                self._due = -math.inf
        else:  # first sight (or the first since the fast tier forgot it)
            singles[key] = item
            skeys = self._single_keys
            skeys.append(key)
            self._single_items.append(item)
            if len(skeys) > self._singles_cap:
                self._trim_singles()
            n = len(singles)
            if n == 1:
                self._due = -math.inf
            if n + len(tracked) > self._max_tracked:
                old_key, old = self._evict()
                if slow is not None and old.__class__ is not list:
                    slow.remember(old_key, old)
            if slow is not None:
                # SlowTier.first has work only for a group it holds or remembers (inline)
                okeys = slow._once_keys
                b = hash(key) & slow._mask
                if okeys[b] == key or okeys[b + 1] == key or key in slow.records:
                    rec = slow.first(key, item, newest)
                    if rec is not None:
                        return self._check(key, [item], rec, ts)
            if self._count == 1:
                return self._check(key, [item], None, ts)
            return None
        if not cached:  # seen again: worth a place in the allowlist's cache
            self._allow.cache_miss(ip)
        if slow is not None:
            rec = slow.records.get(key)
            if rec is None:
                rec = slow.add(key, item, st, newest)
                n = slow.spread
            else:  # SlowTier.add for a record it holds, inline (the repeat client's path)
                slow.records.move_to_end(key)
                if key == slow._head:
                    slow.due = -math.inf
                push(rec, item, newest - slow.keep, slow._max_events)
                spread = slow._spread[key]
                if spread.__class__ is tuple and (port < 0 or (
                        port == spread[1] and local == spread[0])):
                    # A repeat response on the one endpoint held: nothing to count.
                    if self._one_target_idle:
                        return None  # one endpoint meets neither tier's targets
                    n = 1
                else:
                    n = slow.count_spread(key, spread, item)
                if n < slow._need_targets or len(rec) < slow._need_count:
                    rec = None
            if rec is not None:
                return self._check(key, st, rec, ts)
            if n < self._fast_targets:
                return None  # too few endpoints ever held: no fast window qualifies either
        if len(st) < self._count:
            return None
        return self._check(key, st, None, ts)

    def _item(self, ev: ResponseEvent, host: int | None) -> _Item:
        """The evidence tuple of ``ev`` (as :meth:`feed` builds it inline); ``host``: the
        remote's host bits when it is counted in a prefix group, else None."""
        port = ev.local_port
        key3: _Tag = (ev.kind, ev.sensor, ev.local)
        tag = self._tags.get(key3) or self._share(key3)
        if host is None:
            return (ev.ts, _NO_PORT if port is None else port, tag)
        return (ev.ts, _NO_PORT if port is None else port, tag, host)

    def _share(self, key3: _Tag) -> _Tag:
        """The tag of (kind, sensor, local), remembered so the evidence of all events shares
        one tuple. The kind is kept as its plain text: a tuple of plain str (and so every
        evidence tuple holding it) leaves the garbage collector's lists at its first
        collection, which a flood of tracked evidence would otherwise make it walk again
        and again (a third of the cost of a spoofed flood). Equal and sorting alike."""
        kind, sensor, local = key3
        tag = (str(kind), sensor, local)
        if len(self._tags) < _MAX_TAGS:
            self._tags[key3] = tag
        return tag

    def _group(self, ip: str) -> tuple[str, int | None]:
        """(group key, host bits) of an IPv6 address: its prefix (see :data:`_Item`), or
        (the address itself, None) for a prefix holding an allowlisted address (see top)."""
        got = self._groups.get(ip)
        if got is None:
            got = (ip, None)
            try:
                packed = inet_pton(AF_INET6, ip)
            except OSError:
                packed = None
            if packed is not None:
                addr = int.from_bytes(packed, "big")
                lo = addr & self._mask6
                hi = lo | self._host6
                # integer bounds: no ipaddress objects for a sweep of fresh addresses
                for a_lo, a_hi in self._allow6:
                    if a_lo <= hi and lo <= a_hi:
                        break
                else:
                    nbytes = (self._prefix6 + 7) >> 3
                    head = packed[:nbytes] if not self._prefix6 & 7 else \
                        lo.to_bytes(16, "big")[:nbytes]
                    got = (b2a_base64(head, newline=False).decode() + self._suffix6,
                           addr & self._host6)
            if len(self._groups) >= _MAX_GROUPS:
                self._groups.clear()
            self._groups[ip] = got
        return got

    def _advance(self, cutoff: float) -> None:
        """Event time moved on: drop state no later event can use (amortised O(1)).

        :meth:`feed` calls it only when ``cutoff`` passed ``_due`` or the slow tier's due.
        Lists and singles each go from their own front (least recently seen, oldest arrival)
        up to the first still in use: no table waits for the other's front (so a single can
        go idle ahead of an older list still in use; either way only evidence older than the
        cutoff goes, which no event within the reorder guarantee can use).
        """
        tracked = self._tracked
        slow = self._slow
        idle: list[str] = []
        head, due = None, math.inf
        for ip, st in tracked.items():  # least recently seen first: stop at one still in use
            last = st[-1][0]
            if last >= cutoff:
                head, due = ip, last
                break
            idle.append(ip)
        if idle:
            for ip in idle:
                del tracked[ip]
            self._stats.idle += len(idle)
        # The singles, oldest first (arrival order): the same, on their own; stale queue
        # entries leave from the front as they come up.
        singles = self._singles
        skeys, sitems = self._single_keys, self._single_items
        gone: list[tuple[str, _Item]] = []
        head1 = None
        while skeys:
            ip, item = skeys[0], sitems[0]
            if singles.get(ip) is item:
                if item[0] >= cutoff:
                    head1 = ip
                    if item[0] < due:
                        due = item[0]
                    break
                del singles[ip]
                gone.append((ip, item))
            skeys.popleft()
            sitems.popleft()
        if gone:
            self._stats.idle += len(gone)
            if slow is not None:
                slow.remember_all(gone)
        if slow is not None:
            slow.advance(self._newest)
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
        if heap and heap[0][0] < due:
            due = heap[0][0]
        if fresh and fresh[0].trigger < due:
            due = fresh[0].trigger
        self._head, self._head1, self._due = head, head1, due

    def _evict(self) -> tuple[str, _State]:
        """Over max_tracked: the least evidence goes first. The oldest address with a single
        response is dropped once at least max_tracked / 2 newer entries are queued behind it
        (addresses that arrived after it; fewer once a trim dropped stale ones), else the
        least recently seen. Whenever more than half of the tracked addresses hold a single
        response the oldest of them qualifies, so a spoofed flood of fresh sources cannot
        push out an address that already drew several responses while singles are there to
        go (docs/security.md); a single still lives for max_tracked / 2 arrivals (or until
        it is the least recently seen, see :meth:`_pop_oldest`). Amortised O(1): each queued
        entry leaves once."""
        singles = self._singles
        self._stats.evicted += 1
        self._due = -math.inf
        skeys, sitems = self._single_keys, self._single_items
        while skeys:
            key = skeys[0]
            item = sitems[0]
            live = singles.get(key) is item
            if live and len(skeys) <= self._single_age:
                break  # the oldest single is still young
            skeys.popleft()
            sitems.popleft()
            if live:
                del singles[key]
                return key, item
        return self._pop_oldest()

    def _pop_oldest(self) -> tuple[str, _State]:
        """Drop the least recently seen tracked address: the least recently seen list or the
        oldest single, whichever has the older newest response (event time; a tie takes the
        single, which holds less). The two tables keep no common arrival order, so event time
        stands in for it (they agree for events in time order). Drops stale queue entries on
        the way."""
        singles, tracked = self._singles, self._tracked
        skeys, sitems = self._single_keys, self._single_items
        while skeys and singles.get(skeys[0]) is not sitems[0]:
            skeys.popleft()
            sitems.popleft()
        if skeys and not (tracked and next(iter(tracked.values()))[-1][0] < sitems[0][0]):
            key = skeys.popleft()
            del singles[key]
            return key, sitems.popleft()
        return tracked.popitem(last=False)

    def _trim_singles(self) -> None:
        """Drop the stale entries of the singles queues (see __init__): amortised O(1), as
        at most max_tracked + 1 of them are live and the queues may grow to twice that."""
        singles = self._singles
        live = [(k, i) for k, i in zip(self._single_keys, self._single_items, strict=True)
                if singles.get(k) is i]
        self._single_keys = deque(e[0] for e in live)
        self._single_items = deque(e[1] for e in live)

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

    def _fast_window(self, st: list[_Item], ts: float, limit: float) -> _Found | None:
        return _first_window(st, ts, limit, self._window, self._count, self._need_ports,
                             self._need_hosts)

    def _slow_window(self, st: list[_Item], ts: float, limit: float) -> _Found | None:
        window, count, ports, hosts = self._slow_params
        return _first_window(st, ts, limit, window, count, ports, hosts)

    def _check(self, key: str, st: list[_Item], rec: list[_Item] | None, ts: float
               ) -> Decision | None:
        tier, src = "fast", st
        found = self._fast_window(st, ts, math.inf) if len(st) >= self._count else None
        if found is None and rec is not None:
            tier, src = "slow", rec
            found = self._slow_window(rec, ts, math.inf)
        if found is None:
            return None
        lo, hi, rule = found
        end = src[hi - 1][0]
        window = src[lo:hi]
        if rec is None and self._slow is not None:  # not handed out: it cannot meet the slow tier
            rec = self._slow.records.get(key)
        evidence = rec if rec is not None else st  # the slow record holds all of st
        ip = _decision_ip(key, window)
        self._due = -math.inf
        self._tracked.pop(key, None)
        self._singles.pop(key, None)
        if self._slow is not None:
            self._slow.drop(key)
        cfg = self.cfg
        detect_only = (tier == "slow" and cfg.slow == "detect") or (
            rule == "hosts" and cfg.sweep == "detect")
        if detect_only:
            strikes = self.offenders.strikes(ip, end) + 1
            self._stats.detected += 1
            self._stats.blocks += 1
            return _decision(ip, window, end, Strike(strikes, self.offenders.ttl_for(strikes)),
                             tier, rule, True)
        strike = self.offenders.offend(ip, end)
        before = self._blocks.get(ip)
        blk = _Block(end, end + strike.ttl, strike.ttl, evidence,
                     -math.inf if before is None else before.until)
        self._blocks[ip] = blk
        heapq.heappush(self._heap, (blk.until, ip))
        self._fresh.append(blk)
        if ip is not key and "/" not in ip:  # an address of a prefix group (_member_late)
            held = self._group_names.get(key, ("",))
            if ip not in held:
                self._group_names[key] = held + (ip,)
            if len(self._group_names) > 2 * len(self._blocks) + 1024:
                self._prune_groups()
        blocks = self._blocks
        if len(blocks) > self._max_tracked:
            self._cap_blocks()
        if ip is not key and "/" in ip:  # a group named by its CIDR: feed finds it by key
            self._name_group(key, ip)
        limit = 2 * len(blocks) + 1024
        if len(self._heap) > limit or len(self._fresh) > limit:
            self._compact()
        self._stats.blocks += 1
        return _decision(ip, window, end, strike, tier, rule, False)

    def _late_evidence(self, ip: str, blk: _Block, item: _Item) -> None:
        """A response older than the block's trigger: maybe the threshold was met earlier."""
        ev = blk.evidence
        if ev is None:
            return
        insort(ev, item)
        if len(ev) > self._max_late:
            ev.pop()  # the newest matter least for an earlier trigger
        found = self._fast_window(ev, item[0], blk.trigger)
        trigger = math.inf if found is None else ev[found[1] - 1][0]
        if self._slow is not None:
            slow = self._slow_window(ev, item[0], min(trigger, blk.trigger))
            if slow is not None:
                trigger = min(trigger, ev[slow[1] - 1][0])
        if trigger == math.inf:
            return
        log.debug("detect late-trigger ip=%s trigger=%.6f was=%.6f", ip, trigger, blk.trigger)
        self._due = -math.inf
        blk.trigger = trigger
        blk.until = trigger + blk.ttl
        heapq.heappush(self._heap, (blk.until, ip))

    def _member_late(self, key: str, held: tuple[str, ...], host: int, ev: ResponseEvent
                     ) -> tuple[Decision | None] | None:
        """A late response of an address of prefix group ``key`` (its host bits ``host``)
        where other addresses of the group hold blocks named after them (``held``: the
        group's entry in ``_group_names``).

        In the time-sorted stream the group's evidence before a decision is that
        decision's: a response older than such a block's trigger (and newer than the block
        before it) is late evidence of that block, as a late response of the blocked
        address itself is, unless with it this address alone meets a threshold earlier
        (a decision of its own: it is tracked as any response). If it falls into the window
        that decides, that window no longer came from one address: the block is widened to
        the prefix and a decision naming the prefix is returned (``widens`` = the address),
        with the address's strike moved to the prefix. None: the response is not such
        evidence.
        """
        blocks = self._blocks
        ts = ev.ts
        owner, blk, stale = "", None, False
        for m in held[1:]:  # the earliest block whose evidence the response precedes
            b = blocks.get(m)
            if b is None:
                stale = True
            elif b.evidence is not None and b.since <= ts < b.trigger and (
                    blk is None or b.trigger < blk.trigger):
                owner, blk = m, b
        if stale:  # some of those blocks are gone: drop their names
            live = _live_names(held, blocks)
            if live is None:
                del self._group_names[key]
            else:
                self._group_names[key] = live
        if blk is None or blk.evidence is None:
            return None
        item = self._item(ev, host)
        trigger = blk.trigger
        trial = blk.evidence[:]
        insort(trial, item)
        found = self._fast_window(trial, ts, trigger)
        if found is None and self._slow is not None:
            found = self._slow_window(trial, ts, trigger)
        if found is not None and "/" not in _decision_ip(key, trial[found[0]:found[1]]):
            # With it a threshold is met before the block's trigger by this address alone:
            # in time order that is a decision of its own, so it is tracked as any response.
            return None
        self._stats.suppressed += 1
        self._late_evidence(owner, blk, item)  # may move the trigger back
        evidence = blk.evidence
        trigger = blk.trigger
        limit = math.nextafter(trigger, math.inf)  # the window that ends at the trigger
        tier, found = "fast", self._fast_window(evidence, trigger, limit)
        if found is None and self._slow is not None:
            tier, found = "slow", self._slow_window(evidence, trigger, limit)
        if found is None:
            return (None,)
        lo, hi, rule = found
        window = evidence[lo:hi]
        cidr = _decision_ip(key, window)
        if "/" not in cidr:
            return (None,)
        # Widen: the block state moves to the prefix, the offence too.
        log.info("detect widen ip=%s prefix=%s trigger=%.6f", owner, cidr, trigger)
        del blocks[owner]
        self.offenders.forgive(owner, 1)
        before = blocks.get(cidr)
        strike = self.offenders.offend(cidr, trigger)
        blk.ttl = strike.ttl
        blk.until = trigger + strike.ttl
        if before is not None:
            blk.since = max(blk.since, before.until)
        blocks[cidr] = blk
        self._name_group(key, cidr)
        self._due = -math.inf
        heapq.heappush(self._heap, (blk.until, cidr))
        self._tracked.pop(key, None)
        self._singles.pop(key, None)
        if self._slow is not None:
            self._slow.drop(key)
        self._stats.blocks += 1
        d = _decision(cidr, window, trigger, strike, tier, rule, False)
        return (replace(d, reason=f"{d.reason}; widens {owner}", widens=owner),)

    # -- control ------------------------------------------------------------------------

    def adopt(self, ip: str, until: float) -> None:
        """The kernel already blocks ``ip`` until ``until`` (epoch s; inf = no timeout)."""
        self._due = -math.inf
        key = self._key_of(ip)
        self._tracked.pop(key, None)
        self._singles.pop(key, None)
        self._blocks[ip] = _Block(-math.inf, until, 0, None, -math.inf)
        if math.isfinite(until):
            heapq.heappush(self._heap, (until, ip))
        if len(self._blocks) > self._max_tracked:
            self._cap_blocks()
        if key is not ip:
            self._name_group(key, ip)

    def release(self, ip: str) -> None:
        """Forget the block state and the evidence of ``ip`` (manual unblock, expiry)."""
        self._due = -math.inf
        blocks = self._blocks
        blk = blocks.pop(ip, None)
        if blk is not None:
            blk.evidence = None
            limit = 2 * len(blocks) + 1024
            if len(self._heap) > limit or len(self._fresh) > limit:
                self._compact()
        key = self._key_of(ip)
        self._tracked.pop(key, None)
        self._singles.pop(key, None)
        if self._slow is not None:
            self._slow.drop(key)

    def _key_of(self, ip: str) -> str:
        """The tracked key of a name: a group's key for its CIDR text, else ``ip`` itself."""
        if "/" not in ip:
            return ip
        return self._cidr_keys.get(ip) or _key_of(ip)

    def _name_group(self, key: str, cidr: str) -> None:
        """Block state for group ``key`` is now held under ``cidr`` (see __init__)."""
        names = self._group_names
        held = names.get(key)
        names[key] = (cidr,) if held is None else (cidr, *held[1:])
        if len(names) > 2 * len(self._blocks) + 1024:
            self._prune_groups()
        keys = self._cidr_keys
        if len(keys) >= _MAX_GROUPS:
            keys.clear()
        keys[cidr] = key

    def _compact(self) -> None:
        """Drop heap and ``_fresh`` entries of block states that are gone (the callers on the
        hot path test the sizes first).

        A spoofed flood whose blocks the engine refuses (safety valve) releases them by the
        thousand a second; their (until, ip) heap entries would otherwise stay for the ttl
        and their evidence for window + reorder (~880 B per source, docs/security.md).
        Rebuilt once they are more than twice the live states: amortised O(1).
        """
        blocks = self._blocks
        self._due = -math.inf
        if len(self._heap) > 2 * len(blocks) + 1024:
            self._heap = [(b.until, ip) for ip, b in blocks.items() if math.isfinite(b.until)]
            heapq.heapify(self._heap)
        if len(self._group_names) > 2 * len(blocks) + 1024:
            self._prune_groups()
        if len(self._fresh) > 2 * len(blocks) + 1024:
            held = {id(b) for b in blocks.values()}
            self._fresh = deque(b for b in self._fresh if id(b) in held and b.evidence)

    def _prune_groups(self) -> None:
        """Keep only the names of _group_names that still hold block state (amortised O(1):
        called once the groups outnumber twice the block states, each live name has one)."""
        blocks = self._blocks
        self._group_names = {k: live for k, v in self._group_names.items()
                             if (live := _live_names(v, blocks)) is not None}

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
        return replace(self._stats, tracked=len(self._tracked) + len(self._singles),
                       blocked=len(self._blocks),
                       slow_tracked=0 if self._slow is None else len(self._slow.records))

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
        for ip, st in reversed(self._tracked.items()):  # most recently seen first
            candidates.append((ip, st))
        singles = 0
        for ip, one in reversed(self._singles.items()):  # most recently seen first
            if one[0] >= start:
                singles += 1
                if singles <= lim:
                    candidates.append((ip, (one,)))
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
            for ip, items in ((_key_text(key), items) for _, key, items in top)
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


    # -- memory (the engine's housekeeping, scanguard_ids/giveback.py) -------------------

    def compact(self) -> int:
        """Rebuild the tables a flood left far emptier than their peak (a dict never
        shrinks); returns how many were rebuilt. O(1) when there is nothing to do."""
        rebuilt = 0
        if oversized(self._tracked):
            self._tracked = OrderedDict(self._tracked)
            rebuilt += 1
        if oversized(self._singles):
            self._singles = dict(self._singles)  # keeps the order
            rebuilt += 1
        if len(self._single_keys) > 2 * len(self._singles) + 1024:
            self._trim_singles()
            rebuilt += 1
        if len(self._group_names) > 2 * len(self._blocks) + 1024:
            self._prune_groups()
            rebuilt += 1
        if oversized(self._blocks):
            self._blocks = dict(self._blocks)
            rebuilt += 1
        slow = self._slow
        if slow is not None and oversized(slow.records):
            slow.records = OrderedDict(slow.records)
            rebuilt += 1
        return rebuilt


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


# (lo, hi, rule): the slice of a qualifying window and the rule it met ("ports" | "hosts").
_Found: TypeAlias = tuple[int, int, str]


def _first_window(st: list[_Item], ts: float, limit: float, window: float, need_count: int,
                  need_ports: int, need_hosts: int) -> _Found | None:
    """The earliest qualifying window of ``st`` that contains time ``ts``.

    Only windows ending at an event time in [ts, min(ts + window, limit)) are
    looked at: the others do not contain ``ts`` and were checked before.
    """
    n = len(st)
    if n <= need_count:  # only all of st can qualify (a flood's decisions: 3 of 3)
        if n < need_count:
            return None
        end = st[-1][0]
        if ts <= end < limit and end - ts <= window and st[0][0] >= end - window:
            rule = _targets(st, 0, n, need_ports, need_hosts)
            if rule:
                return 0, n, rule
        return None
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
            rule = _targets(st, lo, hi, need_ports, need_hosts)
            if rule:
                return lo, hi, rule
        j = hi
    return None


def _targets(st: list[_Item], lo: int, hi: int, need_ports: int, need_hosts: int) -> str:
    """Which target rule st[lo:hi] meets: distinct ports of one host, or distinct hosts.

    The hot path: most windows fail on the distinct ports or hosts of the whole window
    (set comprehensions); ports per host are counted only when those could succeed.
    """
    win = st[lo:hi]
    ports = set(map(_PORT, win))
    ports.discard(_NO_PORT)
    if not ports:
        return ""
    if need_ports <= 1:
        return "ports"
    if len(ports) < need_ports:
        if not need_hosts:
            return ""
        tags = list(map(_TAG, win))
        if need_hosts > 1 and tags.count(tags[0]) == len(tags):
            return ""  # one tag, so one host (count() compares shared tags by identity)
    if len(ports) >= need_ports and len(set(map(_TAG, win))) == 1:
        return "ports"  # one tag, so one host (a flood's windows: no per-host count)
    hosts = {e[2][2] for e in win if e[1] != _NO_PORT}
    if len(ports) >= need_ports:
        if len(hosts) == 1:
            return "ports"
        seen: dict[str, set[int]] = {}
        for e in win:
            port = e[1]
            if port == _NO_PORT:
                continue
            host = e[2][2]
            per_host = seen.get(host)
            if per_host is None:
                seen[host] = {port}
            else:
                per_host.add(port)
                if len(per_host) >= need_ports:
                    return "ports"
    if need_hosts and len(hosts) >= need_hosts:
        return "hosts"
    return ""


def _decision_ip(key: str, window: list[_Item]) -> str:
    """The address when one address drew all of ``window``, else the group's prefix."""
    if "/" not in key:
        return key
    hosts = {e[3] if len(e) > 3 else None for e in window}  # 3-tuples: from before a reload
    host = hosts.pop()
    if host is None or hosts:
        return _cidr_text(key)
    return _address(key, host)


def _key_text(key: str) -> str:
    """What a tracked key names: the address, or the group's CIDR."""
    return key if "/" not in key else _cidr_text(key)


def _live_names(held: tuple[str, ...], blocks: dict[str, _Block]) -> tuple[str, ...] | None:
    """A ``Detector._group_names`` entry less the names whose block state is gone (the CIDR
    turns into ""): ``held`` itself when all hold it, None when none does."""
    cidr = held[0]
    if cidr and cidr not in blocks:
        cidr = ""
    members = [m for m in held[1:] if m in blocks]
    if not cidr and not members:
        return None
    if cidr == held[0] and len(members) == len(held) - 1:
        return held
    return (cidr, *members)


def _key_of(ip: str) -> str:
    """The tracked key a name stands for: the group key for a group's CIDR (as
    :func:`_cidr_text` writes it), else the text itself."""
    if "/" not in ip or ":" not in ip:
        return ip
    try:
        net = ipaddress.IPv6Network(ip)
    except ValueError:
        return ip
    p = net.prefixlen
    packed = net.network_address.packed[:(p + 7) >> 3]
    key = f"{b2a_base64(packed, newline=False).decode()}/{p}"
    return key if p < 128 and _cidr_text(key) == ip else ip


def _network(key: str) -> tuple[bytes, int]:
    """(packed network address, prefix length) of a group key (see :data:`_Item`)."""
    net, _, length = key.rpartition("/")
    return a2b_base64(net).ljust(16, b"\0"), int(length)


def _cidr_text(key: str) -> str:
    """A group key as the CIDR ``ipaddress`` writes (tests/detect/test_groups.py)."""
    net, length = _network(key)
    if net.startswith(_ZERO10):  # first 80 bits zero: inet_ntop would write a dotted quad
        return str(ipaddress.IPv6Network((net, length)))
    return f"{inet_ntop(AF_INET6, net)}/{length}"


def _address(key: str, host: int) -> str:
    """The text of the address ``host`` in group ``key``: as the decoder and the fleet codec
    write a remote (model.ip_text), the text the detector was fed."""
    packed = (int.from_bytes(_network(key)[0], "big") | host).to_bytes(16, "big")
    if packed.startswith(_ZERO10):
        return str(ipaddress.IPv6Address(packed))
    return inet_ntop(AF_INET6, packed)


_MAX_REASONS = 1024
_REASONS: dict[tuple[object, ...], str] = {}  # _decision's texts by what they say


def _decision(ip: str, window: list[_Item], ts: float, strike: Strike, tier: str, rule: str,
              detect_only: bool) -> Decision:
    # A flood's decisions are mostly refused by the engine's valve: the fields come from the
    # sets of shared tags and ports (one tag, as a rule) rather than one pass per field.
    port_set = set(map(_PORT, window))
    no_port = 0
    if _NO_PORT in port_set:
        port_set.discard(_NO_PORT)
        no_port = sum(1 for e in window if e[1] == _NO_PORT)
    ports = tuple(sorted(port_set))
    tags = set(map(_TAG, window))
    if len(tags) == 1:
        kind, sensor, local = tags.pop()
        hosts: tuple[str, ...] = (local,) if ports else ()
        kinds: tuple[str, ...] = (str(kind),)
        sensors: tuple[str, ...] = () if sensor == "" else (sensor,)
    else:
        hosts = tuple(sorted({e[2][2] for e in window if e[1] != _NO_PORT}))
        kinds = tuple(sorted({str(t[0]) for t in tags}))
        sensors = tuple(sorted({t[1] for t in tags} - {""}))
    first, last = window[0][0], window[-1][0]
    n_ports = len(ports)
    # the text of a reason, remembered: a flood's decisions share a handful of them
    said = (len(window), n_ports, no_port, len(hosts), last - first, kinds, tier, detect_only,
            strike.strikes)
    reason = _REASONS.get(said)
    if reason is None:
        reason = (
            f"{len(window)} responses to {n_ports} port{'' if n_ports == 1 else 's'}"
            f"{f' (+{no_port} without port)' if no_port else ''}"
            f"{f' on {len(hosts)} hosts' if len(hosts) > 1 else ''}"
            f" in {last - first:.1f}s ({kinds[0] if len(kinds) == 1 else ', '.join(kinds)})"
        )
        if tier == "slow":
            reason += "; slow tier"
        if detect_only:
            reason += "; detect only"
        if strike.strikes > 1:
            reason += f"; strike {strike.strikes}"
        if len(_REASONS) >= _MAX_REASONS:
            _REASONS.clear()
        _REASONS[said] = reason
    # Positional, through model.decision_of: a frozen dataclass's own __init__ was most of a
    # refused flood decision (the field order is model.Decision's;
    # tests/detect/test_flood_paths.py compares with the keyword form).
    return decision_of(ts, "block", ip, strike.ttl, len(window), ports, reason, first, last,
                    strike.strikes, sensors, False, kinds, "", hosts, tier, rule, detect_only,
                    "responses")
