"""scanguard_ids.eve.decode: EVE lines -> ResponseEvent, cheaply, never raising."""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanguard_ids.eve import decode as decode_mod
from scanguard_ids.eve.decode import Decoder, DecodeStats, _timestamp
from scanguard_ids.model import Kind, ResponseEvent
from scanguard_ids.timefmt import parse_eve_ts


@pytest.fixture(scope="module", autouse=True, params=decode_mod.READERS)
def _each_reader(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test of this module runs once per reader: ``Decoder(...)`` here is that reader."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys.modules[__name__], "Decoder",
                   functools.partial(decode_mod.Decoder, reader=request.param))
        yield request.param


SIDS = frozenset({1, 2, 3})

# Real Suricata 7.0.10 output (alert payload/packet/metadata: yes), from scapy-built pcaps:
# the host 192.0.2.10 / 2001:db8::10 answers probes from 198.51.100.7 / 2001:db8:1::7.
RST = (
    b'{"timestamp":"2023-11-14T22:13:20.020000+0000","flow_id":42951574860248,"pcap_cnt":2,'
    b'"event_type":"alert","src_ip":"192.0.2.10","src_port":22,"dest_ip":"198.51.100.7",'
    b'"dest_port":40000,"proto":"TCP","pkt_src":"wire/pcap","alert":{"action":"allowed",'
    b'"gid":1,"signature_id":1,"rev":0,"signature":"rst","category":"","severity":3},'
    b'"direction":"to_client","flow":{"pkts_toserver":1,"pkts_toclient":1,"bytes_toserver":54,'
    b'"bytes_toclient":54,"start":"2023-11-14T22:13:20.010000+0000","src_ip":"198.51.100.7",'
    b'"dest_ip":"192.0.2.10","src_port":40000,"dest_port":22},"payload_printable":"",'
    b'"stream":0,"packet":"AvwAAAAFAvwAAAABCABFAAAoAAEAAEAGjorAAAIKxjNkBwAWnEAAAAAAAAAAAFAUIAAHNQAA"'
    b',"packet_info":{"linktype":1}}\n'
)
ICMP4 = (
    b'{"timestamp":"2023-11-14T22:13:20.040000+0000","flow_id":128851996749389,"pcap_cnt":4,'
    b'"event_type":"alert","src_ip":"192.0.2.10","dest_ip":"198.51.100.7","proto":"ICMP",'
    b'"icmp_type":3,"icmp_code":3,"pkt_src":"wire/pcap","alert":{"action":"allowed","gid":1,'
    b'"signature_id":2,"rev":0,"signature":"icmp33","category":"","severity":3},'
    b'"app_proto":"failed","direction":"to_client","flow":{"pkts_toserver":1,"pkts_toclient":1,'
    b'"bytes_toserver":47,"bytes_toclient":70,"start":"2023-11-14T22:13:20.030000+0000",'
    b'"src_ip":"198.51.100.7","dest_ip":"192.0.2.10"},'
    b'"payload":"RQAAIQABAABAEY6GxjNkB8AAAgoVswA1AA251A==",'
    b'"payload_printable":"E..!....@....3d....\\n...5.\\r..","stream":0,'
    b'"packet":"AvwAAAAFAvwAAAABCABFAAA4AAEAAEABjn/AAAIKxjNkBwMDLTMAAAAARQAAIQABAABAEY6GxjNkB8AA'
    b'AgoVswA1AA251A==","packet_info":{"linktype":1}}\n'
)
ICMP6 = (  # the ICMPv6 error itself behind hop-by-hop + destination options headers
    b'{"timestamp":"2023-11-14T22:13:20.070000+0000","flow_id":257698469414201,"pcap_cnt":7,'
    b'"event_type":"alert","src_ip":"2001:0db8:0000:0000:0000:0000:0000:0010",'
    b'"dest_ip":"2001:0db8:0001:0000:0000:0000:0000:0007","proto":"IPv6-ICMP","icmp_type":1,'
    b'"icmp_code":4,"pkt_src":"wire/pcap","alert":{"action":"allowed","gid":1,'
    b'"signature_id":3,"rev":0,"signature":"icmp6 14","category":"","severity":3},'
    b'"direction":"to_server","flow":{"pkts_toserver":2,"pkts_toclient":0,'
    b'"bytes_toserver":256,"bytes_toclient":0,"start":"2023-11-14T22:13:20.060000+0000",'
    b'"src_ip":"2001:0db8:0000:0000:0000:0000:0000:0010",'
    b'"dest_ip":"2001:0db8:0001:0000:0000:0000:0000:0007"},'
    b'"payload":"YAAAAAAIEUAgAQ24AAEAAAAAAAAAAAAHIAENuAAAAAAAAAAAAAAAEAAHAgIACKJL",'
    b'"payload_printable":"`......@ .\\r............. .\\r....................K","stream":0,'
    b'"packet":"////////AvwAAAABht1gAAAAAEgAQCABDbgAAAAAAAAAAAAAABAgAQ24AAEAAAAAAAAAAAAHPAABBAAA'
    b'AAA6AAEEAAAAAAEEMdAAAAAAYAAAAAAIEUAgAQ24AAEAAAAAAAAAAAAHIAENuAAAAAAAAAAAAAAAEAAHAgIACKJL",'
    b'"packet_info":{"linktype":1}}\n'
)
MAPPED = (
    b'{"timestamp":"2023-11-14T22:13:20.080000+0000","flow_id":62122604149343,"pcap_cnt":8,'
    b'"event_type":"alert","src_ip":"0000:0000:0000:0000:0000:ffff:c000:020a","src_port":80,'
    b'"dest_ip":"0000:0000:0000:0000:0000:ffff:c633:6407","dest_port":1234,"proto":"TCP",'
    b'"pkt_src":"wire/pcap","alert":{"action":"allowed","gid":1,"signature_id":1,"rev":0,'
    b'"signature":"rst","category":"","severity":3},"direction":"to_server",'
    b'"payload_printable":"","stream":0,"packet_info":{"linktype":1}}\n'
)
FLOW = (
    b'{"timestamp":"2023-11-14T22:13:20.010000+0000","flow_id":62122604149343,'
    b'"event_type":"flow","src_ip":"0000:0000:0000:0000:0000:ffff:c000:020a","src_port":80,'
    b'"dest_ip":"0000:0000:0000:0000:0000:ffff:c633:6407","dest_port":1234,"proto":"TCP",'
    b'"flow":{"pkts_toserver":1,"pkts_toclient":0,"bytes_toserver":74,"bytes_toclient":0,'
    b'"start":"2023-11-14T22:13:20.080000+0000","end":"2023-11-14T22:13:20.080000+0000",'
    b'"age":0,"state":"new","reason":"shutdown","alerted":true},'
    b'"tcp":{"tcp_flags":"00","tcp_flags_ts":"00","tcp_flags_tc":"00"}}\n'
)
DNS = (
    b'{"timestamp":"2023-11-14T22:13:21.000000+0000","flow_id":1,"in_iface":"eth0",'
    b'"event_type":"dns","src_ip":"192.0.2.10","src_port":5353,"dest_ip":"192.0.2.53",'
    b'"dest_port":53,"proto":"UDP","dns":{"type":"query","id":1,"rrname":"example.com",'
    b'"rrtype":"A","tx_id":0}}\n'
)
STATS = (
    b'{"timestamp":"2023-11-14T22:13:21.000000+0000","event_type":"stats","stats":{"uptime":1}}\n'
)

