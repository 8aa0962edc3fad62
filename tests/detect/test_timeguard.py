"""detect/timeguard.py: lone outliers are set aside, real clock jumps and steps accepted."""

from __future__ import annotations

from scanguard_ids.detect.timeguard import ReplayGuard, TimeGuard
from scanguard_ids.model import Kind, ResponseEvent

T0 = 1_768_489_200.0


def ev(ts: float) -> ResponseEvent:
    return ResponseEvent(ts, "198.51.100.1", "192.0.2.10", 22, "tcp", Kind.TCP_RST)


def run(guard: ReplayGuard, times: list[float]) -> list[float]:
    out: list[float] = []
    for t in times:
        out += [e.ts for e in guard.admit(ev(t))]
    guard.flush()
    return out


def test_replay_drops_a_lone_outlier() -> None:
    g = ReplayGuard(late=90)
    times = [T0 + i for i in range(20)] + [4_102_444_800.0] + [T0 + 20 + i for i in range(20)]
    assert run(g, times) == [t for t in times if t < 4e9]
    assert g.stats.outliers == 1


def test_replay_accepts_a_real_jump() -> None:
    g = ReplayGuard(late=90)
    times = [T0 + i for i in range(20)] + [T0 + 7200 + i for i in range(20)]
    assert run(g, times) == times
    assert g.stats.jumps == 1 and g.stats.outliers == 0


def test_live_future_and_step_back() -> None:
    g = TimeGuard(late=90, max_future=300)
    far = ev(T0 + 10_000)
    assert g.future(far, T0) and g.stats.future == 1
    back = [ev(T0 - 3600 + i) for i in range(8)]
    got: list[ResponseEvent] = []
    for e in back:
        got += g.behind(e, T0)
    assert [e.ts for e in got] == [T0 + i for i in range(8)] and g.shift == 3600
    # the sensor's clock comes back: the shift alone would put it in the future
    fixed = ev(T0 + 3600 + 10)
    fixed.ts += g.shift
    assert not g.future(fixed, T0 + 3600) and g.shift == 0 and fixed.ts == T0 + 3610
