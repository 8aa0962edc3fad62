"""ipset ADD / DEL / TEST / LIST over a raw netlink socket: one send and one recv per request.

pyroute2's IPSet runs an asyncio loop per request (~0.55 ms of CPU and GIL); the per-block
requests are three fixed attributes, so they are built here by hand (~20 us). Listing a set
through pyroute2 costs ~40 us of Python per member (0.4 s for 10 000 blocks, every kernel
sync); the LIST dump is read here by walking the few attributes a member has. pyroute2
still creates and destroys the sets (block/ipset.py), and takes over whenever this path
fails (see IpsetBackend).

The wire format, from the kernel's ``include/uapi/linux/netfilter/ipset/ip_set.h``:
nlmsghdr, nfgenmsg (family, version 0, res_id 0), then IPSET_ATTR_PROTOCOL (u8),
IPSET_ATTR_SETNAME (NUL-terminated) and a nested IPSET_ATTR_DATA holding a nested
IPSET_ATTR_IP (IPv4 or IPv6 address, network byte order), for a network of a hash:net set
IPSET_ATTR_CIDR (u8) and, for an add, IPSET_ATTR_TIMEOUT (be32). Requests go without
NLM_F_EXCL, which makes the kernel set IPSET_FLAG_EXIST (ipset's ``-exist``): an add of a
present entry refreshes its timeout and a delete of a missing one succeeds, as with
pyroute2's ``exclusive=False``.
"""

from __future__ import annotations

import errno
import socket
import struct
import threading

NETLINK_NETFILTER = 12
NFNL_SUBSYS_IPSET = 6
IPSET_CMD_LIST = 7
IPSET_CMD_ADD = 9
IPSET_CMD_DEL = 10
IPSET_CMD_TEST = 11
#: The lowest ipset protocol revision the kernel accepts (7 is the newest); ADD/DEL/TEST
#: are the same in both.
IPSET_PROTOCOL = 6
IPSET_ERR_EXIST = 4103  # TEST: the element is not in the set

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLA_TYPE_MASK = 0x3FFF
NLA_F_NESTED = 0x8000
NLA_F_NET_BYTEORDER = 0x4000

IPSET_ATTR_PROTOCOL = 1
IPSET_ATTR_SETNAME = 2
IPSET_ATTR_DATA = 7
IPSET_ATTR_ADT = 8  # the members, in a LIST reply
IPSET_ATTR_IP = 1  # inside DATA
IPSET_ATTR_CIDR = 3  # inside DATA: the prefix length of a hash:net member
IPSET_ATTR_TIMEOUT = 6  # inside DATA
IPSET_ATTR_IPADDR_IPV4 = 1  # inside IP
IPSET_ATTR_IPADDR_IPV6 = 2

IPSET_MAXNAMELEN = 32
RECV_TIMEOUT_S = 2.0
#: Larger than any one netlink message of a dump (the kernel fills ~a page or 32 KiB each).
DUMP_RECV_BYTES = 1 << 18

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_NFGENMSG = struct.Struct("=BBH")  # family, version, res_id (big-endian, 0)
_NLATTR = struct.Struct("=HH")  # len, type
_BE32 = struct.Struct("!I")
_ERRNO = struct.Struct("=i")


class NetlinkError(OSError):
    """The kernel answered a request with an error; ``errno`` is its (positive) code."""


def _attr(kind: int, payload: bytes) -> bytes:
    return _NLATTR.pack(4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)


