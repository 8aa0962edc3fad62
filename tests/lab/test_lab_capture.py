"""Decoding the victim's responses from Ethernet frames and classic pcap files."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

import pytest

from scanguard_ids.lab import capture

V4, S4 = "192.0.2.1", "192.0.2.2"
V6, S6 = "2001:db8::1", "2001:db8::2"
ETH4 = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00"
ETH6 = b"\x02" * 6 + b"\x04" * 6 + b"\x86\xdd"


def ip4(proto: int, body: bytes, src: str = V4, dst: str = S4) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, proto, 0,
                       ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed) + body


def ip6(nxt: int, body: bytes, src: str = V6, dst: str = S6) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, len(body), nxt, 64,
                       ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed) + body


def tcp(sport: int, dport: int, flags: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 0x50, flags, 0, 0, 0)


def udp(sport: int, dport: int) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8, 0)


FRAMES = [
    (ETH4 + ip4(6, tcp(22, 40_000, 0x12)), capture.SYNACK, 22, 40_000, "tcp", S4),
    (ETH4 + ip4(6, tcp(7, 40_001, 0x14)), capture.RST, 7, 40_001, "tcp", S4),
    (ETH4 + ip4(6, tcp(7, 40_001, 0x10)), capture.OTHER, 7, 40_001, "tcp", S4),
    (ETH4 + ip4(17, udp(53, 40_002)), capture.UDP_REPLY, 53, 40_002, "udp", S4),
    # port unreachable quoting the probe S4:40003 -> V4:9
    (ETH4 + ip4(1, bytes([3, 3, 0, 0, 0, 0, 0, 0]) + ip4(17, udp(40_003, 9), S4, V4)),
     capture.ICMP4_UNREACH, 9, 40_003, "udp", S4),
    (ETH6 + ip6(6, tcp(25, 40_004, 0x14)), capture.RST, 25, 40_004, "tcp", S6),
    (ETH6 + ip6(58, bytes([1, 4, 0, 0, 0, 0, 0, 0]) + ip6(17, udp(40_005, 161), S6, V6)),
     capture.ICMP6_UNREACH, 161, 40_005, "udp", S6),
]


@pytest.mark.parametrize(("frame", "kind", "lport", "rport", "proto", "remote"), FRAMES)
def test_decode_frame(frame: bytes, kind: str, lport: int, rport: int, proto: str,
                      remote: str) -> None:
    p = capture.decode_frame(1.5, frame)
    assert p is not None
    assert (p.kind, p.local_port, p.remote_port, p.proto, p.remote, p.ts) == (
        kind, lport, rport, proto, remote, 1.5)


@pytest.mark.parametrize("frame", [
    b"", ETH4[:10], ETH4 + ip4(1, bytes([0, 0, 0, 0, 0, 0, 0, 0])),  # echo reply
    ETH4 + ip4(1, bytes([3, 1, 0, 0, 0, 0, 0, 0]) + ip4(17, udp(1, 2))),  # host unreachable
    b"\x00" * 12 + b"\x08\x06" + b"\x00" * 28,  # ARP
    ETH4 + ip4(1, bytes([3, 3, 0, 0, 0, 0, 0, 0]) + b"\x45\x00"),  # truncated quote
])
def test_decode_frame_ignores_the_rest(frame: bytes) -> None:
    assert capture.decode_frame(0.0, frame) is None


def write_pcap(path: Path, frames: list[tuple[float, bytes]], nano: bool = True) -> None:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 65_535, 1)
    for ts, frame in frames:
        sec = int(ts)
        frac = round((ts - sec) * (1e9 if nano else 1e6))
        out += struct.pack("<IIII", sec, frac, len(frame), len(frame)) + frame
    path.write_bytes(out)


@pytest.mark.parametrize("nano", [True, False])
def test_read_pcap(tmp_path: Path, nano: bool) -> None:
    f = tmp_path / "c.pcap"
    write_pcap(f, [(100.25, FRAMES[1][0]), (100.5, b"\x00" * 20), (101.75, FRAMES[4][0])], nano)
    got = capture.read_pcap(f)
    assert [(p.ts, p.kind, p.local_port) for p in got] == [
        (pytest.approx(100.25), capture.RST, 7), (pytest.approx(101.75), capture.ICMP4_UNREACH, 9)]


def test_read_pcap_missing_or_empty_or_foreign(tmp_path: Path) -> None:
    assert capture.read_pcap(tmp_path / "none.pcap") == []
    (tmp_path / "short.pcap").write_bytes(b"\xd4\xc3")
    assert capture.read_pcap(tmp_path / "short.pcap") == []
    (tmp_path / "bad.pcap").write_bytes(b"\x00" * 24)
    with pytest.raises(ValueError, match="not a pcap"):
        capture.read_pcap(tmp_path / "bad.pcap")
