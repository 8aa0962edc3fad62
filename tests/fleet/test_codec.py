"""The fleet's wire format: round trips, and everything malformed is refused (pure)."""

from __future__ import annotations

import orjson
import pytest

from scanguard_ids.fleet.bus import redact
from scanguard_ids.fleet.codec import FleetDecision, decode_decision, decode_events, encode_events
from scanguard_ids.model import Decision, Kind, ResponseEvent

T0 = 1_768_489_200.0


def _b(fields: dict[str, str]) -> dict[bytes, bytes]:
    return {k.encode(): v.encode() for k, v in fields.items()}


def test_events_round_trip() -> None:
    evs = [ResponseEvent(T0 + 0.123456, "203.0.113.7", "192.0.2.1", 22, "tcp", Kind.TCP_RST),
           ResponseEvent(T0, "2001:db8::7", "2001:db8::1", None, "udp", Kind.ICMP6_PORT_UNREACH),
           ResponseEvent(T0, "203.0.113.7", "192.0.2.1", 53, "udp", Kind.ICMP4_PORT_UNREACH)]
    node, out, bad = decode_events(_b(encode_events(evs, "A")))  # type: ignore[misc]
    assert (node, bad) == ("A", 0)
    assert [(e.ts, e.remote, e.local, e.local_port, e.proto, e.kind, e.sensor) for e in out] == [
        (e.ts, e.remote, e.local, e.local_port, e.proto, e.kind, "A") for e in evs]


@pytest.mark.parametrize("line", [
    "x|203.0.113.7|192.0.2.1|22|rt", "1|nope|192.0.2.1|22|rt", "1|203.0.113.7|192.0.2.1|99999|rt",
    "1|203.0.113.7|192.0.2.1|22|zt", "1|203.0.113.7|192.0.2.1|22|rx", "nan|203.0.113.7|a|1|rt",
    "1|2|3", "", "inf|203.0.113.7|192.0.2.1|22|rt",
])
def test_bad_event_lines_are_counted(line: str) -> None:
    node, out, bad = decode_events(_b({"v": "1", "n": "A", "e": line}))  # type: ignore[misc]
    assert (out, bad) == ([], 1)


@pytest.mark.parametrize("fields", [
    {"v": "2", "n": "A", "e": ""}, {"v": "1", "e": ""}, {"v": "1", "n": "", "e": ""},
    {"v": "1", "n": "A" * 65, "e": ""}, {"v": "1", "n": "A"},
])
def test_bad_event_entries_are_refused(fields: dict[str, str]) -> None:
    assert decode_events(_b(fields)) is None


def test_decision_round_trip() -> None:
    d = Decision(ts=T0, action="block", ip="203.0.113.7", ttl=600, count=3, ports=(21, 22),
                 reason="r", strikes=2)
    fd = FleetDecision.of(d, "A", T0 + 1, 7)
    back = decode_decision(fd.encode())
    assert back == fd and back.expires == T0 + 601 and back.id == f"A:{int((T0 + 1) * 1e6)}:7"
    assert back.decision().node == "A" and back.decision().strikes == 2


@pytest.mark.parametrize("change", [
    {"a": "expire"}, {"ip": "nope"}, {"ip": "10.0.0.0/4"}, {"ttl": 0}, {"ttl": -1},
    {"ttl": True}, {"exp": "soon"}, {"p": [70000]}, {"m": "yes"}, {"v": 2}, {"n": ""},
    {"id": ""}, {"r": 5},
])
def test_bad_decisions_are_refused(change: dict[str, object]) -> None:
    good = orjson.loads(FleetDecision.of(
        Decision(ts=T0, action="block", ip="203.0.113.7", ttl=60), "A", T0, 1).encode())
    assert decode_decision(orjson.dumps(good)) is not None
    assert decode_decision(orjson.dumps({**good, **change})) is None


@pytest.mark.parametrize("raw", [b"", b"[]", b"{", b"\xff", None, 5])
def test_undecodable_decisions_are_refused(raw: object) -> None:
    assert decode_decision(raw) is None


def test_redact() -> None:
    assert redact("redis://:secret@h:6380/0") == "redis://:***@h:6380/0"
    assert redact("unix:///run/r.sock") == "unix:///run/r.sock"
