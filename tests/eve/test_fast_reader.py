"""The fast readers give exactly the results of the Python decoder.

decode.py is the reference: ``Decoder(accel=False)`` never touches the C module or msgspec.
Every differential test here runs once per fast reader (FAST: "c", the C prefilter + head of
scanguard_ids/eve/_fast.c, and "msgspec", typed.py's batch check + typed alert decoder; both
with the Python parse as fallback), feeds the same input to ``Decoder(reader=FAST)`` and
``Decoder(accel=False)`` and wants equal events AND equal DecodeStats. The tests of the C
functions themselves (``_fast.head``, ``_fast.prefilter``) run with FAST = "c" only.

The C reader's documented assumption is Suricata's own output: compact JSON, keys in
Suricata 7's fixed order, each top-level key once, the sensor name ("host") last. The
generators below write lines that way (a dict in Suricata's key order through orjson). The
tests in "Outside the documented layout" feed lines Suricata does not write (truncated,
corrupt, host not last) and still want both paths to agree.
"""

from __future__ import annotations

import base64
import calendar
import dataclasses
import functools
import json
import os
import re
import struct
import sys
from collections.abc import Iterator
from datetime import datetime
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanguard_ids import config, suricata
from scanguard_ids.eve import decode
from scanguard_ids.eve.decode import Decoder
from scanguard_ids.eve.packet import quoted_probe
from scanguard_ids.model import Kind, ResponseEvent

SIDS = config.sid_set(config.Config())
FAST = "c"  # the fast reader under test; _fast_reader() below sets it per module run


@pytest.fixture(scope="module", autouse=True, params=["c", "msgspec"])
def _fast_reader(request: pytest.FixtureRequest) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys.modules[__name__], "FAST", request.param)
        yield request.param


def c_only(fn: Any) -> Any:
    """A test of the C functions themselves: runs in the "c" pass only."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        if FAST != "c":
            pytest.skip("a test of the C reader's own functions")
        return fn(*args, **kwargs)

    return run
REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "bench" / "samples" / "suricata7-eve.jsonl"

# Two real lines of bench/samples/suricata7-eve.jsonl (Suricata 7, live capture on victim0).
RST = (
    b'{"timestamp":"2026-11-25T20:22:04.661421+0000","flow_id":1151775006207283,'
    b'"in_iface":"victim0","event_type":"alert","src_ip":"192.0.2.1","src_port":21,'
    b'"dest_ip":"192.0.2.2","dest_port":52798,"proto":"TCP","pkt_src":"wire/pcap",'
    b'"alert":{"action":"allowed","gid":1,"signature_id":9400001,"rev":1,'
    b'"signature":"SCANGUARD TCP RST from a closed port",'
    b'"category":"Attempted Information Leak","severity":2},"direction":"to_client",'
    b'"flow":{"pkts_toserver":1,"pkts_toclient":1,"bytes_toserver":58,"bytes_toclient":54,'
    b'"start":"2026-11-25T20:22:04.661384+0000","src_ip":"192.0.2.2",'
    b'"dest_ip":"192.0.2.1","src_port":52798,"dest_port":21},"stream":0,'
    b'"packet":"GikcQ68Dhju5MJbZCABFAAAoAABAAEAGtszAAAIBwAACAgAVzj4AAAAA9fyWUVAUAADRKgAA",'
    b'"packet_info":{"linktype":1}}'
)
ICMP = (
    b'{"timestamp":"2026-11-25T20:22:04.809614+0000","flow_id":1224534733143805,'
    b'"in_iface":"victim0","event_type":"alert","src_ip":"192.0.2.1",'
    b'"dest_ip":"192.0.2.2","proto":"ICMP","icmp_type":3,"icmp_code":3,'
    b'"pkt_src":"wire/pcap","alert":{"action":"allowed","gid":1,"signature_id":9400002,'
    b'"rev":1,"signature":"SCANGUARD ICMP port unreachable",'
    b'"category":"Attempted Information Leak","severity":2},"app_proto":"snmp",'
    b'"direction":"to_client","flow":{"pkts_toserver":1,"pkts_toclient":1,'
    b'"bytes_toserver":102,"bytes_toclient":130,"start":"2026-11-25T20:22:04.809397+0000",'
    b'"src_ip":"192.0.2.2","dest_ip":"192.0.2.1"},'
    b'"payload":"RQAAWFX+AAAsEbSTwAACAsAAAgHuoQChAERERjA6AgEDMA8CAkppAgMA/+MEAQQCAQMEEDAOB'
    b'AACAQACAQAEAAQABAAwEgQABACgDAICN/ACAQACAQAwAA==","stream":0,'
    b'"packet":"GikcQ68Dhju5MJbZCABFwAB0CSMAAEAB7KLAAAIBwAACAgMDgVYAAAAARQAAWFX+AAAsEbSTwA'
    b'ACAsAAAgHuoQChAERERjA6AgEDMA8CAkppAgMA/+MEAQQCAQMEEDAOBAACAQACAQAEAAQABAAwEgQABACgDA'
    b'ICN/ACAQACAQAwAA==","packet_info":{"linktype":1}}'
)


def _sample_lines() -> list[bytes]:
    return SAMPLE.read_bytes().splitlines()


SAMPLE_LINES = _sample_lines()
SAMPLE_ALERTS = [ln for ln in SAMPLE_LINES if b'"event_type":"alert"' in ln]
SAMPLE_OTHERS = [ln for ln in SAMPLE_LINES if b'"event_type":"alert"' not in ln]

# ---------------------------------------------------------------------------------------------
# helpers


def both(line: bytes, max_line_bytes: int = 1_048_576) -> tuple[Any, Any, Decoder, Decoder]:
    """decode(line) with the C reader and without: (event C, event Python, decoders)."""
    fast = Decoder(SIDS, max_line_bytes, reader=FAST)
    ref = Decoder(SIDS, max_line_bytes, accel=False)
    return fast.decode(line), ref.decode(line), fast, ref


def assert_same(line: bytes, max_line_bytes: int = 1_048_576) -> ResponseEvent | None:
    got, want, fast, ref = both(line, max_line_bytes)
    assert got == want, line
    assert fast.stats == ref.stats, (line, fast.stats, ref.stats)
    # decode_batch on the C path (the live daemon's): the same, line kept whole
    batch = Decoder(SIDS, max_line_bytes, reader=FAST)
    assert batch.decode_batch([line]) == ([] if want is None else [want]), line
    assert batch.stats == ref.stats, (line, batch.stats, ref.stats)
    # The block path too, where the C reader builds the event itself: cold, then with the
    # address cache warm (IPv6 addresses come from it). A newline would make it two lines.
    if b"\n" in line:
        return want
    block = Decoder(SIDS, max_line_bytes, reader=FAST)
    for _ in range(2):
        assert block.decode_block(line) == ([] if want is None else [want]), line
    ref.decode(line)
    assert block.stats == ref.stats, (line, block.stats, ref.stats)
    return want


@pytest.mark.parametrize("local", ["192.0.2.1", "0.0.0.0", "255.255.255.255", "192.0.2.01",
                                   "1.2.3.256", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1..2.3",
                                   "2001:DB8::1", "::ffff:192.0.2.1", "::", "1::", "fe80::1"])
def test_addresses_the_c_reader_canonicalises(local: str) -> None:
    """IPv4 text is checked and kept in C; anything else goes through decode.py's cache."""
    assert_same(RST.replace(b'"192.0.2.1"', f'"{local}"'.encode()))
    assert_same(RST.replace(b'"192.0.2.2"', f'"{local}"'.encode()))
    # the ICMP error's quoted probe came from 192.0.2.2: another dest_ip is a remote_mismatch
    assert_same(ICMP.replace(b'"dest_ip":"192.0.2.2"', f'"dest_ip":"{local}"'.encode(), 1))


