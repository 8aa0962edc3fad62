"""NFT_MSG_GETSETELEM dump over a raw netlink socket: the addresses in one nftables set.

The daemon reads the fast path's ``blocked`` sets once a second; forking ``nft -j`` each
time would cost ~5 ms of CPU, pyroute2's NFTSocket runs an asyncio loop per request. The
dump of a small set is one send and one or two recvs here. Elements added from the packet
path (dynset) raise no netlink event (nft monitor stays silent; see
tests/block/test_block_fastpath_kernel.py), so polling is the way to learn them.

Wire format, from the kernel's ``include/uapi/linux/netfilter/nf_tables.h``: nlmsghdr
type ``NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETSETELEM``, nfgenmsg (family NFPROTO_INET),
NFTA_SET_ELEM_LIST_TABLE / _SET (NUL-terminated). Each reply carries
NFTA_SET_ELEM_LIST_ELEMENTS: nested NFTA_LIST_ELEM, each with NFTA_SET_ELEM_KEY (nested
NFTA_DATA_VALUE: the address) and NFTA_SET_ELEM_EXPIRATION (be64, ms left).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from dataclasses import dataclass

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETSETELEM = 13
NFPROTO_INET = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLA_TYPE_MASK = 0x3FFF

NFTA_SET_ELEM_LIST_TABLE = 1
NFTA_SET_ELEM_LIST_SET = 2
NFTA_SET_ELEM_LIST_ELEMENTS = 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY = 1
NFTA_SET_ELEM_EXPIRATION = 5
NFTA_DATA_VALUE = 1

RECV_TIMEOUT_S = 2.0
DUMP_RECV_BYTES = 1 << 18

_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct("=BBH")
_NLATTR = struct.Struct("=HH")
_ERRNO = struct.Struct("=i")
_BE64 = struct.Struct("!Q")


class NetlinkError(OSError):
    """The kernel answered with an error; ``errno`` is its (positive) code."""


@dataclass(frozen=True, slots=True)
class Element:
    ip: str
    expires_in: float | None  # seconds left, None without a timeout


def _attr(kind: int, payload: bytes) -> bytes:
    return _NLATTR.pack(4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)


def _attrs(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    off = 0
    while off + 4 <= len(data):
        length, kind = _NLATTR.unpack_from(data, off)
        if length < 4:
            break
        out.setdefault(kind & NLA_TYPE_MASK, data[off + 4:off + length])
        off += (length + 3) & ~3
    return out


def _each(data: bytes, want: int) -> list[bytes]:
    """The payloads of every attribute of type ``want`` (repeated ones included)."""
    out = []
    off = 0
    while off + 4 <= len(data):
        length, kind = _NLATTR.unpack_from(data, off)
        if length < 4:
            break
        if kind & NLA_TYPE_MASK == want:
            out.append(data[off + 4:off + length])
        off += (length + 3) & ~3
    return out


def build_dump(seq: int, table: str, set_name: str) -> bytes:
    body = (_NFGENMSG.pack(NFPROTO_INET, 0, 0)
            + _attr(NFTA_SET_ELEM_LIST_TABLE, table.encode() + b"\0")
            + _attr(NFTA_SET_ELEM_LIST_SET, set_name.encode() + b"\0"))
    return _NLMSGHDR.pack(16 + len(body), (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM,
                          NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def parse_elements(payload: bytes) -> list[Element]:
    """Elements of one NEWSETELEM reply's payload (after the nlmsghdr)."""
    top = _attrs(payload[_NFGENMSG.size:])
    out = []
    for elem in _each(top.get(NFTA_SET_ELEM_LIST_ELEMENTS, b""), NFTA_LIST_ELEM):
        a = _attrs(elem)
        key = _attrs(a.get(NFTA_SET_ELEM_KEY, b"")).get(NFTA_DATA_VALUE, b"")
        if len(key) not in (4, 16):
            continue  # a concatenation or a port: not an address set
        exp = a.get(NFTA_SET_ELEM_EXPIRATION)
        out.append(Element(str(ipaddress.ip_address(key)),
                           _BE64.unpack(exp)[0] / 1000 if exp and len(exp) == 8 else None))
    return out


class SetReader:
    """One netlink socket; :meth:`elements` dumps a set of table ``inet <table>``."""

    def __init__(self, table: str) -> None:
        self.table = table
        self._seq = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.settimeout(RECV_TIMEOUT_S)
        self.sock.bind((0, 0))

    def elements(self, set_name: str) -> list[Element]:
        """The set's elements; an absent table or set raises NetlinkError(ENOENT)."""
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        self.sock.send(build_dump(self._seq, self.table, set_name))
        out: list[Element] = []
        while True:
            data = self.sock.recv(DUMP_RECV_BYTES)
            off = 0
            while off + 16 <= len(data):
                length, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, off)
                if length < 16:
                    return out
                payload = data[off + 16:off + length]
                off += (length + 3) & ~3
                if seq != self._seq:
                    continue
                if kind == NLMSG_DONE:
                    return out
                if kind == NLMSG_ERROR:
                    code = -_ERRNO.unpack_from(payload)[0]
                    if code:
                        name = errno.errorcode.get(code, str(code))
                        raise NetlinkError(code, f"set {set_name}: {name}")
                    return out
                out.extend(parse_elements(payload))

    def close(self) -> None:
        self.sock.close()
