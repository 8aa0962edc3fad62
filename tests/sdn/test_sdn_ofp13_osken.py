"""ofp13's hand-made OpenFlow 1.3 bytes against os-ken's encoder (what Faucet itself uses).

Every kind of message :mod:`scanguard_ids.block.sdn.ofp13` builds, in every shape the
sdn-openflow backend and the lab's flowwatch send it (see ``openflow.NativeTransport``:
ADD with a hard timeout and OFPFF_RESET_COUNTS, DELETE by cookie mask, delete-all over
OFPTT_ALL, the flow-stats request), is built by both and must be byte-identical.
os-ken's defaults differ from ours only where the field is ignored (out_port/out_group
of an ADD: os-ken 0, ours OFPP_ANY/OFPG_ANY), so the os-ken side is given ours
explicitly. Skipped without os-ken (installed with the ``sdn`` extra: Faucet needs it).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from scanguard_ids.block.sdn import ofp13

parser = pytest.importorskip(
    "os_ken.ofproto.ofproto_v1_3_parser",
    reason="os_ken not importable (pip install '.[sdn]' installs it with faucet)")
ofp: Any = pytest.importorskip("os_ken.ofproto.ofproto_v1_3")


class _Datapath:
    """What an os-ken message needs of a datapath to serialize itself."""

    ofproto = ofp
    ofproto_parser = parser
    id = 0x5CA9


def osken(msg: Any, xid: int) -> bytes:
    msg.set_xid(xid)
    msg.serialize()
    return bytes(msg.buf)


ADDRS = ["192.0.2.2", "203.0.113.254", "2001:db8::2", "2001:db8:5ca9::ffff:1"]
FIELD = {(4, "src"): "ipv4_src", (4, "dst"): "ipv4_dst",
         (6, "src"): "ipv6_src", (6, "dst"): "ipv6_dst"}
#: (table, priority, cookie, cookie_mask): the default layout, the extremes.
LAYOUTS = [(0, 9000, 0x5CA9_0000_0000_0001, 0xFFFF_FFFF_0000_0000),
           (3, 1, 1, 1),
           (254, 0xFFFF, 0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF),
           (0, 0, 0, 0)]


def _os_match(addr: str, direction: str) -> Any:
    ip = ipaddress.ip_address(addr)
    eth = ofp13.ETH_IPV4 if ip.version == 4 else ofp13.ETH_IPV6
    return parser.OFPMatch(**{"eth_type": eth, FIELD[(ip.version, direction)]: addr})


def _os_flow_mod(xid: int, command: int, match: Any, cookie: int, cookie_mask: int,
                 table_id: int, priority: int, hard_timeout: int, flags: int) -> bytes:
    return osken(parser.OFPFlowMod(
        _Datapath(), cookie=cookie, cookie_mask=cookie_mask, table_id=table_id,
        command=command, idle_timeout=0, hard_timeout=hard_timeout, priority=priority,
        buffer_id=ofp.OFP_NO_BUFFER, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
        flags=flags, match=match, instructions=[]), xid)


def test_our_constants_are_the_spec_values() -> None:
    assert ofp13.VERSION == ofp.OFP_VERSION
    assert (ofp13.HELLO, ofp13.ERROR, ofp13.ECHO_REQUEST, ofp13.ECHO_REPLY) == (
        ofp.OFPT_HELLO, ofp.OFPT_ERROR, ofp.OFPT_ECHO_REQUEST, ofp.OFPT_ECHO_REPLY)
    assert (ofp13.FLOW_MOD, ofp13.MULTIPART_REQUEST, ofp13.MULTIPART_REPLY) == (
        ofp.OFPT_FLOW_MOD, ofp.OFPT_MULTIPART_REQUEST, ofp.OFPT_MULTIPART_REPLY)
    assert (ofp13.BARRIER_REQUEST, ofp13.BARRIER_REPLY) == (
        ofp.OFPT_BARRIER_REQUEST, ofp.OFPT_BARRIER_REPLY)
    assert (ofp13.ADD, ofp13.DELETE) == (ofp.OFPFC_ADD, ofp.OFPFC_DELETE)
    assert (ofp13.FF_SEND_FLOW_REM, ofp13.FF_RESET_COUNTS) == (
        ofp.OFPFF_SEND_FLOW_REM, ofp.OFPFF_RESET_COUNTS)
    assert (ofp13.MP_FLOW, ofp13.MPF_REPLY_MORE) == (ofp.OFPMP_FLOW, ofp.OFPMPF_REPLY_MORE)
    assert (ofp13.NO_BUFFER, ofp13.PORT_ANY, ofp13.GROUP_ANY, ofp13.TABLE_ALL) == (
        ofp.OFP_NO_BUFFER, ofp.OFPP_ANY, ofp.OFPG_ANY, ofp.OFPTT_ALL)
    assert ofp13.OXM_CLASS_BASIC == ofp.OFPXMC_OPENFLOW_BASIC
    assert (ofp13.ETH_TYPE, ofp13.IPV4_SRC, ofp13.IPV4_DST, ofp13.IPV6_SRC,
            ofp13.IPV6_DST) == (ofp.OFPXMT_OFB_ETH_TYPE, ofp.OFPXMT_OFB_IPV4_SRC,
                                ofp.OFPXMT_OFB_IPV4_DST, ofp.OFPXMT_OFB_IPV6_SRC,
                                ofp.OFPXMT_OFB_IPV6_DST)


@pytest.mark.parametrize("xid", [0, 1, 0xFFFF_FFFF])
def test_hello(xid: int) -> None:
    assert ofp13.hello(xid) == osken(parser.OFPHello(_Datapath()), xid)


@pytest.mark.parametrize("xid", [0, 77, 0xFFFF_FFFF])
def test_barrier(xid: int) -> None:
    assert ofp13.barrier(xid) == osken(parser.OFPBarrierRequest(_Datapath()), xid)


@pytest.mark.parametrize("data", [b"", b"x", b"\x00" * 8, bytes(range(256))])
def test_echo_reply(data: bytes) -> None:
    assert ofp13.echo_reply(42, data) == osken(parser.OFPEchoReply(_Datapath(), data), 42)


@pytest.mark.parametrize("addr", ADDRS)
@pytest.mark.parametrize("direction", ["src", "dst"])
def test_match(addr: str, direction: str) -> None:
    ours = ofp13.match_ip(ipaddress.ip_address(addr), direction)
    buf = bytearray()
    _os_match(addr, direction).serialize(buf, 0)
    assert ours == bytes(buf)


def test_match_all() -> None:
    buf = bytearray()
    parser.OFPMatch().serialize(buf, 0)
    assert ofp13.match_all() == bytes(buf)


@pytest.mark.parametrize("addr", ADDRS)
@pytest.mark.parametrize("direction", ["src", "dst"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("command", "hard_timeout", "flags"), [
    (ofp13.ADD, 300, ofp13.FF_RESET_COUNTS),   # the backend's add
    (ofp13.ADD, 1, ofp13.FF_RESET_COUNTS | ofp13.FF_SEND_FLOW_REM),
    (ofp13.ADD, ofp13.MAX_HARD_TIMEOUT, 0),
    (ofp13.ADD, 0, 0),                         # no timeout
    (ofp13.DELETE, 0, 0),                      # the backend's delete
])
def test_flow_mod(addr: str, direction: str, layout: tuple[int, int, int, int],
                  command: int, hard_timeout: int, flags: int) -> None:
    table, priority, cookie, mask = layout
    mask = mask if command == ofp13.DELETE else 0
    ours = ofp13.flow_mod(0x1234, command=command,
                          match=ofp13.match_ip(ipaddress.ip_address(addr), direction),
                          cookie=cookie, cookie_mask=mask, table_id=table, priority=priority,
                          hard_timeout=hard_timeout, flags=flags)
    theirs = _os_flow_mod(0x1234, command, _os_match(addr, direction), cookie, mask, table,
                          priority, hard_timeout, flags)
    assert ours == theirs


@pytest.mark.parametrize("layout", LAYOUTS)
def test_delete_all(layout: tuple[int, int, int, int]) -> None:
    """The backend's remove(): every flow with its cookie, in every table."""
    _, _, cookie, mask = layout
    ours = ofp13.flow_mod(9, command=ofp13.DELETE, match=ofp13.match_all(), cookie=cookie,
                          cookie_mask=mask, table_id=ofp13.TABLE_ALL)
    theirs = _os_flow_mod(9, ofp.OFPFC_DELETE, parser.OFPMatch(), cookie, mask,
                          ofp.OFPTT_ALL, 0, 0, 0)
    assert ours == theirs