def assert_head_shape(t: object) -> None:
    """head() returns None or the 12-tuple decode.py's _event() takes."""
    if t is None:
        return
    assert type(t) is tuple and len(t) == 12
    ts, src, dst, proto, sport, itype, icode, sid, sensor, pproto, psrc, pport = t
    assert type(ts) is float
    assert type(src) is str and type(dst) is str and type(proto) is str and type(sensor) is str
    for v in (sport, itype, icode, pproto, pport):
        assert v is None or (type(v) is int and v >= 0)
    assert type(sid) is int and sid >= 0
    assert psrc is None or (type(psrc) is bytes and len(psrc) in (4, 16))
    assert (pproto is None) == (psrc is None) == (pport is None)


def has_escape(text: str) -> bool:
    """Whether orjson writes ``text`` with a backslash escape."""
    return any(c in '"\\' or ord(c) < 0x20 for c in text)


# ---------------------------------------------------------------------------------------------
# generators: alert lines the way Suricata 7 writes them

# Characters orjson escapes, some it does not (DEL, U+2028), and non-ASCII.
_TRICKY_CHARS = st.sampled_from(list('"\\\n\r\t\b\f\x00\x01\x1f\x7f/ \u2028\u00e9\u6f22\U0001f642'))
TEXT = st.text(
    st.one_of(_TRICKY_CHARS, st.characters(blacklist_categories=("Cs",))), max_size=24
)
PLAIN_TEXT = st.text(
    st.one_of(st.sampled_from(list("abc-_.0 \u00e9\u6f22\U0001f642\x7f")),
              st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\')),
    max_size=24,
)
# The C reader leaves non-ASCII lines to the full parse (which validates UTF-8), so most
# generated lines are ASCII only (escapes included) to exercise the C path.
ASCII_TEXT = st.text(st.characters(max_codepoint=0x7F), max_size=24)
ASCII_PLAIN_TEXT = st.text(st.sampled_from(list("abc-_.0 /:\x7f")), max_size=24)

OUR_SIDS = st.integers(config.SID_FIRST, config.SID_CORE_LAST)
FOREIGN_SIDS = st.one_of(
    st.sampled_from([0, 1, 2_000_001, 2_210_045, config.SID_FIRST - 1, config.SID_CORE_LAST + 1,
                     config.SID_LAST, 10**18 - 1]),
    st.integers(0, 10**18 - 1),
)
PORT_PROTOS = (6, 17, 33, 132, 136)
_IP_CHARS = frozenset("0123456789abcdefABCDEF.:")


@st.composite
def timestamps(draw: st.DrawFn) -> tuple[str, bool]:
    """(EVE timestamp text, whether it is a valid one in Suricata's exact format)."""
    year = draw(st.integers(1971, 2200))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, calendar.monthrange(year, month)[1]))
    h, mi, s = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    frac = draw(st.none() | st.integers(0, 999_999))
    sign = draw(st.sampled_from("+-"))
    oh, om = draw(st.integers(0, 23)), draw(st.integers(0, 59))
    odd = draw(st.sampled_from([None] * 30 + ["day", "sec60", "far", "frac3", "colon", "Z",
                                              "space", "year0"]))
    if odd == "day":
        day = draw(st.integers(calendar.monthrange(year, month)[1] + 1, 32))
    elif odd == "sec60":
        s = 60
    elif odd == "far":
        year = draw(st.integers(2201, 9999))
    text = f"{year:04d}-{month:02d}-{day:02d}T{h:02d}:{mi:02d}:{s:02d}"
    if frac is not None:
        text += f".{frac:03d}"[:4] if odd == "frac3" else f".{frac:06d}"
    tz = f"{sign}{oh:02d}{om:02d}"
    if odd == "colon":
        tz = f"{sign}{oh:02d}:{om:02d}"
    elif odd == "Z":
        tz = "Z"
    text += tz
    if odd == "space":
        text = text.replace("T", " ")
    elif odd == "year0":
        text = "0000" + text[4:]
    # Year 2201+ is valid but beyond 2**53 microseconds only from ~2255 on; the C reader
    # then (correctly) leaves it to the Python path, so only odd=None is "surely fast".
    return text, odd is None


@st.composite
def ipv4s(draw: st.DrawFn) -> str:
    return str(IPv4Address(draw(st.integers(0, 2**32 - 1))))


@st.composite
def ipv6s(draw: st.DrawFn) -> str:
    groups = draw(st.lists(st.sampled_from([0, 0, 0, 1, 0xDB8, 0x2001, 0xFFFF]) |
                           st.integers(0, 0xFFFF), min_size=8, max_size=8))
    addr = IPv6Address(b"".join(g.to_bytes(2, "big") for g in groups))
    form = draw(st.sampled_from(["compressed", "exploded", "upper", "upper_exploded", "mapped"]))
    if form == "mapped":
        return "::ffff:" + str(IPv4Address(addr.packed[-4:]))
    text = addr.exploded if form.endswith("exploded") else addr.compressed
    return text.upper() if form.startswith("upper") else text


ADDRESSES = st.one_of(ipv4s(), ipv6s())
ODD_ADDRESSES = st.sampled_from(["", "1.2.3.256", "::g", "fe80::1%eth0", "192.0.2.1 ",
                                 "2001:db8::1::2", "1.2.3", "localhost"])


def _ipv4_header(draw: st.DrawFn, proto: int, src: bytes, dst: bytes, body: int) -> bytes:
    words = draw(st.sampled_from([0, 0, 0, 1, 3, 10]))
    ihl = 5 + words
    if draw(st.integers(0, 15)) == 0:
        ihl = draw(st.integers(0, 4))  # a header length below 20: no probe
    frag = draw(st.sampled_from([0, 0, 0x4000, 0x2000, 0x0001, 0x2001, 0x1FFF, 0x4010]))
    head = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + 4 * words + body,
                       draw(st.integers(0, 0xFFFF)), frag, 64, proto, 0, src, dst)
    return head + draw(st.binary(min_size=4 * words, max_size=4 * words))


