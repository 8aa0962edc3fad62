from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanguard_ids.block.ratelimit import Refusal, SafetyValve, TokenBucket
from scanguard_ids.clock import FixedClock
from scanguard_ids.config import BlockConfig


def test_bucket_starts_full_and_refills() -> None:
    b = TokenBucket(rate=2, burst=2)
    assert b.take(0) and b.take(0) and not b.take(0)
    assert not b.take(0.4)  # 0.8 tokens
    assert b.take(0.5)  # 1.0
    assert b.take(10) and b.take(10) and not b.take(10)  # capped at burst


def test_bucket_ignores_time_going_back() -> None:
    b = TokenBucket(rate=1, burst=1)
    assert b.take(5)
    assert not b.take(4)
    assert b.take(6)


@given(st.lists(st.floats(min_value=0, max_value=0.5), max_size=200),
       st.floats(min_value=0.5, max_value=50))
def test_bucket_never_exceeds_rate(gaps: list[float], rate: float) -> None:
    b = TokenBucket(rate=rate, burst=max(1.0, rate))
    t, taken = 0.0, 0
    for gap in gaps:
        t += gap
        taken += b.take(t)
    assert taken <= max(1.0, rate) + rate * t + 1e-6


@pytest.mark.parametrize("bad", [(0, 1), (-1, 1), (1, 0.5)])
def test_bucket_rejects_nonsense(bad: tuple[float, float]) -> None:
    with pytest.raises(ValueError):
        TokenBucket(*bad)


def test_valve_rate_and_size() -> None:
    clock = FixedClock(100.0)
    v = SafetyValve(max_per_second=3, max_set_size=10, clock=clock)
    assert [v.admit("192.0.2.1", 0) for _ in range(4)] == [None, None, None, Refusal.RATE]
    assert v.admit("192.0.2.1", 10) is Refusal.FULL  # full is checked first, no token used
    clock.advance(1)
    assert v.admit("192.0.2.1", 9) is None
    assert v.admit("192.0.2.1", 10, refresh=True) is None  # a refresh does not grow the set
    assert v.stats.as_dict() == {"admitted": 5, "refused_rate": 1, "refused_full": 1,
                                 "refused": 2}


def test_valve_allow_explains() -> None:
    v = SafetyValve.from_config(BlockConfig(max_blocks_per_second=1, max_set_size=5), FixedClock())
    assert v.allow(0) == (True, "")
    ok, why = v.allow(0)
    assert not ok and "max_blocks_per_second" in why
    ok, why = v.allow(5)
    assert not ok and why.startswith("full") and "max_set_size = 5" in why


def test_refusals_logged_at_most_once_per_second(caplog: pytest.LogCaptureFixture) -> None:
    clock = FixedClock(0.0)
    v = SafetyValve(max_per_second=1, max_set_size=100, clock=clock)
    caplog.set_level(logging.WARNING, "scanguard_ids.block.ratelimit")
    for _ in range(50):
        v.admit("198.51.100.7", 0)
        clock.advance(0.01)  # 0.5 s in all: at most 1.5 tokens
    clock.advance(1.0)
    v.admit("198.51.100.8", 100)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("action=refuse reason=rate ip=198.51.100.7")
    assert "reason=full ip=198.51.100.8" in lines[1] and "suppressed=" in lines[1]
    assert (v.stats.admitted, v.stats.refused_rate, v.stats.refused_full) == (1, 49, 1)


@given(st.lists(st.tuples(st.floats(0, 0.5), st.integers(0, 12), st.sampled_from(
    ["fresh", "manual", "priority", "refresh"])), max_size=80))
def test_valve_admit_is_the_bucket_and_the_set(steps: list[tuple[float, int, str]]) -> None:
    """admit() takes its token inline: the same answers as TokenBucket.take and the set cap,
    and why() says what allow() says."""
    clock = FixedClock(0.0)
    v = SafetyValve(4, 10, clock, reserve=1.0, manual_headroom=2)
    model = TokenBucket(4, 5.0)
    t = 0.0
    for gap, active, kind in steps:
        t += gap
        clock.set(t)
        manual, priority, refresh = kind == "manual", kind == "priority", kind == "refresh"
        if not refresh and active >= (10 if manual else 8):
            want: Refusal | None = Refusal.FULL
        elif model.take(t, keep=0.0 if manual or priority else 1.0):
            want = None
        else:
            want = Refusal.RATE
        got = v.admit("192.0.2.1", active, refresh, manual=manual, priority=priority)
        assert got is want
        assert v.tokens() == model.refill(t)
        if got is Refusal.FULL:
            assert v.why(got, active) == f"full: {active} blocks, block.max_set_size = 10"
        elif got is Refusal.RATE:
            assert v.why(got, active) == "rate: over block.max_blocks_per_second = 4"
