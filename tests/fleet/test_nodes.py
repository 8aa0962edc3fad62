"""Fleet mode with a real redis-server: engines (dry-run backends, pinned clocks) sharing
evidence and decisions through it."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from harness import T0, Rig, make_rig, rst

from scanguard_ids import config
from scanguard_ids.fleet.bus import Bus
from scanguard_ids.fleet.node import FleetNode

SCANNER = "203.0.113.7"
LOCAL_A, LOCAL_B = "192.0.2.10", "192.0.2.11"
_prefixes = itertools.count()


@dataclass
class Node:
    rig: Rig
    fleet: FleetNode

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        return self.rig.engine


NodeFactory = Callable[..., Node]


def wait_for(pred: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def prefix() -> str:
    return f"t{next(_prefixes)}-{time.monotonic_ns()}"


@pytest.fixture
def nodes(tmp_path: Path, redis_server, prefix: str) -> Iterator[NodeFactory]:  # type: ignore[no-untyped-def]
    made: list[Node] = []

    def make(name: str, url: str = "", cfg: config.Config | None = None,
             wait: bool = True, publish: bool = True) -> Node:
        cfg = (cfg or config.Config()).replace("fleet", url=url or redis_server.url)
        rig = make_rig(tmp_path / name, cfg, kernel_stand_in=True)
        bus = Bus(url or redis_server.url, prefix)
        fleet = FleetNode(rig.engine, cfg.fleet, bus, rig.clock, name, publish=publish)
        fleet.attach()
        fleet.start()
        node = Node(rig, fleet)
        made.append(node)
        if wait:
            assert fleet.ready.wait(10), f"node {name} did not reach redis"
        return node

    try:
        yield make
    finally:
        for n in made:
            n.fleet.stop()
            n.engine.journal.close()


def test_evidence_adds_up_across_nodes(nodes: NodeFactory) -> None:
    a, b = nodes("A"), nodes("B")
    a.rig.feed(rst(SCANNER, 21, T0, LOCAL_A), rst(SCANNER, 22, T0 + 0.1, LOCAL_A))
    b.rig.feed(rst(SCANNER, 23, T0 + 0.2, LOCAL_B))
    wait_for(lambda: SCANNER in a.rig.blocked() and SCANNER in b.rig.blocked(),
             "2 responses at A + 1 at B to block at both")
    # One node decides on the union; the other may get that decision from the decision
    # stream a moment before the last evidence entry: both count all three in the end.
    wait_for(lambda: a.engine.counters["responses"] == 3 and b.engine.counters["responses"] == 3,
             "both nodes to count all three responses")
    assert a.engine.counters["responses"] == 3 and b.engine.counters["responses"] == 3


def test_own_events_are_not_counted_twice(nodes: NodeFactory) -> None:
    a, b = nodes("A"), nodes("B")
    a.rig.feed(rst(SCANNER, 21, T0, LOCAL_A), rst(SCANNER, 22, T0 + 0.1, LOCAL_A))
    wait_for(lambda: b.engine.counters["fleet_events"] == 2, "B to read A's evidence")
    time.sleep(0.3)  # A's reader has had its own entry back by now
    assert a.engine.counters["responses"] == 2
    assert a.fleet.counters["fleet_events_in"] == 0
    assert not a.rig.blocked() and not b.rig.blocked()


def test_same_packet_at_two_sensors_counts_once(nodes: NodeFactory) -> None:
    a, b = nodes("A"), nodes("B")
    both = (rst(SCANNER, 21, T0, LOCAL_A), rst(SCANNER, 22, T0 + 0.1, LOCAL_A))
    a.rig.feed(*both)
    b.rig.feed(*both)
    wait_for(lambda: a.engine.counters["duplicates"] + b.engine.counters["duplicates"] >= 2,
             "the other sensor's copies to be recognised")
    time.sleep(0.3)
    assert a.engine.counters["responses"] == 2 and b.engine.counters["responses"] == 2
    assert not a.rig.blocked() and not b.rig.blocked()


def test_block_at_a_is_listed_by_b_and_unblock_converges(nodes: NodeFactory,
                                                         redis_server, prefix: str) -> None:  # type: ignore[no-untyped-def]
    a, b = nodes("A"), nodes("B")
    a.engine.manual_block(SCANNER, 120)
    wait_for(lambda: SCANNER in b.rig.blocked(), "A's block at B")
    row = b.engine.snapshot().blocked[0]
    assert (row.ip, row.node, row.manual) == (SCANNER, "A", True)
    assert b.rig.journal()[-1]["node"] == "A" and a.rig.journal()[-1]["node"] == "A"
    assert b.engine.offenders.strikes(SCANNER, T0) == 1
    r = redis.Redis.from_url(redis_server.url)
    assert 0 < r.pttl(f"{prefix}:block:{SCANNER}") <= 120_000
    b.engine.manual_unblock(SCANNER)
    wait_for(lambda: SCANNER not in a.rig.blocked(), "B's unblock at A")
    assert r.exists(f"{prefix}:block:{SCANNER}") == 0
    assert a.rig.journal()[-1]["action"] == "unblock" and a.rig.journal()[-1]["node"] == "B"
    time.sleep(0.2)
    assert b.fleet.counters["fleet_decisions_in"] == 1  # A did not send B's unblock back


def test_fleet_block_carries_strikes(nodes: NodeFactory) -> None:
    a, b = nodes("A"), nodes("B")
    for i in range(3):
        a.engine.offenders.offend(SCANNER, T0 - 10 + i)  # third offence pending at A
    a.rig.feed(*(rst(SCANNER, p, T0 + p / 100, LOCAL_A) for p in (21, 22, 23)))
    wait_for(lambda: SCANNER in b.rig.blocked(), "A's block at B")
    # B records the strike right after its backend took the block (under its engine lock)
    with b.engine.lock:
        assert b.engine.evidence[SCANNER].strikes == 4
        assert b.engine.offenders.strikes(SCANNER, T0) == 4
    assert b.engine.evidence[SCANNER].ttl == a.engine.evidence[SCANNER].ttl == 300 * 8


def test_late_joiner_applies_every_active_block(nodes: NodeFactory) -> None:
    a = nodes("A")
    a.engine.manual_block("203.0.113.8", 60)
    a.engine.manual_block("203.0.113.9", 90)
    a.engine.manual_block("198.51.100.0/24", 90)
    a.engine.manual_unblock("203.0.113.9")
    wait_for(lambda: a.fleet.counters["fleet_decisions_out"] == 4, "A to publish")
    c = nodes("C")
    assert c.rig.blocked() == {"203.0.113.8", "198.51.100.0/24"}
    left = {b.ip: b.expires for b in c.rig.backend.list()}
    assert left["203.0.113.8"] == pytest.approx(T0 + 60, abs=1.5)


def test_allowlisted_address_is_never_blocked_via_the_fleet(nodes: NodeFactory) -> None:
    a = nodes("A")
    cfg_b = config.Config().replace(
        "detect", allowlist=(*config.DEFAULT_ALLOWLIST, f"{SCANNER}/32"))
    b = nodes("B", cfg=cfg_b)
    a.rig.feed(*(rst(SCANNER, p, T0 + p / 100, LOCAL_A) for p in (21, 22, 23)))
    wait_for(lambda: b.engine.counters["fleet_refused"] == 1, "B to refuse A's block")
    assert SCANNER in a.rig.blocked() and not b.rig.blocked()


def test_garbage_is_counted_and_skipped(nodes: NodeFactory, redis_server, prefix: str) -> None:  # type: ignore[no-untyped-def]
    r = redis.Redis.from_url(redis_server.url)
    r.set(f"{prefix}:block:1.2.3.4", b"{not json")
    b = nodes("B")
    assert b.fleet.counters["fleet_garbage"] == 1
    r.xadd(f"{prefix}:events", {"v": "1", "n": "X", "e": "1|2|3"})  # bad line
    r.xadd(f"{prefix}:events", {"v": "9", "n": "X", "e": ""})  # unknown version
    r.xadd(f"{prefix}:decisions", {"d": b'{"v":1,"a":"block","ip":"nope"}'})
    r.xadd(f"{prefix}:decisions", {"d": b"\xff\xfe"})
    r.xadd(f"{prefix}:events", {"v": "1", "n": "X",
                                "e": f"{T0}|{SCANNER}|{LOCAL_A}|21|rt\n{T0}|{SCANNER}|x|1|rt"})
    wait_for(lambda: b.engine.counters["fleet_events"] == 1, "the valid event after garbage")
    assert b.fleet.counters["fleet_garbage"] == 6
    assert b.engine.counters["responses"] == 1 and not b.rig.blocked()


def test_v2_garbage_is_counted_and_v1_still_read(nodes: NodeFactory, redis_server,  # type: ignore[no-untyped-def]
                                                 prefix: str) -> None:
    """A node reads the compact entries (v2) and an older node's text lines (v1) alike."""
    from scanguard_ids.fleet.codec import encode_events, encode_events_v1
    from scanguard_ids.model import Kind, ResponseEvent

    r = redis.Redis.from_url(redis_server.url)
    b = nodes("B")
    ev = [ResponseEvent(T0 + p / 100, SCANNER, LOCAL_A, p, "tcp", Kind.TCP_RST) for p in (21, 22)]
    good = encode_events(ev[:1], "X")
    r.xadd(f"{prefix}:events", {**good, "e": good["e"][:-1]})  # type: ignore[arg-type,index]
    r.xadd(f"{prefix}:events", {**good, "a": "nope"})  # type: ignore[arg-type]
    r.xadd(f"{prefix}:events", good)  # type: ignore[arg-type]
    r.xadd(f"{prefix}:events", encode_events_v1(ev[1:], "Y"))  # type: ignore[arg-type]
    wait_for(lambda: b.engine.counters["fleet_events"] == 2, "the valid entries after garbage")
    assert b.fleet.counters["fleet_garbage"] == 2
    assert b.engine.counters["responses"] == 2 and not b.rig.blocked()