def _ipv6_header(draw: st.DrawFn, proto: int, src: bytes, dst: bytes, body: int) -> bytes:
    chain = draw(st.lists(st.sampled_from([0, 43, 60, 44, 51]), max_size=3)
                 | st.lists(st.just(60), min_size=15, max_size=17))
    ext = b""
    for i, kind in enumerate(chain):
        nxt = chain[i + 1] if i + 1 < len(chain) else proto
        if kind == 44:
            off = draw(st.sampled_from([0, 0, 1, 0x1FFF]))
            ext += struct.pack("!BBHI", nxt, 0, off << 3 | draw(st.integers(0, 1)),
                               draw(st.integers(0, 2**32 - 1)))
        elif kind == 51:
            n = draw(st.integers(1, 3))  # AH length: (n + 2) * 4 bytes
            ext += bytes([nxt, n]) + draw(st.binary(min_size=(n + 2) * 4 - 2,
                                                    max_size=(n + 2) * 4 - 2))
        else:
            n = draw(st.integers(0, 2))  # (n + 1) * 8 bytes
            ext += bytes([nxt, n]) + draw(st.binary(min_size=n * 8 + 6, max_size=n * 8 + 6))
    first = chain[0] if chain else proto
    head = struct.pack("!IHBB16s16s", 0x6000_0000, len(ext) + body, first, 64, src, dst)
    return head + ext


