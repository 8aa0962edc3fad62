"""The direct OpenFlow path without a switch: the codec, ofctl text, and a fake switch."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scanguard_ids.block import registry
from scanguard_ids.block.common import Runner
from scanguard_ids.block.sdn import ofp13
from scanguard_ids.block.sdn.ofconn import OfConnection, parse_target
from scanguard_ids.block.sdn.openflow import (
    DropFlow,
    FlowLayout,
    OpenFlowBackend,
    parse_ofctl_dump,
)
from scanguard_ids.clock import FixedClock
from scanguard_ids.config import BlockConfig
from scanguard_ids.errors import BackendError

T0 = 1_800_000_000.0
V4 = ipaddress.ip_address("198.51.100.7")
V6 = ipaddress.ip_address("2001:db8::7")


# -- codec -----------------------------------------------------------------------------
@pytest.mark.parametrize("addr,direction,field_id", [
    (V4, "src", ofp13.IPV4_SRC), (V4, "dst", ofp13.IPV4_DST),
    (V6, "src", ofp13.IPV6_SRC), (V6, "dst", ofp13.IPV6_DST),
])
def test_match_roundtrip(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, direction: str,
                         field_id: int) -> None:
    m = ofp13.match_ip(addr, direction)
    assert len(m) % 8 == 0
    fields, length = ofp13.parse_match(m)
    assert length == len(m)
    eth = ofp13.ETH_IPV4 if addr.version == 4 else ofp13.ETH_IPV6
    assert fields == {ofp13.ETH_TYPE: struct.pack("!H", eth), field_id: addr.packed}


def test_flow_mod_layout() -> None:
    msg = ofp13.flow_mod(7, command=ofp13.ADD, match=ofp13.match_ip(V4, "src"),
                         cookie=0x5CA9 << 48, table_id=3, priority=40000, hard_timeout=300)
    h = ofp13.header(msg)
    assert (h.version, h.type, h.length, h.xid) == (4, ofp13.FLOW_MOD, len(msg), 7)
    cookie, mask, table, cmd, idle, hard, prio, buf, port, group, flags = struct.unpack_from(
        "!QQBBHHHIIIH", msg, 8)
    assert (cookie, mask, table, cmd, idle, hard, prio) == (0x5CA9 << 48, 0, 3, 0, 0, 300,
                                                            40000)
    assert (buf, port, group, flags) == (ofp13.NO_BUFFER, ofp13.PORT_ANY, ofp13.GROUP_ANY, 0)
    # header, flow_mod fields, match: 4 + (4 + 2) eth_type + (4 + 4) ipv4 = 18, padded to 24
    assert len(msg) == 8 + 40 + 24
    with pytest.raises(ValueError):
        ofp13.flow_mod(1, command=ofp13.ADD, match=b"", cookie=0, hard_timeout=70000)


def flow_stats_entry(cookie: int, fields: list[tuple[int, bytes]], hard: int, dur: float,
                     table: int = 0, priority: int = 40000) -> bytes:
    oxms = b"".join(struct.pack("!HBB", 0x8000, fid << 1, len(v)) + v for fid, v in fields)
    mlen = 4 + len(oxms)
    match = struct.pack("!HH", 1, mlen) + oxms + b"\0" * ((8 - mlen % 8) % 8)
    body_len = 48 + len(match)
    return struct.pack("!HBxIIHHHH4xQQQ", body_len, table, int(dur), int(dur % 1 * 1e9),
                       priority, 0, hard, 0, cookie, 0, 0) + match


def test_parse_flow_stats() -> None:
    eth = (ofp13.ETH_TYPE, b"\x08\x00")
    payload = (flow_stats_entry(1, [eth, (ofp13.IPV4_SRC, V4.packed)], 300, 20.5)
               + flow_stats_entry(2, [(ofp13.ETH_TYPE, b"\x86\xdd"),
                                      (ofp13.IPV6_DST, V6.packed)], 0, 1.0))
    stats = ofp13.parse_flow_stats(payload)
    assert [s.address() for s in stats] == [("198.51.100.7", "src"), ("2001:db8::7", "dst")]
    assert stats[0].hard_timeout == 300 and stats[0].duration == pytest.approx(20.5)
    assert stats[1].cookie == 2
    with pytest.raises(ofp13.DecodeError):
        ofp13.parse_flow_stats(payload[:60] + b"\0" * 60)


def test_errors_and_targets() -> None:
    assert ofp13.parse_error(struct.pack("!HH", 5, 1)) == "flow_mod failed: table full"
    assert "type=9" in ofp13.parse_error(struct.pack("!HH", 9, 9))
    assert parse_target("unix:/run/x.mgmt") == (socket.AF_UNIX, "/run/x.mgmt")
    assert parse_target("tcp:127.0.0.1:6634") == (socket.AF_INET, ("127.0.0.1", 6634))
    assert parse_target("tcp:[::1]:6634") == (socket.AF_INET6, ("::1", 6634))
    for bad in ("br0", "tcp:127.0.0.1", "ssl:1.2.3.4:6653", "unix:"):
        with pytest.raises(BackendError):
            parse_target(bad)


# -- ovs-ofctl text --------------------------------------------------------------------
def test_ofctl_lines() -> None:
    lay = FlowLayout()
    assert lay.ofctl_add(DropFlow(V4, "src", 300)) == (
        "add cookie=0x5ca9000000000000,table=0,priority=40000,hard_timeout=300,"
        "ip,nw_src=198.51.100.7,actions=drop")
    assert lay.ofctl_delete(DropFlow(V6, "dst")) == (
        "delete cookie=0x5ca9000000000000/0xffff000000000000,table=0,"
        "ipv6,ipv6_dst=2001:db8::7")


def test_parse_ofctl_dump() -> None:
    text = """OFPST_FLOW reply (OF1.3) (xid=0x2):
 cookie=0x5ca9000000000000, duration=10.5s, table=0, n_packets=0, n_bytes=0, hard_timeout=300, priority=40000,ip,nw_src=198.51.100.7 actions=drop
 cookie=0x5ca9000000000000, duration=0.008s, table=0, n_packets=0, n_bytes=0, reset_counts priority=40000,ipv6,ipv6_dst=2001:db8::7 actions=drop
