"""IPv6 prefix groups: the cheap key computation names the same CIDR as ``ipaddress``, and a
repeat client's fast-tier skip (the slow tier's endpoint spread) never hides a block."""

from __future__ import annotations

import ipaddress
import random

import pytest

from scanguard_ids.config import DetectConfig
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.detector import Detector, _key_text
from scanguard_ids.model import Kind, ResponseEvent

T0 = 1_700_000_000.0


def ev(ts: float, remote: str, local: str = "192.0.2.1", port: int = 22) -> ResponseEvent:
    return ResponseEvent(ts, remote, local, port, "tcp", Kind.TCP_RST, 9_400_000, "")


def _addresses(rng: random.Random, n: int) -> list[str]:
    out = ["2001:db8::1", "2001:0:0:1::1", "2001:db8:0:0:1::", "::1", "ffff::", "0:0:1::",
           "2001:db8:1:2:3:4:5:6", "::ffff:1.2.3.4", "1:0:0:1:0:0:0:1"]
    for _ in range(n):  # sparse hextets: zero runs of every length and place
        words = [rng.choice([0, 0, 1, 0xFFFF, rng.randrange(65536)]) for _ in range(8)]
        out.append(str(ipaddress.IPv6Address(int("".join(f"{w:04x}" for w in words), 16))))
    return out


@pytest.mark.parametrize("prefix6", [16, 32, 47, 48, 56, 60, 64, 80, 96, 112])
def test_group_key_is_the_ipaddress_cidr(prefix6: int) -> None:
    det = Detector(DetectConfig(prefix6=prefix6), Allowlist(()))
    for ip in _addresses(random.Random(prefix6), 400):
        want = str(ipaddress.IPv6Network((ip, prefix6), strict=False))
        assert _key_text(det._group(ip)[0]) == want, ip


def test_group_key_of_a_prefix_holding_an_allowlisted_address_is_the_address() -> None:
    det = Detector(DetectConfig(), Allowlist(("2001:db8:1:2::99",)))
    assert det._group("2001:db8:1:2::7") == ("2001:db8:1:2::7", None)
    assert _key_text(det._group("2001:db8:1:3::7")[0]) == "2001:db8:1:3::/64"


def test_repeat_client_then_new_ports_still_blocks() -> None:
    """Many responses on one endpoint (fast check skipped), then two more ports: blocked."""
    det = Detector(DetectConfig(), Allowlist(()))
    out = [det.feed(ev(T0 + i, "203.0.113.9", port=8080)) for i in range(40)]
    assert not any(out)
    d = det.feed(ev(T0 + 40.5, "203.0.113.9", port=22))
    assert d is not None and d.rule == "ports" and d.tier == "fast"


def test_repeat_prefix_group_names_the_one_address() -> None:
    det = Detector(DetectConfig(), Allowlist(()))
    for i in range(10):
        assert det.feed(ev(T0 + i, "2001:db8:5:6::1", port=443)) is None
    d = det.feed(ev(T0 + 10, "2001:db8:5:6::1", port=444))
    assert d is not None and d.ip == "2001:db8:5:6::1"
    for i in range(3):
        det.feed(ev(T0 + 400 + i, f"2001:db8:7:8::{i + 1}", port=1000 + i))
    assert det.blocked_until("2001:db8:7:8::/64") is not None