@st.composite
def quoted_probes(draw: st.DrawFn, remote: str, local: str) -> bytes:
    """The quote of an ICMP error: the probe's IP header + transport header (or junk)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=80))
    v6 = draw(st.booleans())
    try:
        r, loc = ip_address(remote).packed, ip_address(local).packed
    except ValueError:
        r, loc = b"", b""
    size = 16 if v6 else 4
    if len(r) != size or draw(st.integers(0, 5)) == 0:  # sometimes not the alert's remote
        r = draw(st.binary(min_size=size, max_size=size))
    if len(loc) != size:
        loc = bytes(size)
    proto = draw(st.sampled_from(PORT_PROTOS + (1, 58, 47, 255)))
    transport = struct.pack("!HH", draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)))
    transport += draw(st.binary(max_size=8))
    if draw(st.integers(0, 9)) == 0:
        transport += bytes(draw(st.integers(900, 1100)))  # over the C reader's 1024 bytes
    build = _ipv6_header if v6 else _ipv4_header
    raw = build(draw, proto, r, loc, len(transport)) + transport
    if draw(st.integers(0, 7)) == 0:
        raw = raw[: draw(st.integers(0, len(raw)))]  # a short quote
    return raw


def _frame(draw: st.DrawFn, quote: bytes, local: str, remote: str) -> tuple[bytes, int]:
    """A captured ICMP error frame quoting ``quote``: (frame, pcap linktype)."""
    v6 = ":" in local
    icmp = bytes([1, 4] if v6 else [3, 3]) + bytes(6) + quote
    try:
        s, d = ip_address(local).packed, ip_address(remote).packed
    except ValueError:
        s, d = bytes(16 if v6 else 4), bytes(16 if v6 else 4)
    if v6 and len(s) == 16 and len(d) == 16:
        ip = struct.pack("!IHBB16s16s", 0x6000_0000, len(icmp), 58, 64, s, d)
    elif not v6 and len(s) == 4 and len(d) == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(icmp), 1, 0, 64, 1, 0, s, d)
    else:
        ip = b"\x45" + bytes(19)
    if draw(st.booleans()):
        return ip + icmp, draw(st.sampled_from([12, 101]))
    # MACs, then per VLAN tag its TPID + TCI, then the ethertype of the IP header
    tags = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in draw(
        st.lists(st.tuples(st.sampled_from([0x8100, 0x88A8]), st.integers(0, 4095)), max_size=2)))
    etype = b"\x86\xdd" if v6 else b"\x08\x00"
    return bytes(12) + tags + etype + ip + icmp, 1


@st.composite
def alert_lines(draw: st.DrawFn, ours: bool | None = None) -> tuple[bytes, bool]:
    """(an alert line in Suricata 7's layout, whether the C reader must read it itself)."""
    fast = True
    ascii_only = draw(st.integers(0, 7)) != 0
    text = ASCII_TEXT if ascii_only else TEXT
    plain = ASCII_PLAIN_TEXT if ascii_only else PLAIN_TEXT
    d: dict[str, Any] = {}
    ts, valid_ts = draw(timestamps())
    fast &= valid_ts
    d["timestamp"] = ts
    if draw(st.booleans()):
        d["flow_id"] = draw(st.integers(0, 2**51))
    if draw(st.integers(0, 5)) == 0:
        d["parent_id"] = draw(st.integers(0, 2**51))
    if draw(st.integers(0, 7)) == 0:  # Suricata writes it with a sensor id configured
        d["sensor_id"] = draw(st.integers(0, 1000))
    iface = draw(st.none() | plain | plain | text)
    if iface is not None:
        d["in_iface"] = iface
        fast &= not has_escape(iface)
    if draw(st.integers(0, 7)) == 0:  # `suricata -r` writes it
        d["pcap_cnt"] = draw(st.integers(1, 10**9))
    d["event_type"] = "alert"
    vlans = draw(st.lists(st.integers(0, 4095), max_size=3))
    if vlans:
        d["vlan"] = vlans
    proto = draw(st.sampled_from(["TCP", "UDP", "ICMP", "IPv6-ICMP", "SCTP"]))
    local = draw(st.one_of(ADDRESSES, ODD_ADDRESSES) if draw(st.integers(0, 15)) == 0
                 else ADDRESSES)
    remote = draw(ADDRESSES)
    fast &= set(local) <= _IP_CHARS  # the C reader takes only these in an address
    ported = proto in ("TCP", "UDP", "SCTP")
    d["src_ip"] = local
    if ported and draw(st.integers(0, 15)) != 0:
        d["src_port"] = draw(st.integers(0, 0xFFFF))
    d["dest_ip"] = remote
    if ported and draw(st.integers(0, 15)) != 0:
        d["dest_port"] = draw(st.integers(0, 0xFFFF))
    if draw(st.integers(0, 5)) == 0:
        d["ip_v"] = draw(st.sampled_from([4, 6]))
    d["proto"] = proto
    icmp = not ported and draw(st.integers(0, 15)) != 0
    if icmp:
        d["icmp_type"], d["icmp_code"] = draw(st.sampled_from(
            [(3, 3), (3, 3), (1, 4), (1, 4), (3, 1), (1, 3), (0, 0), (8, 0), (128, 0)]
        ) | st.tuples(st.integers(0, 255), st.integers(0, 255)))
    if draw(st.integers(0, 4)) != 0:
        d["pkt_src"] = draw(st.sampled_from(["wire/pcap", "stream (flow timeout)"]))
    sid = draw(OUR_SIDS if ours else FOREIGN_SIDS if ours is False else OUR_SIDS | FOREIGN_SIDS)
    alert: dict[str, Any] = {"action": draw(st.sampled_from(["allowed", "blocked"])), "gid": 1,
                             "signature_id": sid, "rev": draw(st.integers(0, 99)),
                             "signature": draw(text), "category": "Attempted Information Leak",
                             "severity": 2}
    if draw(st.booleans()):
        alert["metadata"] = {"scanguard_kind": [draw(text)], "payload": [draw(text)]}
    d["alert"] = alert
    if draw(st.booleans()):
        d["app_proto"] = draw(st.sampled_from(["failed", "dns", "snmp"]))
    d["direction"] = draw(st.sampled_from(["to_client", "to_server"]))
    if draw(st.booleans()):
        d["flow"] = {"pkts_toserver": 1, "pkts_toclient": 1, "bytes_toserver": 58,
                     "bytes_toclient": 54, "start": ts, "src_ip": remote, "dest_ip": local}
    quote = draw(quoted_probes(remote, local)) if icmp or draw(st.integers(0, 9)) == 0 else None
    if quote is not None and draw(st.integers(0, 7)) != 0:
        payload = base64.b64encode(quote).decode()
        if draw(st.integers(0, 15)) == 0:
            payload = draw(st.sampled_from(["garbage!", "", payload.rstrip("="),
                                            payload + "\n", "=" + payload]))
        d["payload"] = payload
        if icmp:
            raw = base64.b64decode(payload, validate=True) if payload == base64.b64encode(
                quote).decode() else None
            fast &= raw is not None and len(raw) <= 4096 and quoted_probe(raw) is not None
    elif icmp:
        fast = False  # no payload: the Python path reads "packet" (and warns)
    if draw(st.integers(0, 4)) == 0:
        d["payload_printable"] = draw(text)
    if draw(st.booleans()):
        d["stream"] = 0
    if draw(st.booleans()):
        frame, linktype = _frame(draw, quote if quote is not None else b"", local, remote)
        d["packet"] = base64.b64encode(frame).decode()
        d["packet_info"] = {"linktype": linktype}
    host = draw(st.none() | plain | plain | text)
    if host is not None:
        d["host"] = host
        fast &= not has_escape(host)
    line = orjson.dumps(d)
    # The C reader leaves non-ASCII lines to the full parse (it validates UTF-8).
    return line, fast and line.isascii()


# ---------------------------------------------------------------------------------------------
# the C reader is there


@c_only
def test_c_reader_is_built() -> None:
    """CI builds the extension (pip install -e . with gcc): the C path is what gets tested."""
    assert decode.ACCELERATED is True
    wanted = os.environ.get("SCANGUARD_FAST_SO")  # scripts/sanitize.sh: its ASan build
    if wanted:
        assert decode._fast.__file__ == wanted
    assert Decoder(SIDS).accelerated and not Decoder(SIDS, accel=False).accelerated


_fast = decode._fast  # None without a C compiler: then every test below fails, on purpose


# ---------------------------------------------------------------------------------------------
# one line at a time


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(alert_lines())
def test_generated_alert_lines_decode_the_same(case: tuple[bytes, bool]) -> None:
    line, fast = case
    assert_same(line)
    assert_head_shape(_fast.head(line))
    if fast:
        assert _fast.head(line) is not None, line


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(alert_lines(ours=True))
def test_our_alert_lines_decode_the_same(case: tuple[bytes, bool]) -> None:
    line, fast = case
    want = assert_same(line)
    if fast:
        head = _fast.head(line)
        assert head is not None, line
        doc = orjson.loads(line)
        assert head[7] == doc["alert"]["signature_id"]
        assert head[8] == doc.get("host", doc.get("in_iface", ""))
        if want is not None:
            assert want.sensor == head[8]


@c_only
def test_generated_lines_mostly_take_the_fast_path() -> None:
    """The generator is not vacuous: a good share of the lines it writes are read in C."""
    seen: list[bool] = []

    @settings(max_examples=200, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(alert_lines())
    def collect(case: tuple[bytes, bool]) -> None:
        seen.append(_fast.head(case[0]) is not None)

    collect()
    assert sum(seen) > len(seen) // 5, (sum(seen), len(seen))


# ---------------------------------------------------------------------------------------------
# whole blocks

FLOW = next(ln for ln in SAMPLE_OTHERS if b'"event_type":"flow"' in ln)
NON_ALERTS = SAMPLE_OTHERS + [
    FLOW.replace(b'"event_type":"flow"', b'"event_type": "flow"'),
    FLOW.replace(b'"event_type":"flow"', b'"event_type":"\\u0066low"'),
    FLOW.replace(b'"event_type":"flow"', b'"event_type":"flow","event_type":"flow"'),
    FLOW.replace(b'"event_type":"flow"', b'"event_type":"flow","x":{"event_type":"alert"}'),
    FLOW.replace(b'"event_type":"flow"', b'"event_type":"event_type"'),
    FLOW.replace(b'"event_type":"flow",', b""),
    FLOW.replace(b'"proto":"TCP"', b'"proto":"T\xffCP"'),  # not UTF-8, settled unparsed
    RST.replace(b'"event_type":"alert"', b'"event_type":"\\u0061lert"'),
    RST.replace(b'"event_type":"alert"', b'"event_type" : "alert"'),
    RST.replace(b'"event_type":"alert"', b'"event_type":"flow","event_type":"alert"'),
]
GARBAGE = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
    st.sampled_from([b"", b"", b"{", b"}", b"[]", b"null", b'"event_type":"alert"', b"\xff\xfe",
                     b'{"event_type":"alert"}', b'{"event_type":"alert","x":"\xff"}',
                     b"\r", b" " * 3]),
)
BLOCK_LINES = st.lists(
    st.one_of(
        st.sampled_from(NON_ALERTS),
        st.sampled_from(SAMPLE_ALERTS),
        alert_lines(ours=True).map(lambda c: c[0]),
        alert_lines(ours=False).map(lambda c: c[0]),
        GARBAGE,
        st.sampled_from(SAMPLE_ALERTS).map(lambda ln: ln[:-1] + b',"host":"sg-test"}'),
        st.sampled_from(SAMPLE_ALERTS + NON_ALERTS).map(lambda ln: ln + b" " * 1200),
    ),
    max_size=25,
)


def _stats(dec: Decoder) -> dict[str, int]:
    return dataclasses.asdict(dec.stats)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BLOCK_LINES, st.booleans(), st.binary(max_size=40), st.binary(max_size=40),
       st.sampled_from([200, 900, 1300, 1_048_576]))
