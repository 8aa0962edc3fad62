"""Slow-tier evidence: what a group drew over hours, bounded so a flood cannot flush it.

The fast tier (:mod:`scanguard_ids.detect.detector`) forgets a group ``window + reorder``
seconds after its last response. The slow tier keeps evidence for ``slow_window`` so a
low-and-slow scan (``nmap -T0``: one probe per 300 s) adds up. It holds two things:

- ``records``: groups that drew two responses or more, their evidence (the same items as the
  fast tier, time-sorted, at most ``slow_max_events``). At most ``slow_max_tracked`` of them;
  beyond that the records with the *least* evidence go first (fewest responses, then the
  longest idle), so one-off sources never push out a slow scanner's record.
- ``once``: groups seen once whose fast-tier state ended (idle or evicted), in a fixed table
  of two-way buckets (a power of two >= 2 * slow_max_tracked slots). A one-off source costs
  nothing beyond its fast-tier state while that lives, and the table's size afterwards; when
  two groups share a bucket the older entry is replaced (load shedding, like the caps).

Each record also keeps its *spread*: distinct (host, port) endpoints it has held since it was
made, up to ``need_targets`` of them (what it holds now has no more). A slow window needs that many
(``slow_ports`` ports of one host or ``slow_hosts`` hosts), so :meth:`SlowTier.add` hands a record
out for checking only when it holds ``need_count`` responses and that many endpoints: a client
refused again and again on one endpoint costs an insert, not a window scan.
The spread also covers every endpoint the fast tier holds for the group (a record is made from
the fast state and then fed each of its responses), so :attr:`SlowTier.spread` after an
:meth:`~SlowTier.add` with the fast state a list tells the detector when no fast window can
meet its targets either: the fast check is skipped.

Idle records (newest response older than ``newest - slow_window - reorder``) are dropped
incrementally. Pure: no clock, times are the events' own.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict
from itertools import compress, repeat
from operator import itemgetter, le
from typing import Any, TypeAlias

#: Share of the records dropped at once when the cap is hit (amortises the sort).
_EVICT_SHARE = 8
_LAST = itemgetter(-1)
_TIME = itemgetter(0)


# Endpoints a record has held: none yet, exactly one (a tuple: ~150 B less than a set), more.
_Spread: TypeAlias = tuple[str, int] | set[tuple[str, int]] | None


def push(evidence: list[Any], item: Any, cutoff: float, cap: int) -> None:
    """Insert ``item`` into time-sorted ``evidence`` (an append when in order), drop what is
    older than ``cutoff``, and the oldest beyond ``cap``: both tiers' evidence lists."""
    if item >= evidence[-1]:  # in order: where insort would put it
        evidence.append(item)
    else:
        insort(evidence, item)
    while evidence[0][0] < cutoff:
        del evidence[0]
    if len(evidence) > cap:
        del evidence[0]


def _size(spread: _Spread) -> int:
    return 0 if spread is None else 1 if isinstance(spread, tuple) else len(spread)