TS = parse_eve_ts("2023-11-14T22:13:20.020000+0000")


def doc(line: bytes) -> dict[str, Any]:
    return orjson.loads(line)


def dump(d: dict[str, Any]) -> bytes:
    return orjson.dumps(d) + b"\n"


def with_(line: bytes, **changes: Any) -> bytes:
    """The line with top-level keys replaced (None removes the key), compact like Suricata."""
    d = doc(line)
    for key, value in changes.items():
        if value is None:
            d.pop(key, None)
        else:
            d[key] = value
    return dump(d)


def total(stats: DecodeStats) -> int:
    """Every line lands in exactly one bucket; no_port etc. are sub-counts of alerts."""
    return (
        stats.alerts + stats.skipped_events + stats.foreign_sids + stats.bad_json
        + stats.oversized + stats.binary + stats.missing_fields + stats.unknown_kind
    )


FOREIGN = with_(RST, alert={"signature_id": 2_000_001, "rev": 1})


# --- the three kinds, from real lines --------------------------------------------------------


def test_tcp_rst() -> None:
    dec = Decoder(SIDS)
    ev = dec.decode(RST)
    assert ev == ResponseEvent(TS, "198.51.100.7", "192.0.2.10", 22, "tcp", Kind.TCP_RST, 1, "")
    assert dec.stats.alerts == 1 and dec.stats.no_port == 0