def build_request(cmd: int, seq: int, set_name: str, packed: bytes,
                  timeout: int | None = None, cidr: int | None = None) -> bytes:
    """One ADD/DEL/TEST message for the address ``packed`` (4 or 16 bytes), or for the
    network ``packed``/``cidr`` (of a hash:net set)."""
    if len(packed) == 4:
        family, addr_attr = socket.AF_INET, IPSET_ATTR_IPADDR_IPV4
    elif len(packed) == 16:
        family, addr_attr = socket.AF_INET6, IPSET_ATTR_IPADDR_IPV6
    else:
        raise ValueError(f"not a packed IPv4/IPv6 address: {packed!r}")
    name = set_name.encode()
    if not name or len(name) >= IPSET_MAXNAMELEN or b"\0" in name:
        raise ValueError(f"bad ipset name {set_name!r}")
    data = _attr(IPSET_ATTR_IP | NLA_F_NESTED,
                 _attr(addr_attr | NLA_F_NET_BYTEORDER, packed))
    if cidr is not None:
        if not 0 < cidr <= len(packed) * 8:
            raise ValueError(f"bad prefix length {cidr}")
        data += _attr(IPSET_ATTR_CIDR | NLA_F_NET_BYTEORDER, bytes([cidr]))
    if timeout is not None:
        data += _attr(IPSET_ATTR_TIMEOUT | NLA_F_NET_BYTEORDER, _BE32.pack(timeout))
    body = (_NFGENMSG.pack(family, 0, 0)
            + _attr(IPSET_ATTR_PROTOCOL, bytes([IPSET_PROTOCOL]))
            + _attr(IPSET_ATTR_SETNAME, name + b"\0")
            + _attr(IPSET_ATTR_DATA | NLA_F_NESTED, data))
    kind = (NFNL_SUBSYS_IPSET << 8) | cmd
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK,
                          seq, 0) + body


def parse_ack(data: bytes, seq: int) -> int | None:
    """The error code (0 = success, else a positive errno) if ``data`` holds the ack of
    request ``seq``; None if it holds only other messages."""
    pos = 0
    while pos + _NLMSGHDR.size <= len(data):
        length, mtype, _flags, mseq, _pid = _NLMSGHDR.unpack_from(data, pos)
        if length < _NLMSGHDR.size:
            break
        if mtype == NLMSG_ERROR and mseq == seq and length >= _NLMSGHDR.size + 4:
            return -_ERRNO.unpack_from(data, pos + _NLMSGHDR.size)[0]
        pos += (length + 3) & ~3
    return None


def build_list_request(seq: int, set_name: str) -> bytes:
    """An IPSET_CMD_LIST dump request for one set (members, with their timeouts)."""
    name = set_name.encode()
    if not name or len(name) >= IPSET_MAXNAMELEN or b"\0" in name:
        raise ValueError(f"bad ipset name {set_name!r}")
    body = (_NFGENMSG.pack(socket.AF_INET, 0, 0)
            + _attr(IPSET_ATTR_PROTOCOL, bytes([IPSET_PROTOCOL]))
            + _attr(IPSET_ATTR_SETNAME, name + b"\0"))
    kind = (NFNL_SUBSYS_IPSET << 8) | IPSET_CMD_LIST
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP,
                          seq, 0) + body


def _attrs(data: bytes, pos: int, end: int) -> list[tuple[int, int, int]]:
    """(type without flags, payload start, payload end) of the attributes in data[pos:end]."""
    out = []
    while pos + _NLATTR.size <= end:
        length, kind = _NLATTR.unpack_from(data, pos)
        if length < _NLATTR.size or pos + length > end:
            break
        out.append((kind & NLA_TYPE_MASK, pos + _NLATTR.size, pos + length))
        pos += (length + 3) & ~3
    return out


Member = tuple[bytes, int | None, int | None]  # packed address, seconds left, prefix length


