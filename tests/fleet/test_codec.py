"""The fleet's wire format: round trips, and everything malformed is refused (pure)."""

from __future__ import annotations

import struct

import orjson
import pytest

from scanguard_ids.fleet.bus import redact
from scanguard_ids.fleet.codec import (
    NO_PORT,
    FleetDecision,
    decode_decision,
    decode_events,
    encode_events,
    encode_events_v1,
)
from scanguard_ids.model import Decision, Kind, ResponseEvent

T0 = 1_768_489_200.0


def _b(fields: dict[str, str] | dict[str, str | bytes]) -> dict[bytes, bytes]:
    """The fields as redis-py hands them back (bytes)."""
    return {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in fields.items()}


EVS = [ResponseEvent(T0 + 0.123456, "203.0.113.7", "192.0.2.1", 22, "tcp", Kind.TCP_RST),
       ResponseEvent(T0, "2001:db8::7", "2001:db8::1", None, "udp", Kind.ICMP6_PORT_UNREACH),
       ResponseEvent(T0, "203.0.113.7", "192.0.2.1", 53, "udp", Kind.ICMP4_PORT_UNREACH),
       ResponseEvent(T0 + 1e-6, "2001:db8::7", "2001:db8::1", 0, "tcp", Kind.TCP_RST),
       ResponseEvent(T0 + 2, "2001:db8::8", "2001:db8::1", 65535, "tcp", Kind.ICMP6_PORT_UNREACH)]


@pytest.mark.parametrize("encode", [encode_events, encode_events_v1])
@pytest.mark.parametrize("evs", [EVS, EVS[:1], EVS[1:2]])
def test_events_round_trip(encode, evs: list[ResponseEvent]) -> None:  # type: ignore[no-untyped-def]
    """Version 2 (written) and version 1 (what a node not yet upgraded writes) both read."""
    node, out, bad = decode_events(_b(encode(evs, "A")))  # type: ignore[misc]
    assert (node, bad) == ("A", 0)
    assert [(e.ts, e.remote, e.local, e.local_port, e.proto, e.kind, e.sid, e.sensor)
            for e in out] == [
        (e.ts, e.remote, e.local, e.local_port, e.proto, e.kind, 0, "A") for e in evs]


def test_v2_is_written_compact_and_canonicalizes_addresses() -> None:
    fields = encode_events(EVS, "A")
    assert fields["v"] == "2" and fields["a"].count("\n") == 4  # 5 distinct addresses
    assert len(fields["e"]) == 21 * len(EVS)
    fields["a"] = fields["a"].replace("2001:db8::7", "2001:DB8:0::7")  # type: ignore[union-attr]
    _, out, _ = decode_events(_b(fields))  # type: ignore[misc]
    assert out[1].remote == "2001:db8::7"
    assert decode_events(_b(encode_events([], "A"))) == ("A", [], 0)


def _v2(n: int = 1, ts: float = T0, ri: int = 0, li: int = 1, port: int = 22, kp: int = 0,
        addrs: bytes = b"203.0.113.7\n192.0.2.1") -> dict[bytes, bytes]:
    body = struct.pack(f"<{n}d{3 * n}I{n}B", *[ts] * n, *[ri] * n, *[li] * n, *[port] * n,
                       *[kp] * n)
    return {b"v": b"2", b"n": b"A", b"a": addrs, b"e": body}


@pytest.mark.parametrize("fields", [
    _v2(ts=float("nan")), _v2(ts=float("inf")), _v2(ts=-float("inf")), _v2(ts=0.0),
    _v2(ts=-1.0), _v2(n=3, ts=1e308), _v2(ri=2), _v2(li=7), _v2(port=NO_PORT + 1),
    _v2(port=2**32 - 1), _v2(kp=6), _v2(kp=255), _v2(addrs=b"203.0.113.7\nnope"),
    _v2(addrs=b"203.0.113.7"), _v2(addrs=b"\xff\n192.0.2.1"), _v2(addrs=b""),
    {**_v2(), b"e": _v2()[b"e"][:-1]}, {**_v2(), b"e": _v2()[b"e"] + b"x"},
    {k: v for k, v in _v2().items() if k != b"a"}, {**_v2(), b"v": b"3"},
])
def test_bad_v2_entries_are_refused_whole(fields: dict[bytes, bytes]) -> None:
    assert decode_events(fields) is None


def test_v2_port_none_and_kinds() -> None:
    _, out, _ = decode_events(_v2(n=2, port=NO_PORT, kp=5))  # type: ignore[misc]
    assert [(e.local_port, e.kind, e.proto) for e in out] == [
        (None, Kind.ICMP6_PORT_UNREACH, "udp")] * 2


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
    {"v": "1", "n": "A" * 65, "e": ""}, {"v": "1", "n": "A"}, {"v": "3", "n": "A", "e": ""},
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