def test_icmp4_port_unreachable() -> None:
    ev = Decoder(SIDS).decode(ICMP4)
    assert ev is not None
    assert (ev.remote, ev.local, ev.local_port, ev.proto, ev.kind, ev.sid) == (
        "198.51.100.7", "192.0.2.10", 53, "udp", Kind.ICMP4_PORT_UNREACH, 2)
    assert ev.ts == parse_eve_ts("2023-11-14T22:13:20.040000+0000")


def test_icmp6_port_unreachable_fully_expanded_addresses_are_compressed() -> None:
    ev = Decoder(SIDS).decode(ICMP6)
    assert ev is not None
    assert (ev.remote, ev.local, ev.local_port, ev.proto, ev.kind, ev.sid) == (
        "2001:db8:1::7", "2001:db8::10", 514, "udp", Kind.ICMP6_PORT_UNREACH, 3)


def test_ipv4_mapped_ipv6_is_canonicalised() -> None:
    ev = Decoder(SIDS).decode(MAPPED)
    assert ev is not None
    assert (ev.remote, ev.local, ev.local_port) == ("::ffff:c633:6407", "::ffff:c000:20a", 80)


def test_kind_comes_from_the_line_not_the_sid() -> None:
    dec = Decoder(SIDS)
    icmp_under_sid_1 = dec.decode(with_(ICMP4, alert={"signature_id": 1}))
    assert icmp_under_sid_1 is not None and icmp_under_sid_1.kind is Kind.ICMP4_PORT_UNREACH


def test_icmp_quoting_tcp_gives_proto_tcp() -> None:
    quote = base64.b64decode("RQAAKAABAABABo6KxjNkB8AAAgoACR+QAAAAAAAAAABQAiAAhAQAAA==")
    ev = Decoder(SIDS).decode(with_(ICMP4, payload=base64.b64encode(quote).decode()))
    assert ev is not None and (ev.proto, ev.local_port) == ("tcp", 8080)


@pytest.mark.parametrize(
    ("proto", "itype", "icode"),
    [("ICMP", 3, 1), ("ICMP", 1, 4), ("IPv6-ICMP", 3, 3), ("IPv6-ICMP", 1, 3), ("UDP", None, None),
     ("ICMP", "3", 3), ("ICMP", True, 3), (None, 3, 3)],
)
def test_unknown_kind(proto: str | None, itype: object, icode: object) -> None:
    dec = Decoder(SIDS)
    assert dec.decode(with_(ICMP4, proto=proto, icmp_type=itype, icmp_code=icode)) is None
    assert dec.stats.unknown_kind == 1


def test_rst_without_src_port_still_counts_without_port() -> None:
    dec = Decoder(SIDS)
    for bad in (None, "22", -1, 65536, 2.5):
        ev = dec.decode(with_(RST, src_port=bad))
        assert ev is not None and ev.local_port is None
    assert dec.stats.no_port == dec.stats.alerts == 5


# --- sensor ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "sensor"),
    [({"host": "ids-1", "in_iface": "eth0"}, "ids-1"), ({"in_iface": "eth0"}, "eth0"),
     ({}, ""), ({"host": 5, "in_iface": "eth1"}, "eth1"), ({"in_iface": ["x"]}, "")],
)
def test_sensor(changes: dict[str, Any], sensor: str) -> None:
    ev = Decoder(SIDS).decode(with_(RST, **changes))
    assert ev is not None and ev.sensor == sensor


# --- payload / packet fallbacks --------------------------------------------------------------


def test_packet_used_when_payload_absent() -> None:
    dec = Decoder(SIDS)
    for line in (ICMP4, ICMP6):
        ev = dec.decode(with_(line, payload=None))
        assert ev is not None and ev.local_port in (53, 514)
    assert dec.stats.no_port == 0


