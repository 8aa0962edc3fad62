"""Edges of the C reader's fast scans, swept position by position against the Python decoder.

_fast.c skips string bodies 16 bytes at a time, looks for ``"event_type"`` 16 bytes at a
time, reuses address and SID objects from line to line and decodes base64 by table. Each
sweep here puts the byte that matters at every offset around those 16-byte steps, so a scan
that stops early or late shows as a difference from ``Decoder(accel=False)``.
"""

from __future__ import annotations

import base64

import pytest
from test_decode import FLOW
from test_fast_reader import ICMP, RST, SIDS, assert_same

from scanguard_ids.eve import _fast, decode
from scanguard_ids.eve.decode import KIND_EVENT, Decoder

pytestmark = pytest.mark.skipif(not decode.ACCELERATED, reason="the C reader is not built")

# What a string body may hold that the scan must stop at, and plain text around it.
SPECIALS = [b'\\"', b"\\\\", b"\\u0041", b"\\ud800", b"\\x", b"\x01", b"\x7f", b"\xc3\xa9", b"\xff"]


@pytest.mark.parametrize("special", SPECIALS)
def test_a_special_byte_at_every_offset_of_a_string(special: bytes) -> None:
    for before in range(0, 40):
        value = b"a" * before + special + b"b" * 7
        for line in (
            RST.replace(b'"SCANGUARD TCP RST from a closed port"', b'"' + value + b'"'),
            RST.replace(b'"flow":{', b'"flow":{"x' + value + b'":1,'),  # a key deeper down
            RST.replace(b'"direction":"to_client"', b'"direction":"' + value + b'"'),
        ):
            assert_same(line)


def test_strings_ending_at_every_offset() -> None:
    for n in range(0, 40):
        value = b"s" * n
        assert_same(RST.replace(b'"to_client"', b'"' + value + b'"'))
        assert_same(RST.replace(b'"in_iface":"victim0"', b'"in_iface":"' + value + b'"'))
        # the string that ends the line: no 16 bytes left after it
        assert_same(RST[:-1] + b',"host":"' + value + b'"}')
        assert_same(RST[:-1] + b',"host":"' + value + b'\\"}')  # never closed


def test_event_type_at_every_offset() -> None:
    """The "event_type" search, from the line's start and after the value."""
    ctx = Decoder(SIDS)._ctx
    for pad in range(0, 40):
        iface = b"e" * pad  # '"e' decoys in front of the key too
        line = RST.replace(b'"in_iface":"victim0"', b'"in_iface":"' + iface + b'"')
        assert_same(line)
        assert _fast.prefilter(line, 0, len(line), 10**6, SIDS, ctx)[4] == bytes([KIND_EVENT])
        assert_same(RST.replace(b'"in_iface":"victim0"', b'"e' + iface + b'":"victim0"'))
        flow = FLOW.rstrip(b"\n")
        assert_same(flow.replace(b'"flow_id":62122604149343,', b'"x":"' + iface + b'",'))
        # a second "event_type" (the line is not settled) ending at every distance from the
        # end of the line, and a near miss that leaves it settled
        assert_same(flow[:-1] + b',"' + iface + b'":{"event_type":"alert"}}')
        assert_same(flow[:-1] + b',"' + iface + b'":{"event_typ":"alert"}}')
        assert_same(flow[:-1] + b',"event_type":' + b"1" * (pad + 1) + b"}")
        # the same key again at the top level: the last one wins in a JSON parser
        assert_same(flow[:-1] + b',"' + iface + b'":1,"event_type":"alert"}')


@pytest.mark.parametrize("depth", [60, 61, 62, 63, 64, 65, 66])
def test_nesting_around_the_depth_limit(depth: int) -> None:
    for leaf in (b'"s"', b"1", b"true", b"[]", b"{}"):
        nested = b'{"a":' * depth + leaf + b"}" * depth
        assert_same(RST[:-1] + b',"deep":' + nested + b"}")
        arrays = b"[" * depth + leaf + b"]" * depth
        assert_same(RST[:-1] + b',"deep":' + arrays + b"}")


def test_payload_padding_and_every_length() -> None:
    quote = base64.b64decode(ICMP.split(b'"payload":"')[1].split(b'"')[0])
    start = ICMP.index(b'"payload":"') + len(b'"payload":"')
    end = ICMP.index(b'"', start)
    for cut in range(len(quote) - 6, len(quote) + 1):
        text = base64.b64encode(quote[:cut])
        for variant in (text, text.rstrip(b"="), text[:-1] + b"=", text[:-2] + b"==",
                        text[:-2] + b"=A", text[:-4] + b"A===", text[:-4] + b"====",
                        text[:-4] + b"=AAA", text + b"AAAA", b"AAA=" + text,
                        b"AA==" + text, b"A===" + text):
            assert_same(ICMP[:start] + variant + ICMP[end:])


def test_a_block_of_many_remotes_and_sids() -> None:
    """One prefilter call over lines whose addresses and SIDs change and come back: the
    strings and ints the C reader reuses must be the ones of each line."""
    lines = []
    for i in range(3000):
        remote = f"198.51.{(i * 7) % 256}.{(i * 13) % 256}".encode()
        local = (f"192.0.2.{i % 5}" if i % 60 else f"2001:db8::{i % 7:x}").encode()
        sid = [b"9400001", b"9400001", b"1", b"9400001"][i % 4]
        line = (RST.replace(b'"dest_ip":"192.0.2.2"', b'"dest_ip":"' + remote + b'"')
                .replace(b'"src_ip":"192.0.2.1"', b'"src_ip":"' + local + b'"')
                .replace(b'"signature_id":9400001', b'"signature_id":' + sid)
                .replace(b'"src_port":21', b'"src_port":' + str(i * 31 % 70000).encode())
                .replace(b'"victim0"', b'"' + b"v" * (i % 70) + b'"'))
        lines.append(line)
    buf = b"\n".join(lines)
    ref = Decoder(SIDS, accel=False)
    want = [ev for ln in lines if (ev := ref.decode(ln)) is not None]
    fast = Decoder(SIDS, reader="c")
    assert fast.decode_block(buf) == want
    assert fast.stats == ref.stats
    again = Decoder(SIDS, reader="c")
    assert again.decode_batch(lines) == want
    assert again.stats == ref.stats