def test_decode_block_equals_decode_batch(lines: list[bytes], newline: bool, before: bytes,
                                          after: bytes, max_line: int) -> None:
    body = b"\n".join(lines)
    if lines and (newline or not lines[-1]):
        body += b"\n"  # a newline at the very end starts no line; an empty last line needs it
    buf = bytearray(before + body + after)
    start, end = len(before), len(before) + len(body)

    fast = Decoder(SIDS, max_line, reader=FAST)
    ref = Decoder(SIDS, max_line, accel=False)
    got = fast.decode_block(buf, start, end)
    want = ref.decode_batch(lines)
    assert got == want
    assert _stats(fast) == _stats(ref)
    # the Python reader's batch loop (its own inline code) is decode() line by line
    one = Decoder(SIDS, max_line, accel=False)
    assert [ev for line in lines if (ev := one.decode(line)) is not None] == want
    assert _stats(one) == _stats(ref)
    assert fast.stats.lines == len(lines)

    plain = Decoder(SIDS, max_line, accel=False)  # and the Python decode_block itself
    assert plain.decode_block(buf, start, end) == want
    assert _stats(plain) == _stats(ref)

    # decode_batch with the C reader (prefilter_lines: the live daemon's path), twice so
    # that the second run reads IPv6 addresses from the warm address cache
    batch = Decoder(SIDS, max_line, reader=FAST)
    assert batch.decode_batch(list(lines)) == want
    assert _stats(batch) == _stats(ref)
    assert batch.decode_batch(list(lines)) == want
    if not before and not after:
        whole = Decoder(SIDS, max_line, reader=FAST)
        assert whole.decode_block(bytes(buf)) == want and _stats(whole) == _stats(ref)


def test_decode_block_of_the_sample_file() -> None:
    data = SAMPLE.read_bytes()
    fast, ref = Decoder(SIDS, reader=FAST), Decoder(SIDS, accel=False)
    got = fast.decode_block(data)
    want = [ev for ln in data.splitlines() if (ev := ref.decode(ln)) is not None]
    assert got == want and len(want) == fast.stats.alerts > 20
    assert _stats(fast) == _stats(ref)
    assert fast.stats.skipped_events == len(SAMPLE_OTHERS)


def test_decode_block_offsets() -> None:
    buf = bytearray(b"junk\n" + FLOW + b"\n" + RST + b"\n" + ICMP + b"\ntail")
    start = 5
    end = len(buf) - 5
    fast = Decoder(SIDS)
    events = fast.decode_block(buf, start, end)
    assert [e.kind for e in events] == [Kind.TCP_RST, Kind.ICMP4_PORT_UNREACH]
    assert fast.stats.lines == 3 and fast.stats.skipped_events == 1
    assert Decoder(SIDS).decode_block(buf, 7, 7) == []
    assert Decoder(SIDS).decode_block(b"") == []


# ---------------------------------------------------------------------------------------------
# robustness of the C functions


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
@c_only
def test_head_on_random_bytes(raw: bytes) -> None:
    assert_head_shape(_fast.head(raw))
    assert_head_shape(_fast.head(raw + b"}"))


RST_PREFIX = RST[: RST.index(b'"rev"')]
ICMP_PREFIX = ICMP[: ICMP.index(b'"rev"')]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=1100),
       st.sampled_from([b"}", b'"}', b',"host":"x"}', b',"host":"\\"}', b'\\"}', b'"']))
@c_only
def test_head_on_a_valid_head_and_a_random_tail(tail: bytes, quote: bytes, end: bytes) -> None:
    b64 = base64.b64encode(quote)
    for line in (RST_PREFIX + tail + end, ICMP_PREFIX + tail + end,
                 ICMP_PREFIX + tail + b',"payload":"' + b64 + b'"' + end,
                 ICMP_PREFIX + b'"x":1,"payload":"' + tail + end):
        assert_head_shape(_fast.head(line))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=120),
                 quoted_probes("198.51.100.7", "192.0.2.1"),
                 quoted_probes("2001:db8:1::7", "2001:db8::1")))
def test_any_quote_decodes_the_same(quote: bytes) -> None:
    """The C quoted() against packet.quoted_probe, on structured and random quotes."""
    for line in (ICMP, ICMP.replace(b'"proto":"ICMP","icmp_type":3,"icmp_code":3',
                                    b'"proto":"IPv6-ICMP","icmp_type":1,"icmp_code":4')):
        line = re.sub(rb'"payload":"[^"]*"',
                      b'"payload":"' + base64.b64encode(quote) + b'"', line)
        assert_same(line)
        head = _fast.head(line)
        probe = quoted_probe(quote)
        if head is not None:
            assert probe is not None and head[9:] == (probe.proto, probe.src, probe.dst_port)
        elif quote and len(quote) < 1024:  # the C reader's limit: 1023 bytes (342 groups)
            assert probe is None


MUTATION = st.tuples(st.sampled_from(["flip", "insert", "delete", "set", "truncate"]),
                     st.integers(0, 10**6), st.integers(0, 255))


_SET_TO = b'"\\:,{}[]0aZ \xff\x00e'


def _mutate(line: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    raw = bytearray(line)
    for op, where, value in ops:
        pos = where % (len(raw) + 1)
        if op == "insert":
            raw.insert(pos, value)
        elif op == "truncate":
            del raw[pos:]
        elif pos < len(raw):
            if op == "flip":
                raw[pos] ^= 1 << (value % 8)
            elif op == "delete":
                del raw[pos]
            else:
                raw[pos] = _SET_TO[value % len(_SET_TO)]
    return bytes(raw)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def within_contract(line: bytes) -> bool:
    """Valid UTF-8 JSON object, no key twice at any level, "host" (if any) the last key."""
    try:
        orjson.loads(line)  # strict UTF-8 and JSON, like the decoder
        doc = json.loads(line, object_pairs_hook=_unique_keys)
    except ValueError:
        return False
    return type(doc) is dict and ("host" not in doc or list(doc)[-1] == "host")


HOST_RST = RST[:-1] + b',"host":"sg-test"}'
MUTABLE = SAMPLE_ALERTS + [HOST_RST, ICMP[:-1] + b',"host":"s\xc3\xa9nsor"}']


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(MUTABLE), st.lists(MUTATION, min_size=1, max_size=4))
def test_head_on_mutated_real_lines(line: bytes, ops: list[tuple[str, int, int]]) -> None:
    mutated = _mutate(line, ops)
    head = _fast.head(mutated)
    assert_head_shape(head)
    if not mutated.endswith(b"}"):
        assert head is None
    if within_contract(mutated):  # still a line Suricata could have written: same results
        assert_same(mutated)


@c_only
def test_truncated_lines_give_none() -> None:
    for line in MUTABLE:
        assert (_fast.head(line) is not None) == line.isascii()  # non-ASCII: the full parse
        for i in range(len(line)):
            cut = line[:i]
            if not cut.endswith(b"}"):
                assert _fast.head(cut) is None, cut