def test_redis_down_a_blocks_locally_and_b_gets_it_after(nodes: NodeFactory,
                                                          redis_factory) -> None:  # type: ignore[no-untyped-def]
    srv = redis_factory()
    a, b = nodes("A", url=srv.url), nodes("B", url=srv.url)
    srv.stop()
    a.rig.feed(*(rst(SCANNER, p, T0 + p / 100, LOCAL_A) for p in (21, 22, 23)))
    assert SCANNER in a.rig.blocked()  # detection and blocking never wait for Redis
    a.engine.manual_block("203.0.113.99", 1)  # ends before Redis returns: dropped, not sent
    wait_for(lambda: not a.fleet.connected and not b.fleet.connected, "both to notice")
    a.rig.clock.advance(2)
    b.rig.clock.advance(2)
    srv.start()  # same port, empty: a restarted Redis
    wait_for(lambda: SCANNER in b.rig.blocked(), "A's outage block at B", timeout=15)
    assert "203.0.113.99" not in b.rig.blocked()
    assert a.fleet.counters["fleet_outbox_expired"] == 1
    # connected again: a failure still in flight when Redis came back may report after the
    # resync, and the next successful round trip (at most BLOCK_MS away) shows it again
    wait_for(lambda: a.fleet.health().outbox == 0 and a.fleet.connected, "A connected again",
             timeout=5)


def test_share_policy_and_a_silent_node(nodes: NodeFactory) -> None:
    manual_only = config.Config().replace("fleet", share=("manual",))
    a = nodes("A", cfg=manual_only)
    quiet = nodes("Q", publish=False)  # dry-run / detect-only: publishes nothing
    b = nodes("B")
    a.rig.feed(*(rst(SCANNER, p, T0 + p / 100, LOCAL_A) for p in (21, 22, 23)))
    quiet.rig.feed(rst("203.0.113.77", 21, T0, LOCAL_B))
    quiet.engine.manual_block("203.0.113.78", 60)
    a.engine.manual_block("203.0.113.79", 60)
    wait_for(lambda: "203.0.113.79" in b.rig.blocked(), "A's manual block at B")
    time.sleep(0.3)
    assert b.rig.blocked() == {SCANNER, "203.0.113.79"}  # SCANNER: from A's shared evidence
    assert b.fleet.counters["fleet_decisions_in"] == 1
    assert quiet.fleet.counters["fleet_events_out"] == 0 and b.engine.counters[
        "fleet_events"] == 3
