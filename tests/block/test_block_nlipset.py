"""scanguard_ids.block.nlipset: hand-built ipset ADD/DEL/TEST, checked byte for byte against
pyroute2's encoder and, inside namespaces these tests create, against the kernel and
pyroute2's answers; and the ipset backend's fallback to pyroute2 when the raw path fails."""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from typing import Any

import pytest
from blocklab import need_root
from nsutil import run_in_netns

from scanguard_ids.block import nlipset
from scanguard_ids.block.ipset import IpsetBackend
from scanguard_ids.block.nlipset import (
    NetlinkError,
    RawIpset,
    build_list_request,
    build_request,
    parse_ack,
    parse_list,
)
from scanguard_ids.config import BlockConfig
from scanguard_ids.errors import BackendError
from scanguard_ids.lab.netns import namespaces

V4 = ipaddress.ip_address("198.51.100.7").packed
V6 = ipaddress.ip_address("2001:db8::7").packed


# -- the wire format, no kernel needed ------------------------------------------------------


def _pyroute2_encoding(cmd: int, seq: int, name: str, ip: str, timeout: int | None,
                       cidr: int | None = None) -> bytes:
    """What pyroute2's IPSet puts on the wire for the same request."""
    from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
    from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_IPSET
    from pyroute2.netlink.nfnetlink.ipset import ipset_msg

    version = 6 if ":" in ip else 4
    addr = "IPSET_ATTR_IPADDR_IPV6" if version == 6 else "IPSET_ATTR_IPADDR_IPV4"
    data: list[list[Any]] = [["IPSET_ATTR_IP", {"attrs": [[addr, ip]]}]]
    if cidr is not None:
        data.append(["IPSET_ATTR_CIDR", cidr])
    if timeout is not None:
        data.append(["IPSET_ATTR_TIMEOUT", timeout])
    msg = ipset_msg()
    msg["nfgen_family"] = socket.AF_INET6 if version == 6 else socket.AF_INET
    msg["attrs"] = [["IPSET_ATTR_PROTOCOL", nlipset.IPSET_PROTOCOL],
                    ["IPSET_ATTR_SETNAME", name],
                    ["IPSET_ATTR_DATA", {"attrs": data}]]
    msg["header"]["type"] = (NFNL_SUBSYS_IPSET << 8) | cmd
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK
    msg["header"]["sequence_number"] = seq
    msg["header"]["pid"] = 0
    msg.encode()
    return bytes(msg.data)


@pytest.mark.parametrize(
    ("cmd", "ip", "timeout"),
    [(nlipset.IPSET_CMD_ADD, "198.51.100.7", 300),
     (nlipset.IPSET_CMD_ADD, "2001:db8::7", 1),
     (nlipset.IPSET_CMD_ADD, "203.0.113.255", 2_147_483),
     (nlipset.IPSET_CMD_DEL, "192.0.2.1", None),
     (nlipset.IPSET_CMD_DEL, "2001:db8:ffff::1", None),
     (nlipset.IPSET_CMD_TEST, "192.0.2.9", None)],
)
@pytest.mark.parametrize("name", ["sg4", "scanguard6", "x" * 31])
def test_request_matches_pyroute2_byte_for_byte(cmd: int, ip: str, timeout: int | None,
                                                name: str) -> None:
    packed = ipaddress.ip_address(ip).packed
    assert build_request(cmd, 77, name, packed, timeout) == _pyroute2_encoding(
        cmd, 77, name, ip, timeout)


