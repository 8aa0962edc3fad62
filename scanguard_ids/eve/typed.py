"""The msgspec reader's typed alert for decode.py: the fields it uses, and nothing else.

decode.py's byte check settles the other lines as it does for the pure-Python reader (a
batch-wide version of it in a few whole-block bytes passes measured slower: the per-line
check stops at each line's ``"event_type"``, a block pass scans every byte).
:data:`decode_alert` reads only the fields decode.py uses, with strict types (a float is not
an int, a SID or port out of range is refused). Anything it refuses (a missing field, an
unexpected type, bad JSON) raises ``msgspec.DecodeError`` and the line takes decode.py's full
orjson parse, which stays the reference for what a line means.

One difference is left: msgspec skips the fields it does not read without checking that their
numbers fit a double, where orjson refuses the whole line (``1e999`` is valid JSON syntax).
``flow_id``, the one long number on every alert line (a mutated digit there is the likely
case), is read so that it is checked; a huge exponent elsewhere in a skipped field makes the
msgspec reader accept a line the reference counts as bad JSON. Suricata never writes one.

The structs are ``gc=False``: they hold strings, numbers and each other, never a cycle, and
one is made per alert line; not tracking them measured ~0.3 us a line faster on the spoofed
flood (bench/readers.py, "flood").
"""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["DecodeError", "decode_alert"]

DecodeError = msgspec.DecodeError  # ValidationError is a subclass

_U32 = Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)]
_Port = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF)]
_Byte = Annotated[int, msgspec.Meta(ge=0, le=0xFF)]


class Signature(msgspec.Struct, gc=False):
    signature_id: _U32


class PacketInfo(msgspec.Struct, gc=False):
    linktype: _U32 | None = None


class Alert(msgspec.Struct, gc=False):
    """The fields of an EVE alert that decode.py reads; the others are skipped (but checked
    to be JSON)."""

    event_type: str
    timestamp: str
    src_ip: str
    dest_ip: str
    proto: str
    alert: Signature
    src_port: _Port | None = None
    icmp_type: _Byte | None = None
    icmp_code: _Byte | None = None
    host: str | None = None
    in_iface: str | None = None
    payload: str | None = None
    packet: str | None = None
    packet_info: PacketInfo | None = None
    flow_id: int | None = None  # unused: read so that a number out of range is refused


decode_alert = msgspec.json.Decoder(Alert).decode