def test_packet_used_when_payload_is_garbage() -> None:
    dec = Decoder(SIDS)
    for payload in ("!!!not base64", "RQAA", "", "AAAA" * 10, "é"):
        ev = dec.decode(with_(ICMP4, payload=payload))
        assert ev is not None and ev.local_port == 53
    assert dec.stats.bad_packet == 0


@pytest.mark.parametrize(
    "changes",
    [
        {"payload": "garbage!", "packet": "garbage!"},
        {"payload": None, "packet": "AvwAAAAF"},  # truncated frame
        {"payload": None, "packet_info": None},  # no linktype
        {"payload": None, "packet_info": {"linktype": 999}},
        {"payload": None, "packet_info": {"linktype": "1"}},
        {"payload": 5, "packet": ["x"]},
    ],
)
def test_unusable_payload_and_packet(changes: dict[str, Any]) -> None:
    dec = Decoder(SIDS)
    ev = dec.decode(with_(ICMP4, **changes))
    assert ev is not None and ev.local_port is None and ev.proto == "udp"
    assert dec.stats.no_port == dec.stats.bad_packet == 1


def test_no_payload_no_packet_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    dec = Decoder(SIDS)
    caplog.set_level(logging.WARNING, logger=decode_mod.__name__)
    for line in (ICMP4, ICMP6, ICMP4):
        ev = dec.decode(with_(line, payload=None, packet=None))
        assert ev is not None and ev.local_port is None
    assert dec.stats.no_port == 3 and dec.stats.alerts == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "payload: yes" in warnings[0].getMessage()
    assert "packet: yes" in warnings[0].getMessage()
    # A second decoder warns again (one warning per Decoder, not per process).
    Decoder(SIDS).decode(with_(ICMP4, payload=None, packet=None))
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


def test_rst_needs_neither_payload_nor_packet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=decode_mod.__name__)
    ev = Decoder(SIDS).decode(with_(RST, packet=None, payload_printable=None))
    assert ev is not None and ev.local_port == 22
    assert not caplog.records


def test_remote_mismatch_prefers_response_destination() -> None:
    dec = Decoder(SIDS)
    ev = dec.decode(with_(ICMP4, dest_ip="203.0.113.9"))
    assert ev is not None and ev.remote == "203.0.113.9" and ev.local_port == 53
    assert dec.stats.remote_mismatch == 1
    dec.decode(ICMP4)
    assert dec.stats.remote_mismatch == 1