@pytest.mark.parametrize(
    ("cmd", "net", "timeout"),
    [(nlipset.IPSET_CMD_ADD, "2001:db8:1:2::/64", 300),
     (nlipset.IPSET_CMD_ADD, "198.51.100.0/24", 60),
     (nlipset.IPSET_CMD_DEL, "2001:db8:1:2::/64", None),
     (nlipset.IPSET_CMD_DEL, "10.0.0.0/8", None)],
)
def test_prefix_request_matches_pyroute2_byte_for_byte(cmd: int, net: str,
                                                       timeout: int | None) -> None:
    n = ipaddress.ip_network(net)
    assert build_request(cmd, 9, "sg6n", n.network_address.packed, timeout, n.prefixlen) == \
        _pyroute2_encoding(cmd, 9, "sg6n", str(n.network_address), timeout, n.prefixlen)
    with pytest.raises(ValueError, match="prefix length"):
        build_request(cmd, 9, "sg6n", n.network_address.packed, timeout, n.max_prefixlen + 1)


@pytest.mark.parametrize("name", ["", "x" * 32, "a\0b"])
def test_bad_set_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        build_request(nlipset.IPSET_CMD_ADD, 1, name, V4, 1)


def test_bad_address_is_refused() -> None:
    with pytest.raises(ValueError):
        build_request(nlipset.IPSET_CMD_ADD, 1, "s", b"\1\2\3", 1)


def _ack(seq: int, code: int, mtype: int = nlipset.NLMSG_ERROR) -> bytes:
    body = struct.pack("=i", -code) + b"\0" * 16  # error + the request's header
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, seq, 0) + body


@pytest.mark.parametrize(
    ("data", "seq", "want"),
    [(_ack(5, 0), 5, 0), (_ack(5, errno.ENOENT), 5, errno.ENOENT), (_ack(4, 0), 5, None),
     (_ack(4, 0) + _ack(5, 4352), 5, 4352), (_ack(5, 0, mtype=3), 5, None), (b"", 5, None),
     (b"\0" * 15, 5, None), (struct.pack("=IHHII", 3, 2, 0, 5, 0), 5, None)],
)
def test_parse_ack(data: bytes, seq: int, want: int | None) -> None:
    assert parse_ack(data, seq) == want


def _nlmsg(mtype: int, seq: int, body: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, seq, 0) + body + b"\0" * (-len(body) % 4)


def _nla(kind: int, payload: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)


def _member(packed: bytes, timeout: int | None, cidr: int | None = None) -> bytes:
    ip = _nla(nlipset.NLA_F_NESTED | nlipset.IPSET_ATTR_IP,
              _nla(nlipset.NLA_F_NET_BYTEORDER | (1 if len(packed) == 4 else 2), packed))
    if cidr is not None:
        ip += _nla(nlipset.NLA_F_NET_BYTEORDER | nlipset.IPSET_ATTR_CIDR, bytes([cidr]))
    if timeout is not None:
        ip += _nla(nlipset.NLA_F_NET_BYTEORDER | nlipset.IPSET_ATTR_TIMEOUT,
                   struct.pack("!I", timeout))
    return _nla(nlipset.NLA_F_NESTED | nlipset.IPSET_ATTR_DATA, ip)


def test_parse_list_reads_members_and_stops_at_done() -> None:
    reply = (nlipset.NFNL_SUBSYS_IPSET << 8) | nlipset.IPSET_CMD_LIST
    body = (struct.pack("=BBH", socket.AF_INET, 0, 0)
            + _nla(nlipset.IPSET_ATTR_SETNAME, b"sg4\0")
            + _nla(nlipset.NLA_F_NESTED | nlipset.IPSET_ATTR_ADT,
                   _member(V4, 120) + _member(V6, None) + _member(b"\1\2\3", 5)
                   + _member(V6, 30, 64)))
    out: list[nlipset.Member] = []
    # another request's ack first, then our members, then DONE
    data = _nlmsg(nlipset.NLMSG_ERROR, 6, struct.pack("=i", 0)) + _nlmsg(reply, 7, body)
    assert parse_list(data, 7, out) is False
    # a 3-byte address is not one; a hash:net member carries its prefix length
    assert out == [(V4, 120, None), (V6, None, None), (V6, 30, 64)]
    assert parse_list(_nlmsg(nlipset.NLMSG_DONE, 7, struct.pack("=i", 0)), 7, out) is True
    with pytest.raises(NetlinkError) as exc:
        parse_list(_nlmsg(nlipset.NLMSG_ERROR, 8, struct.pack("=i", -errno.ENOENT)), 8, [])
    assert exc.value.errno == errno.ENOENT
    with pytest.raises(NetlinkError):
        parse_list(_nlmsg(reply, 7, body)[:-8], 7, [])  # cut short
    assert build_list_request(3, "sg4")[4:6] == struct.pack("=H", reply)
    with pytest.raises(ValueError):
        build_list_request(3, "x" * 40)


