"""Decoder.decode_batch: the same events and the same stats as decode() line by line."""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_decode import DNS, FLOW, FOREIGN, ICMP4, ICMP6, MAPPED, RST, STATS, with_

from scanguard_ids.eve import decode as decode_mod
from scanguard_ids.eve.decode import Decoder

SIDS = frozenset({1, 2, 3})


@pytest.fixture(scope="module", autouse=True, params=decode_mod.READERS)
def _each_reader(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test of this module runs once per reader: ``Decoder(...)`` here is that reader."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys.modules[__name__], "Decoder",
                   functools.partial(decode_mod.Decoder, reader=request.param))
        yield request.param

REAL = [RST, ICMP4, ICMP6, MAPPED, FLOW, DNS, STATS, FOREIGN]

# Lines the byte check must hand on to the full path (or settle exactly as decode() does).
TRICKY = [
    b"",
    b"{",
    b"[]",
    b'"event_type":"alert"',
    b'{"event_type":"alert","x":"\xff\xfe"}',
    RST.replace(b'"event_type":"alert"', b'"event_type":"\\u0061lert"'),
    RST.replace(b'"event_type":"alert"', b'"event_type" :"alert"'),
    RST.replace(b'"event_type":"alert"', b'"event_type": "alert","x":{"event_type":"flow"}'),
    FLOW.replace(b'"tcp":', b'"x":{"event_type":"alert"},"tcp":'),
    FLOW.replace(b'"event_type":"flow"', b'"event_type":"\\u0066low"'),
    FLOW.replace(b'"event_type":"flow"', b'"event_type":"flow","event_type":"alert"'),
    FLOW.replace(b'"event_type":"flow"', b'"event_type":"event_type"'),
    FLOW.replace(b'"event_type":"flow",', b""),
    RST.replace(b'"alert":{', b'"meta":{"signature_id":2000001,"rev":1},"alert":{'),
    with_(RST, alert={"signature_id": 7, "x": {"signature_id": 1}}),
    with_(RST, src_port=None),
    with_(ICMP4, payload="garbage!"),
    with_(ICMP4, payload=None, packet=None),
    with_(ICMP4, dest_ip="203.0.113.9"),
    with_(RST, dest_ip="not-an-ip"),
    with_(RST, timestamp="yesterday"),
    RST[:-3],
    RST + RST,
    b"  " + RST,
    RST.rstrip(b"\n") + b"\r\n",
    json.dumps(orjson.loads(RST)).encode(),
    # the msgspec reader's inline loop (Decoder._batch_typed): the SID shortcut and the
    # common TCP RST, against the reference
    *(RST.replace(b'"signature_id":1,', b'"signature_id":%s,' % sid)
      for sid in (b"01", b" 1", b"+1", b"1.0", b"-1", b"1_0", b"11", b"4294967296", b"")),
    RST.replace(b'"signature_id":1,', b'"signature_id":1,"x":{"signature_id":7},'),
    RST.replace(b'"signature_id":1,', b'"signature_id":7,"x":{"signature_id":1},'),
    RST.replace(b'"signature_id":1,', b'"signature_id":1}'),
    with_(RST, timestamp="2023-11-14T22:13:20.020000"),
    with_(RST, timestamp="2023-11-14T22:13:20.020000+00:00"),
    with_(RST, timestamp="2023-11-14T22:13:20.020000-0530"),
    with_(RST, timestamp="2023-11-14T22:13:60.020000+0000"),
    with_(RST, timestamp="2023-11-14T22:13:20Z"),
    with_(RST, timestamp="9999-12-31T23:59:59.999999-2359"),
    with_(RST, timestamp=17),
    with_(RST, src_ip="192.0.2.010"),
    with_(RST, src_ip="2001:db8::1", dest_ip="2001:DB8:0::7"),
    with_(RST, dest_ip="::ffff:198.51.100.7"),
    with_(RST, dest_ip=None),
    with_(RST, src_port=70000),
    with_(RST, src_port=True),
    with_(RST, proto="tcp"),
    with_(RST, host="sensor-1"),
    with_(RST, host="sensor-1", in_iface=None),
    with_(RST, host=None, in_iface=None),
    with_(RST, host=7),
    with_(RST, event_type="alert", extra="\u00e9t\u00e9"),
    RST.replace(b'"event_type":"alert"', b'"event_type":"alert","event_type":"flow"'),
]


