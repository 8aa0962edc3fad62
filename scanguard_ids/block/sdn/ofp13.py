"""The few OpenFlow 1.3 messages the direct path needs, encoded and decoded (pure).

Enough of the OpenFlow 1.3.5 wire format (ONF TS-025) to install drop flows with a
hard timeout, delete them, read them back and notice errors: HELLO, ECHO, ERROR,
FLOW_MOD, BARRIER and the flow-stats MULTIPART request/reply, with OXM matches on
eth_type and the IPv4/IPv6 source and destination. No I/O here: :mod:`ofconn`
carries the bytes.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from scanguard_ids.block.common import IPAddress

VERSION = 0x04  # OpenFlow 1.3

# message types
HELLO, ERROR, ECHO_REQUEST, ECHO_REPLY = 0, 1, 2, 3
FLOW_MOD, MULTIPART_REQUEST, MULTIPART_REPLY = 14, 18, 19
BARRIER_REQUEST, BARRIER_REPLY = 20, 21

# flow_mod commands and flags
ADD, DELETE = 0, 3
FF_SEND_FLOW_REM, FF_RESET_COUNTS = 1 << 0, 1 << 2

MP_FLOW = 1
MPF_REPLY_MORE = 1

NO_BUFFER = 0xFFFFFFFF
PORT_ANY = 0xFFFFFFFF
GROUP_ANY = 0xFFFFFFFF
TABLE_ALL = 0xFF

# OXM (class OPENFLOW_BASIC)
OXM_CLASS_BASIC = 0x8000
ETH_TYPE, IPV4_SRC, IPV4_DST, IPV6_SRC, IPV6_DST = 5, 11, 12, 26, 27
ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD
_ADDR_FIELD = {(4, "src"): IPV4_SRC, (4, "dst"): IPV4_DST,
               (6, "src"): IPV6_SRC, (6, "dst"): IPV6_DST}
FIELD_NAMES = {IPV4_SRC: "ipv4_src", IPV4_DST: "ipv4_dst",
               IPV6_SRC: "ipv6_src", IPV6_DST: "ipv6_dst"}

MAX_HARD_TIMEOUT = 0xFFFF  # seconds: a uint16 on the wire

_HEADER = struct.Struct("!BBHI")
_FLOW_MOD = struct.Struct("!QQBBHHHIIIH2x")
_MP_HEADER = struct.Struct("!HH4x")
_FLOW_STATS_REQ = struct.Struct("!B3xII4xQQ")
_FLOW_STATS = struct.Struct("!HBxIIHHHH4xQQQ")
_ERROR = struct.Struct("!HH")

#: (error type, code) -> what it means, for the ones a drop-flow client can meet.
ERRORS = {
    (1, 0): "bad request: bad version",
    (1, 1): "bad request: unsupported message type",
    (2, 0): "bad instruction: unknown instruction",
    (4, 0): "bad match: unsupported match type",
    (4, 3): "bad match: bad prerequisite",
    (5, 1): "flow_mod failed: table full",
    (5, 2): "flow_mod failed: bad table id",
    (5, 5): "flow_mod failed: permissions error (not master?)",
    (5, 6): "flow_mod failed: bad timeout",
}


class DecodeError(ValueError):
    """Bytes that are not the OpenFlow 1.3 message they should be."""


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    type: int
    length: int
    xid: int

    SIZE = _HEADER.size


def header(data: bytes) -> Header:
    if len(data) < _HEADER.size:
        raise DecodeError(f"short OpenFlow header ({len(data)} bytes)")
    h = Header(*_HEADER.unpack_from(data))
    if h.length < _HEADER.size:
        raise DecodeError(f"OpenFlow length {h.length} < 8")
    return h


def message(msg_type: int, xid: int, body: bytes = b"") -> bytes:
    return _HEADER.pack(VERSION, msg_type, _HEADER.size + len(body), xid) + body


def hello(xid: int) -> bytes:
    return message(HELLO, xid)


def barrier(xid: int) -> bytes:
    return message(BARRIER_REQUEST, xid)


def echo_reply(xid: int, data: bytes) -> bytes:
    return message(ECHO_REPLY, xid, data)


# -- matches ----------------------------------------------------------------------
def _oxm(field_id: int, value: bytes) -> bytes:
    return struct.pack("!HBB", OXM_CLASS_BASIC, field_id << 1, len(value)) + value


def match_ip(addr: IPAddress, direction: str) -> bytes:
    """An OXM ofp_match: eth_type = IPv4/IPv6 and the address as source or destination."""
    eth = ETH_IPV4 if addr.version == 4 else ETH_IPV6
    oxms = _oxm(ETH_TYPE, struct.pack("!H", eth)) + _oxm(
        _ADDR_FIELD[(addr.version, direction)], addr.packed)
    return _pad_match(oxms)


def match_all() -> bytes:
    return _pad_match(b"")


def _pad_match(oxms: bytes) -> bytes:
    length = 4 + len(oxms)
    return struct.pack("!HH", 1, length) + oxms + b"\0" * ((8 - length % 8) % 8)


def parse_match(data: bytes, offset: int = 0) -> tuple[dict[int, bytes], int]:
    """OXM fields (field id -> value, masks dropped) and the padded match length."""
    if len(data) < offset + 4:
        raise DecodeError("short ofp_match")
    mtype, length = struct.unpack_from("!HH", data, offset)
    if mtype != 1 or length < 4 or offset + length > len(data):
        raise DecodeError(f"bad ofp_match type={mtype} length={length}")
    fields: dict[int, bytes] = {}
    pos, end = offset + 4, offset + length
    while pos + 4 <= end:
        cls, fh, flen = struct.unpack_from("!HBB", data, pos)
        value = data[pos + 4:pos + 4 + flen]
        if cls == OXM_CLASS_BASIC:
            has_mask = fh & 1
            fields[fh >> 1] = value[:flen // 2] if has_mask else value
        pos += 4 + flen
    return fields, (length + 7) // 8 * 8


# -- flow mods --------------------------------------------------------------------
def flow_mod(xid: int, *, command: int, match: bytes, cookie: int, cookie_mask: int = 0,
             table_id: int = 0, priority: int = 0, hard_timeout: int = 0,
             flags: int = 0) -> bytes:
    """A FLOW_MOD without instructions: an added flow drops what it matches."""
    if not 0 <= hard_timeout <= MAX_HARD_TIMEOUT:
        raise ValueError(f"hard_timeout {hard_timeout} outside 0..{MAX_HARD_TIMEOUT}")
    body = _FLOW_MOD.pack(cookie, cookie_mask, table_id, command, 0, hard_timeout, priority,
                          NO_BUFFER, PORT_ANY, GROUP_ANY, flags) + match
    return message(FLOW_MOD, xid, body)


def flow_stats_request(xid: int, *, cookie: int, cookie_mask: int,
                       table_id: int = TABLE_ALL) -> bytes:
    body = _MP_HEADER.pack(MP_FLOW, 0) + _FLOW_STATS_REQ.pack(
        table_id, PORT_ANY, GROUP_ANY, cookie, cookie_mask) + match_all()
    return message(MULTIPART_REQUEST, xid, body)


@dataclass(frozen=True, slots=True)
class FlowStat:
    table_id: int
    duration: float  # seconds the flow has existed
    priority: int
    hard_timeout: int
    cookie: int
    fields: dict[int, bytes] = field(default_factory=dict)

    def address(self) -> tuple[str, str] | None:
        """(address, "src"/"dst") when the flow matches exactly one IP address field."""
        for fid, name in FIELD_NAMES.items():
            value = self.fields.get(fid)
            if value is not None and len(value) in (4, 16):
                return str(ipaddress.ip_address(value)), name.split("_")[1]
        return None


def parse_multipart(body: bytes) -> tuple[int, int, bytes]:
    """(multipart type, flags, payload) of a MULTIPART_REPLY body."""
    if len(body) < _MP_HEADER.size:
        raise DecodeError("short multipart reply")
    mp_type, flags = _MP_HEADER.unpack_from(body)
    return mp_type, flags, body[_MP_HEADER.size:]


def parse_flow_stats(payload: bytes) -> list[FlowStat]:
    out = []
    pos = 0
    while pos + _FLOW_STATS.size <= len(payload):
        (length, table_id, dsec, dnsec, priority, _idle, hard, _flags, cookie, _pk,
         _by) = _FLOW_STATS.unpack_from(payload, pos)
        if length < _FLOW_STATS.size or pos + length > len(payload):
            raise DecodeError(f"bad flow_stats length {length}")
        fields, _ = parse_match(payload, pos + _FLOW_STATS.size)
        out.append(FlowStat(table_id, dsec + dnsec / 1e9, priority, hard, cookie, fields))
        pos += length
    return out


def parse_error(body: bytes) -> str:
    if len(body) < _ERROR.size:
        return "malformed OpenFlow error"
    etype, code = _ERROR.unpack_from(body)
    return ERRORS.get((etype, code), f"OpenFlow error type={etype} code={code}")
