"""The detector's compact evidence: one shared (kind, sensor) tuple per pair, bounded, and
decisions that still name every kind and sensor, shared or not."""

from __future__ import annotations

from scanguard_ids.config import DetectConfig
from scanguard_ids.detect import detector as detector_mod
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.detector import Detector
from scanguard_ids.model import Kind, ResponseEvent

T0 = 1_700_000_000.0


def ev(ts: float, ip: str, port: int | None, kind: Kind = Kind.TCP_RST,
       sensor: str = "") -> ResponseEvent:
    return ResponseEvent(ts, ip, "192.0.2.1", port, kind.proto, kind, 9_400_000, sensor)


def test_evidence_of_many_addresses_shares_one_tag_per_kind_and_sensor() -> None:
    det = Detector(DetectConfig(), Allowlist())
    for i in range(50):
        det.feed(ev(T0 + i / 100, f"198.51.100.{i + 1}", 1000 + i, sensor="ids-1"))
    tags = {id(st[2]) for st in det._singles.values()}  # single responses: (ts, port, tag)
    assert len(tags) == 1
    det.feed(ev(T0 + 1, "203.0.113.1", 53, Kind.ICMP4_PORT_UNREACH, "ids-1"))
    assert len({id(st[2]) for st in det._singles.values()}) == 2


def test_decisions_name_kinds_and_sensors_beyond_the_shared_table() -> None:
    det = Detector(DetectConfig(count=3, ports=2), Allowlist())
    for i in range(detector_mod._MAX_TAGS + 10):  # fill the table of shared tags
        det.feed(ev(T0, f"2001:db8::{i + 1:x}", 7, sensor=f"s{i}"))
    assert len(det._tags) == detector_mod._MAX_TAGS
    ip = "198.51.100.200"
    got = [det.feed(ev(T0 + 1, ip, 22, Kind.TCP_RST, "late-a")),
           det.feed(ev(T0 + 1.5, ip, 161, Kind.ICMP4_PORT_UNREACH, "late-b")),
           det.feed(ev(T0 + 2, ip, None, Kind.ICMP6_PORT_UNREACH, ""))]
    assert got[:2] == [None, None]
    d = got[2]
    assert d is not None and d.ip == ip and d.count == 3 and d.ports == (22, 161)
    assert d.sensors == ("late-a", "late-b")
    assert d.kinds == ("icmp-port-unreachable", "icmp6-port-unreachable", "tcp-rst")
    assert len(det._tags) == detector_mod._MAX_TAGS


def test_same_time_and_port_sort_by_kind_then_sensor() -> None:
    """Items compare like the flat (ts, port, kind, sensor) tuples they replaced."""
    det = Detector(DetectConfig(count=4, ports=2), Allowlist())
    ip = "198.51.100.9"
    det.feed(ev(T0, ip, 22, Kind.TCP_RST, "b"))
    det.feed(ev(T0, ip, 22, Kind.TCP_RST, "a"))
    det.feed(ev(T0, ip, 22, Kind.ICMP4_PORT_UNREACH, "z"))
    st = det._tracked[ip]
    assert [(e[0], e[1], e[2][0], e[2][1]) for e in st] == sorted(
        [(T0, 22, Kind.TCP_RST, "b"), (T0, 22, Kind.TCP_RST, "a"),
         (T0, 22, Kind.ICMP4_PORT_UNREACH, "z")])
