"""Network-edge detection: sweeps, the slow tier, IPv6 prefix groups, detect-only, and the
everyday look-alikes that must stay unblocked with the default thresholds."""

from __future__ import annotations

import random

from scanguard_ids.config import DetectConfig
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.detector import Detector
from scanguard_ids.model import Decision, Kind, ResponseEvent

T0 = 1_700_000_000.0
R4 = "203.0.113.7"


def ev(ts: float, remote: str = R4, local: str = "192.0.2.1", port: int | None = 22,
       kind: Kind = Kind.TCP_RST) -> ResponseEvent:
    return ResponseEvent(ts, remote, local, port, kind.proto, kind, 9_400_000, "")


def run(events: list[ResponseEvent], allow: tuple[str, ...] = (), **kw: object) -> list[Decision]:
    det = Detector(DetectConfig(**kw), Allowlist(allow))  # type: ignore[arg-type]
    return [d for d in map(det.feed, events) if d is not None]


def sweep(n: int, step: float = 0.01, port: int = 22, remote: str = R4) -> list[ResponseEvent]:
    return [ev(T0 + i * step, remote, f"198.51.100.{i + 1}", port) for i in range(n)]


def test_single_port_sweep_blocks_at_the_hosts_threshold() -> None:
    (d,) = run(sweep(254))
    assert (d.ip, d.tier, d.rule, d.count, d.ports) == (R4, "fast", "hosts", 5, (22,))
    assert d.hosts == tuple(sorted(f"198.51.100.{i}" for i in range(1, 6)))
    assert d.to_dict()["hosts"] == list(d.hosts) and d.to_dict()["tier"] == "fast"


def test_udp_and_three_port_sweeps_block() -> None:
    udp = [ev(T0 + i * 0.01, local=f"198.51.100.{i + 1}", port=161,
              kind=Kind.ICMP4_PORT_UNREACH) for i in range(30)]
    assert [d.rule for d in run(udp)] == ["hosts"]
    three = [ev(T0 + i * 0.01, local=f"198.51.100.{i // 3 + 1}", port=(22, 80, 443)[i % 3])
             for i in range(30)]
    assert [d.rule for d in run(three)] == ["ports"]  # 2 ports of one host come first


def test_sweep_modes() -> None:
    got = run(sweep(254), sweep="detect")  # each decision consumes its evidence, blocks nothing
    assert got and all(d.detect_only and "detect only" in d.reason for d in got)
    assert run(sweep(254), sweep="off") == []


def test_t0_vertical_scan_is_blocked_by_the_slow_tier_within_six_probes() -> None:
    probes = [ev(T0 + 300 * i, port=1000 + i) for i in range(20)]
    (d,) = run(probes)[:1]
    assert (d.tier, d.rule, d.count) == ("slow", "ports", 6)
    assert d.ts == T0 + 300 * 5
    assert run(probes, slow="off") == []
    (d,) = run(probes, slow="detect")[:1]
    assert d.detect_only


def test_slow_sweep_is_blocked() -> None:
    probes = [ev(T0 + 300 * i, local=f"198.51.100.{i + 1}", port=22) for i in range(20)]
    (d,) = run(probes)[:1]
    assert (d.tier, d.rule, d.count) == ("slow", "hosts", 20)


def test_five_responses_spread_over_minutes_are_no_scan() -> None:
    assert run([ev(T0 + 40 * i, port=1000 + i) for i in range(5)]) == []


def test_monitor_polling_one_closed_endpoint_for_an_hour() -> None:
    assert run([ev(T0 + 30 * i, port=8080) for i in range(120)]) == []


def test_client_of_several_web_servers_refused_twice_and_retrying() -> None:
    events = [ev(T0, local="198.51.100.10", port=443), ev(T0 + 0.2, local="198.51.100.11",
                                                          port=443)]
    events += [ev(T0 + 1 + i, local="198.51.100.10", port=443) for i in range(3)]  # retries
    assert run(events) == []


def test_round_robin_name_with_four_refusing_addresses() -> None:
    events = [ev(T0 + i * 0.05 + r, local=f"198.51.100.{20 + i}", port=443)
              for r in range(3) for i in range(4)]
    assert run(events) == []


def test_nat_office_using_many_hosts_all_day() -> None:
    rnd = random.Random(7)
    t, events = T0, []
    while t < T0 + 86_400:  # a refusal every 15 min on average, from 60 servers, 3 ports each
        t += rnd.expovariate(1 / 900)
        host = rnd.randrange(60)
        events.append(ev(t, local=f"198.51.100.{host + 1}", port=(443, 8443, 25)[host % 3]))
    assert run(events) == []


def test_ipv6_rotation_within_a_64_blocks_the_prefix() -> None:
    events = [ev(T0 + i * 0.01, f"2001:db8:1:2::{i + 1:x}", "2001:db8::1", 1000 + i)
              for i in range(10)]
    (d,) = run(events)
    assert d.ip == "2001:db8:1:2::/64" and d.count == 3
    assert run(events, prefix6=128) == []


def test_ipv6_one_address_still_blocks_that_address() -> None:
    events = [ev(T0 + i, "2001:db8:1:2::9", "2001:db8::1", 1000 + i) for i in range(3)]
    assert [d.ip for d in run(events)] == ["2001:db8:1:2::9"]


def test_prefix_holding_an_allowlisted_address_is_never_blocked() -> None:
    events = [ev(T0 + i * 0.01, f"2001:db8:1:2::{i + 1:x}", "2001:db8::1", 1000 + i)
              for i in range(10)]
    assert run(events, allow=("2001:db8:1:2::ff/128",)) == []
    own = [ev(T0 + i, "2001:db8:1:2::9", "2001:db8::1", 1000 + i) for i in range(3)]
    assert [d.ip for d in run(own, allow=("2001:db8:1:2::ff/128",))] == ["2001:db8:1:2::9"]


def test_prefix_block_suppresses_the_whole_prefix() -> None:
    det = Detector(DetectConfig(), Allowlist())
    events = [ev(T0 + i * 0.01, f"2001:db8:1:2::{i + 1:x}", "2001:db8::1", 1000 + i)
              for i in range(3)]
    assert [d.ip for d in map(det.feed, events) if d] == ["2001:db8:1:2::/64"]
    assert det.feed(ev(T0 + 1, "2001:db8:1:2::77", "2001:db8::1", 5)) is None
    assert det.stats.suppressed == 1


def test_slow_evidence_survives_a_flood_of_one_off_sources() -> None:
    """Once a group has two responses its record outranks every one-off source.

    (A group's single response waits in a fixed table that a flood can overwrite.)
    """
    det = Detector(DetectConfig(slow_max_tracked=100, max_tracked=1000), Allowlist())
    decisions = [det.feed(ev(T0 - 200, port=999))]
    for i in range(8):
        decisions.append(det.feed(ev(T0 + 300 * i, port=1000 + i)))
        for k in range(5000):  # spoofed sources between two probes, some seen twice
            ts = T0 + 300 * i + 1 + k * 0.05
            decisions.append(det.feed(ev(ts, f"10.{k // 250}.{k % 250}.{i % 2}", port=80)))
    got = [d for d in decisions if d is not None]
    assert [(d.ip, d.tier) for d in got] == [(R4, "slow")]
    assert det.stats.slow_tracked <= 100
