from __future__ import annotations

from scanguard_ids.block.eviction import EvictionQueue


def test_weakest_evidence_goes_first_and_stale_entries_are_skipped() -> None:
    q = EvictionQueue()
    active = {"a", "b", "c"}
    q.add("a", strikes=2, ports=5, responses=9, expires=100.0, active=3)
    q.add("b", strikes=1, ports=9, responses=9, expires=100.0, active=3)
    q.add("c", strikes=1, ports=2, responses=3, expires=50.0, active=3)
    assert q.victim(active) == "c"
    q.add("c", strikes=3, ports=2, responses=3, expires=50.0, active=3)  # re-offended
    assert q.victim(active) == "b"
    q.discard("b")  # unblocked by an operator
    assert q.victim(active) == "a"  # strikes 2 < 3
    assert q.victim(set()) is None  # nothing held any more


def test_heap_is_bounded_by_the_blocks_held() -> None:
    q = EvictionQueue()
    for i in range(10_000):
        q.add("x", strikes=i, ports=1, responses=1, expires=1.0, active=1)
    assert len(q._heap) <= 2 * 1 + 1024 + 1
