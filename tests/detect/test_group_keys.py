"""IPv6 prefix groups held compactly (a short str key, the host bits as an int): everything
the detector names - decisions, block state, the watch list, release/adopt - is the same text
as when the group key was its CIDR and each piece of evidence kept the address text."""

from __future__ import annotations

import ipaddress
import random
import sys

import pytest

from scanguard_ids.config import DetectConfig
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.detector import Detector, _address, _cidr_text, _key_of
from scanguard_ids.model import Kind, ResponseEvent

T0 = 1_700_000_000.0
PREFIXES = [16, 32, 47, 48, 56, 60, 64, 80, 96, 112, 127]


def ev(ts: float, remote: str, port: int = 22, local: str = "192.0.2.1") -> ResponseEvent:
    return ResponseEvent(ts, remote, local, port, "tcp", Kind.TCP_RST, 9_400_000, "")


def _addresses(rng: random.Random, n: int) -> list[str]:
    """Canonical texts (as the decoder and the fleet codec give them), zero runs anywhere."""
    out = [str(ipaddress.IPv6Address(a)) for a in (
        "::1", "::", "::ffff:1.2.3.4", "::1.2.3.4", "2001:db8::", "ffff:ffff::1",
        "2001:db8:1:2:3:4:5:6", "fe80::1:0:0:1")]
    for _ in range(n):
        words = [rng.choice([0, 0, 1, 0xFFFF, rng.randrange(65536)]) for _ in range(8)]
        out.append(str(ipaddress.IPv6Address(int("".join(f"{w:04x}" for w in words), 16))))
    return out


@pytest.mark.parametrize("prefix6", PREFIXES)
def test_key_and_host_give_back_the_address_and_the_cidr(prefix6: int) -> None:
    det = Detector(DetectConfig(prefix6=prefix6), Allowlist(()))
    for ip in _addresses(random.Random(prefix6), 300):
        key, host = det._group(ip)
        assert "/" in key and ":" not in key and "." not in key  # never an address's text
        assert _cidr_text(key) == str(ipaddress.IPv6Network((ip, prefix6), strict=False))
        assert _address(key, host) == ip
        assert _key_of(_cidr_text(key)) == key


def test_a_group_key_is_smaller_than_its_cidr_and_evidence_keeps_no_text() -> None:
    det = Detector(DetectConfig(), Allowlist(()))
    ip = "2001:db8:abcd:1234:e220:a839:7b1d:cdaf"
    det.feed(ev(T0, ip))
    (key, item), = det._singles.items()
    assert sys.getsizeof(key) < sys.getsizeof("2001:db8:abcd:1234::/64")
    assert isinstance(item, tuple) and item[3] == 0xE220A8397B1DCDAF


def test_key_of_keeps_other_texts() -> None:
    for text in ("192.0.2.7", "2001:db8::1", "198.51.100.0/24", "2001:DB8:1:2::/64",
                 "2001:db8:1:2::1/64", "2001:db8::1/128", "junk/64:"):
        assert _key_of(text) == text


@pytest.mark.parametrize("prefix6", [48, 64, 96])
def test_decisions_name_the_fed_address_or_the_cidr(prefix6: int) -> None:
    rng = random.Random(prefix6 + 1)
    for ip in _addresses(rng, 60):
        det = Detector(DetectConfig(prefix6=prefix6), Allowlist(()))
        out = [det.feed(ev(T0 + i, ip, port=1000 + i)) for i in range(3)]
        assert out[:2] == [None, None] and out[2] is not None
        assert out[2].ip == ip, ip
        assert det.blocked_until(ip) is not None
    net = ipaddress.IPv6Network(("2001:db8:7:8::", prefix6), strict=False)
    peers = [str(net.network_address + 1), str(net.broadcast_address - 1)]
    det = Detector(DetectConfig(prefix6=prefix6), Allowlist(()))
    out = [det.feed(ev(T0 + i, peers[i % 2], port=1000 + i)) for i in range(3)]
    assert out[2] is not None and out[2].ip == str(net)
    # a later response from a third address in the blocked prefix is suppressed
    assert det.feed(ev(T0 + 5, str(net.network_address + 9), port=2000)) is None
    assert det.stats.suppressed == 1


def test_release_and_adopt_of_a_cidr_drop_the_groups_evidence() -> None:
    for drop in ("release", "adopt"):
        det = Detector(DetectConfig(), Allowlist(()))
        assert det.feed(ev(T0, "2001:db8:1:2::a", port=1)) is None
        assert det.feed(ev(T0 + 1, "2001:db8:1:2::b", port=2)) is None
        if drop == "release":
            det.release("2001:db8:1:2::/64")
        else:
            det.adopt("2001:db8:1:2::/64", T0 + 2)
        assert det.stats.tracked == 0
        # release forgets the slow-tier record too; adopt leaves it (as for an address)
        assert det.stats.slow_tracked == (0 if drop == "release" else 1)
        assert det.feed(ev(T0 + 3, "2001:db8:1:2::c", port=3)) is None  # nothing to add up
    kept = Detector(DetectConfig(), Allowlist(()))
    kept.feed(ev(T0, "2001:db8:1:2::a", port=1))
    kept.feed(ev(T0 + 1, "2001:db8:1:2::b", port=2))
    d = kept.feed(ev(T0 + 3, "2001:db8:1:2::c", port=3))
    assert d is not None and d.ip == "2001:db8:1:2::/64"


def test_watch_list_names_the_groups_cidr() -> None:
    det = Detector(DetectConfig(), Allowlist(()))
    det.feed(ev(T0, "2001:db8:1:2::a", port=1))
    det.feed(ev(T0 + 1, "2001:db8:1:2::b", port=2))
    det.feed(ev(T0 + 1, "2001:db8:9:9::1", port=2))
    det.feed(ev(T0 + 1, "192.0.2.77", port=2))
    names = {w.ip for w in det.snapshot(T0 + 2).watching}
    assert names == {"2001:db8:1:2::/64", "2001:db8:9:9::/64", "192.0.2.77"}


def test_the_table_of_group_block_names_stays_bounded_and_follows_the_blocks() -> None:
    det = Detector(DetectConfig(max_tracked=50), Allowlist(()))
    for i in range(3000):  # each /64 blocked by its CIDR (two addresses), block state capped
        net = ipaddress.IPv6Network(((0x20010DB8 << 96) | (i << 64), 64))
        d = None
        for k, port in enumerate((1, 2, 3)):
            d = det.feed(ev(T0 + i * 0.001, str(net.network_address + k % 2 + 1), port=port))
        assert d is not None and d.ip == str(net)
        assert len(det._group_names) <= 2 * len(det._blocks) + 1024
    assert det.stats.blocked <= 50
    # the last group is still blocked (found through its key), the first one's block is gone
    assert det.feed(ev(T0 + 4, "2001:db8:0:bb7:1:2:3:4", port=9)) is None
    assert det.stats.suppressed == 1
    for port in (1, 2):
        det.feed(ev(T0 + 4, "2001:db8::5", port=port))
    d = det.feed(ev(T0 + 4, "2001:db8::6", port=3))
    assert d is not None and d.ip == "2001:db8::/64"
