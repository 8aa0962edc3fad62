"""Pure packet parsing for ICMP errors: bytes in, the quoted probe's ports out.

An ICMP port-unreachable quotes the probe that hit the closed port: its IP header plus at
least the first 8 bytes of the transport header. Suricata logs that quote as the alert's
``payload``, and the whole frame as ``packet`` (link layer per ``packet_info.linktype``).

Nothing here raises on malformed input: every function returns None on anything truncated,
inconsistent or unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass
from struct import Struct

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58

#: Transport protocols whose first four bytes are source and destination port.
PORT_PROTOCOLS: dict[int, str] = {
    PROTO_TCP: "tcp",
    PROTO_UDP: "udp",
    33: "dccp",
    132: "sctp",
    136: "udplite",
}

# pcap link types (https://www.tcpdump.org/linktypes.html)
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = frozenset({12, 14, 101})  # DLT_RAW differs per OS; 101 is LINKTYPE_RAW
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
_VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100})
_MAX_VLAN_TAGS = 8

# IPv6 extension headers walked before the upper-layer header.
_EXT_HOP, _EXT_ROUTING, _EXT_FRAGMENT, _EXT_AH, _EXT_DSTOPTS = 0, 43, 44, 51, 60
_MAX_EXT_HEADERS = 16


# version/IHL, (tos, total length, id), flags/fragment offset, (ttl), protocol, (checksum), src, dst
_IPV4 = Struct("!B5xHxB2x4s4s")
# version/class, (class/flow label, payload length), next header, (hop limit), src, dst
_IPV6 = Struct("!B5xBx16s16s")
_PORTS = Struct("!HH")


@dataclass(slots=True)  # not frozen: a frozen init costs ~4x more on this hot path
class Quoted:
    """The probe an ICMP error quotes (the packet the prober sent us). Treat as immutable."""

    proto: int  # IANA protocol number, one of PORT_PROTOCOLS
    src: bytes  # packed source address: the prober
    dst: bytes  # packed destination address: our host
    src_port: int
    dst_port: int  # the probed (closed) port on our host


def _ip_header(buf: bytes, off: int) -> tuple[int, int, bytes, bytes] | None:
    """Parse the IPv4/IPv6 header at ``off``: (upper protocol, its offset, src, dst).

    IPv4 options and IPv6 extension headers are skipped. Non-first fragments carry no
    transport header and give None.
    """
    n = len(buf)
    if off < 0 or n < off + 20:
        return None
    version = buf[off] >> 4
    if version == 4:
        vihl, frag, proto, src, dst = _IPV4.unpack_from(buf, off)
        ihl = (vihl & 0x0F) * 4
        if ihl < 20 or n < off + ihl or frag & 0x1FFF:  # non-first fragment: no ports
            return None
        return proto, off + ihl, src, dst
    if version != 6 or n < off + 40:
        return None
    _, nxt, src, dst = _IPV6.unpack_from(buf, off)
    pos = off + 40
    for _ in range(_MAX_EXT_HEADERS):
        if nxt in (_EXT_HOP, _EXT_ROUTING, _EXT_DSTOPTS):
            if n < pos + 8:
                return None
            nxt, pos = buf[pos], pos + (buf[pos + 1] + 1) * 8
        elif nxt == _EXT_FRAGMENT:
            if n < pos + 8:
                return None
            if ((buf[pos + 2] << 8) | buf[pos + 3]) & 0xFFF8:
                return None  # not the first fragment
            nxt, pos = buf[pos], pos + 8
        elif nxt == _EXT_AH:
            if n < pos + 8:
                return None
            nxt, pos = buf[pos], pos + (buf[pos + 1] + 2) * 4
        else:
            return nxt, pos, src, dst
    return None


def quoted_probe(buf: bytes, off: int = 0) -> Quoted | None:
    """Parse a quoted probe (IP header + transport ports) starting at ``off``.

    This is what Suricata logs as the ``payload`` of an ICMP / ICMPv6 error alert.
    """
    hdr = _ip_header(buf, off)
    if hdr is None:
        return None
    proto, pos, src, dst = hdr
    if proto not in PORT_PROTOCOLS or len(buf) < pos + 4:
        return None
    sport, dport = _PORTS.unpack_from(buf, pos)
    return Quoted(proto, src, dst, sport, dport)


def _ethertype(frame: bytes, type_at: int, payload_at: int) -> tuple[int, int] | None:
    """Read the ethertype at ``type_at`` (payload at ``payload_at``), skipping VLAN tags.

    An 802.1Q / 802.1ad / QinQ tag puts TCI + the next ethertype at the start of the
    payload. Returns (ethertype, offset of the payload it describes).
    """
    if len(frame) < type_at + 2:
        return None
    etype = (frame[type_at] << 8) | frame[type_at + 1]
    pos = payload_at
    for _ in range(_MAX_VLAN_TAGS):
        if etype not in _VLAN_TPIDS:
            return etype, pos
        if len(frame) < pos + 4:
            return None
        etype = (frame[pos + 2] << 8) | frame[pos + 3]
        pos += 4
    return None


_RAW_VERSION = {LINKTYPE_IPV4: 4, LINKTYPE_IPV6: 6}
_ETH_VERSION = {ETH_IPV4: 4, ETH_IPV6: 6}


def ip_offset(frame: bytes, linktype: int) -> int | None:
    """Offset of the IP header in a captured frame of the given pcap link type."""
    if linktype == LINKTYPE_ETHERNET:
        found = _ethertype(frame, 12, 14)
    elif linktype == LINKTYPE_LINUX_SLL:
        found = _ethertype(frame, 14, 16)
    elif linktype == LINKTYPE_LINUX_SLL2:
        found = _ethertype(frame, 0, 20)
    elif linktype in LINKTYPE_RAW or linktype in _RAW_VERSION:
        if not frame:
            return None
        version = frame[0] >> 4
        return 0 if version in (4, 6) and _RAW_VERSION.get(linktype, version) == version else None
    else:
        return None
    if found is None:
        return None
    etype, pos = found
    if len(frame) <= pos or _ETH_VERSION.get(etype) != frame[pos] >> 4:
        return None
    return pos


def quoted_from_frame(frame: bytes, linktype: int) -> Quoted | None:
    """The probe quoted by the ICMP / ICMPv6 error in a whole captured frame."""
    off = ip_offset(frame, linktype)
    if off is None:
        return None
    hdr = _ip_header(frame, off)
    if hdr is None:
        return None
    proto, pos, _src, _dst = hdr
    version = frame[off] >> 4
    if (version == 4 and proto != PROTO_ICMP) or (version == 6 and proto != PROTO_ICMPV6):
        return None
    # type, code, checksum, 4 bytes unused (or MTU / pointer): the quote follows.
    return quoted_probe(frame, pos + 8)
