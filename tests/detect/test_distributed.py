"""Distributed-scan alarm: the rule, targets, bounds, shield, and reordering against a model."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanguard_ids.config import from_dict
from scanguard_ids.config.schema import AlarmConfig
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.distributed import SHOWN, Alarm, DistributedDetector, target_name
from scanguard_ids.errors import ConfigError
from scanguard_ids.model import Kind, ResponseEvent

T0 = 1_700_000_000.0
HOST = "192.0.2.10"


def ev(ts: float, remote: str, port: int | None = 80, local: str = HOST,
       kind: Kind = Kind.TCP_RST) -> ResponseEvent:
    return ResponseEvent(T0 + ts, remote, local, port, kind.proto, kind, 9_400_000)


def src(i: int) -> str:
    return f"203.0.113.{i}"


def det(reorder: float = 30.0, allow: tuple[str, ...] = (), **kw: object) -> DistributedDetector:
    cfg = replace(AlarmConfig(sources=5, ports=3, window=10.0, hold=60.0), **kw)
    return DistributedDetector(cfg, reorder, Allowlist(allow))


def feed(d: DistributedDetector, events: list[ResponseEvent]) -> list[Alarm]:
    return [a for a in map(d.feed, events) if a is not None]


def spread(n: int, t: float = 0.0, step: float = 0.5, ports: int = 5, first: int = 1,
           local: str = HOST) -> list[ResponseEvent]:
    """n sources, one probe each, ports cycling over ``ports`` closed ports."""
    return [ev(t + i * step, src(first + i), 1000 + i % ports, local) for i in range(n)]


# -- the rule ---------------------------------------------------------------------------


def test_alarm_on_the_sources_th_distinct_source() -> None:
    d = det()
    events = spread(5)
    assert feed(d, events[:4]) == []
    (a,) = feed(d, events[4:])
    assert a.action == "alarm" and a.target == HOST
    assert a.ts == a.since == T0 + 2.0 and a.until == a.ts + 60
    assert a.sources == tuple(sorted(src(i) for i in range(1, 6)))
    assert (a.distinct_sources, a.responses, a.ports) == (5, 5, (1000, 1001, 1002, 1003, 1004))
    assert a.first_seen == T0 and a.last_seen == T0 + 2.0 and a.detect_only
    out = a.to_dict()
    assert out["action"] == "alarm" and out["target"] == HOST and out["window"] == 10.0
    assert out["ts"].startswith("2023-11-14T22:13:22")


@pytest.mark.parametrize(
    ("events", "why"),
    [
        ([ev(i, src(1), 1000 + i) for i in range(20)], "one source, many ports"),
        ([ev(0.1 * i, src(i), 443) for i in range(1, 40)], "many sources, one port"),
        (spread(5, step=3.0), "5 sources over 12 s: not within 10 s"),
        ([ev(0.1 * i, src(i % 4 + 1), 1000 + i) for i in range(30)], "4 sources only"),
        (spread(4) + spread(4, local="192.0.2.11", first=10), "4 + 4 on two hosts"),
    ],
)
def test_no_alarm(events: list[ResponseEvent], why: str) -> None:
    assert feed(det(), events) == [], why


def test_window_boundary_is_inclusive() -> None:
    events = [ev(2.5 * i, src(i), 1000 + i) for i in range(5)]  # 0 .. 10.0 s
    assert len(feed(det(), events)) == 1
    events[-1] = replace(events[-1], ts=events[-1].ts + 0.001)
    assert feed(det(), events) == []


def test_endpoint_target_counts_one_service() -> None:
    d = det(target="endpoint")
    (a,) = feed(d, [ev(0.1 * i, src(i), 443) for i in range(1, 6)])
    assert a.target == "192.0.2.10:443/tcp" and a.ports == (443,)
    assert feed(d, spread(6, t=100.0, first=50)) == []  # 5 ports, one source each
    assert d.feed(ev(200, src(1), None)) is None and d.stats.no_port == 1
    assert target_name(("2001:db8::1", "udp", 53)) == "[2001:db8::1]:53/udp"


def test_portless_responses_count_sources_not_ports() -> None:
    d = det()
    events = [ev(0.1 * i, src(i), None) for i in range(1, 9)]
    assert feed(d, events) == []
    (a,) = feed(d, spread(3, t=1.0, first=20))
    assert a.distinct_sources == 11 and len(a.ports) == 3


def test_allowlisted_sources_do_not_count() -> None:
    d = det(allow=("203.0.113.0/29",))
    assert feed(d, spread(5)) == []  # .1 - .5 allowlisted
    assert d.stats.allowlisted == 5
    assert len(feed(d, spread(5, t=1.0, first=10))) == 1


# -- how long an alarm lasts -----------------------------------------------------------


def test_alarm_lasts_hold_then_ends_and_rearms() -> None:
    d = det(hold=40.0)
    (a,) = feed(d, spread(5))
    assert feed(d, spread(30, t=3.0, step=1.0, first=10)) == []  # 3 .. 32 s: under alarm
    assert d.expire(T0 + 32.5) == []
    (end,) = d.expire(T0 + a.until - T0)
    assert end.action == "alarm-end" and end.ts == end.until == a.until and end.since == a.ts
    assert end.distinct_sources == 35 and end.responses == 35
    assert len(end.sources) == SHOWN and end.to_dict()["action"] == "alarm-end"
    (again,) = feed(d, spread(5, t=50.0, first=100))  # the scan goes on: a new alarm
    assert again.ts == T0 + 52.0
    assert d.stats.alarms == 2 and d.stats.ended == 1 and d.stats.active == 1


def test_event_time_ends_alarms_too() -> None:
    d = det()
    feed(d, spread(5))
    d.feed(ev(70.0, src(99), 7))  # event time passes until = 62 s
    (end,) = d.expire(-math.inf)
    assert end.until == T0 + 62.0
    assert d.active() == []


def test_active_lists_running_alarms() -> None:
    d = det()
    feed(d, spread(5))
    feed(d, spread(5, t=1.0, local="192.0.2.11", first=10))
    assert [a.target for a in d.active()] == ["192.0.2.11", HOST]


# -- bounds -----------------------------------------------------------------------------


def test_spoofed_flood_keeps_memory_bounded_and_still_alarms() -> None:
    d = det(max_responses=16, max_targets=4)
    n = 0
    for i in range(5000):
        a = d.feed(ev(0.001 * i, f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 1 + i % 50))
        n += a is not None
        t = d._targets[HOST]
        assert len(t.items) + len(t.cold) <= 16 and len(t.srcs) <= 16  # hot or cold
    assert n == 1
    for k in range(10):
        d.feed(ev(6.0, src(1), 80, local=f"192.0.2.{100 + k}"))
    assert d.stats.targets <= 4 and d.stats.evicted >= 7
    ends = d.expire(-math.inf)
    assert [e.target for e in ends] == [HOST]  # evicted while alarmed: ended early


def test_idle_targets_are_dropped() -> None:
    d = det()
    for k in range(50):
        d.feed(ev(k, src(1), 80, local=f"192.0.2.{k}"))
    d.feed(ev(1000.0, src(1), 80))
    assert d.stats.targets == 1 and d.stats.idle == 50


def test_too_late_events_are_dropped() -> None:
    d = det(reorder=5.0)
    d.feed(ev(100.0, src(1)))
    assert d.feed(ev(84.0, src(2))) is None and d.stats.too_late == 1


def test_config_section_and_cross_checks() -> None:
    cfg = from_dict({"alarm": {"sources": 30, "target": "endpoint", "shield": True}})
    assert cfg.alarm.sources == 30 and cfg.alarm.shield and cfg.alarm.shield_ttl == 60
    with pytest.raises(ConfigError, match="alarm.hold"):
        from_dict({"alarm": {"hold": 30.0}})
    with pytest.raises(ConfigError, match="alarm.max_responses"):
        from_dict({"alarm": {"max_responses": 10}})
    with pytest.raises(ConfigError, match="alarm.mode"):
        from_dict({"alarm": {"mode": "block"}})


# -- shield -----------------------------------------------------------------------------


def test_shield_off_blocks_nobody() -> None:
    d = det()
    feed(d, spread(20))
    assert d.take_blocks() == []


def test_shield_blocks_window_sources_then_each_new_one_once() -> None:
    d = det(shield=True, shield_ttl=30, allow=("203.0.113.200",))
    (a,) = feed(d, spread(5))
    assert not a.detect_only
    first = d.take_blocks()
    assert sorted(b.ip for b in first) == sorted(a.sources)
    for b in first:
        assert (b.action, b.ttl, b.manual) == ("block", 30, False)
        assert b.reason == f"shield: distributed scan on {HOST}" and b.ts == a.ts
    d.feed(ev(3.0, src(1), 9))  # already shielded
    d.feed(ev(4.0, src(50), 9))
    d.feed(ev(4.5, "203.0.113.200", 9))  # allowlisted
    assert [b.ip for b in d.take_blocks()] == [src(50)]
    d.feed(ev(40.0, src(1), 9))  # its shield block ended: blocked again while the alarm lasts
    d.feed(ev(70.0, src(60), 9))  # after the alarm: nothing
    assert [b.ip for b in d.take_blocks()] == [src(1)]


# -- reordering against a plain model ---------------------------------------------------


def reference(events: list[ResponseEvent], cfg: AlarmConfig) -> dict[str, list[tuple]]:
    """The time-sorted semantics, written plainly: (trigger, until) per target."""
    by_target: dict[str, list[ResponseEvent]] = defaultdict(list)
    for e in events:
        if cfg.target == "host":
            by_target[e.local].append(e)
        elif e.local_port is not None:
            by_target[target_name((e.local, e.proto, e.local_port))].append(e)
    need_ports = cfg.ports if cfg.target == "host" else 1
    out: dict[str, list[tuple]] = {}
    for target, evs in by_target.items():
        until = -math.inf
        alarms = []
        for e in sorted({x.ts for x in evs}):
            if e < until:
                continue
            win = [x for x in evs if e - cfg.window <= x.ts <= e]
            ports = {x.local_port for x in win if x.local_port is not None}
            if len({x.remote for x in win}) >= cfg.sources and len(ports) >= need_ports:
                until = e + cfg.hold
                alarms.append((e, until))
        if alarms:
            out[target] = alarms
    return out


REMOTES = [src(i) for i in range(1, 7)] + ["2001:db8:1::1", "2001:db8:1::2"]
LOCALS = ["192.0.2.1", "192.0.2.2"]

# The reordering guarantee needs hold > reorder.
configs = st.builds(
    lambda sources, ports, window, reorder, hold, target: (
        AlarmConfig(sources=sources, ports=ports, window=window, hold=reorder + hold,
                    target=target, max_responses=10_000), reorder),
    sources=st.integers(2, 4),
    ports=st.integers(1, 3),
    window=st.sampled_from([1.0, 5.0, 20.0]),
    reorder=st.sampled_from([0.0, 3.0, 30.0]),
    hold=st.sampled_from([0.5, 2.0, 10.0, 60.0]),
    target=st.sampled_from(["host", "endpoint"]),
)

event_lists = st.lists(
    st.tuples(
        st.integers(0, 400).map(lambda h: h / 2),  # half-second steps: plenty of ties
        st.sampled_from(REMOTES),
        st.sampled_from(LOCALS),
        st.one_of(st.none(), st.integers(1, 4)),
        st.floats(0, 1, exclude_max=True),  # arrival delay, as a fraction of reorder
    ),
    max_size=120,
)


def arrange(raw: list[tuple], reorder: float) -> tuple[list[ResponseEvent], list[ResponseEvent]]:
    """(time-sorted events, the same in an arrival order with disorder < reorder)."""
    events = [(ev(t, remote, port, local), t + delay * reorder)
              for t, remote, local, port, delay in raw]
    arrived = [e for e, _ in sorted(events, key=lambda x: x[1])]
    return sorted((e for e, _ in events), key=lambda e: e.ts), arrived


def run(d: DistributedDetector, events: list[ResponseEvent]) -> tuple[dict, dict]:
    """(raised: target -> [alarm ts], final: target -> [(trigger, until)])."""
    raised: dict[str, list[float]] = defaultdict(list)
    for a in feed(d, events):
        raised[a.target].append(a.ts)
    final: dict[str, list[tuple]] = defaultdict(list)
    for end in d.expire(math.inf):
        final[end.target].append((end.since, end.until))
    return dict(raised), {k: sorted(v) for k, v in final.items()}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conf=configs, raw=event_lists)
def test_sorted_stream_matches_the_reference(conf: tuple, raw: list[tuple]) -> None:
    cfg, reorder = conf
    ordered, _ = arrange(raw, reorder)
    raised, final = run(DistributedDetector(cfg, reorder), ordered)
    expected = reference(ordered, cfg)
    assert final == expected
    assert raised == {t: [a[0] for a in v] for t, v in expected.items()}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conf=configs, raw=event_lists)
def test_bounded_reordering_neither_creates_nor_hides_alarms(conf: tuple, raw: list[tuple]
                                                             ) -> None:
    cfg, reorder = conf
    ordered, arrived = arrange(raw, reorder)
    d = DistributedDetector(cfg, reorder)
    raised, final = run(d, arrived)
    expected = reference(ordered, cfg)
    assert d.stats.too_late == 0
    assert final == expected
    assert raised.keys() == expected.keys()
    for target, times in raised.items():
        for ts, (trigger, _) in zip(times, expected[target], strict=True):
            assert trigger <= ts < trigger + reorder or ts == trigger


@settings(max_examples=200, deadline=None)
@given(conf=configs, raw=event_lists, seed=st.integers(0, 2**32 - 1))
def test_any_order_alarms_are_backed_by_evidence(conf: tuple, raw: list[tuple], seed: int
                                                 ) -> None:
    """Even in arbitrary order (beyond the reorder bound) every alarm is justified."""
    cfg, reorder = conf
    ordered, _ = arrange(raw, reorder)
    shuffled = ordered[:]
    random.Random(seed).shuffle(shuffled)
    d = DistributedDetector(replace(cfg, max_targets=1, max_responses=max(cfg.sources, 8)),
                            reorder)
    seen: list[ResponseEvent] = []
    for e in shuffled:
        seen.append(e)
        a = d.feed(e)
        assert d.stats.targets <= 1
        if a is None:
            continue
        assert a.distinct_sources >= cfg.sources
        assert a.first_seen >= a.ts - cfg.window and a.until == a.ts + cfg.hold
        win = {x.remote for x in seen if a.first_seen <= x.ts <= a.ts}
        assert set(a.sources) <= win


# -- cold and hot targets ---------------------------------------------------------------


def test_a_target_goes_cold_after_its_alarm_and_hot_again() -> None:
    d = det(hold=40.0)
    feed(d, [ev(0.01 * i, src(1), 1000 + i % 7) for i in range(50)])  # one source: cold
    t = d._targets[HOST]
    assert t.remotes == {src(1)} and t.srcs == {}
    (a,) = feed(d, spread(5, t=1.0, first=10))
    assert a.ts == T0 + 2.5 and d._targets[HOST].remotes is None  # hot
    feed(d, [ev(45.0 + i, src(1), 80) for i in range(40)])  # alarm over, one source left
    assert d._targets[HOST].remotes == {src(1)}  # cold again
    (again,) = feed(d, spread(5, t=110.0, first=20))
    assert again.ts == T0 + 112.0 and d.stats.alarms == 2


def test_a_cold_target_keeps_at_most_max_responses() -> None:
    d = det(max_responses=16)
    for i in range(1000):  # a fast scan from 4 sources, late by up to 4 ms
        d.feed(ev(0.001 * i + (0.004 if i % 5 == 0 else 0.0), src(1 + i % 4), 1 + i))
        t = d._targets[HOST]
        assert t.remotes is not None and not t.items and len(t.cold) <= 16
    assert max(e[0] if isinstance(e, tuple) else e.ts for e in t.cold) == T0 + 0.999


@pytest.mark.parametrize("seed", range(40))
def test_bursts_over_hours_match_the_reference(seed: int) -> None:
    """Scans and quiet spells: targets go hot and cold again many times, in disorder."""
    rng = random.Random(seed)
    reorder = rng.choice([0.0, 2.0, 30.0])
    cfg = AlarmConfig(sources=rng.randint(2, 6), ports=rng.randint(1, 3), window=5.0,
                      hold=reorder + rng.choice([1.0, 20.0]), max_responses=10_000,
                      target=rng.choice(["host", "endpoint"]))
    raw: list[tuple] = []
    t = 0.0
    for _ in range(30):
        t += rng.expovariate(1 / 40)
        n = rng.randint(1, 12)
        for _ in range(rng.randint(1, 40)):
            raw.append((round(t + rng.uniform(0, 8), 1), src(rng.randint(1, n)),
                        rng.choice(LOCALS), rng.choice([None, 1, 2, 3]), rng.random()))
    ordered, arrived = arrange(raw, reorder)
    d = DistributedDetector(cfg, reorder)
    raised, final = run(d, arrived)
    expected = reference(ordered, cfg)
    assert final == expected and raised.keys() == expected.keys()


@pytest.mark.parametrize("seed", range(30))
def test_feed_block_is_feed_on_each(seed: int) -> None:
    """Replay's batch entry point: the same records, blocks and stats as feed() per event."""
    rng = random.Random(seed)
    reorder = rng.choice([0.0, 2.0, 30.0])
    cfg = AlarmConfig(sources=rng.randint(2, 5), ports=rng.randint(1, 3), window=5.0,
                      hold=reorder + 20.0, target=rng.choice(["host", "host", "endpoint"]),
                      shield=rng.random() < 0.5, max_responses=rng.choice([8, 10_000]),
                      max_targets=rng.choice([1, 1024]))
    allow = Allowlist(["203.0.113.7"])
    span, remotes = rng.choice([300, 3000]), rng.choice([3, 9])
    raw = [(round(rng.uniform(0, span), 1), src(rng.randint(1, remotes)), rng.choice(LOCALS),
            rng.choice([None, 1, 2, 3]), rng.random()) for _ in range(600)]
    _, arrived = arrange(raw, reorder * 1.2 + 4.0)  # a few too late, too
    one, batch = DistributedDetector(cfg, reorder, allow), DistributedDetector(cfg, reorder, allow)
    expected: list[tuple] = []
    for i, e in enumerate(arrived):
        a = one.feed(e)
        blocks = one.take_blocks()
        if a is not None:
            expected.append((i, [*one.expire(-math.inf), a], blocks))
        elif blocks:
            expected.append((i, [], blocks))
        if i % 50 == 49:
            expected.append((i, one.expire(-math.inf), []))
    got: list[tuple] = []
    for start in range(0, len(arrived), 50):
        got += [(start + i, r, b) for i, r, b in batch.feed_block(arrived[start:start + 50])]
        got.append((start + 49, batch.expire(-math.inf), []))
    assert got == expected
    assert batch.stats == one.stats and batch.newest == one.newest


