"""One response counts once, however many outputs or sensors report it.

Suricata writes the same alert once per ``eve-log`` output (a file *and* a socket, two
outputs), and in fleet mode two sensors (edge and host) see the same packet. ``flow_id``
differs across sensors, so the key is the response itself: (kind, remote, local, local port)
plus its packet timestamp. Two reports of one packet share the timestamp exactly on one
sensor and within ``tolerance`` seconds across sensors with synchronised clocks; a second
response to the same endpoint within ``tolerance`` is, in practice, a retransmitted probe, and
counting it once changes no distinct-target figure.

Pure and bounded: at most ``max_keys`` keys, each forgotten ``max(tolerance, keep)`` (event time)
after the newest event, oldest first. ``keep`` (fleet mode) remembers responses longer than the
tolerance, so another sensor's copy that arrives after newer events still counts once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from scanguard_ids.giveback import oversized
from scanguard_ids.model import ResponseEvent

_Key = tuple[str, str, str, int | None]


class Deduper:
    __slots__ = ("_horizon", "_last", "_max", "_newest", "_tol", "duplicates")

    def __init__(self, tolerance: float = 0.05, max_keys: int = 65_536,
                 keep: float = 0.0) -> None:
        self._tol = tolerance
        self._horizon = max(tolerance, keep)
        self._max = max_keys
        self._last: OrderedDict[_Key, float] = OrderedDict()  # key -> ts, oldest insert first
        self._newest = float("-inf")
        self.duplicates = 0

    def seen(self, ev: ResponseEvent) -> bool:
        """True when ``ev`` repeats a response already counted (then count it as duplicate)."""
        ts = ev.ts
        key = (ev.kind, ev.remote, ev.local, ev.local_port)
        last = self._last
        prev = last.get(key)
        if prev is not None and abs(ts - prev) <= self._tol:
            self.duplicates += 1
            return True
        if ts > self._newest:
            self._newest = ts
            cutoff = ts - self._horizon
            while last:
                oldest = next(iter(last.values()))
                if oldest >= cutoff:
                    break
                last.popitem(last=False)
        last[key] = ts
        last.move_to_end(key)
        if len(last) > self._max:
            last.popitem(last=False)
        return False

    def fresh(self, events: Iterable[ResponseEvent]) -> list[ResponseEvent]:
        """The events :meth:`seen` would not call repeats, in order (what the engine calls
        per batch: the same result as ``seen`` one by one, without a call per event)."""
        out: list[ResponseEvent] = []
        keep = out.append
        last = self._last
        get, pop_oldest, to_end = last.get, last.popitem, last.move_to_end
        tol, horizon, cap = self._tol, self._horizon, self._max
        newest = self._newest
        dups = 0
        for ev in events:
            ts = ev.ts
            key = (ev.kind, ev.remote, ev.local, ev.local_port)
            prev = get(key)
            if prev is not None and abs(ts - prev) <= tol:
                dups += 1
                continue
            if ts > newest:
                newest = ts
                cutoff = ts - horizon
                # the expired prefix, oldest insert first, counted in one walk, then dropped
                gone = 0
                for seen_ts in last.values():
                    if seen_ts >= cutoff:
                        break
                    gone += 1
                for _ in range(gone):
                    pop_oldest(False)
            last[key] = ts
            if prev is not None:
                to_end(key)  # a new key is inserted last already (and only it adds one)
            elif len(last) > cap:
                pop_oldest(False)
            keep(ev)
        self._newest = newest
        self.duplicates += dups
        return out

    def compact(self) -> int:
        """Rebuild the key table when a flood left it far emptier than its peak (a dict never
        shrinks); returns 1 if it was rebuilt."""
        if not oversized(self._last):
            return 0
        self._last = OrderedDict(self._last)
        return 1

    @property
    def tolerance(self) -> float:
        return self._tol

    @property
    def keep(self) -> float:
        return self._horizon

    def __len__(self) -> int:
        return len(self._last)
