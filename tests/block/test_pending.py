"""The deferred-decision queue picks what a scan of the dict would (lowest / highest score,
the first deferred among equals), whatever the order of adds, bumps and pops."""

from __future__ import annotations

import random

from scanguard_ids.block.pending import PendingQueue
from scanguard_ids.model import Decision


def _d(ip: str, count: int) -> Decision:
    return Decision(ts=0.0, action="block", ip=ip, count=count)


def test_weakest_and_strongest_match_a_scan_of_the_dict() -> None:
    rng = random.Random(7)
    for _ in range(40):
        q = PendingQueue()
        ref: dict[str, int] = {}  # ip -> score, insertion ordered like the engine's old dict
        for _ in range(600):
            op = rng.random()
            ip = f"198.51.100.{rng.randrange(40)}"
            if op < 0.4 and ip not in ref:
                score = rng.randrange(1, 6)
                q.add(_d(ip, score), score, 0.0)
                ref[ip] = score
            elif op < 0.7 and ip in ref:
                p = q.get(ip)
                assert p is not None
                new = p.score + rng.randrange(0, 3)
                q.bump(p, new)
                ref[ip] = max(ref[ip], new)
            elif op < 0.85:
                assert (q.pop(ip) is not None) == (ref.pop(ip, None) is not None)
            else:
                best = q.strongest()
                if ref:
                    assert best == max(ref, key=lambda k: ref[k])
                    del ref[best]
                    q.pop(best)
                else:
                    assert best is None
            assert len(q) == len(ref) and list(q) == list(ref)
            if ref:
                assert q.weakest() == min(ref, key=lambda k: ref[k])
                assert q.strongest() == max(ref, key=lambda k: ref[k])
            else:
                assert q.weakest() is None and q.strongest() is None


def test_heaps_stay_bounded_by_the_live_decisions() -> None:
    q = PendingQueue()
    for i in range(5000):
        p = q.add(_d(f"10.0.{i // 256}.{i % 256}", 1), 1, 0.0)
        for s in range(2, 6):
            q.bump(p, s)
        if i >= 10:
            q.pop(f"10.0.{(i - 10) // 256}.{(i - 10) % 256}")
    assert len(q) == 10
    assert len(q._low) <= 2 * len(q) + 64 + 1 and len(q._high) <= 2 * len(q) + 64 + 1