def _lines_and_stats(dec: Decoder, lines: list[bytes], batch: bool) -> tuple[list[Any], dict]:
    if batch:
        events = dec.decode_batch(lines)
    else:
        events = [ev for line in lines if (ev := dec.decode(line)) is not None]
    return events, dataclasses.asdict(dec.stats)


def _same(lines: list[bytes], max_line_bytes: int = 1_048_576) -> None:
    """The reader's decode_batch and decode both give the reference's decode results."""
    ref = decode_mod.Decoder(SIDS, max_line_bytes, reader="python")
    one = _lines_and_stats(ref, lines, batch=False)
    many = _lines_and_stats(Decoder(SIDS, max_line_bytes), lines, batch=True)
    assert many == one
    assert _lines_and_stats(Decoder(SIDS, max_line_bytes), lines, batch=False) == one


def test_batch_of_real_and_tricky_lines() -> None:
    lines = [line.rstrip(b"\n") for line in REAL + TRICKY]
    _same(lines)
    _same(lines * 3)
    _same([])


def test_batch_with_an_oversized_line_counts_it() -> None:
    lines = [FLOW, RST, RST + b" " * 2000, ICMP4]
    _same(lines, max_line_bytes=len(ICMP4) + 10)
    dec = Decoder(SIDS, max_line_bytes=len(ICMP4) + 10)
    assert len(dec.decode_batch(lines)) == 2 and dec.stats.oversized == 1


def test_batch_skips_plain_events_without_a_parse(monkeypatch: pytest.MonkeyPatch,
                                                  _each_reader: str) -> None:
    seen: list[bytes] = []
    real = orjson.loads
    monkeypatch.setattr(decode_mod.orjson, "loads", lambda b: seen.append(b) or real(b))
    dec = Decoder(SIDS)
    assert len(dec.decode_batch([FLOW, DNS, STATS, FOREIGN, RST, FLOW])) == 1
    assert seen == ([] if _each_reader == "msgspec" else [RST])  # msgspec: its typed decoder
    assert dec.stats.skipped_events == 4 and dec.stats.foreign_sids == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(REAL + TRICKY), max_size=12), st.data())
def test_batch_equals_line_by_line(picked: list[bytes], data: st.DataObject) -> None:
    lines = []
    for line in picked:
        raw = bytearray(line.rstrip(b"\n"))
        for _ in range(data.draw(st.integers(0, 3))):
            if not raw:
                break
            pos = data.draw(st.integers(0, len(raw) - 1))
            raw[pos] = data.draw(st.sampled_from(b'"\\:,{}ae \xff0'))
        lines.append(bytes(raw))
    _same(lines, max_line_bytes=data.draw(st.sampled_from([400, 1_048_576])))


@pytest.mark.parametrize("sids", [frozenset(), frozenset({2_000_001}), frozenset({1, 22, 333}),
                                  frozenset({11, 22, 2, 7, 9_400_000})])
def test_batch_with_other_sid_sets(sids: frozenset[int]) -> None:
    """The SID shortcut of the batch loop (the width most of our SIDs are written with) does
    not depend on the SIDs being alike."""
    lines = [line.rstrip(b"\n") for line in REAL + TRICKY]
    ref = decode_mod.Decoder(sids, reader="python")
    want = [ev for line in lines if (ev := ref.decode(line)) is not None]
    dec = Decoder(sids)
    assert dec.decode_batch(lines) == want
    assert dataclasses.asdict(dec.stats) == dataclasses.asdict(ref.stats)