# --- the byte pre-filter ---------------------------------------------------------------------


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record every full JSON parse the decoder does."""
    seen: list[bytes] = []
    real = orjson.loads

    def spy(data: bytes) -> Any:
        seen.append(data)
        return real(data)

    monkeypatch.setattr(decode_mod.orjson, "loads", spy)
    return seen


def test_non_alerts_and_foreign_sids_skip_the_json_parse(parses: list[bytes],
                                                         _each_reader: str) -> None:
    dec = Decoder(SIDS)
    for line in (FLOW, DNS, STATS, FOREIGN, FLOW):
        assert dec.decode(line) is None
    assert parses == []
    assert dec.stats.skipped_events == 4 and dec.stats.foreign_sids == 1
    # ours: the full parse (the msgspec reader reads it with its typed decoder instead)
    assert dec.decode(RST) is not None
    assert len(parses) == (0 if _each_reader == "msgspec" else 1)


@pytest.mark.parametrize(
    "line",
    [
        json.dumps(doc(RST)).encode(),  # ", " and ": " separators
        json.dumps(doc(RST), indent=None, separators=(",", " : ")).encode(),
        RST.replace(b'"signature_id":1', b'"signature_id": 1'),
        RST.replace(b'"event_type":"alert"', b'"event_type" :"alert"'),
        RST.replace(b'"event_type":"alert"', b'"event_type":\t"alert"'),
        # a compact non-alert event_type elsewhere must not hide the real one
        RST.replace(b'"event_type":"alert"', b'"event_type": "alert","x":{"event_type":"flow"}'),
        # a foreign-looking signature_id first must not hide ours
        RST.replace(b'"alert":{', b'"meta":{"signature_id":2000001,"rev":1},"alert":{'),
        # signature_id last in its object (no comma after it)
        RST.replace(b'"signature_id":1,"rev":0,', b'"rev":0,').replace(
            b'"severity":3}', b'"severity":3,"signature_id":1}'),
        RST.rstrip(b"\n"),
        RST.rstrip(b"\n") + b"\r\n",
        b"  " + RST,
        RST.replace(b'"event_type":"alert"', b'"event_type":"\\u0061lert"'),
    ],
    ids=["json-dumps", "space-colon", "sid-space", "et-space-before-colon", "et-tab",
         "nested-flow-type", "foreign-sid-first", "sid-last", "no-newline", "crlf",
         "leading-space", "escaped-value"],
)
def test_prefilter_never_drops_ours(line: bytes) -> None:
    dec = Decoder(SIDS)
    ev = dec.decode(line)
    assert ev is not None and (ev.remote, ev.local_port, ev.sid) == ("198.51.100.7", 22, 1)


@pytest.mark.parametrize(
    ("line", "bucket"),
    [
        (json.dumps(doc(FLOW)).encode(), "skipped_events"),
        (json.dumps(doc(with_(RST, alert={"signature_id": 7}))).encode(), "foreign_sids"),
        (FLOW.replace(b'"tcp":', b'"x":{"event_type":"alert"},"tcp":'), "skipped_events"),
        (with_(RST, alert={"signature_id": 7, "x": {"signature_id": 1}}), "foreign_sids"),
        (with_(RST, event_type=None), "skipped_events"),
        (with_(RST, event_type=5), "skipped_events"),
    ],
    ids=["pretty-flow", "pretty-foreign", "alert-nested-in-flow", "sid-twice",
         "no-event-type", "event-type-int"],
)
def test_ambiguous_lines_are_settled_by_the_full_parse(line: bytes, bucket: str) -> None:
    dec = Decoder(SIDS)
    assert dec.decode(line) is None
    assert getattr(dec.stats, bucket) == 1 and total(dec.stats) == 1


# --- bad lines -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "bucket"),
    [
        (b"", "bad_json"),
        (b"\n", "bad_json"),
        (b"{", "bad_json"),
        (b"[]", "bad_json"),
        (b"null", "bad_json"),
        (b"123", "bad_json"),
        (b'"event_type":"alert"', "bad_json"),
        (RST[: len(RST) // 2], "bad_json"),  # truncated
        (RST[:-3], "bad_json"),
        (RST + RST, "bad_json"),  # two lines glued
        (b'{"event_type":"alert","x":"\xff\xfe"}', "binary"),
        (b"\x00\x01\x02\xff" * 10, "binary"),
        (RST.replace(b'"rst"', b'"r\xc3\x28"'), "binary"),  # invalid UTF-8 sequence
        (RST.replace(b'"rst"', b'"r\xc3\xa9st"'), "alerts"),  # valid UTF-8: fine
        (b'{"event_type":"alert","alert":{"signature_id":1' + b" " * 5000 + b"}}", "oversized"),
        (with_(RST, src_ip=None), "missing_fields"),
        (with_(RST, dest_ip="not-an-ip"), "missing_fields"),
        (with_(RST, src_ip=["192.0.2.1"]), "missing_fields"),  # unhashable
        (with_(RST, dest_ip={"a": 1}), "missing_fields"),
        (with_(RST, src_ip=3221225985), "missing_fields"),  # an int is not an address here
        (with_(RST, timestamp=None), "missing_fields"),
        (with_(RST, timestamp="yesterday"), "missing_fields"),
        (with_(RST, timestamp=1700000000), "missing_fields"),
        (with_(RST, alert=None), "missing_fields"),
        (with_(RST, alert="x"), "missing_fields"),
        (with_(RST, alert={"signature_id": "1"}), "missing_fields"),
        (with_(RST, alert={"signature_id": 1.0}), "missing_fields"),
        (with_(RST, alert={}), "missing_fields"),
    ],
)
def test_bad_lines_are_counted(line: bytes, bucket: str) -> None:
    dec = Decoder(SIDS, max_line_bytes=4096)
    dec.decode(line)
    assert getattr(dec.stats, bucket) == 1, dec.stats
    assert dec.stats.lines == total(dec.stats) == 1


def test_oversized_boundary() -> None:
    dec = Decoder(SIDS, max_line_bytes=len(RST))
    assert dec.decode(RST) is not None
    assert dec.decode(RST + b" ") is None
    assert dec.stats.oversized == 1


def test_every_prefix_of_real_lines_is_safe() -> None:
    dec = Decoder(SIDS)
    for line in (RST, ICMP4, ICMP6, MAPPED, FLOW):
        for cut in range(len(line)):
            dec.decode(line[:cut])
    assert dec.stats.lines == total(dec.stats)


def test_stats_is_a_slots_dataclass() -> None:
    assert dataclasses.is_dataclass(DecodeStats) and hasattr(DecodeStats, "__slots__")
    assert all(v == 0 for v in dataclasses.asdict(DecodeStats()).values())


# --- fuzz ------------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=512))
def test_never_raises_on_arbitrary_bytes(line: bytes) -> None:
    dec = Decoder(SIDS, max_line_bytes=400)
    dec.decode(line)
    assert dec.stats.lines == total(dec.stats) == 1


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([RST, ICMP4, ICMP6, MAPPED, FLOW]), st.data())
def test_never_raises_on_mutated_real_lines(line: bytes, data: st.DataObject) -> None:
    raw = bytearray(line)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["set", "del", "dup"]))
        if op == "set":
            raw[pos] = data.draw(st.integers(0, 255))
        elif op == "del" and len(raw) > 1:
            del raw[pos]
        else:
            raw[pos:pos] = raw[pos : pos + data.draw(st.integers(1, 16))]
    dec = Decoder(SIDS)
    dec.decode(bytes(raw))
    assert dec.stats.lines == total(dec.stats) == 1


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = ["timestamp", "src_ip", "dest_ip", "src_port", "proto", "icmp_type", "icmp_code",
          "payload", "packet", "packet_info", "alert", "host", "in_iface", "event_type"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([RST, ICMP4, ICMP6]), st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES))
def test_never_raises_on_wrong_field_types(line: bytes, changes: dict[str, Any]) -> None:
    d = doc(line)
    d.update(changes)
    dec = Decoder(SIDS)
    dec.decode(json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode())
    assert dec.stats.lines == total(dec.stats) == 1


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(1971, 1, 2)))
def test_fast_timestamp_matches_timefmt(dt: datetime) -> None:
    text = dt.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
    assert _timestamp(text) == parse_eve_ts(text)
    for offset in ("+0200", "-0530"):
        assert _timestamp(text[:-5] + offset) == parse_eve_ts(text[:-5] + offset)


# --- real Suricata ---------------------------------------------------------------------------

HOST4, PROBER4 = "192.0.2.10", "198.51.100.7"
HOST6, PROBER6 = "2001:db8::10", "2001:db8:1::7"
T0 = 1_700_000_000.0

SURICATA_RULES = """\
alert tcp any any -> any any (msg:"test rst"; flags:R+; sid:1; rev:1;)
alert icmp any any -> any any (msg:"test icmp port unreach"; itype:3; icode:3; sid:2; rev:1;)
alert icmpv6 any any -> any any (msg:"test icmp6 port unreach"; itype:1; icode:4; sid:3; rev:1;)
alert udp any any -> any any (msg:"someone else's rule"; sid:2000001; rev:1;)
"""

SURICATA_YAML = """\
%YAML 1.1
---
vars:
  address-groups:
    HOME_NET: "[192.0.2.0/24,2001:db8::/48]"
    EXTERNAL_NET: "!$HOME_NET"
