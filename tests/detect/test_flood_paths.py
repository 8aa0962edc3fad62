"""The flood-cheap paths give what the plain formulas give: decisions and slow-tier victims."""

from __future__ import annotations

import dataclasses
import math
import random
from collections import OrderedDict
from typing import Any

import pytest

from scanguard_ids.detect.detector import _NO_PORT, _decision, _first_window, _targets
from scanguard_ids.detect.offenders import Strike
from scanguard_ids.detect.slow import _least
from scanguard_ids.model import Decision, decision_of


def _reference_decision(ip: str, window: list[Any], ts: float, strike: Strike, tier: str,
                        rule: str, detect_only: bool) -> Decision:
    """_decision as it was written before the one-tag shortcut."""
    ports = tuple(sorted({e[1] for e in window} - {_NO_PORT}))
    hosts = tuple(sorted({e[2][2] for e in window if e[1] != _NO_PORT}))
    kinds = tuple(sorted({str(e[2][0]) for e in window}))
    sensors = tuple(sorted({e[2][1] for e in window} - {""}))
    first, last = window[0][0], window[-1][0]
    no_port = sum(1 for e in window if e[1] == _NO_PORT)
    reason = (
        f"{len(window)} responses to {len(ports)} port{'s' if len(ports) != 1 else ''}"
        f"{f' (+{no_port} without port)' if no_port else ''}"
        f"{f' on {len(hosts)} hosts' if len(hosts) > 1 else ''}"
        f" in {last - first:.1f}s ({', '.join(kinds)})"
    )
    if tier == "slow":
        reason += "; slow tier"
    if detect_only:
        reason += "; detect only"
    if strike.strikes > 1:
        reason += f"; strike {strike.strikes}"
    return Decision(ts=ts, action="block", ip=ip, ttl=strike.ttl, count=len(window),
                    ports=ports, reason=reason, first_seen=first, last_seen=last,
                    strikes=strike.strikes, sensors=sensors, kinds=kinds, hosts=hosts,
                    tier=tier, rule=rule, detect_only=detect_only, provenance="responses")


@pytest.mark.parametrize("seed", range(5))
def test_decision_fields_match_the_plain_formulas(seed: int) -> None:
    rng = random.Random(seed)
    tags = [(k, s, h) for k in ("tcp-rst", "icmp-port-unreach") for s in ("", "a", "b")
            for h in ("192.0.2.1", "192.0.2.2", "2001:db8::1")]
    for _ in range(2000):
        shared = rng.sample(tags, rng.choice([1, 1, 1, 2, 3]))
        t = 1_700_000_000.0
        window = []
        for _ in range(rng.randint(1, 8)):
            t += rng.choice([0.0, 0.5, 3.0])
            port = rng.choice([_NO_PORT, 22, 80, 80, 443, rng.randrange(65536)])
            tag = rng.choice(shared)
            window.append((t, port, tag) if rng.random() < 0.7 else (t, port, tag, "x"))
        args = ("203.0.113.7", window, t, Strike(rng.randint(1, 3), 300),
                rng.choice(["fast", "slow"]), rng.choice(["ports", "hosts"]),
                rng.random() < 0.2)
        assert _decision(*args) == _reference_decision(*args)


def test_least_selects_what_the_stable_sort_selects() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        records: OrderedDict[str, list[Any]] = OrderedDict()
        for i in range(rng.randint(1, 40)):
            times = sorted(float(rng.randint(0, 6)) for _ in range(rng.randint(1, 4)))
            records[f"198.51.100.{i}"] = [(x, 22, ("tcp-rst", "", "192.0.2.1")) for x in times]
        for k in rng.sample(list(records), len(records) // 2):
            records.move_to_end(k)  # the order fed differs from the order stored
        n = rng.randint(1, len(records))
        want = sorted(records, key=lambda k: (len(records[k]), records[k][-1][0]))[:n]
        got = _least(records, n)
        assert len(got) == n and set(got) == set(want)


def test_decision_of_builds_an_ordinary_frozen_decision() -> None:
    values = (1.5, "block", "203.0.113.7", 300, 3, (22, 80), "3 responses", 1.0, 1.5, 2,
              ("a",), False, ("tcp-rst",), "", ("192.0.2.1",), "fast", "ports", False,
              "responses", "")
    names = [f.name for f in dataclasses.fields(Decision)]
    assert len(values) == len(names)
    plain = Decision(**dict(zip(names, values, strict=True)))
    fast = decision_of(*values)
    assert type(fast) is Decision
    assert fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain)
    assert fast.to_dict() == plain.to_dict()
    assert dataclasses.replace(fast, ttl=600) == dataclasses.replace(plain, ttl=600)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.ip = "198.51.100.1"  # type: ignore[misc]
    assert decision_of(1.0, "block", "203.0.113.8") == Decision(1.0, "block", "203.0.113.8")


def _reference_first_window(st: list[Any], ts: float, limit: float, window: float, count: int,
                            ports: int, hosts: int) -> tuple[int, int, str] | None:
    """Every window ending at an event time in [ts, min(ts + window, limit)), earliest
    first: [first event >= end - window, last event at end]."""
    for end in sorted({e[0] for e in st}):
        if end < ts:
            continue
        if end - ts > window or end >= limit:
            return None
        lo = min(i for i, e in enumerate(st) if e[0] >= end - window)
        hi = max(i for i, e in enumerate(st) if e[0] == end) + 1
        if hi - lo >= count:
            rule = _targets(st, lo, hi, ports, hosts)
            if rule:
                return lo, hi, rule
    return None


@pytest.mark.parametrize("seed", range(4))
def test_first_window_finds_what_every_window_in_turn_finds(seed: int) -> None:
    """Includes the short cut for a list no longer than the count (a flood's 3 of 3)."""
    rng = random.Random(seed)
    tags = [("tcp-rst", "", h) for h in ("192.0.2.1", "192.0.2.2")]
    for _ in range(4000):
        count = rng.randint(1, 4)
        st = sorted((float(rng.randint(0, 12)), rng.choice([_NO_PORT, 22, 80, 443]),
                     rng.choice(tags)) for _ in range(rng.randint(0, count + 2)))
        ts = float(rng.randint(-1, 13))
        limit = rng.choice([math.inf, float(rng.randint(0, 14))])
        args = (st, ts, limit, float(rng.choice([0, 3, 6, 20])), count, rng.randint(0, 3),
                rng.randint(0, 2))
        assert _first_window(*args) == _reference_first_window(*args), args


def test_least_selects_alike_when_every_record_has_one_length() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        size = rng.randint(1, 3)
        records: OrderedDict[str, list[Any]] = OrderedDict()
        for i in range(rng.randint(1, 30)):
            times = sorted(float(rng.randint(0, 5)) for _ in range(size))
            records[f"198.51.100.{i}"] = [(x, 22, ("tcp-rst", "", "192.0.2.1")) for x in times]
        for k in rng.sample(list(records), len(records) // 3):
            records.move_to_end(k)
        n = rng.randint(1, len(records))
        want = sorted(records, key=lambda k: (len(records[k]), records[k][-1][0]))[:n]
        got = _least(records, n)
        assert len(got) == n and set(got) == set(want)