"""  # noqa: E501
    got = parse_ofctl_dump(text)
    assert [(i.ip, i.direction) for i in got] == [("198.51.100.7", "src"), ("2001:db8::7", "dst")]
    assert got[0].left == pytest.approx(289.5)
    assert got[1].left is None


# -- a fake switch on a unix socket ----------------------------------------------------
@dataclass
class FakeSwitch:
    path: Path
    version: int = ofp13.VERSION
    flows: dict[tuple[str, str], int] = field(default_factory=dict)  # (ip, dir) -> hard
    refuse_table: int | None = None
    hang_up_after: int | None = None  # close the connection after this many messages
    connections: int = 0
    echoes_answered: int = 0
    ready: threading.Event = field(default_factory=threading.Event)

    def serve(self, stop: threading.Event) -> None:
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(str(self.path))
        srv.listen(4)
        srv.settimeout(0.1)
        self.ready.set()
        with srv:
            while not stop.is_set():
                try:
                    conn, _ = srv.accept()
                except TimeoutError:
                    continue
                self.connections += 1
                with conn:
                    self._session(conn, stop)

    def _session(self, conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(0.1)
        buf, seen = b"", 0
        conn.sendall(struct.pack("!BBHI", self.version, ofp13.HELLO, 8, 99))
        while not stop.is_set():
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            buf += chunk
            while len(buf) >= 8 and len(buf) >= ofp13.header(buf).length:
                h = ofp13.header(buf)
                body, buf = buf[8:h.length], buf[h.length:]
                seen += 1
                if self.hang_up_after is not None and seen > self.hang_up_after:
                    self.hang_up_after = None
                    return
                self._handle(conn, h, body)

    def _handle(self, conn: socket.socket, h: ofp13.Header, body: bytes) -> None:
        if h.type == ofp13.FLOW_MOD:
            _c, _m, table, cmd, _i, hard, _p, _b, _o, _g, _f = struct.unpack_from(
                "!QQBBHHHIIIH2x", body)
            fields, _ = ofp13.parse_match(body, 40)
            if self.refuse_table is not None and table == self.refuse_table:
                conn.sendall(ofp13.message(ofp13.ERROR, h.xid, struct.pack("!HH", 5, 2)))
                return
            st = ofp13.FlowStat(table, 0, 0, hard, 0, fields)
            key = st.address()
            if cmd == ofp13.ADD and key:
                self.flows[key] = hard
            elif cmd == ofp13.DELETE:
                if key is None:
                    self.flows.clear()
                else:
                    self.flows.pop(key, None)
        elif h.type == ofp13.MULTIPART_REQUEST:
            payload = b"".join(
                flow_stats_entry(0x5CA9 << 48, [
                    (ofp13.ETH_TYPE, b"\x08\x00" if ":" not in ip else b"\x86\xdd"),
                    ({("src", 4): ofp13.IPV4_SRC, ("dst", 4): ofp13.IPV4_DST,
                      ("src", 6): ofp13.IPV6_SRC, ("dst", 6): ofp13.IPV6_DST}[
                        (d, ipaddress.ip_address(ip).version)],
                     ipaddress.ip_address(ip).packed)], hard, 10.0)
                for (ip, d), hard in sorted(self.flows.items()))
            conn.sendall(ofp13.message(ofp13.MULTIPART_REPLY, h.xid,
                                       struct.pack("!HH4x", ofp13.MP_FLOW, 0) + payload))
        elif h.type == ofp13.BARRIER_REQUEST:
            # an echo request first: the client must answer it while it waits
            conn.sendall(ofp13.message(ofp13.ECHO_REQUEST, 4242, b"ping"))
            conn.sendall(ofp13.message(ofp13.BARRIER_REPLY, h.xid))
        elif h.type == ofp13.ECHO_REPLY and body == b"ping":
            self.echoes_answered += 1


@pytest.fixture
def switch(tmp_path: Path) -> Iterator[FakeSwitch]:
    sw = FakeSwitch(tmp_path / "br0.mgmt")
    stop = threading.Event()
    t = threading.Thread(target=sw.serve, args=(stop,), daemon=True)
    t.start()
    assert sw.ready.wait(5), "fake switch did not come up"
    try:
        yield sw
    finally:
        stop.set()
        t.join(timeout=5)


def backend(sw: FakeSwitch, **kw: object) -> OpenFlowBackend:
    return OpenFlowBackend(BlockConfig(), FixedClock(T0), target=f"unix:{sw.path}",
                           timeout=2.0, **kw)  # type: ignore[arg-type]


def test_native_block_list_unblock(switch: FakeSwitch) -> None:
    b = backend(switch)
    b.start()
    b.block("198.51.100.7", 300)
    b.block("2001:db8::7", 70_000)  # beyond 16 bits: cut to 65535
    assert switch.flows == {("198.51.100.7", "src"): 300, ("198.51.100.7", "dst"): 300,
                            ("2001:db8::7", "src"): 65535, ("2001:db8::7", "dst"): 65535}
    got = {x.ip: x.expires for x in b.list()}
    assert got == {"198.51.100.7": T0 + 290, "2001:db8::7": T0 + 65525}
    b.unblock("198.51.100.7")
    assert set(switch.flows) == {("2001:db8::7", "src"), ("2001:db8::7", "dst")}
    assert switch.echoes_answered >= 4
    b.remove()
    assert switch.flows == {}
    assert switch.connections == 1  # one connection for everything before remove()


def test_native_reconnects_once_after_a_hang_up(switch: FakeSwitch) -> None:
    b = backend(switch)
    b.start()
    switch.hang_up_after = 0  # the next message closes the connection (idle timeout)
    b.block("198.51.100.7", 30)
    assert ("198.51.100.7", "src") in switch.flows
    assert switch.connections == 2


def test_native_switch_errors_are_backend_errors(switch: FakeSwitch) -> None:
    switch.refuse_table = 7
    b = backend(switch, table=7)
    b.start()
    with pytest.raises(BackendError, match="bad table id"):
        b.block("198.51.100.7", 30)


def test_native_refuses_old_openflow(switch: FakeSwitch) -> None:
    switch.version = 1
    with pytest.raises(BackendError, match="OpenFlow13"):
        backend(switch).start()


def test_no_switch_is_a_backend_error(tmp_path: Path) -> None:
    conn = OfConnection(f"unix:{tmp_path / 'none.mgmt'}", timeout=1)
    with pytest.raises(BackendError, match="none.mgmt"):
        conn.connect()


def test_cap_counts_addresses(switch: FakeSwitch) -> None:
    b = backend(switch, max_blocks=1)
    b.block("198.51.100.7", 30)
    b.block("198.51.100.7", 30)
    with pytest.raises(BackendError, match="max_blocks"):
        b.block("198.51.100.8", 30)
    b.unblock("198.51.100.7")
    b.block("198.51.100.8", 30)


def test_bad_settings() -> None:
    with pytest.raises(BackendError, match="transport"):
        OpenFlowBackend(transport="snmp")
    with pytest.raises(BackendError, match="cookie"):
        OpenFlowBackend(cookie=1, cookie_mask=0xFFFF << 48)


def test_ofctl_transport_argv() -> None:
    calls: list[tuple[list[str], str | None]] = []

    def runner(argv, stdin=None, timeout=30.0):  # type: ignore[no-untyped-def]
        import subprocess

        calls.append((list(argv), stdin))
        out = ("OFPST_FLOW reply (OF1.3) (xid=0x2):\n cookie=0x5ca9000000000000, "
               "duration=1s, table=0, hard_timeout=10, priority=40000,ip,"
               "nw_src=198.51.100.7 actions=drop\n")
        return subprocess.CompletedProcess(argv, 0, out, "")

    r: Runner = runner
    b = OpenFlowBackend(BlockConfig(block_outbound=False), FixedClock(T0),
                        target="unix:/x/br0.mgmt", transport="ofctl", runner=r)
    b.block("198.51.100.7", 10)
    argv, stdin = calls[-1]
    assert argv[:3] == ["ovs-ofctl", "-O", "OpenFlow13"]
    assert argv[-3:] == ["add-flows", "unix:/x/br0.mgmt", "-"]
    assert stdin == ("add cookie=0x5ca9000000000000,table=0,priority=40000,hard_timeout=10,"
                     "ip,nw_src=198.51.100.7,actions=drop\n")
    assert [(x.ip, x.expires) for x in b.list()] == [("198.51.100.7", T0 + 9)]
    b.unblock("198.51.100.7")  # both directions, whatever block_outbound says
    assert calls[-1][1] is not None and calls[-1][1].count("delete ") == 2


def test_registry_builds_it() -> None:
    with contextlib.suppress(BackendError):
        b = registry.create("sdn-openflow", BlockConfig(), FixedClock(T0),
                            target="unix:/nonexistent/br0.mgmt")
        assert isinstance(b, OpenFlowBackend)
        assert b.info.name == "sdn-openflow"
