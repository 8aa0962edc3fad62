"""The msgspec reader's two parts for decode.py: a batch-wide byte check and a typed alert.

:func:`settled` answers for a whole batch at once, in a few C-level passes, what decode.py's
byte check answers line by line: every line holds ``"event_type"`` exactly once, written
compactly and without an escape, and none is oversized. Then only the lines holding
``"event_type":"alert"`` need a look; every other line is a skipped event.

:data:`decode_alert` reads only the fields decode.py uses, with strict types (a float is not
an int, a SID or port out of range is refused). Anything it refuses (a missing field, an
unexpected type, bad JSON) raises ``msgspec.DecodeError`` and the line takes decode.py's full
orjson parse, which stays the reference for what a line means.
"""

from __future__ import annotations

from itertools import repeat
from typing import Annotated

import msgspec

__all__ = ["DecodeError", "decode_alert", "settled"]

DecodeError = msgspec.DecodeError  # ValidationError is a subclass

_ET_KEY = b'"event_type"'
_ET_COMPACT = b'"event_type":"'
_ET_ESCAPED = b'"event_type":"\\'

_U32 = Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)]
_Port = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF)]
_Byte = Annotated[int, msgspec.Meta(ge=0, le=0xFF)]


class Signature(msgspec.Struct):
    signature_id: _U32


class PacketInfo(msgspec.Struct):
    linktype: _U32 | None = None


class Alert(msgspec.Struct):
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


decode_alert = msgspec.json.Decoder(Alert).decode


def settled(lines: list[bytes], block: bytes, max_line_bytes: int) -> bool:
    """True when every line of ``lines`` (``block`` is them joined by newlines) holds one
    compact, unescaped ``"event_type"`` and none is longer than ``max_line_bytes``."""
    n = len(lines)
    return (
        n > 0
        and block.count(_ET_COMPACT) == n
        and _ET_ESCAPED not in block
        and (len(block) <= max_line_bytes or max(map(len, lines)) <= max_line_bytes)
        and list(map(bytes.count, lines, repeat(_ET_KEY))).count(1) == n
    )
