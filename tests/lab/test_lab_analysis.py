"""Reaction latency, block intervals and open-port leak analysis (pure)."""

from __future__ import annotations

import math

import pytest

from scanguard_ids.lab import analysis
from scanguard_ids.lab.capture import ICMP4_UNREACH, RST, SYNACK, UDP_REPLY, WirePacket

SCANNER = "192.0.2.2"


def pkt(ts: float, kind: str, port: int, proto: str = "tcp") -> WirePacket:
    return WirePacket(ts, kind, "192.0.2.1", SCANNER, port, 40_000, proto)


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([1.0], 50, 1.0), ([1.0, 3.0], 50, 2.0), ([5.0, 1.0, 3.0], 50, 3.0),
    ([float(i) for i in range(1, 101)], 99, 99.01), ([2.0, 4.0], 0, 2.0), ([2.0, 4.0], 100, 4.0),
])
def test_percentile(values: list[float], q: float, expected: float) -> None:
    assert analysis.percentile(values, q) == pytest.approx(expected)


def test_percentile_empty_is_nan() -> None:
    assert math.isnan(analysis.percentile([], 50))


def test_block_intervals_pairs_add_and_del_of_one_address() -> None:
    events = [
        {"t": 5.0, "event": "del", "set": "s4", "ip": SCANNER},
        {"t": 1.0, "event": "ready"},
        {"t": 2.0, "event": "add", "set": "s4", "ip": SCANNER},
        {"t": 2.5, "event": "add", "set": "s4", "ip": "192.0.2.9"},
        {"t": 7.0, "event": "add", "set": "s4", "ip": f"{SCANNER}/32"},
    ]
    assert analysis.block_intervals(events, SCANNER) == [(2.0, 5.0), (7.0, math.inf)]
    assert analysis.block_intervals(events, "192.0.2.9") == [(2.5, math.inf)]
    assert analysis.block_intervals(events, "192.0.2.77") == []


def test_trigger_time_needs_count_and_distinct_ports() -> None:
    same_port = [pkt(1.0, RST, 10), pkt(1.1, RST, 10), pkt(1.2, RST, 10)]
    assert analysis.trigger_time(same_port) is None
    mixed = [*same_port, pkt(1.3, SYNACK, 11), pkt(1.4, ICMP4_UNREACH, 12, "udp")]
    assert analysis.trigger_time(mixed) == 1.4
    assert analysis.trigger_time([pkt(2.0, RST, 1), pkt(1.0, RST, 2), pkt(3.0, RST, 3)]) == 3.0


def test_reaction_latencies() -> None:
    packets = [pkt(10.000, SYNACK, 80), pkt(10.010, RST, 1), pkt(10.020, RST, 2),
               pkt(10.030, RST, 3)]
    r = analysis.reaction(packets, [(10.045, math.inf)], journal_ts=10.031, poll_interval=0.002)
    assert r.first_offending == 10.010 and r.trigger == 10.030
    assert r.from_first_ms == pytest.approx(35.0)
    assert r.from_trigger_ms == pytest.approx(15.0)
    assert r.to_dict()["poll_interval_ms"] == pytest.approx(2.0)


def test_reaction_without_block() -> None:
    r = analysis.reaction([pkt(1.0, RST, 1)], [], None, 0.002)
    assert r.blocked is None and r.from_first_ms is None and r.trigger is None


def test_leaks_split_open_ports_by_block_time() -> None:
    packets = [pkt(1.0, SYNACK, 80), pkt(1.5, RST, 1), pkt(2.5, SYNACK, 443), pkt(2.6, RST, 2),
               pkt(1.2, SYNACK, 22), pkt(2.7, SYNACK, 22)]  # 22 answered before, again after
    rep = analysis.leaks({80, 443, 22, 8080}, "tcp", packets, [(2.0, math.inf)])
    assert rep.before_block == [22, 80]
    assert rep.after_block == [443]
    assert rep.no_answer_seen == [8080]
    assert rep.responses_after_block == 3
    assert not rep.ok


def test_leaks_udp_uses_udp_replies_and_expired_blocks() -> None:
    packets = [pkt(1.0, UDP_REPLY, 53, "udp"), pkt(6.0, UDP_REPLY, 161, "udp"),
               pkt(3.0, SYNACK, 53)]
    rep = analysis.leaks({53, 161}, "udp", packets, [(2.0, 5.0)])
    assert rep.before_block == [53, 161]  # 161 answered after the block expired
    assert rep.ok and rep.responses_after_block == 0


def test_latency_stats_ignore_missing() -> None:
    s = analysis.LatencyStats.of([None, 2.0, float("nan"), 4.0])
    assert (s.n, s.p50_ms, s.max_ms) == (2, 3.0, 4.0)
    assert analysis.LatencyStats.of([]).n == 0