# -- against the kernel, in a namespace -----------------------------------------------------


def _list_both_ways(n: int) -> dict[str, Any]:
    """n IPv4 and n/10 IPv6 members with assorted timeouts, listed raw and by pyroute2."""
    from pyroute2.ipset import IPSet

    raw = RawIpset()
    out: dict[str, Any] = {}
    with IPSet() as ref:
        ref.create("sgl4", stype="hash:ip", family=socket.AF_INET, timeout=600, maxelem=n * 2)
        ref.create("sgl6", stype="hash:ip", family=socket.AF_INET6, timeout=600)
        base4 = int(ipaddress.ip_address("198.18.0.0"))
        base6 = int(ipaddress.ip_address("2001:db8::"))
        for i in range(n):
            raw.add("sgl4", ipaddress.ip_address(base4 + i).packed, 100 + i % 500)
        for i in range(n // 10):
            raw.add("sgl6", ipaddress.ip_address(base6 + i).packed, 50 + i)
        for name, family in (("sgl4", socket.AF_INET), ("sgl6", socket.AF_INET6)):
            mine = {(socket.inet_ntop(family, p), t) for p, t, _cidr in raw.list(name)}
            theirs = set()
            addr = "IPSET_ATTR_IPADDR_IPV" + ("4" if family == socket.AF_INET else "6")
            for msg in ref.list(name):
                adt = msg.get_attr("IPSET_ATTR_ADT")
                for data in adt.get_attrs("IPSET_ATTR_DATA") if adt else []:
                    theirs.add((data.get_attr("IPSET_ATTR_IP_FROM").get_attr(addr),
                                data.get_attr("IPSET_ATTR_TIMEOUT")))
            out[name] = (len(mine), len(theirs),
                         {ip for ip, _ in mine} == {ip for ip, _ in theirs},
                         # listed a moment apart: a timeout may have ticked once
                         max(abs(t - dict(theirs)[ip]) for ip, t in mine) if mine else 0)
        ref.create("sgl0", stype="hash:ip", family=socket.AF_INET, timeout=600)
        out["empty"] = raw.list("sgl0")
        try:
            raw.list("nosuchset")
        except NetlinkError as exc:
            out["missing"] = exc.errno
    raw.close()
    return out


def test_raw_list_matches_pyroute2() -> None:
    need_root()
    with namespaces("sgnl") as (ns,):
        out = run_in_netns(ns.name, _list_both_ways, 3000)
    assert out["sgl4"][:3] == (3000, 3000, True) and out["sgl4"][3] <= 1
    assert out["sgl6"][:3] == (300, 300, True) and out["sgl6"][3] <= 1
    assert out["empty"] == [] and out["missing"] == errno.ENOENT


def _kernel_roundtrip() -> dict[str, Any]:
    from pyroute2.ipset import IPSet

    raw = RawIpset()
    out: dict[str, Any] = {}
    with IPSet() as ref:
        ref.create("sgt4", stype="hash:ip", family=socket.AF_INET, timeout=600)
        ref.create("sgt6", stype="hash:ip", family=socket.AF_INET6, timeout=600)
        raw.add("sgt4", V4, 120)
        raw.add("sgt6", V6, 60)
        raw.add("sgt4", V4, 240)  # present: the timeout is refreshed, no error
        out["test"] = (raw.test("sgt4", V4), raw.test("sgt6", V6),
                       raw.test("sgt4", ipaddress.ip_address("198.51.100.8").packed))
        out["pyroute2_test"] = (bool(ref.test("sgt4", "198.51.100.7")),
                                bool(ref.test("sgt6", "2001:db8::7", family=socket.AF_INET6)))
        timeouts = {}
        for name in ("sgt4", "sgt6"):
            for msg in ref.list(name):
                adt = msg.get_attr("IPSET_ATTR_ADT")
                for data in adt.get_attrs("IPSET_ATTR_DATA") if adt else []:
                    timeouts[name] = data.get_attr("IPSET_ATTR_TIMEOUT")
        out["timeouts"] = timeouts
        raw.delete("sgt4", V4)
        raw.delete("sgt4", V4)  # absent: still no error
        out["after_delete"] = raw.test("sgt4", V4)
        try:
            raw.add("nosuchset", V4, 10)
        except NetlinkError as exc:
            out["missing_set"] = exc.errno
    raw.close()
    return out


def test_raw_requests_against_the_kernel() -> None:
    need_root()
    with namespaces("sgnl") as (ns,):
        out = run_in_netns(ns.name, _kernel_roundtrip)
    assert out["test"] == (True, True, False)
    assert out["pyroute2_test"] == (True, True)
    assert 230 <= out["timeouts"]["sgt4"] <= 240 and 50 <= out["timeouts"]["sgt6"] <= 60
    assert out["after_delete"] is False
    assert out["missing_set"] == errno.ENOENT


def _backend_paths(broken: bool) -> dict[str, Any]:
    b = IpsetBackend(BlockConfig(set_name="sgr", max_set_size=2, clear_conntrack=False))
    b.start()
    if broken:  # a raw socket that fails on every request: pyroute2 must take over
        class Dead:
            def add(self, *a: Any) -> None:
                raise OSError(errno.EBADF, "dead")

            delete = add

            def close(self) -> None:
                pass

        b._raw = Dead()  # type: ignore[assignment]

        class DeadLister:
            def list(self, *a: Any) -> None:
                raise OSError(errno.EBADF, "dead")

            def close(self) -> None:
                pass

        b._lister = DeadLister()  # type: ignore[assignment]
    b.block("198.51.100.7", 100)
    b.block("2001:db8::7", 100)
    listed = sorted(x.ip for x in b.list())
    b.unblock("198.51.100.7")
    b.unblock("198.51.100.7")  # not blocked: fine
    b.block("198.51.100.8", 100)
    b.block("198.51.100.9", 100)
    try:
        b.block("198.51.100.10", 100)
        full = "no error"
    except BackendError as exc:
        full = str(exc)
    out = {"listed": listed, "after": sorted(x.ip for x in b.list()), "full": full,
           "raw_off": b._raw_off, "lister_off": b._lister_off,
           "expiry": sorted(round(x.expires - b.clock.now()) for x in b.list())}
    b.remove()
    try:
        b.block("198.51.100.7", 100)
        out["no_set"] = "no error"
    except BackendError as exc:
        out["no_set"] = str(exc)
    b.unblock("198.51.100.7")  # no set: nothing is blocked, no error
    b.stop()
    return out


@pytest.mark.parametrize("broken", [False, True], ids=["raw", "raw-broken"])
def test_backend_answers_the_same_on_either_path(broken: bool) -> None:
    need_root()
    with namespaces("sgnb") as (ns,):
        out = run_in_netns(ns.name, _backend_paths, broken)
    assert out["listed"] == ["198.51.100.7", "2001:db8::7"]
    assert out["after"] == ["198.51.100.8", "198.51.100.9", "2001:db8::7"]
    assert "is full" in out["full"]
    assert "does not exist" in out["no_set"]
    assert out["raw_off"] is broken
    assert out["lister_off"] is broken
    assert all(95 <= left <= 100 for left in out["expiry"]), out["expiry"]