outputs:
{outputs}
logging:
  default-log-level: notice
  outputs:
    - console:
        enabled: yes
"""

EVE_OUTPUT = """\
  - eve-log:
      enabled: yes
      filetype: regular
      filename: {name}.json
      types:
        - alert:
            payload: {payload}
            packet: {packet}
            metadata: yes
        - flow
"""


def _pcaps(where: Path) -> dict[str, tuple[str, str, int, str, Kind]]:
    """Write pcaps of probes + responses; return what each response alert must decode to,
    keyed by the probed port (unique per case): (remote, local, port, proto, kind)."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP
    from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop
    from scapy.layers.l2 import CookedLinux, Dot1AD, Dot1Q, Ether
    from scapy.utils import wrpcap

    macs = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
    expect: dict[str, tuple[str, str, int, str, Kind]] = {}
    clock = iter(T0 + i / 100 for i in range(1000))

    def stamp(pkts: list[Any]) -> list[Any]:
        for p in pkts:
            p.time = next(clock)
        return pkts

    def tcp_pair(port: int, v6: bool = False) -> list[Any]:
        ip = IPv6 if v6 else IP
        r, h = (PROBER6, HOST6) if v6 else (PROBER4, HOST4)
        expect[str(port)] = (r, h, port, "tcp", Kind.TCP_RST)
        return [ip(src=r, dst=h) / TCP(sport=41000, dport=port, flags="S"),
                ip(src=h, dst=r) / TCP(sport=port, dport=41000, flags="RA")]

    def udp4_pair(port: int, options: bool = False) -> list[Any]:
        probe = IP(src=PROBER4, dst=HOST4, options=[IPOption_NOP()] * 4 if options else [])
        probe = probe / UDP(sport=42000, dport=port) / b"probe"
        raw = bytes(probe)
        expect[str(port)] = (PROBER4, HOST4, port, "udp", Kind.ICMP4_PORT_UNREACH)
        quote = raw[: (raw[0] & 15) * 4 + 8]
        return [probe, IP(src=HOST4, dst=PROBER4) / ICMP(type=3, code=3) / quote]

    def udp6_pair(port: int, ext: bool = False) -> list[Any]:
        probe = IPv6(src=PROBER6, dst=HOST6) / UDP(sport=43000, dport=port) / b"probe"
        err = IPv6(src=HOST6, dst=PROBER6)
        if ext:
            err = err / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
        expect[str(port)] = (PROBER6, HOST6, port, "udp", Kind.ICMP6_PORT_UNREACH)
        return [probe, err / ICMPv6DestUnreach(code=4) / probe]

    eth = [Ether(**macs) / p for p in tcp_pair(22) + tcp_pair(23, v6=True) + udp4_pair(53)
           + udp4_pair(54, options=True) + udp6_pair(161) + udp6_pair(162, ext=True)]
    vlan = [Ether(**macs) / Dot1Q(vlan=5) / p for p in tcp_pair(24) + udp4_pair(55)]
    qinq = [Ether(**macs) / Dot1AD(vlan=7) / Dot1Q(vlan=5) / p for p in udp6_pair(163)]
    wrpcap(str(where / "a-eth.pcap"), stamp(eth + vlan + qinq))
    sll = [CookedLinux(proto=0x0800 if IP in p else 0x86DD) / p
           for p in udp4_pair(56) + udp6_pair(164)]
    wrpcap(str(where / "b-sll.pcap"), stamp(sll), linktype=113)
    wrpcap(str(where / "c-raw.pcap"), stamp(udp4_pair(57) + tcp_pair(25)), linktype=101)
    wrpcap(str(where / "d-raw4.pcap"), stamp(udp4_pair(58)), linktype=228)
    return expect


