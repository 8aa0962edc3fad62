"""Allowlist lookups (v4, v6, mapped, cache) and reading the host's own addresses."""

from __future__ import annotations

import ipaddress
import logging
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanguard_ids.config import DetectConfig
from scanguard_ids.detect import allowlist as allowlist_mod
from scanguard_ids.detect.allowlist import Allowlist, own_addresses

NETS = ["127.0.0.0/8", "10.0.0.0/8", "192.0.2.1/32", "198.51.100.128/25", "0.0.0.0/32",
        "::1/128", "fe80::/10", "2001:db8:1::/48", "2001:db8::1"]


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("10.200.1.1", True),
        ("11.0.0.1", False),
        ("192.0.2.1", True),
        ("192.0.2.2", False),
        ("198.51.100.127", False),
        ("198.51.100.128", True),
        ("198.51.100.255", True),
        ("0.0.0.0", True),
        ("203.0.113.5", False),
        ("::1", True),
        ("::2", False),
        ("fe80::1", True),
        ("fe80::1%eth0", True),
        ("febf:ffff::1", True),
        ("fec0::1", False),
        ("2001:db8:1:ffff::9", True),
        ("2001:db8:2::9", False),
        ("2001:db8::1", True),
        ("2001:0db8:0000::0001", True),  # any spelling of the same address
        ("2001:db8::2", False),
        ("::ffff:10.1.2.3", True),  # IPv4-mapped: the v4 networks apply
        ("::ffff:203.0.113.5", False),
        ("", False),
        ("not an address", False),
        ("192.0.2.1/32", False),
        ("192.0.2.1\x00", False),
        ("300.1.1.1", False),
    ],
)
def test_membership(ip: str, expected: bool) -> None:
    allow = Allowlist(NETS)
    assert (ip in allow) is expected
    assert (ip in allow) is expected  # cached answer is the same


@pytest.mark.parametrize("value", [None, 7, b"127.0.0.1", ("127.0.0.1",)])
def test_non_strings_are_never_allowlisted(value: object) -> None:
    assert value not in Allowlist(NETS)


def test_empty_and_catch_all() -> None:
    assert "192.0.2.1" not in Allowlist()
    everything = Allowlist(["0.0.0.0/0", "::/0"])
    assert "203.0.113.9" in everything and "2001:db8::9" in everything


def test_network_objects_and_host_bits_are_accepted() -> None:
    allow = Allowlist([ipaddress.ip_network("203.0.113.0/24"), "198.51.100.77/24"])
    assert "203.0.113.200" in allow and "198.51.100.1" in allow
    assert allow.networks == ("203.0.113.0/24", "198.51.100.0/24")
    assert len(allow) == 2


@pytest.mark.parametrize("size", [1, 2, 16])
def test_cache_is_bounded_and_answers_stay_right(size: int) -> None:
    allow = Allowlist(["10.0.0.0/8"], cache_size=size)
    for i in range(200):
        ip = f"10.0.{i}.1" if i % 2 else f"11.0.{i}.1"
        assert (ip in allow) is bool(i % 2)
        assert len(allow._cache) <= size


@pytest.mark.parametrize(
    ("own_flag", "own", "ip", "expected"),
    [
        (True, ["203.0.113.10"], "203.0.113.10", True),
        (True, ["2001:db8::10"], "2001:db8::10", True),
        (True, ["203.0.113.10"], "203.0.113.11", False),
        (False, ["203.0.113.10"], "203.0.113.10", False),
        (True, [], "127.0.0.1", True),  # defaults still apply
        (False, [], "ff02::1", True),
    ],
)
def test_from_config(own_flag: bool, own: list[str], ip: str, expected: bool) -> None:
    cfg = DetectConfig(allow_own_addresses=own_flag)
    assert (ip in Allowlist.from_config(cfg, own)) is expected


addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))
networks = st.one_of(
    st.tuples(st.ip_addresses(v=4), st.integers(0, 32)),
    st.tuples(st.ip_addresses(v=6), st.integers(0, 128)),
).map(lambda t: ipaddress.ip_network(f"{t[0]}/{t[1]}", strict=False))


@given(st.lists(networks, max_size=6), st.lists(addresses, max_size=20))
def test_agrees_with_ipaddress(nets: list, addrs: list) -> None:
    allow = Allowlist(nets)
    for addr in addrs:
        want = any(addr in n for n in nets if n.version == addr.version)
        mapped = getattr(addr, "ipv4_mapped", None)
        if mapped is not None:
            want = want or any(mapped in n for n in nets if n.version == 4)
        assert (str(addr) in allow) is want


def test_own_addresses_of_this_namespace() -> None:
    found = own_addresses()
    assert "127.0.0.1" in found
    for addr in found:
        ipaddress.ip_address(addr)


def test_own_addresses_failure_is_an_empty_list(monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    import pyroute2

    def broken(*_a: object, **_k: object) -> None:
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(pyroute2, "IPRoute", broken)
    with caplog.at_level(logging.WARNING, logger=allowlist_mod.__name__):
        assert own_addresses() == []
    assert "own_addresses error=" in caplog.text


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")
def test_own_addresses_of_a_lab_namespace() -> None:
    from scanguard_ids.lab.netns import victim_scanner

    with victim_scanner("sgal") as pair:
        found = own_addresses(netns=pair.victim.name)
        allow = Allowlist.from_config(DetectConfig(), found)
    assert {"127.0.0.1", "192.0.2.1", "2001:db8::1"} <= set(found)
    assert "192.0.2.2" not in found and "2001:db8::2" not in found
    assert "192.0.2.1" in allow and "2001:db8::1" in allow
    assert "192.0.2.2" not in allow and "2001:db8::2" not in allow
