"""model.parse_target: the one parser of block targets (an address or a prefix)."""

from __future__ import annotations

import argparse
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanguard_ids.commands.control_cmds import _ip
from scanguard_ids.daemon import _valid_ip
from scanguard_ids.errors import ControlError
from scanguard_ids.model import ip_packed, ip_text, parse_ip, parse_target


@pytest.mark.parametrize(("text", "want"), [
    ("192.0.2.7", ipaddress.ip_address("192.0.2.7")),
    (" 2001:0DB8::7 ", ipaddress.ip_address("2001:db8::7")),
    ("::ffff:192.0.2.7", ipaddress.ip_address("192.0.2.7")),
    ("192.0.2.7/32", ipaddress.ip_address("192.0.2.7")),
    ("2001:db8::7/128", ipaddress.ip_address("2001:db8::7")),
    ("::ffff:192.0.2.7/128", ipaddress.ip_address("192.0.2.7")),
    ("2001:db8:1:2::/64", ipaddress.ip_network("2001:db8:1:2::/64")),
    ("2001:DB8:1:2:0:0::/64", ipaddress.ip_network("2001:db8:1:2::/64")),
    ("198.51.100.0/24", ipaddress.ip_network("198.51.100.0/24")),
    ("::ffff:198.51.100.0/120", ipaddress.ip_network("198.51.100.0/24")),
    ("10.0.0.0/8", ipaddress.ip_network("10.0.0.0/8")),
    ("2001:db8::/32", ipaddress.ip_network("2001:db8::/32")),
])
def test_parse_target(text: str, want: object) -> None:
    assert parse_target(text) == want


@pytest.mark.parametrize(("text", "why"), [
    ("2001:db8:1:2::9/64", "host bits set in '2001:db8:1:2::9/64': the network is "
                           "2001:db8:1:2::/64"),
    ("192.0.2.7/24", "host bits set"),
    ("10.0.0.0/7", r"prefix too wide: 10.0.0.0/7 \(at most /8 for IPv4\)"),
    ("2001::/16", "prefix too wide"),
    ("0.0.0.0/0", "prefix too wide"),
    ("192.0.2.0/33", "not an IP address or network"),
    ("example.org/24", "not an IP address or network"),
    ("example.org", "not an IP address"),
    ("", "not an IP address"),
])
def test_parse_target_refuses(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_target(text)


def test_parse_ip_still_refuses_prefixes() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        parse_ip("2001:db8::/64")


def test_control_paths_accept_prefixes() -> None:
    assert _ip("2001:db8:1:2::/64") == "2001:db8:1:2::/64"
    assert _valid_ip("198.51.100.0/24") == "198.51.100.0/24"
    assert _valid_ip("192.0.2.7/32") == "192.0.2.7"
    with pytest.raises(argparse.ArgumentTypeError, match="host bits"):
        _ip("2001:db8::1/64")
    with pytest.raises(ControlError, match="prefix too wide"):
        _valid_ip("2000::/8")


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.ip_addresses(v=6), st.ip_addresses(v=4),
                 st.binary(min_size=6, max_size=6).map(
                     lambda b: ipaddress.IPv6Address(bytes(10) + b))))
def test_ip_text_is_parse_ip_spelled(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """The hot paths' C spelling equals parse_ip's, in every written form (incl. ::a.b.c.d,
    ::ffff:a.b.c.d, upper case, exploded)."""
    for text in {str(addr), addr.exploded, str(addr).upper()}:
        assert ip_text(text) == str(parse_ip(text))
    assert ip_text("not-an-ip") is None and ip_text("192.0.2.01") is None
    assert ip_text("2001:db8::1\0") is None


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.ip_addresses(v=6), st.ip_addresses(v=4),
                 st.binary(min_size=6, max_size=6).map(
                     lambda b: ipaddress.IPv6Address(bytes(10) + b))))
def test_ip_packed_is_ipaddress_or_no_answer(
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """The decoder's fast address path (eve/decode.py _addr) answers exactly as ipaddress, or
    leaves the text to it; every plain form but the zero-prefixed ones gets an answer."""
    for text in {str(addr), addr.exploded, str(addr).upper()}:
        ip = ipaddress.ip_address(text)
        got = ip_packed(text)
        assert got is None or got == (str(ip), ip.packed)
        assert got is not None or (ip.version == 6 and ip.packed.startswith(bytes(10)))
    for bad in ("not-an-ip", "192.0.2.01", "2001:db8::1\0", "fe80::1%eth0", "", "1.2.3"):
        assert ip_packed(bad) is None


def test_the_decoder_spells_addresses_as_ipaddress_does() -> None:
    from scanguard_ids import config
    from scanguard_ids.eve.decode import Decoder

    dec = Decoder(config.sid_set(config.Config()))
    for text in ("192.0.2.7", "2001:DB8::1", "2001:0db8:0000::0001", "::ffff:192.0.2.7",
                 "::192.0.2.7", "fe80::1%eth0", "::1"):
        ip = ipaddress.ip_address(text)
        assert dec._addr(text) == (str(ip), ip.packed)
    assert dec._addr("192.0.2.01") is None and dec._addr("garbage") is None
