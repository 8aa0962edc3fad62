from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scanguard_ids.detect.dedup import Deduper
from scanguard_ids.model import Kind, ResponseEvent


def ev(ts: float, port: int = 22, remote: str = "203.0.113.9",
       local: str = "192.0.2.1") -> ResponseEvent:
    return ResponseEvent(ts, remote, local, port, "tcp", Kind.TCP_RST)


def test_same_packet_twice_counts_once_and_others_pass() -> None:
    d = Deduper(tolerance=0.05)
    assert not d.seen(ev(10.0))
    assert d.seen(ev(10.0))  # the same alert through a second output
    assert d.seen(ev(10.03))  # the same packet seen by another sensor, clocks 30 ms apart
    assert not d.seen(ev(10.0, port=23))  # another endpoint
    assert not d.seen(ev(10.0, local="192.0.2.2"))
    assert not d.seen(ev(10.0, remote="203.0.113.10"))
    assert not d.seen(ev(11.0))  # a later probe of the same port is a new response
    assert d.duplicates == 2


def test_zero_tolerance_needs_identical_timestamps() -> None:
    d = Deduper(tolerance=0.0)
    assert not d.seen(ev(1.0)) and d.seen(ev(1.0)) and not d.seen(ev(1.000001))


def test_bounded_by_count_and_time() -> None:
    d = Deduper(tolerance=0.05, max_keys=100)
    for i in range(1000):
        d.seen(ev(1.0, port=i))
    assert len(d) == 100
    d.seen(ev(5.0, port=1))
    assert len(d) == 1  # everything older than newest - tolerance is forgotten


@given(st.lists(st.tuples(st.integers(0, 200), st.integers(20, 25)), max_size=60))
def test_a_stream_delivered_twice_counts_like_once(items: list[tuple[int, int]]) -> None:
    events = [ev(t / 10, port=p) for t, p in sorted(items)]
    once, twice = Deduper(), Deduper()
    kept_once = [e for e in events if not once.seen(e)]
    kept_twice = [e for e in events for _ in (0, 1) if not twice.seen(e)]
    assert kept_once == kept_twice
