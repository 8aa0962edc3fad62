"""The Bus's decision publication against a real redis-server: hiredis-packed and redis-py's
own pipeline write the same keys and entries, and an error reply is a FleetError that leaves
the bus usable."""

from __future__ import annotations

import itertools

import pytest

from scanguard_ids.fleet import bus as bus_mod
from scanguard_ids.fleet.bus import Bus, FleetError
from scanguard_ids.fleet.codec import FleetDecision, decode_decision
from scanguard_ids.model import Decision

T0 = 1_768_489_200.0
_prefixes = itertools.count()


@pytest.fixture(params=["hiredis", "pipeline"])
def bus(request: pytest.FixtureRequest, redis_server, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    if request.param == "pipeline":
        monkeypatch.setattr(bus_mod, "_pack", None)
    elif bus_mod._pack is None:
        pytest.skip("hiredis not installed")
    b = Bus(redis_server.url, f"bustest{next(_prefixes)}")
    try:
        yield b
    finally:
        b.close()


def _fd(ip: str, action: str = "block", ttl: int = 300, now: float = T0, seq: int = 1):  # type: ignore[no-untyped-def]
    return FleetDecision.of(Decision(ts=now, action=action, ip=ip, ttl=ttl, count=3,
                                     ports=(21, 22, 23), reason="r"), "A", now, seq)


def test_decisions_go_to_the_stream_and_block_keys(bus: Bus) -> None:
    r = bus.r
    live, ended, gone = _fd("203.0.113.7"), _fd("203.0.113.8", ttl=1), _fd("203.0.113.9")
    bus.publish_decisions([live, gone], T0)
    bus.publish_decisions([ended, _fd("203.0.113.9", "unblock", 0, T0 + 1, 2)], T0 + 5)
    assert decode_decision(r.get(bus.block_prefix + "203.0.113.7")) == live
    assert 0 < r.pttl(bus.block_prefix + "203.0.113.7") <= 300_000
    assert not r.exists(bus.block_prefix + "203.0.113.8", bus.block_prefix + "203.0.113.9")
    rows = r.xrange(bus.decisions)
    assert [(decode_decision(f[b"d"]).ip, f[b"n"]) for _, f in rows] == [  # type: ignore[union-attr]
        ("203.0.113.7", b"A"), ("203.0.113.9", b"A"), ("203.0.113.8", b"A"),
        ("203.0.113.9", b"A")]
    bus.publish_decisions([], T0)  # nothing to send: no round trip, no error


def test_an_error_reply_is_a_fleet_error_and_the_bus_goes_on(bus: Bus) -> None:
    bus.r.set(bus.decisions, b"not a stream")
    with pytest.raises(FleetError, match="WRONGTYPE"):
        bus.publish_decisions([_fd("203.0.113.7"), _fd("203.0.113.8")], T0)
    bus.r.delete(bus.decisions)
    bus.publish_decisions([_fd("203.0.113.9")], T0)
    assert bus.r.xlen(bus.decisions) == 1
    bus.ping()