@pytest.mark.parametrize("seed", range(20))
def test_feed_with_the_callers_allowlist_answer_is_feed(seed: int) -> None:
    """The engine looks the allowlist up once and hands the answer to feed(ev, allowed):
    the same records, blocks and stats as feed(ev) looking it up, across an allowlist change
    (a remote a cold host target already holds still counts)."""
    rng = random.Random(seed)
    cfg = AlarmConfig(sources=rng.randint(2, 5), ports=rng.randint(1, 3), window=5.0,
                      hold=25.0, target=rng.choice(["host", "endpoint"]),
                      shield=rng.random() < 0.5, max_responses=rng.choice([8, 10_000]))
    lists = [Allowlist(["203.0.113.7"]), Allowlist(["203.0.113.0/30", "2001:db8::/64"])]
    own, given_ = DistributedDetector(cfg, 5.0, lists[0]), DistributedDetector(cfg, 5.0, lists[0])
    allow = lists[0]
    t = 0.0
    for i in range(400):
        if i == 200:
            allow = lists[1]
            own.set_allowlist(allow)
            given_.set_allowlist(allow)
        t += rng.uniform(0, 0.5)
        remote = src(rng.randint(1, 9)) if rng.random() < 0.9 else f"2001:db8::{rng.randint(1, 3)}"
        e = ev(t - rng.uniform(0, 3), remote, rng.choice([None, 1, 2, 3]),
               rng.choice(["192.0.2.10", "192.0.2.11"]))
        assert own.feed(e) == given_.feed(replace(e), remote in allow)
        assert own.take_blocks() == given_.take_blocks()
        assert own.expire(t - 10) == given_.expire(t - 10)
    assert own.stats == given_.stats
    assert own.stats.allowlisted > 0
