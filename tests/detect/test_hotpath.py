"""The hot path's short cuts change nothing: the allowlist's first-octet answer agrees with
``ipaddress``, a flood leaves the allowlist cache alone, and calling ``_advance`` only when
something is due drops the same state at the same moment as calling it on every new newest."""

from __future__ import annotations

import gc
import ipaddress
import math
import random
import socket
from collections.abc import Callable

import pytest

from scanguard_ids.config import DetectConfig
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.detector import Detector
from scanguard_ids.model import Kind, ResponseEvent

NETS = ["127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "0.0.0.0/32", "255.255.255.255/32",
        "203.0.113.64/26", "::ffff:198.51.100.0/120", "2001:db8:1:2::99", "fe80::/10"]


def _reference(nets: list[str], ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    mapped = addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) else None
    for n in map(ipaddress.ip_network, nets):
        if addr.version == n.version and addr in n:
            return True
        if mapped is not None and n.version == 4 and mapped in n:
            return True  # ::ffff:a.b.c.d matches the IPv4 networks too
    return False


def _texts(rng: random.Random) -> list[str]:
    out = ["127.0.0.1", "0127.0.0.1", "127.1", "127.0.0.1 ", " 127.0.0.1", "1270.0.0.1",
           "12.7.0.0.1", "127", "127.", ".127.0.0.1", "0.0.0.0", "00.0.0.0", "255.255.255.255",
           "225.1.2.3", "239.255.255.255", "240.0.0.1", "169.254.9.9", "169.253.9.9",
           "203.0.113.64", "203.0.113.63", "::ffff:127.0.0.1", "::ffff:198.51.100.7",
           "198.51.100.7", "2001:db8:1:2::99", "fe80::1%eth0", "", "garbage", "1.2.3.4\x00"]
    for _ in range(3000):
        o = [rng.choice([0, 1, 127, 169, 203, 224, 239, 240, 255, rng.randrange(256)])
             for _ in range(4)]
        text = ".".join(map(str, o))
        out.append(text)
        out.append(rng.choice(["0", "00", "+", " "]) + text)
    return out


def test_first_octet_answers_agree_with_ipaddress() -> None:
    allow = Allowlist(NETS)
    for ip in _texts(random.Random(5)):
        want = _reference(NETS, ip)
        assert (ip in allow) is want, ip
        assert (ip in allow) is want, ip  # and once cached


def test_inet_pton_takes_only_canonical_first_octets() -> None:
    """What Allowlist.heads4 rests on: a text that parses as IPv4 starts with str(octet)."""
    for head in [*map(str, range(1000)), *(f"0{i}" for i in range(300)), "+1", "-1", " 1"]:
        try:
            packed = socket.inet_pton(socket.AF_INET, head + ".1.2.3")
        except OSError:
            continue
        assert str(packed[0]) == head


@pytest.mark.parametrize(("remote", "local", "again", "hit"), [
    (lambda i: f"198.18.{i >> 8}.{i & 255}", "192.0.2.1", "198.18.0.1", "127.0.0.1"),
    (lambda i: f"2001:db8:{i:x}::1", "2001:db8:ffff::1", "2001:db8:1::1", "fe80::1"),
], ids=["ipv4", "ipv6"])
def test_a_flood_of_fresh_sources_leaves_the_cache_alone(
        remote: Callable[[int], str], local: str, again: str, hit: str) -> None:
    det = Detector(DetectConfig(), allow := Allowlist(NETS, cache_size=100))
    for i in range(3000):
        det.feed(ResponseEvent(1e9 + i / 1000, remote(i), local, 22, "tcp", Kind.TCP_RST))
    assert len(allow._cache) == 0
    det.feed(ResponseEvent(1e9 + 4, again, local, 23, "tcp", Kind.TCP_RST))
    assert allow.known(again) is False  # seen again: cached
    assert det.feed(ResponseEvent(1e9 + 5, hit, local, 23, "tcp", Kind.TCP_RST)) is None
    assert det.stats.allowlisted == 1
    assert allow.known(hit) is True  # a hit is cached at once


def _stream(rng: random.Random, n: int) -> list[ResponseEvent]:
    pool = [f"198.51.100.{i}" for i in range(1, 40)] + \
        [f"2001:db8:{rng.randrange(3):x}::{rng.randrange(1, 6):x}" for _ in range(20)]
    t, out = 1_700_000_000.0, []
    for i in range(n):
        t += rng.choice([0.0, 0.2, 1.0, 5.0, 40.0, 200.0]) if rng.random() < 0.3 else 0.05
        ts = t - rng.random() * rng.choice([0, 0, 0, 1, 5, 31, 95, 200])
        remote = f"100.64.{i >> 8 & 255}.{i & 255}" if rng.random() < 0.15 else rng.choice(pool)
        port = rng.choice([None, 22, 80, 443, 1000, 1001, rng.randrange(1, 65536)])
        out.append(ResponseEvent(ts, remote, f"192.0.2.{rng.randrange(1, 7)}", port, "tcp",
                                 rng.choice(list(Kind)), 1, rng.choice(["", "a"])))
    return out


def _check_due(det: Detector) -> None:
    """What makes the lazy _advance exact: no watermark above what it stands for."""
    if det._tracked:
        assert det._due <= next(iter(det._tracked.values()))[-1][0]
    live = [i for k, i in zip(det._single_keys, det._single_items, strict=True)
            if det._singles.get(k) is i]
    if live:  # the oldest single (arrival order)
        assert det._due <= live[0][0]
    if det._heap:
        assert det._due <= det._heap[0][0]
    if det._fresh:
        assert det._due <= det._fresh[0].trigger
    slow = det._slow
    if slow is not None and slow.records:
        assert slow.due <= next(iter(slow.records.values()))[-1][0]


def _state(det: Detector) -> tuple[object, ...]:
    slow = det._slow
    return (det.stats, list(det._tracked.items()), list(det._singles.items()), sorted(det._blocks),
            None if slow is None else (list(slow.records.items()), list(slow._once_items)))


@pytest.mark.parametrize("over", [
    {}, {"max_tracked": 9, "slow_max_tracked": 4}, {"slow": "off"}, {"count": 1, "ports": 1},
    {"window": 5.0, "reorder": 2.0, "ttl": 10, "slow_window": 60.0, "slow_count": 3},
])
def test_advance_when_due_equals_advance_on_every_new_newest(over: dict[str, object]) -> None:
    cfg = DetectConfig(**over)  # type: ignore[arg-type]
    lazy, eager = Detector(cfg, Allowlist()), Detector(cfg, Allowlist())
    for seed in range(6):
        rng = random.Random(seed)
        for i, ev in enumerate(_stream(rng, 1500)):
            eager._due = -math.inf  # as before the watermark: every new newest advances
            if eager._slow is not None:
                eager._slow.due = -math.inf
            assert lazy.feed(ev) == eager.feed(ev)
            _check_due(lazy)
            if i % 7 == 0:
                assert _state(lazy) == _state(eager)
            if i % 211 == 0:
                assert lazy.expire(ev.ts) == eager.expire(ev.ts)
            if i % 307 == 0:
                lazy.release(ev.remote)
                eager.release(ev.remote)
                _check_due(lazy)


def test_evidence_leaves_the_collectors_lists() -> None:
    det = Detector(DetectConfig(), Allowlist())
    det.feed(ResponseEvent(1e9, "198.51.100.1", "192.0.2.1", 22, "tcp", Kind.TCP_RST))
    gc.collect()
    gc.collect()
    assert not gc.is_tracked(det._singles["198.51.100.1"])