@pytest.mark.suricata
def test_real_suricata_output(tmp_path: Path) -> None:
    from scanguard_ids import suricata

    try:
        binary = suricata.find_suricata()
    except suricata.SuricataError:
        pytest.skip("suricata binary not found")
    pcaps, out = tmp_path / "pcaps", tmp_path / "out"
    pcaps.mkdir()
    out.mkdir()
    expect = _pcaps(pcaps)
    variants = {  # name: (payload, packet)
        "both": ("yes", "yes"),
        "payload": ("yes", "no"),
        "packet": ("no", "yes"),
        "neither": ("no", "no"),
    }
    outputs = "".join(
        EVE_OUTPUT.format(name=name, payload=p, packet=k) for name, (p, k) in variants.items()
    )
    (tmp_path / "s.yaml").write_text(SURICATA_YAML.format(outputs=outputs))
    (tmp_path / "t.rules").write_text(SURICATA_RULES)
    proc = subprocess.run(
        [binary, "-r", str(pcaps), "-S", str(tmp_path / "t.rules"), "-l", str(out),
         "-c", str(tmp_path / "s.yaml"), "-k", "none"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    for name in variants:
        dec = Decoder(SIDS)
        events = [ev for line in (out / f"{name}.json").read_bytes().splitlines()
                  if (ev := dec.decode(line)) is not None]
        assert dec.stats.bad_json == dec.stats.missing_fields == dec.stats.binary == 0
        assert dec.stats.foreign_sids >= 1  # the udp rule fired on the probes
        assert dec.stats.skipped_events >= 1  # flow events
        assert dec.stats.remote_mismatch == 0
        assert len(events) == len(expect), (name, events)
        for ev in events:
            assert T0 <= ev.ts < T0 + 10
        if name == "neither":
            got = sorted((e.remote, e.local, e.kind) for e in events)
            assert got == sorted((r, h, k) for r, h, _, _, k in expect.values())
            icmp = [e for e in events if e.kind is not Kind.TCP_RST]
            assert all(e.local_port is None for e in icmp)
            assert dec.stats.no_port == len(icmp)
            continue
        got_by_port = {str(e.local_port): (e.remote, e.local, e.local_port, e.proto, e.kind)
                       for e in events}
        assert got_by_port == expect, name
        assert dec.stats.no_port == 0


# --- the shared real samples (tests/data/eve, written by tests/pcaps.py) ----------------------

SAMPLES = sorted((Path(__file__).parent.parent / "data" / "eve").glob("*.eve.json"))


@pytest.mark.skipif(not SAMPLES, reason="no EVE samples in tests/data/eve")
@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_shared_samples_decode_as_expected(sample: Path) -> None:
    from scanguard_ids.config import Config, sid_set

    expect_path = sample.with_name(sample.name.replace(".eve.json", ".expect.json"))
    if not expect_path.exists():
        pytest.skip(f"no {expect_path.name}")
    expect = json.loads(expect_path.read_text())["alerts"]
    dec = Decoder(sid_set(Config()))
    counts: dict[str, dict[str, int]] = {}
    for line in sample.read_bytes().splitlines():
        ev = dec.decode(line)
        if ev is not None:
            assert ev.local_port is not None, ev
            by_kind = counts.setdefault(ev.remote, {})
            by_kind[ev.kind.value] = by_kind.get(ev.kind.value, 0) + 1
    assert dec.stats.bad_json == dec.stats.missing_fields == dec.stats.binary == 0
    assert dec.stats.remote_mismatch == dec.stats.no_port == 0
    assert counts == expect


@pytest.mark.parametrize("missing", ["src_ip", "dest_ip", "timestamp"])
def test_bad_quote_of_an_unusable_alert_is_not_counted(missing: str) -> None:
    """no_port / bad_packet / remote_mismatch are sub-counts of alerts: an alert dropped for
    a missing field does not also count its (bad) quoted probe."""
    doc = json.loads(ICMP4)
    del doc[missing]
    doc["payload"] = base64.b64encode(b"\x45garbage").decode()
    doc.pop("packet", None)
    d = Decoder(SIDS)
    assert d.decode(orjson.dumps(doc)) is None
    assert d.stats.missing_fields == 1
    assert (d.stats.alerts, d.stats.bad_packet, d.stats.no_port) == (0, 0, 0)


def test_bad_sums_the_unusable_lines() -> None:
    stats = DecodeStats(bad_json=1, oversized=2, binary=3, missing_fields=4, unknown_kind=50,
                        foreign_sids=60, skipped_events=70)
    assert stats.bad == 10


def test_the_decoder_says_which_reader_it_uses(_each_reader: str) -> None:
    assert Decoder(SIDS).reader == _each_reader
    assert Decoder(SIDS).accelerated == (_each_reader == "c")
    assert decode_mod.Decoder(SIDS).reader == decode_mod.READERS[0]  # the fastest installed
    assert decode_mod.Decoder(SIDS, accel=False).reader == "python"
    assert decode_mod.READERS[-1] == "python"
    with pytest.raises(decode_mod.DecoderError, match="not available"):
        decode_mod.Decoder(SIDS, reader="rust")