class SlowTier:
    """Long-window evidence per group key. See the module docstring."""

    __slots__ = ("_head", "_mask", "_max_events", "_max_tracked", "_need_count", "_need_targets",
                 "_once_items", "_once_keys", "_spread", "due", "evicted", "idle", "keep",
                 "records", "spread")

    def __init__(self, slow_window: float, reorder: float, max_tracked: int,
                 max_events: int, need_count: int = 2, need_targets: int = 1) -> None:
        self.records: OrderedDict[str, list[Any]] = OrderedDict()  # least recently fed first
        # key -> (host, port) endpoints ever held: None (none yet), the one endpoint, or a set
        self._spread: dict[str, _Spread] = {}
        slots = 2
        while slots < 2 * max_tracked:
            slots *= 2
        self._once_keys: list[str | None] = [None] * slots
        self._once_items: list[Any] = [None] * slots
        self._mask = slots - 2  # bucket = two adjacent slots
        self.evicted = 0
        self.idle = 0
        self.spread = 0  # endpoints of the record :meth:`add` last counted into (capped)
        # :meth:`advance` has work only once ``newest - keep > due``: ``due`` is the newest
        # time of the least recently fed record (``_head``), -inf when that may have changed.
        self.due = -math.inf
        self._head: str | None = None
        self._need_targets = 0
        self.settings(slow_window, reorder, max_tracked, max_events, need_count, need_targets)

    def settings(self, slow_window: float, reorder: float, max_tracked: int,
                 max_events: int, need_count: int = 2, need_targets: int = 1) -> None:
        self._need_count = need_count
        if need_targets > self._need_targets:
            # A spread that reached the old cap may hold more endpoints than it lists:
            # assume the new cap (never claim fewer endpoints than a record has held).
            old = self._need_targets
            for key, spread in self._spread.items():
                if _size(spread) >= old:
                    self._spread[key] = {("", -2 - i) for i in range(need_targets)}
        self._need_targets = need_targets
        self.keep = float(slow_window + reorder)
        self.due = -math.inf
        self._max_tracked = max_tracked
        self._max_events = max_events
        if len(self.records) > max_tracked:
            self._evict()
        for rec in self.records.values():
            if len(rec) > max_events:
                del rec[: len(rec) - max_events]

    def add(self, key: str, item: Any, fast: Any, newest: float, once: Any = None
            ) -> list[Any] | None:
        """Count ``item`` of group ``key``; ``fast`` is the fast tier's state after it.

        Returns the group's slow evidence (time-sorted, includes ``item``) when it may meet
        the slow thresholds (enough responses and endpoints, see top), else None.
        ``once``: the group's remembered single response, already taken (see :meth:`first`).
        """
        records = self.records
        rec = records.get(key)
        if rec is not None:
            records.move_to_end(key)
            if key == self._head:
                self.due = -math.inf
            push(rec, item, newest - self.keep, self._max_events)
            n = self.count_spread(key, self._spread[key], item)
        else:
            if isinstance(fast, list):  # its second response while the fast tier holds it
                rec = fast[-self._max_events:]
                held = fast  # every endpoint the fast tier holds counts (see spread)
            else:
                old = once if once is not None else self._take_once(key, newest)
                if old is None:
                    return None
                rec = held = [old, item] if old <= item else [item, old]
            records[key] = rec
            if len(records) == 1:
                self.due = -math.inf
            ends = {(e[2][2], e[1]) for e in held if e[1] >= 0}
            n = len(ends)
            self._spread[key] = ends if n > 1 else ends.pop() if n else None
            if len(records) > self._max_tracked:
                self._evict()
        self.spread = n
        if len(rec) < self._need_count or n < self._need_targets:
            return None
        return rec

    def count_spread(self, key: str, spread: _Spread, item: Any) -> int:
        """Count the endpoint of ``item`` into the record's spread; its size (capped)."""
        port = item[1]
        if isinstance(spread, tuple):  # one endpoint: a repeat response costs a compare
            if port >= 0 and (port != spread[1] or item[2][2] != spread[0]) and \
                    self._need_targets > 1:
                self._spread[key] = {spread, (item[2][2], port)}
                return 2
            return 1
        if spread is None:
            if port >= 0 and self._need_targets > 0:
                self._spread[key] = (item[2][2], port)
                return 1
            return 0
        n = len(spread)
        if n < self._need_targets and port >= 0:
            spread.add((item[2][2], port))
            n = len(spread)
        return n

    def remember(self, key: str, item: Any) -> None:
        """The fast tier dropped ``key`` holding its single response ``item``."""
        if key in self.records:
            return
        keys, items = self._once_keys, self._once_items
        b = hash(key) & self._mask
        if keys[b] is not None and keys[b] != key and (
                keys[b + 1] is None or keys[b + 1] == key or items[b + 1][0] < items[b][0]):
            b += 1  # the free or same slot, or else the older entry
        keys[b] = key
        items[b] = item

    def remember_all(self, dropped: list[tuple[str, Any]]) -> None:
        """:meth:`remember` each (key, state) in order; states that are lists are skipped."""
        records, keys, items, mask = self.records, self._once_keys, self._once_items, self._mask
        for key, item in dropped:
            if item.__class__ is list or key in records:
                continue
            b = hash(key) & mask
            held = keys[b]
            if held is not None and held != key and (
                    keys[b + 1] is None or keys[b + 1] == key or items[b + 1][0] < items[b][0]):
                b += 1  # as in remember()
            keys[b] = key
            items[b] = item

    def first(self, key: str, item: Any, newest: float) -> list[Any] | None:
        """:meth:`add` for a group the fast tier does not hold (``fast`` is ``item``)."""
        if key in self.records:
            return self.add(key, item, item, newest)
        keys = self._once_keys
        b = hash(key) & self._mask
        if keys[b] != key:
            b += 1
            if keys[b] != key:
                return None  # the common first sight: no record, nothing remembered
        old = self._once_items[b]
        keys[b] = self._once_items[b] = None
        if old[0] < newest - self.keep:
            return None
        return self.add(key, item, item, newest, old)

    def _take_once(self, key: str, newest: float) -> Any:
        keys = self._once_keys
        b = hash(key) & self._mask
        for i in (b, b + 1):
            if keys[i] == key:
                item = self._once_items[i]
                keys[i] = self._once_items[i] = None
                return item if item[0] >= newest - self.keep else None
        return None

    def drop(self, key: str) -> None:
        """A decision consumed the group's evidence (or it was released)."""
        if self.records.pop(key, None) is not None:
            self.due = -math.inf
        self._spread.pop(key, None)
        keys = self._once_keys
        b = hash(key) & self._mask
        if keys[b] == key:
            keys[b] = self._once_items[b] = None
        b += 1
        if keys[b] == key:
            keys[b] = self._once_items[b] = None

    def advance(self, newest: float) -> None:
        """Event time moved on: drop records no later event can use (amortised O(1))."""
        records = self.records
        cutoff = newest - self.keep
        idle = []
        head, due = None, math.inf
        for key, rec in records.items():
            if rec[-1][0] >= cutoff:
                head, due = key, rec[-1][0]
                break
            idle.append(key)
        for key in idle:
            del records[key]
            del self._spread[key]
        self.idle += len(idle)
        self._head, self.due = head, due

    def _evict(self) -> None:
        """Over the cap: drop the records with the least evidence (fewest, then idlest)."""
        records = self.records
        self.due = -math.inf
        excess = len(records) - self._max_tracked
        n = max(excess, min(len(records) // _EVICT_SHARE, len(records) - 1), 1)
        for k in _least(records, n):
            del records[k]
            del self._spread[k]
        self.evicted += n


def _least(records: OrderedDict[str, list[Any]], n: int) -> list[str]:
    """The first ``n`` (1 <= n <= len) keys of ``sorted(records, key=lambda k:
    (len(records[k]), records[k][-1][0]))`` (stable), in no particular order: selected by
    threshold in C-level passes instead of a Python key call per record (a flood of
    two-response sources makes the slow tier evict a share of its records again and again).
    The passes read the dict in its storage order (a sequential walk; the OrderedDict's own
    order costs a lookup per record); only ties at the threshold need that order."""
    keys = list(dict.keys(records))
    recs = list(dict.values(records))
    lens = list(map(len, recs))
    times = list(map(_TIME, map(_LAST, recs)))
    by_len = sorted(lens)
    cut = by_len[n - 1]  # the length of the last victim: all shorter records go
    need = n - bisect_left(by_len, cut)  # and this many of that length, oldest first
    tied = sorted([t for t, ln in zip(times, lens, strict=True) if ln == cut])
    thr = tied[need - 1]  # the newest time of a victim of length cut
    at_thr = need - bisect_left(tied, thr)  # those of length cut at thr: the first ones go
    if bisect_right(tied, thr) - bisect_left(tied, thr) == at_thr:
        if by_len[0] == cut == by_len[-1]:  # one length (a flood's: two responses each)
            return list(compress(keys, map(le, times, repeat(thr))))  # no Python-level loop
        return [k for k, ln, t in zip(keys, lens, times, strict=True)
                if ln < cut or (ln == cut and t <= thr)]
    victims = [k for k, ln, t in zip(keys, lens, times, strict=True)
               if ln < cut or (ln == cut and t < thr)]
    last = {k for k, ln, t in zip(keys, lens, times, strict=True) if ln == cut and t == thr}
    for k in records:  # least recently fed first: the stable sort's order among equals
        if k in last:
            victims.append(k)
            at_thr -= 1
            if not at_thr:
                break
    return victims