def parse_list(data: bytes, seq: int, out: list[Member]) -> bool:
    """Append the members (packed address, seconds left or None, prefix length or None
    outside hash:net sets) of the LIST reply messages
    of request ``seq`` in ``data``; True once the dump is complete. Raises NetlinkError
    when the kernel refused the request (ENOENT: no such set)."""
    reply = (NFNL_SUBSYS_IPSET << 8) | IPSET_CMD_LIST
    pos = 0
    while pos + _NLMSGHDR.size <= len(data):
        length, mtype, _flags, mseq, _pid = _NLMSGHDR.unpack_from(data, pos)
        if length < _NLMSGHDR.size or pos + length > len(data):
            raise NetlinkError(errno.EPROTO, "ipset list: truncated netlink message")
        end, body = pos + length, pos + _NLMSGHDR.size
        pos += (length + 3) & ~3
        if mseq != seq:
            continue  # e.g. the ack of an earlier, timed-out request
        if mtype == NLMSG_DONE:
            return True
        if mtype == NLMSG_ERROR:
            code = -_ERRNO.unpack_from(data, body)[0] if end - body >= 4 else errno.EPROTO
            if code:
                raise NetlinkError(code, f"ipset list: {_describe(code)}")
            return True
        if mtype != reply:
            continue
        for kind, start, stop in _attrs(data, body + _NFGENMSG.size, end):
            if kind != IPSET_ATTR_ADT:
                continue
            for dkind, dstart, dstop in _attrs(data, start, stop):
                if dkind != IPSET_ATTR_DATA:
                    continue
                packed, left, cidr = None, None, None
                for akind, astart, astop in _attrs(data, dstart, dstop):
                    if akind == IPSET_ATTR_IP:
                        for ikind, istart, istop in _attrs(data, astart, astop):
                            if ikind in (IPSET_ATTR_IPADDR_IPV4, IPSET_ATTR_IPADDR_IPV6):
                                packed = data[istart:istop]
                    elif akind == IPSET_ATTR_TIMEOUT and astop - astart == 4:
                        left = _BE32.unpack_from(data, astart)[0]
                    elif akind == IPSET_ATTR_CIDR and astop > astart:
                        cidr = data[astart]
                if packed is not None and len(packed) in (4, 16):
                    out.append((packed, left, cidr))
    return False


class RawIpset:
    """A NETLINK_NETFILTER socket of the calling thread's network namespace.

    Thread-safe (one request at a time). Raises NetlinkError for an error the kernel
    answered, OSError (or TimeoutError) when the socket itself fails.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self._sock.bind((0, 0))
            self._sock.settimeout(RECV_TIMEOUT_S)
        except OSError:
            self._sock.close()
            raise
        self._seq = 0
        self._lock = threading.Lock()

    def add(self, set_name: str, packed: bytes, timeout: int, cidr: int | None = None) -> None:
        self._request(IPSET_CMD_ADD, set_name, packed, timeout, cidr)

    def delete(self, set_name: str, packed: bytes, cidr: int | None = None) -> None:
        self._request(IPSET_CMD_DEL, set_name, packed, None, cidr)

    def test(self, set_name: str, packed: bytes) -> bool:
        try:
            self._request(IPSET_CMD_TEST, set_name, packed)
        except NetlinkError as exc:
            if exc.errno == IPSET_ERR_EXIST:
                return False
            raise
        return True

    def list(self, set_name: str) -> list[Member]:
        """The set's members: (packed address, seconds left or None without a timeout,
        prefix length or None outside hash:net sets)."""
        out: list[Member] = []
        with self._lock:
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            seq = self._seq
            self._sock.send(build_list_request(seq, set_name))
            while not parse_list(self._sock.recv(DUMP_RECV_BYTES), seq, out):
                pass
        return out

    def _request(self, cmd: int, set_name: str, packed: bytes,
                 timeout: int | None = None, cidr: int | None = None) -> None:
        with self._lock:
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            seq = self._seq
            self._sock.send(build_request(cmd, seq, set_name, packed, timeout, cidr))
            while True:  # skip anything else (an ack of an earlier, timed-out request)
                code = parse_ack(self._sock.recv(65536), seq)
                if code is not None:
                    break
        if code:
            raise NetlinkError(code, f"ipset {set_name}: {_describe(code)}")

    def close(self) -> None:
        self._sock.close()


def _describe(code: int) -> str:
    if code < 4096:
        return errno.errorcode.get(code, str(code))
    return f"ipset error {code}"