NOT_UTF8_FIELDS = {
    "proto": RST.replace(b'"proto":"TCP"', b'"proto":"T\xffCP"'),
    "in_iface": RST.replace(b'"in_iface":"victim0"', b'"in_iface":"vic\xfftim0"'),
    "host": RST[:-1] + b',"host":"sg-\xff"}',
    "pkt_src": RST.replace(b'"pkt_src":"wire/pcap"', b'"pkt_src":"wire\xff"'),
}


@pytest.mark.parametrize("name", sorted(NOT_UTF8_FIELDS))
def test_not_utf8_in_a_field_the_c_reader_reads(name: str) -> None:
    """A byte that is not UTF-8 in a field head() reads: no exception, the Python result."""
    line = NOT_UTF8_FIELDS[name]
    assert_head_shape(_fast.head(line))
    assert_same(line)
    fast, ref = Decoder(SIDS, reader=FAST), Decoder(SIDS, accel=False)
    block = FLOW + b"\n" + line + b"\n" + RST + b"\n"
    assert fast.decode_block(block) == ref.decode_batch([FLOW, line, RST])
    assert _stats(fast) == _stats(ref)


@c_only
def test_head_wants_bytes() -> None:
    with pytest.raises(TypeError):
        _fast.head(bytearray(RST))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _fast.head(RST.decode())  # type: ignore[arg-type]


@pytest.mark.parametrize("start,end", [(-1, 4), (0, 11), (5, 4), (11, 11), (0, -1),
                                       (2**62, 2**62 + 1), (-(2**62), 0)])
@c_only
def test_prefilter_rejects_bad_offsets(start: int, end: int) -> None:
    for buf in (b"0123456789", bytearray(b"0123456789"), memoryview(b"0123456789")):
        with pytest.raises(ValueError):
            _fast.prefilter(buf, start, end, 100)
        with pytest.raises(ValueError):
            _fast.prefilter(buf, start, end, 100, SIDS)