@pytest.mark.parametrize("table", [ofp13.TABLE_ALL, 0, 7])
@pytest.mark.parametrize(("cookie", "mask"), [(0, 0), (0x5CA9_0000_0000_0001,
                                                        0xFFFF_FFFF_0000_0000)])
def test_flow_stats_request(table: int, cookie: int, mask: int) -> None:
    ours = ofp13.flow_stats_request(5, cookie=cookie, cookie_mask=mask, table_id=table)
    theirs = osken(parser.OFPFlowStatsRequest(
        _Datapath(), flags=0, table_id=table, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
        cookie=cookie, cookie_mask=mask, match=parser.OFPMatch()), 5)
    assert ours == theirs


def test_what_we_decode_reads_what_os_ken_encodes() -> None:
    """The header and an error message as os-ken would send them (a switch speaks the same)."""
    raw = osken(parser.OFPErrorMsg(_Datapath(), type_=ofp.OFPET_FLOW_MOD_FAILED,
                                   code=ofp.OFPFMFC_TABLE_FULL, data=b"x" * 8), 3)
    h = ofp13.header(raw)
    assert (h.version, h.type, h.length, h.xid) == (4, ofp13.ERROR, len(raw), 3)
    assert ofp13.parse_error(raw[ofp13.Header.SIZE:]) == "flow_mod failed: table full"
