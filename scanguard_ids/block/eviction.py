"""Which automatic block a full set gives up first (docs/security.md "Valves under attack").

Pure bookkeeping beside the engine's view of the kernel: every automatic block is a
candidate ranked by its evidence, weakest first: fewest strikes, then fewest ports, then
fewest responses, then soonest to end. Manual blocks are never candidates. A lazy heap:
re-ranking an address pushes a new entry and the old one is skipped when it surfaces.
"""

from __future__ import annotations

import heapq
from collections.abc import Container

_Entry = tuple[int, int, int, float, int, str]  # strikes, ports, responses, expires, seq, ip


class EvictionQueue:
    __slots__ = ("_heap", "_live", "_seq")

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._live: dict[str, int] = {}  # ip -> seq of its current entry
        self._seq = 0

    def add(self, ip: str, strikes: int, ports: int, responses: int, expires: float,
            active: int) -> None:
        """Rank ``ip`` (an automatic block). ``active``: blocks held now (bounds the heap)."""
        self._seq += 1
        self._live[ip] = self._seq
        heapq.heappush(self._heap, (strikes, ports, responses, expires, self._seq, ip))
        if len(self._heap) > 2 * active + 1024:
            live = self._live
            self._heap = [e for e in self._heap if live.get(e[5]) == e[4]]
            heapq.heapify(self._heap)

    def discard(self, ip: str) -> None:
        """``ip`` is no candidate any more (unblocked, manual, evicted, failed to evict)."""
        self._live.pop(ip, None)

    def victim(self, active: Container[str]) -> str | None:
        """The weakest candidate still in ``active``, None if there is none."""
        heap, live = self._heap, self._live
        while heap:
            _, _, _, _, seq, ip = heap[0]
            if live.get(ip) == seq and ip in active:
                return ip
            heapq.heappop(heap)
        return None