@c_only
def test_prefilter_edges() -> None:
    buf = b"a\n\nb\n"
    assert _fast.prefilter(buf, 0, len(buf), 100)[0] == 3
    assert _fast.prefilter(buf, 0, 0, 100) == (0, 0, 0, [], bytearray(), (0, 0, 0))
    assert _fast.prefilter(buf, 5, 5, 100)[0] == 0
    assert _fast.prefilter(buf, 1, 2, 100) == (1, 0, 0, [b""], bytearray(b"\0"), (0, 0, 0))
    # the list form hands back the very objects it was given
    given = [b"x", RST]
    got = _fast.prefilter_lines(given, 100)
    assert got[:3] == (2, 0, 0) and got[3][0] is given[0] and got[3][1] is given[1]
    with pytest.raises(TypeError):
        _fast.prefilter_lines([b"x", "text"], 100)  # type: ignore[list-item]
    two = FLOW + b"\n" + RST
    none = (0, 0, 0)
    assert _fast.prefilter(two, 0, len(two), -1) == (
        2, 0, 0, [FLOW, RST], bytearray(b"\0\0"), none)
    assert _fast.prefilter(two, 0, len(two), 10**6) == (2, 1, 0, [RST], bytearray(b"\1"), none)
    # with the SIDs: our alert comes back read, a foreign one only counted
    assert _fast.prefilter(two, 0, len(two), 10**6, SIDS) == (
        2, 1, 0, [_fast.head(RST)], bytearray(b"\2"), none)
    assert _fast.prefilter(two, 0, len(two), 10**6, frozenset({1})) == (
        2, 1, 1, [], bytearray(), none)
    # with the decoder's context: the event itself, for IPv4 at once ...
    dec = Decoder(SIDS)
    ctx = dec._ctx
    assert _fast.prefilter(two, 0, len(two), 10**6, SIDS, ctx) == (
        2, 1, 0, [Decoder(SIDS, accel=False).decode(RST)], bytearray(b"\3"), (1, 0, 0))
    # ... for IPv6 once decode.py has put both addresses in its cache
    v6 = RST.replace(b'"192.0.2.1"', b'"2001:DB8::1"').replace(b'"192.0.2.2"', b'"2001:db8::2"')
    assert _fast.prefilter(v6, 0, len(v6), 10**6, SIDS, ctx)[4] == bytearray(b"\2")
    want = dec.decode(v6)
    assert want is not None and want.local == "2001:db8::1"
    assert _fast.prefilter(v6, 0, len(v6), 10**6, SIDS, ctx) == (
        1, 0, 0, [want], bytearray(b"\3"), (1, 0, 0))
    with pytest.raises(ValueError):
        _fast.prefilter(two, 0, len(two), 10**6, SIDS, (1, 2))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _fast.prefilter("text", 0, 1, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        _fast.prefilter(two, 0, 1, 10, [9400001])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# explicit examples


def test_a_suricata7_tcp_rst_alert() -> None:
    assert RST in SAMPLE_LINES
    ev = assert_same(RST)
    assert ev == ResponseEvent(ts=datetime.fromisoformat("2026-11-25T20:22:04.661421+00:00")
                               .timestamp(), remote="192.0.2.2", local="192.0.2.1", local_port=21,
                               proto="tcp", kind=Kind.TCP_RST, sid=9400001, sensor="victim0")
    assert _fast.head(RST) == (ev.ts, "192.0.2.1", "192.0.2.2", "TCP", 21, None, None, 9400001,
                               "victim0", None, None, None)


def test_a_suricata7_icmp_port_unreachable_alert() -> None:
    assert ICMP in SAMPLE_LINES
    ev = assert_same(ICMP)
    assert ev is not None
    assert (ev.remote, ev.local, ev.local_port, ev.proto, ev.kind, ev.sensor) == (
        "192.0.2.2", "192.0.2.1", 161, "udp", Kind.ICMP4_PORT_UNREACH, "victim0")
    head = _fast.head(ICMP)
    assert head is not None and head[9:] == (17, bytes([192, 0, 2, 2]), 161)


def test_every_sample_alert_takes_the_fast_path() -> None:
    for line in SAMPLE_ALERTS:
        assert _fast.head(line) is not None, line
        assert_same(line)


def test_host_last_is_the_sensor() -> None:
    ev = assert_same(HOST_RST)
    assert ev is not None and ev.sensor == "sg-test"
    assert _fast.head(HOST_RST)[8] == "sg-test"
    no_iface = HOST_RST.replace(b'"in_iface":"victim0",', b"")
    assert assert_same(no_iface).sensor == "sg-test"
    assert _fast.head(no_iface) is not None
    unicode = RST[:-1] + ',"host":"capteur-\u00e9\u6f22\U0001f642"}'.encode()
    assert assert_same(unicode).sensor == "capteur-\u00e9\u6f22\U0001f642"
    assert _fast.head(unicode) is None  # non-ASCII: left to the full parse (UTF-8 checks)
    for escaped in ('a"b', "a\\b", "a\nb", "\\", '"', "\x00"):
        line = RST[:-1] + b',"host":' + orjson.dumps(escaped) + b"}"
        assert assert_same(line).sensor == escaped
    empty = RST[:-1] + b',"host":""}'
    assert assert_same(empty).sensor == ""


def test_no_host_and_no_iface_is_an_empty_sensor() -> None:
    line = RST.replace(b'"in_iface":"victim0",', b"")
    assert assert_same(line).sensor == ""
    assert _fast.head(line)[8] == ""


def _ts_line(ts: str) -> bytes:
    return RST.replace(b"2026-11-25T20:22:04.661421+0000", ts.encode(), 1)


@pytest.mark.parametrize("ts,fast", [
    ("2024-02-29T12:00:00.000001+0000", True),  # leap day
    ("2000-02-29T00:00:00+0000", True),  # leap day of a century divisible by 400
    ("2100-02-29T00:00:00+0000", False),  # 2100 is no leap year
    ("2023-02-29T00:00:00.000000+0000", False),
    ("2026-02-30T00:00:00.000000+0000", False),
    ("2026-04-31T00:00:00.000000+0000", False),
    ("2026-11-25T23:59:60.000000+0000", False),  # leap second: Python refuses it too
    ("2026-11-25T24:00:00.000000+0000", False),
    ("2026-13-01T00:00:00.000000+0000", False),
    ("2026-11-25T20:22:04.661421-2359", True),
    ("2026-11-25T20:22:04.661421+2359", True),
    ("2026-11-25T20:22:04.661421+2400", False),
    ("2026-11-25T20:22:04.661421+0060", False),
    ("2026-11-25T20:22:04+0530", True),
    ("2026-11-25T20:22:04.661+0000", False),
    ("2026-11-25T20:22:04.661421+00:00", False),
    ("2026-11-25T20:22:04.661421Z", False),
    ("2026-11-25 20:22:04.661421+0000", False),
    ("1970-01-01T00:00:00.000000+0000", True),
    ("1969-12-31T23:59:59.999999+0000", True),
    ("0001-01-01T00:00:00.000000+0000", False),  # beyond 2**53 microseconds: Python decides
    ("1971-01-01T00:00:00+2359", True),
    ("2200-12-31T23:59:59.999999-2359", True),  # far future, still exact in a double
    ("2255-06-05T23:47:34.740991+0000", True),  # just under 2**53 microseconds
    ("2255-06-05T23:47:34.740992+0000", False),  # exactly 2**53: left to Python
    ("9999-12-31T23:59:59.999999+0000", False),
    ("9999-12-31T23:59:59.999999-2359", False),
    ("0000-01-01T00:00:00+0000", False),
    ("2026-11-25T20:22:04.66142a+0000", False),
    ("yesterday", False),
])
def test_timestamps(ts: str, fast: bool) -> None:
    line = _ts_line(ts)
    ev = assert_same(line)
    head = _fast.head(line)
    assert (head is not None) == fast
    if fast:
        want = datetime.fromisoformat(ts[:-5] + ts[-5:-2] + ":" + ts[-2:]).timestamp()
        assert head[0] == want and ev is not None and ev.ts == want


def test_addresses() -> None:
    for local, remote in [("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:DB8::23"),
                          ("::ffff:192.0.2.1", "::"), ("0.0.0.0", "255.255.255.255")]:
        line = RST.replace(b'"192.0.2.1"', f'"{local}"'.encode(), 1)
        line = line.replace(b'"192.0.2.2"', f'"{remote}"'.encode(), 1)
        ev = assert_same(line)
        assert _fast.head(line) is not None
        assert ev is not None and ev.remote == str(ip_address(remote))
    for bad in ("1.2.3.256", "", "fe80::1%eth0", "::g", "x"):
        assert_same(RST.replace(b'"192.0.2.2"', f'"{bad}"'.encode(), 1))


@pytest.mark.parametrize("change", [
    (b'"src_port":21,', b""),  # no port: no_port
    (b'"src_port":21,', b'"src_port":021,'),
    (b'"src_port":21,', b'"src_port":-21,'),
    (b'"src_port":21,', b'"src_port":21.0,'),
    (b'"src_port":21,', b'"src_port":70000,'),
    (b'"src_port":21,', b'"src_port":"21",'),
    (b'"signature_id":9400001,', b'"signature_id":2000001,'),
    (b'"signature_id":9400001,', b'"signature_id":1e3,'),
    (b'"signature_id":9400001,', b'"signature_id":9400001.0,'),
    (b'"signature_id":9400001,', b'"signature_id":99999999999999999999,'),
    (b'"proto":"TCP"', b'"proto":"tcp"'),
    (b'"proto":"TCP"', b'"proto":"T\\u0043P"'),
    (b'"in_iface":"victim0",', b'"in_iface":"vic\\tim0",'),
    (b'"event_type":"alert",', b'"event_type":"alert","vlan":[100,200],'),
    (b'"event_type":"alert",', b'"event_type":"alert","vlan":[],'),
    (b'"pkt_src":"wire/pcap",', b""),
    (b'"flow_id":1151775006207283,', b'"flow_id":1151775006207283,"parent_id":7,'),
    (b'"flow_id":1151775006207283,', b""),
    (b'"dest_port":52798,', b'"dest_port":52798,"ip_v":4,'),
    (b'"gid":1,', b""),
])
def test_field_variants(change: tuple[bytes, bytes]) -> None:
    assert_same(RST.replace(*change))


def test_icmp_variants() -> None:
    assert_same(ICMP.replace(b'"icmp_code":3', b'"icmp_code":1'))
    assert_same(ICMP.replace(b'"icmp_type":3,"icmp_code":3,', b""))
    assert_same(ICMP.replace(b'"icmp_type":3,"icmp_code":3,', b'"icmp_type":3,'))
    payload = re.search(rb'"payload":"([^"]*)"', ICMP)
    assert payload is not None
    quote = base64.b64decode(payload.group(1))
    for new in (b"", b"garbage!", payload.group(1).rstrip(b"="), b"AAAA",
                base64.b64encode(quote[:23]), base64.b64encode(quote + bytes(1100))):
        line = ICMP.replace(payload.group(0), b'"payload":"' + new + b'"')
        assert_same(line)
    longest = quote[:28] + bytes(1023 - 28)  # the longest quote the C reader decodes itself
    line = ICMP.replace(payload.group(0), b'"payload":"' + base64.b64encode(longest) + b'"')
    assert assert_same(line).local_port == 161 and _fast.head(line) is not None
    no_payload = ICMP.replace(payload.group(0) + b",", b"")
    assert assert_same(no_payload).local_port == 161  # read from "packet"
    assert _fast.head(no_payload) is None
    assert_same(no_payload.replace(b'"packet_info":{"linktype":1}', b'"packet_info":{}'))


# ---------------------------------------------------------------------------------------------
# Suricata's own header keys the C reader does not know (see the report)

PCAP_CNT = RST.replace(b'"in_iface":"victim0",', b'"pcap_cnt":2,')
SENSOR_ID = RST.replace(b'"in_iface":"victim0",', b'"sensor_id":1,"in_iface":"victim0",')


@pytest.mark.parametrize("line", [PCAP_CNT, SENSOR_ID], ids=["pcap_cnt", "sensor_id"])
def test_suricata_header_keys_decode_the_same(line: bytes) -> None:
    assert_same(line)


@pytest.mark.parametrize("line", [PCAP_CNT, SENSOR_ID], ids=["pcap_cnt", "sensor_id"])
@c_only
def test_suricata_header_keys_take_the_fast_path(line: bytes) -> None:
    """CreateEveHeader (Suricata 7 output-json.c) writes timestamp, flow_id, parent_id,
    sensor_id, in_iface, pcap_cnt, event_type: every ``suricata -r`` alert has pcap_cnt."""
    assert _fast.head(line) is not None


# ---------------------------------------------------------------------------------------------
# Outside the documented layout: lines Suricata does not write. Both paths must still agree.

OUT_OF_LAYOUT = {
    "host_not_last": RST.replace(b',"direction"', b',"host":"sg-test","direction"'),
    "truncated_at_a_brace": RST[: RST.index(b'"severity":2}') + len(b'"severity":2}')],
    "two_objects_on_one_line": RST + RST,
    "not_utf8_after_the_sid": RST.replace(b"SCANGUARD", b"SCAN\xffGUARD"),
}


@pytest.mark.parametrize("name", sorted(OUT_OF_LAYOUT))
def test_lines_outside_the_layout_decode_the_same(name: str) -> None:
    assert_same(OUT_OF_LAYOUT[name])


def test_host_written_twice_decodes_the_same() -> None:
    # Not Suricata's layout either, but the last "host" wins in orjson and in the C reader.
    line = RST.replace(b',"direction"', b',"host":"a","direction"')[:-1] + b',"host":"b"}'
    assert assert_same(line).sensor == "b"


# ---------------------------------------------------------------------------------------------
# real Suricata 7 output with a sensor name ("host")

REAL_SCENARIOS = ("syn_scan_v4", "udp_scan_v4", "udp_scan_v6", "tcp_scan_v6", "qinq_scan")


@pytest.fixture(scope="module")
def sensor_eves(suricata_runner: Any, tmp_path_factory: pytest.TempPathFactory
                ) -> dict[str, list[bytes]]:
    from pcaps import HOME_NET

    root = tmp_path_factory.mktemp("fast-reader-eve")
    out = {}
    for name in REAL_SCENARIOS:
        eve = suricata.run_pcap(suricata_runner.pcap(name), suricata_runner.rules, HOME_NET,
                                root / name, timeout=60, sensor_name="sg-test")
        out[name] = eve.read_bytes().splitlines()
    return out


def _ours(lines: list[bytes]) -> list[bytes]:
    out = []
    for line in lines:
        doc = orjson.loads(line)
        if doc.get("event_type") == "alert" and doc["alert"]["signature_id"] in SIDS:
            out.append(line)
    return out


@pytest.mark.suricata
@pytest.mark.parametrize("name", REAL_SCENARIOS)
def test_real_suricata_lines_decode_the_same(sensor_eves: dict[str, list[bytes]],
                                             name: str) -> None:
    lines = sensor_eves[name]
    ours = _ours(lines)
    assert ours, name
    for line in lines:
        assert orjson.loads(line)["host"] == "sg-test"
        assert line.endswith(b',"host":"sg-test"}')
        assert_same(line)
    fast, ref = Decoder(SIDS, reader=FAST), Decoder(SIDS, accel=False)
    got = fast.decode_block(b"\n".join(lines) + b"\n")
    assert got == ref.decode_batch(lines)
    assert _stats(fast) == _stats(ref)
    assert len(got) == len(ours) and all(ev.sensor == "sg-test" for ev in got)
    assert all(ev.local_port is not None for ev in got)


@pytest.mark.suricata
@pytest.mark.parametrize("name", REAL_SCENARIOS)
@c_only
def test_real_suricata_alerts_take_the_fast_path(sensor_eves: dict[str, list[bytes]],
                                                 name: str) -> None:
    ours = _ours(sensor_eves[name])
    missed = [line for line in ours if _fast.head(line) is None]
    # What is left once the pcap_cnt key (written in `suricata -r` mode) is taken out:
    without_cnt = [ln for ln in missed
                   if _fast.head(re.sub(rb'"pcap_cnt":\d+,', b"", ln)) is None]
    assert not missed, (f"{len(missed)}/{len(ours)} alerts not read by _fast.head, "
                        f"{len(without_cnt)} without pcap_cnt; first: {missed[0]!r}")


@c_only
def test_events_made_in_c_are_response_events() -> None:
    """The C reader fills a ResponseEvent's slots itself only for the plain dataclass; any
    other class (here one with __post_init__, and a plain function) is called instead."""
    import dataclasses

    want = Decoder(SIDS, accel=False).decode(RST)
    ctx = Decoder(SIDS)._ctx
    got = _fast.prefilter(RST, 0, len(RST), 10**6, SIDS, ctx)[3]
    assert got == [want] and type(got[0]) is ResponseEvent

    calls: list[tuple[object, ...]] = []

    @dataclasses.dataclass(slots=True)
    class Checked(ResponseEvent):
        def __post_init__(self) -> None:
            calls.append((self.remote, self.local_port))

    def factory(*args: object) -> tuple[object, ...]:
        return ("made", *args)

    for cls in (Checked, factory, ResponseEvent):
        items = _fast.prefilter(RST, 0, len(RST), 10**6, SIDS, (ctx[0], cls, *ctx[2:]))[3]
        assert len(items) == 1
        if cls is factory:
            assert items[0] == ("made", want.ts, want.remote, want.local, want.local_port,
                                want.proto, want.kind, want.sid, want.sensor)
        else:
            assert type(items[0]) is cls
            assert dataclasses.astuple(items[0]) == dataclasses.astuple(want)
    assert calls == [(want.remote, want.local_port)]


@pytest.mark.parametrize("digits", ["999999999999999999", "9991152063129153560",
                                    "99999999999999999999999", "0", "01"])
def test_long_numbers_in_the_head(digits: str) -> None:
    """18 digits are read; more go to the full parse (UBSan found the 19-digit overflow)."""
    flow = RST.replace(b'"flow_id":1151775006207283', b'"flow_id":' + digits.encode())
    port = RST.replace(b'"src_port":21', b'"src_port":' + digits.encode())
    sid = RST.replace(b'"signature_id":9400001', b'"signature_id":' + digits.encode())
    for line in (flow, port, sid):
        assert_same(line)
        if len(digits) > 18 or digits == "01":
            assert _fast.head(line) is None
