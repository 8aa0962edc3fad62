"""Repeat-offender policy: escalation, cap, memory, bounds, export/import."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanguard_ids.config import DetectConfig
from scanguard_ids.detect.offenders import EXPORT_VERSION, Offenders, Strike

T0 = 1_700_000_000.0


@pytest.mark.parametrize(
    ("policy", "ttl", "escalation", "max_ttl", "strikes", "expected"),
    [
        ("default", 300, 2.0, 86_400, 1, 300),
        ("default", 300, 2.0, 86_400, 2, 600),
        ("default", 300, 2.0, 86_400, 9, 76_800),
        ("default", 300, 2.0, 86_400, 10, 86_400),
        ("default", 300, 2.0, 86_400, 10_000, 86_400),  # no float overflow
        ("default", 300, 1e300, 86_400, 5, 86_400),
        ("default", 300, 1.0, 86_400, 50, 300),
        ("default", 60, 1.5, 100, 2, 90),
        ("default", 60, 1.5, 100, 3, 100),
        ("paper", 300, 2.0, 86_400, 1, 300),
        ("paper", 300, 2.0, 86_400, 7, 300),
    ],
)
def test_ttl_for(policy: str, ttl: int, escalation: float, max_ttl: int, strikes: int,
                 expected: int) -> None:
    cfg = DetectConfig(policy=policy, ttl=ttl, escalation=escalation, max_ttl=max_ttl)
    assert Offenders(cfg).ttl_for(strikes) == expected


@pytest.mark.parametrize(
    ("gaps", "expected"),
    [
        ([], [1]),
        ([10], [1, 2]),
        ([10, 10, 10], [1, 2, 3, 4]),
        ([3600], [1, 2]),
        ([3601], [1, 1]),  # forgotten: more than strike_memory without offences
        ([100, 3601, 100], [1, 2, 1, 2]),
    ],
)
def test_strikes_escalate_and_are_forgotten(gaps: list[float], expected: list[int]) -> None:
    off = Offenders(DetectConfig(strike_memory=3600.0))
    t = T0
    got = [off.offend("203.0.113.1", t).strikes]
    for gap in gaps:
        t += gap
        got.append(off.offend("203.0.113.1", t).strikes)
    assert got == expected


def test_offend_returns_strike_and_ttl() -> None:
    off = Offenders(DetectConfig())
    assert off.offend("203.0.113.1", T0) == Strike(1, 300)
    assert off.offend("203.0.113.1", T0 + 1) == Strike(2, 600)
    assert off.offend("198.51.100.1", T0 + 1) == Strike(1, 300)
    assert off.strikes("203.0.113.1", T0 + 2) == 2
    assert off.strikes("203.0.113.1", T0 + 1 + 86_401) == 0
    assert off.strikes("2001:db8::1", T0) == 0


def test_first_strike_follows_a_reload() -> None:
    off = Offenders(DetectConfig())
    assert off.offend("203.0.113.1", T0) == Strike(1, 300)
    off.reconfigure(DetectConfig(ttl=120))
    assert off.offend("203.0.113.2", T0) == Strike(1, 120)
    assert off.offend("203.0.113.2", T0 + 1) == Strike(2, 240)


def test_out_of_order_offences_keep_the_latest_time() -> None:
    off = Offenders(DetectConfig(strike_memory=100.0))
    off.offend("203.0.113.1", T0 + 50)
    off.offend("203.0.113.1", T0)  # reported late
    assert off.strikes("203.0.113.1", T0 + 150) == 2


def test_least_recently_offended_is_evicted() -> None:
    off = Offenders(DetectConfig(max_offenders=2))
    off.offend("203.0.113.1", T0)
    off.offend("203.0.113.2", T0 + 1)
    off.offend("203.0.113.1", T0 + 2)  # 1 offended again: 2 is the oldest now
    off.offend("203.0.113.3", T0 + 3)
    assert len(off) == 2 and off.evicted == 1
    assert "203.0.113.2" not in off
    assert off.strikes("203.0.113.1", T0 + 4) == 2


def test_forget_and_prune() -> None:
    off = Offenders(DetectConfig(strike_memory=100.0))
    off.offend("203.0.113.1", T0)
    off.offend("203.0.113.2", T0 + 50)
    assert off.forget("203.0.113.2") and not off.forget("203.0.113.2")
    off.offend("203.0.113.3", T0 + 90)
    assert off.prune(T0 + 150) == 1
    assert "203.0.113.1" not in off and "203.0.113.3" in off


def test_dump_load_round_trip_through_json() -> None:
    cfg = DetectConfig()
    off = Offenders(cfg)
    for i, ip in enumerate(["203.0.113.1", "2001:db8::5", "198.51.100.3"]):
        for k in range(i + 1):
            off.offend(ip, T0 + 10 * i + k)
    data = json.loads(json.dumps(off.dump()))
    assert data["version"] == EXPORT_VERSION
    back = Offenders(cfg)
    assert back.load(data) == 3
    assert back.dump() == off.dump()
    # Strikes carry on after a restart.
    assert back.offend("198.51.100.3", T0 + 100) == Strike(4, 2400)


def test_dump_with_now_leaves_out_forgotten_offenders() -> None:
    off = Offenders(DetectConfig(strike_memory=100.0))
    off.offend("203.0.113.1", T0)
    off.offend("203.0.113.2", T0 + 90)
    assert [row[0] for row in off.dump(now=T0 + 150)["offenders"]] == ["203.0.113.2"]


@pytest.mark.parametrize(
    "data",
    [None, [], {}, "junk", {"version": 99, "offenders": []}, {"version": EXPORT_VERSION},
     {"version": EXPORT_VERSION, "offenders": {"a": 1}}],
)
def test_load_ignores_unknown_formats(data: object) -> None:
    off = Offenders(DetectConfig())
    assert off.load(data) == 0
    assert len(off) == 0


def test_load_skips_malformed_rows() -> None:
    off = Offenders(DetectConfig())
    rows = [
        ["203.0.113.1", 2, T0],
        ["203.0.113.2", 0, T0],  # strikes < 1
        ["203.0.113.3", True, T0],
        ["203.0.113.4", 1, "yesterday"],
        ["203.0.113.5", 1, float("nan")],
        [5, 1, T0],
        ["203.0.113.6", 1],
        "203.0.113.7",
        ["203.0.113.8", 3, int(T0)],
    ]
    assert off.load({"version": EXPORT_VERSION, "offenders": rows}) == 2
    assert off.strikes("203.0.113.1", T0) == 2 and off.strikes("203.0.113.8", T0) == 3


def test_load_merges_and_respects_the_bound() -> None:
    off = Offenders(DetectConfig(max_offenders=3))
    off.offend("203.0.113.1", T0 + 100)
    rows = [["203.0.113.1", 5, T0], ["203.0.113.2", 1, T0 + 1], ["203.0.113.3", 1, T0 + 2],
            ["203.0.113.4", 1, T0 + 3]]
    off.load({"version": EXPORT_VERSION, "offenders": rows})
    assert len(off) == 3
    assert off.strikes("203.0.113.1", T0 + 100) == 5  # the larger strike count wins
    assert "203.0.113.2" not in off  # least recently offended


@given(st.lists(st.tuples(st.sampled_from(["203.0.113.1", "203.0.113.2", "2001:db8::1",
                                           "2001:db8::2", "198.51.100.1"]),
                          st.floats(0, 1e6)), max_size=40),
       st.integers(1, 5))
def test_round_trip_property(offences: list[tuple[str, float]], cap: int) -> None:
    cfg = DetectConfig(max_offenders=cap)
    off = Offenders(cfg)
    for ip, dt in sorted(offences, key=lambda o: o[1]):
        off.offend(ip, T0 + dt)
        assert len(off) <= cap
    back = Offenders(cfg)
    back.load(json.loads(json.dumps(off.dump())))
    assert back.dump() == off.dump()
    for ip, _ in offences:
        assert back.strikes(ip, T0 + 1e6) == off.strikes(ip, T0 + 1e6)


def test_reconfigure_keeps_history_and_applies_the_new_policy() -> None:
    off = Offenders(DetectConfig(max_offenders=3))
    for i in range(3):
        off.offend(f"203.0.113.{i}", T0 + i)
    off.reconfigure(DetectConfig(max_offenders=2, policy="paper"))
    assert len(off) == 2 and "203.0.113.0" not in off
    assert off.offend("203.0.113.2", T0 + 5) == Strike(2, 300)
