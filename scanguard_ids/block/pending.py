"""Decisions the rate valve deferred, retried best evidence first (docs/security.md).

Pure bookkeeping for the engine. Each deferred decision has a ``score`` (its responses, grown
while it waits) that only ever grows. The engine asks for the weakest (to make room when the
queue is full) and for the strongest (to retry when tokens come back); both are lazy heaps,
so a flood of refused decisions costs O(log n) each instead of a scan of the whole queue.
Ties go to the decision deferred first, as a scan of the insertion-ordered dict would.

- weakest: a min-heap of (score, seq, ip). An entry's score may be below the decision's
  (it grew since); the top is re-pushed with the current score until it is exact.
- strongest: a max-heap of (-score, seq, ip), a new entry pushed whenever a score grows;
  entries whose score or seq is no longer the decision's are skipped.
Both are rebuilt from the live decisions when stale entries outnumber them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from scanguard_ids.model import Decision


@dataclass(slots=True)
class Pending:
    """A deferred decision; ``score`` grows with the address's responses while it waits
    (they are suppressed by the detector, counted by the engine)."""

    d: Decision
    score: int
    since: float  # monotonic
    seq: int = 0


class PendingQueue:
    __slots__ = ("by_ip", "_low", "_high", "_seq")

    def __init__(self) -> None:
        #: ip -> its deferred decision, oldest first (read-only for callers)
        self.by_ip: dict[str, Pending] = {}
        self._low: list[tuple[int, int, str]] = []  # (score, seq, ip), score may lag
        self._high: list[tuple[int, int, str]] = []  # (-score, seq, ip), exact or stale
        self._seq = 0

    def __len__(self) -> int:
        return len(self.by_ip)

    def __bool__(self) -> bool:
        return bool(self.by_ip)

    def __contains__(self, ip: object) -> bool:
        return ip in self.by_ip

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_ip)

    def get(self, ip: str) -> Pending | None:
        return self.by_ip.get(ip)

    def add(self, d: Decision, score: int, since: float) -> Pending:
        """Defer ``d`` (its address must not be queued already)."""
        self._seq += 1
        seq = self._seq
        p = self.by_ip[d.ip] = Pending(d, score, since, seq)
        heapq.heappush(self._low, (score, seq, d.ip))
        heapq.heappush(self._high, (-score, seq, d.ip))
        self._bound()
        return p

    def bump(self, p: Pending, score: int) -> None:
        """Raise ``p``'s score to ``score`` (never lowers it)."""
        if score > p.score:
            p.score = score
            heapq.heappush(self._high, (-score, p.seq, p.d.ip))
            self._bound()

    def pop(self, ip: str) -> Pending | None:
        return self.by_ip.pop(ip, None)

    def weakest(self) -> str | None:
        """The address with the lowest score (the first deferred among equals)."""
        low, items = self._low, self.by_ip
        while low:
            score, seq, ip = low[0]
            p = items.get(ip)
            if p is None or p.seq != seq:
                heapq.heappop(low)
            elif p.score != score:
                heapq.heapreplace(low, (p.score, seq, ip))
            else:
                return ip
        return None

    def strongest(self) -> str | None:
        """The address with the highest score (the first deferred among equals)."""
        high, items = self._high, self.by_ip
        while high:
            neg, seq, ip = high[0]
            p = items.get(ip)
            if p is None or p.seq != seq or p.score != -neg:
                heapq.heappop(high)
            else:
                return ip
        return None

    def clear(self) -> None:
        self.by_ip.clear()
        self._low.clear()
        self._high.clear()

    def _bound(self) -> None:
        """Rebuild a heap that holds more than twice the live decisions (amortised O(1))."""
        limit = 2 * len(self.by_ip) + 64
        if len(self._low) > limit:
            self._low = [(p.score, p.seq, ip) for ip, p in self.by_ip.items()]
            heapq.heapify(self._low)
        if len(self._high) > limit:
            self._high = [(-p.score, p.seq, ip) for ip, p in self.by_ip.items()]
            heapq.heapify(self._high)
