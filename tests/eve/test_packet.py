"""scanguard_ids.eve.packet: the quoted probe's ports from payloads and whole frames."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether

from scanguard_ids.eve.packet import (
    PROTO_TCP,
    PROTO_UDP,
    ip_offset,
    quoted_from_frame,
    quoted_probe,
)

HOST4, PROBER4 = "192.0.2.10", "198.51.100.7"
HOST6, PROBER6 = "2001:db8::10", "2001:db8:1::7"


def packed(addr: str) -> bytes:
    return ipaddress.ip_address(addr).packed


def probe4(dport: int = 53, l4: type = UDP, **ip: object) -> bytes:
    """What the prober sent: header + 8 bytes of transport, as an ICMP error quotes it."""
    pkt = bytes(IP(src=PROBER4, dst=HOST4, **ip) / l4(sport=40000, dport=dport) / b"probe-data")
    return pkt[: (pkt[0] & 0x0F) * 4 + 8]


def probe6(dport: int = 161, l4: type = UDP, ext: tuple = ()) -> bytes:
    pkt = IPv6(src=PROBER6, dst=HOST6)
    for hdr in ext:
        pkt = pkt / hdr
    return bytes(pkt / l4(sport=40001, dport=dport) / b"probe-data")


def error4(quote: bytes, **ip: object) -> IP:
    return IP(src=HOST4, dst=PROBER4, **ip) / ICMP(type=3, code=3) / quote


def error6(quote: bytes, ext: tuple = ()) -> IPv6:
    pkt = IPv6(src=HOST6, dst=PROBER6)
    for hdr in ext:
        pkt = pkt / hdr
    return pkt / ICMPv6DestUnreach(code=4) / quote


# --- quoted_probe (the alert's payload) ------------------------------------------------------


@pytest.mark.parametrize(
    ("quote", "proto", "src", "dport"),
    [
        (probe4(53), PROTO_UDP, PROBER4, 53),
        (probe4(8080, TCP), PROTO_TCP, PROBER4, 8080),
        (probe4(123, options=[IPOption_NOP()] * 4), PROTO_UDP, PROBER4, 123),
        (probe4(69, options=[IPOption_RR(routers=["192.0.2.1"] * 9)]), PROTO_UDP, PROBER4, 69),
        (probe6(161), PROTO_UDP, PROBER6, 161),
        (probe6(22, TCP), PROTO_TCP, PROBER6, 22),
        (probe6(514, ext=(IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt())), PROTO_UDP, PROBER6, 514),
        (probe6(515, ext=(IPv6ExtHdrFragment(offset=0, m=1),)), PROTO_UDP, PROBER6, 515),
        (probe6(516, ext=(IPv6ExtHdrRouting(addresses=[HOST6]),)), PROTO_UDP, PROBER6, 516),
    ],
    ids=["v4-udp", "v4-tcp", "v4-nop-options", "v4-rr-40-byte-options", "v6-udp", "v6-tcp",
         "v6-hop-dst", "v6-first-fragment", "v6-routing"],
)
def test_quoted_probe(quote: bytes, proto: int, src: str, dport: int) -> None:
    q = quoted_probe(quote)
    assert q is not None
    assert (q.proto, q.src, q.dst_port) == (proto, packed(src), dport)
    assert q.src_port in (40000, 40001)


def test_quoted_probe_at_offset() -> None:
    q = quoted_probe(b"\x00" * 7 + probe4(99), 7)
    assert q is not None and q.dst_port == 99


@pytest.mark.parametrize(
    "quote",
    [
        b"",
        b"\x45",
        bytes(IP(src=PROBER4, dst=HOST4, frag=10) / UDP(dport=53)),  # not the first fragment
        bytes(IPv6(src=PROBER6, dst=HOST6) / IPv6ExtHdrFragment(offset=5) / UDP(dport=5)),
        bytes(IP(src=PROBER4, dst=HOST4) / ICMP()),  # no ports in the quote
        bytes(IPv6(src=PROBER6, dst=HOST6, nh=59)),  # no next header
        b"\x35" + bytes(19),  # IHL 5 but version 3
        b"\x44" + bytes(27),  # IHL 4 < 20 bytes
        b"\x4f" + bytes(30),  # IHL 15 (60 bytes) but only 31 present
        b"\x60" + bytes(30),  # IPv6 shorter than its fixed header
    ],
    ids=["empty", "one-byte", "v4-later-fragment", "v6-later-fragment", "icmp", "v6-no-next",
         "bad-version", "ihl-too-small", "ihl-past-end", "v6-short"],
)
def test_quoted_probe_rejects(quote: bytes) -> None:
    assert quoted_probe(quote) is None


@pytest.mark.parametrize(
    "quote",
    [probe4(53), probe4(53, options=[IPOption_NOP()] * 8),
     probe6(161, ext=(IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(), IPv6ExtHdrFragment()))],
    ids=["v4", "v4-options", "v6-ext"],
)
def test_every_truncation_is_none_not_an_error(quote: bytes) -> None:
    full = quoted_probe(quote)
    assert full is not None
    needed = _ports_end(quote)
    for cut in range(len(quote)):
        got = quoted_probe(quote[:cut])
        assert (got is None) if cut < needed else (got == full)


def _ports_end(quote: bytes) -> int:
    """Offset just past the destination port, found by trying."""
    for cut in range(len(quote) + 1):
        if quoted_probe(quote[:cut]) is not None:
            return cut
    raise AssertionError("never parsed")


def test_ext_header_loop_is_bounded() -> None:
    hops = b"".join(bytes([0, 0]) + bytes(6) for _ in range(40))  # 40 chained hop-by-hop
    pkt = bytes(IPv6(src=PROBER6, dst=HOST6, nh=0, plen=len(hops))) + hops
    assert quoted_probe(pkt) is None


# --- quoted_from_frame (the alert's packet, per link type) -----------------------------------

# Explicit MACs: scapy would otherwise resolve neighbours (slow, and touches the host).
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
V4_ERR = error4(probe4(53))
V6_ERR = error6(probe6(161))

FRAMES = {
    "ether-v4": (1, Ether(**MACS) / V4_ERR),
    "ether-v6": (1, Ether(**MACS) / V6_ERR),
    "dot1q-v4": (1, Ether(**MACS) / Dot1Q(vlan=5) / V4_ERR),
    "dot1q-v6": (1, Ether(**MACS) / Dot1Q(vlan=5) / V6_ERR),
    "dot1ad-v4": (1, Ether(**MACS) / Dot1AD(vlan=7) / V4_ERR),
    "qinq-v4": (1, Ether(**MACS) / Dot1AD(vlan=7) / Dot1Q(vlan=5) / V4_ERR),
    "qinq-v6": (1, Ether(**MACS) / Dot1AD(vlan=7) / Dot1Q(vlan=5) / V6_ERR),
    "9100-q-v4": (1, Ether(type=0x9100, **MACS) / Dot1Q(vlan=3) / Dot1Q(vlan=4) / V4_ERR),
    "sll-v4": (113, CookedLinux(proto=0x0800) / V4_ERR),
    "sll-v6": (113, CookedLinux(proto=0x86DD) / V6_ERR),
    "sll-vlan-v4": (113, bytes(CookedLinux(proto=0x8100)) + bytes(Dot1Q(vlan=9) / V4_ERR)),
    "sll2-v4": (276, CookedLinuxV2(proto=0x0800) / V4_ERR),
    "sll2-v6": (276, CookedLinuxV2(proto=0x86DD) / V6_ERR),
    "raw12-v4": (12, V4_ERR),
    "raw12-v6": (12, V6_ERR),
    "raw14-v4": (14, V4_ERR),
    "raw101-v4": (101, V4_ERR),
    "raw101-v6": (101, V6_ERR),
    "ipv4-228": (228, V4_ERR),
    "ipv6-229": (229, V6_ERR),
    "ether-v4-outer-options": (1, Ether(**MACS) / error4(probe4(53), options=[IPOption_NOP()] * 4)),
    "ether-v6-outer-ext": (
        1,
        Ether(**MACS)
        / error6(
            probe6(161),
            ext=(
                IPv6ExtHdrHopByHop(),
                IPv6ExtHdrRouting(addresses=[PROBER6]),
                IPv6ExtHdrDestOpt(),
                IPv6ExtHdrFragment(offset=0, m=0),
            ),
        ),
    ),
}


FRAMES_RAW = {name: (linktype, bytes(frame)) for name, (linktype, frame) in FRAMES.items()}


@pytest.mark.parametrize("name", FRAMES)
def test_quoted_from_frame(name: str) -> None:
    linktype, frame = FRAMES_RAW[name]
    q = quoted_from_frame(frame, linktype)
    assert q is not None
    v6 = "-v6" in name or "229" in name
    assert q.proto == PROTO_UDP
    assert q.src == packed(PROBER6 if v6 else PROBER4)
    assert q.dst == packed(HOST6 if v6 else HOST4)
    assert q.dst_port == (161 if v6 else 53)


@pytest.mark.parametrize("name", FRAMES)
def test_frame_truncations_never_raise(name: str) -> None:
    linktype, raw = FRAMES_RAW[name]
    for cut in range(len(raw)):
        got = quoted_from_frame(raw[:cut], linktype)
        assert got is None or got.dst_port in (53, 161)


@pytest.mark.parametrize(
    ("linktype", "frame"),
    [
        (0, bytes(Ether(**MACS) / V4_ERR)),  # unsupported link type
        (999, bytes(V4_ERR)),
        (228, bytes(V6_ERR)),  # raw IPv4 link type carrying IPv6
        (229, bytes(V4_ERR)),
        (1, bytes(Ether(type=0x0800, **MACS) / V6_ERR)),  # ethertype / version mismatch
        (1, bytes(Ether(type=0x0806, **MACS)) + bytes(V4_ERR)),  # ARP
        (1, bytes(Ether(**MACS)) + bytes(Dot1Q(type=0x8100)) * 9 + bytes(V4_ERR)),  # too many tags
        (1, bytes(Ether(**MACS) / IP(src=HOST4, dst=PROBER4) / UDP() / probe4())),  # not ICMP
        (1, bytes(Ether(**MACS) / IPv6(src=HOST6, dst=PROBER6) / UDP() / probe6())),
        (12, b"\x00" * 40),
        (12, b""),
    ],
    ids=["linktype-0", "linktype-999", "228-v6", "229-v4", "etype-mismatch", "arp",
         "too-many-tags", "v4-not-icmp", "v6-not-icmp", "raw-version-0", "raw-empty"],
)
def test_quoted_from_frame_rejects(linktype: int, frame: bytes) -> None:
    assert quoted_from_frame(frame, linktype) is None


def test_ip_offset() -> None:
    assert ip_offset(bytes(Ether(**MACS) / V4_ERR), 1) == 14
    assert ip_offset(bytes(Ether(**MACS) / Dot1AD() / Dot1Q() / V4_ERR), 1) == 22
    assert ip_offset(bytes(CookedLinux(proto=0x0800) / V4_ERR), 113) == 16
    assert ip_offset(bytes(CookedLinuxV2(proto=0x0800) / V4_ERR), 276) == 20
    assert ip_offset(bytes(V6_ERR), 101) == 0


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([0, 1, 12, 14, 101, 113, 228, 229, 276, -1]))
def test_never_raises_on_garbage(data: bytes, linktype: int) -> None:
    quoted_from_frame(data, linktype)
    quoted_probe(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(FRAMES)), st.data())
def test_never_raises_on_mutated_frames(name: str, data: st.DataObject) -> None:
    linktype, frame = FRAMES_RAW[name]
    raw = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    quoted_from_frame(bytes(raw), linktype)
