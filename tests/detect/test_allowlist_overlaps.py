"""Allowlist.overlaps: a prefix to block must not cover an allowlisted address."""

from __future__ import annotations

import ipaddress

import pytest

from scanguard_ids.detect.allowlist import Allowlist

ALLOW = Allowlist(["192.0.2.7", "2001:db8:1::/48", "::ffff:203.0.113.0/120", "198.51.100.0/24"])


@pytest.mark.parametrize(("net", "hit"), [
    ("192.0.2.0/24", True),  # contains an allowlisted address
    ("192.0.2.0/30", False),  # .0-.3: not .7
    ("2001:db8:1:2::/64", True),  # inside an allowlisted network
    ("2001:db8::/32", True),  # contains one
    ("2001:db8:2::/64", False),
    ("203.0.113.128/25", True),  # an IPv4-mapped allowlist entry covers IPv4 prefixes
    ("198.51.100.128/25", True),
    ("10.0.0.0/8", False),
])
def test_overlaps(net: str, hit: bool) -> None:
    assert ALLOW.overlaps(net) is hit
    assert ALLOW.overlaps(ipaddress.ip_network(net)) is hit


def test_empty_allowlist_overlaps_nothing() -> None:
    assert not Allowlist().overlaps("2001:db8::/32")


def test_families_never_mix() -> None:
    assert not Allowlist(["::/0"]).overlaps("192.0.2.0/24")
    assert not Allowlist(["0.0.0.0/0"]).overlaps("2001:db8::/64")
