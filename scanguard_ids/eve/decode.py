"""EVE JSON lines -> ResponseEvent. Pure: bytes in, an event (or None) out, never raises.

Most lines of a real eve.json are flow, dns, tls, stats ... events, so a line is first
looked at as bytes: a compact ``"event_type":"<not alert>"`` that occurs once is dropped
without a JSON parse, and so is an alert whose ``"signature_id":N`` is not ours. Anything
the byte check cannot settle (spaces after colons, escapes, keys seen twice, no event_type
at all) takes the full orjson parse, so the shortcut never drops one of our alerts. Lines
the shortcut drops are not validated: a truncated flow event counts as skipped, not bad.

Field semantics, checked against Suricata 7 output: an alert's ``src_ip``/``src_port`` are
those of the alerting packet (our host's response) even when ``direction`` is
``to_client``; the ``flow`` object carries the flow's direction instead. An ICMP error
alert's ``payload`` is the quoted probe (IP header + transport header).

Three readers give the same results (``Decoder.reader`` says which one runs):

- ``"c"``: the optional C module ``_fast`` (built at install when a compiler is present)
  runs the same byte check over whole buffers (:meth:`Decoder.decode_block`, replay) and over
  the readers' batches (:meth:`Decoder.decode_batch`, the daemon), and reads the fields of
  an alert written in Suricata 7's own layout without a JSON parse. Anything it does not
  recognise takes the path above. It assumes of Suricata's output: keys in its fixed order
  and each written once, the sensor name (``host``) as the last key.
- ``"msgspec"`` (the default without the C module): the byte check above, then an alert that
  may be ours is read by a msgspec decoder typed with only the fields used here (typed.py)
  instead of the full parse; a line it refuses takes the full parse.
- ``"python"``: the reference above, line by line. The tests compare each fast reader with
  it, events and stats.

Without the C reader, :meth:`Decoder.decode_batch` (the daemon's path) runs the byte check,
the SID check and the msgspec or orjson read of a TCP RST of ours inline, in one loop
(``Decoder._batch``): the same steps as decode(), without its calls.

Known divergence of both fast readers from the reference: a number that overflows a double
(``1e400``) in a field neither reads is accepted by them and refused by orjson (bad_json).
"""

from __future__ import annotations

import binascii
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import ip_address
from socket import AF_INET, inet_pton
from typing import Any

import orjson

from scanguard_ids.errors import ScanguardError
from scanguard_ids.eve.packet import PORT_PROTOCOLS, Quoted, quoted_from_frame, quoted_probe
from scanguard_ids.model import Kind, ResponseEvent, ip_packed
from scanguard_ids.timefmt import parse_eve_ts

try:
    from scanguard_ids.eve import _fast
except ImportError:  # built without a C compiler: the msgspec or pure-Python path instead
    _fast = None  # type: ignore[assignment]
try:
    from scanguard_ids.eve import typed
except ImportError:  # msgspec not installed
    typed = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: True when the C accelerator is importable (``Decoder(accel=True)`` then uses it).
ACCELERATED = _fast is not None
#: The readers this install has, fastest first: the first one is the default.
READERS: tuple[str, ...] = tuple(
    name
    for name, there in (("c", _fast is not None), ("msgspec", typed is not None), ("python", True))
    if there
)

# What the C prefilters return for each line they hand on (_fast.c's KIND_*): any other line
# the byte check could not settle (Decoder._decode), a compact alert the C reader did not
# recognise (Decoder._alert_slow), the fields of one of ours (Decoder._event), or the event.
KIND_OTHER = 0
KIND_ALERT = 1
KIND_FIELDS = 2
KIND_EVENT = 3

_ET_KEY = b'"event_type"'
_ET_LEN = len(_ET_KEY)
#: Event type values the byte check cannot settle: an alert, or an escape that may spell one.
_UNSETTLED = (b'alert"', b"\\")
_SID_KEY = b'"signature_id":'
_SID_LEN = len(_SID_KEY)
_ADDR_CACHE_MAX = 4096
# Enum member lookups through the class cost ~10x a module constant on the hot path.
_TCP_RST = Kind.TCP_RST
_ICMP4 = Kind.ICMP4_PORT_UNREACH
_ICMP6 = Kind.ICMP6_PORT_UNREACH

_fromisoformat = datetime.fromisoformat


@dataclass(slots=True)
class DecodeStats:
    """What the decoder saw. Every line counts in ``lines`` and in exactly one of alerts,
    skipped_events, foreign_sids, bad_json, oversized, binary, missing_fields, unknown_kind;
    ``no_port``, ``bad_packet`` and ``remote_mismatch`` are sub-counts of ``alerts``."""

    lines: int = 0
    alerts: int = 0  # ours, decoded into an event
    skipped_events: int = 0  # not an alert
    foreign_sids: int = 0  # an alert of a rule that is not ours
    bad_json: int = 0
    oversized: int = 0
    binary: int = 0  # not UTF-8
    missing_fields: int = 0  # ours, but a required field is absent or malformed
    unknown_kind: int = 0  # ours, but not a TCP RST / ICMP(v6) port unreachable
    no_port: int = 0  # ours, decoded, but the probed port is unknown
    bad_packet: int = 0  # payload / packet present but unusable (subset of no_port)
    remote_mismatch: int = 0  # quoted prober != response destination (dest_ip kept)

    @property
    def bad(self) -> int:
        """Lines that could not be used: bad_json + oversized + binary + missing_fields."""
        return self.bad_json + self.oversized + self.binary + self.missing_fields


class DecoderError(ScanguardError):
    """A reader was asked for that this install does not have."""


class Decoder:
    """Turns EVE lines into ResponseEvents for the given SIDs."""

    __slots__ = (
        "_addrs",
        "_ctx",
        "_head",
        "_prefilter",
        "_prefilter_lines",
        "_sid_texts",
        "_sid_width",
        "_sids",
        "_typed",
        "_warned",
        "max_line_bytes",
        "reader",
        "stats",
    )

    def __init__(
        self,
        sids: frozenset[int],
        max_line_bytes: int = 1_048_576,
        accel: bool = True,
        reader: str | None = None,
    ) -> None:
        """``reader``: "c", "msgspec" or "python"; None: the first of READERS, or "python"
        with ``accel=False``."""
        if reader is None:
            reader = READERS[0] if accel else "python"
        if reader not in READERS:
            raise DecoderError(
                f"EVE reader {reader!r} is not available here (available: {', '.join(READERS)})"
            )
        self.reader = reader
        self._sids = sids
        #: our SIDs as a compact line writes them, with the comma after them, and the width
        #: most of them have: _batch() compares that many bytes after "signature_id": with
        #: this set, one slice instead of a find(), a slice and an int() for a line of ours
        self._sid_texts = frozenset(b"%d," % sid for sid in sids)
        widths = Counter(len(text) for text in self._sid_texts).most_common(1)
        self._sid_width = widths[0][0] if widths else 0
        self.max_line_bytes = max_line_bytes
        self.stats = DecodeStats()
        self._addrs: dict[str, tuple[str, bytes]] = {}
        self._warned = False
        fast = _fast if reader == "c" else None
        self._typed = typed.decode_alert if reader == "msgspec" else None
        self._prefilter = fast.prefilter if fast is not None else None
        self._prefilter_lines = fast.prefilter_lines if fast is not None else None
        self._head = fast.head if fast is not None else None
        # What the C reader needs to build the common events itself, as _event() would.
        self._ctx = (
            self._addrs, ResponseEvent, (_TCP_RST, _ICMP4, _ICMP6), ("tcp", PORT_PROTOCOLS)
        )

    @property
    def accelerated(self) -> bool:
        """Whether this decoder uses the C reader (``reader == "c"``)."""
        return self._head is not None

    # -- the cheap byte-level pre-filter -------------------------------------------------

    def decode(self, line: bytes) -> ResponseEvent | None:
        """Decode one EVE line (with or without its newline); None if it is not ours."""
        self.stats.lines += 1
        return self._decode(line)

    def decode_batch(self, lines: list[bytes]) -> list[ResponseEvent]:
        """The events of ``decode()`` on every line, in order, with the same stats.

        With the C reader, its prefilter_lines() does all of it (~0.2 us a skipped line).
        Otherwise decode()'s byte check runs inline here: the common line (another event
        type, written compactly, ``event_type`` once) costs two finds, a slice and a
        startswith, and no call; a compact alert goes straight to the SID check.
        """
        if self._prefilter_lines is not None and type(lines) is list:
            return self._collect(
                *self._prefilter_lines(lines, self.max_line_bytes, self._sids, self._ctx)
            )
        return self._batch(lines)

    def _batch(self, lines: list[bytes]) -> list[ResponseEvent]:
        """decode_batch() without the C reader.

        _alert_slow(), _parse() and _event() are inlined here for the common alert line, a
        TCP RST of ours (or a foreign alert): the Python calls and attribute reads around
        the msgspec (or orjson) call were most of these readers' time. Any other line goes
        where decode() sends it, and so does an alert the inline code does not settle.
        """
        stats = self.stats
        stats.lines += len(lines)
        events: list[ResponseEvent] = []
        decode = self._decode
        if not lines or max(map(len, lines)) > self.max_line_bytes:
            for line in lines:
                ev = decode(line)
                if ev is not None:
                    events.append(ev)
            return events
        decode_alert = self._typed
        loads = orjson.loads
        sids, ours, width = self._sids, self._sid_texts, self._sid_width
        addrs = self._addrs
        addr_get, addr = addrs.get, self._addr
        event, parse = self._event, self._parse
        fromiso = _fromisoformat
        append = events.append
        skipped = foreign = alerts = no_port = 0
        for line in lines:
            i = line.find(_ET_KEY) + _ET_LEN
            if i >= _ET_LEN and line[i : i + 2] == b':"':
                i += 2
                if not line.startswith(_UNSETTLED, i):
                    if line.find(_ET_KEY, i) < 0:
                        skipped += 1
                        continue
                elif line.startswith(b'alert"', i):
                    # _surely_foreign(), with a shortcut for a SID of ours written as most are
                    j = line.find(_SID_KEY) + _SID_LEN
                    if j >= _SID_LEN and line[j : j + width] not in ours:
                        end = line.find(b",", j, j + 21)
                        if end >= 0:
                            try:
                                written: int | None = int(line[j:end])
                            except ValueError:
                                written = None
                            if (written is not None and written not in sids
                                    and line.find(_SID_KEY, end) < 0):
                                foreign += 1
                                continue
                    sid: Any  # the orjson path checks the types of these below
                    sensor: Any
                    t: Any
                    src_text: Any
                    dst_text: Any
                    if decode_alert is not None:  # msgspec: _alert_slow() and _event()
                        if line.isascii():  # else orjson checks UTF-8
                            try:
                                a = decode_alert(line)
                            except (typed.DecodeError, RecursionError):
                                a = None
                        else:
                            a = None
                        if a is None or a.event_type != "alert":
                            ev = parse(line)
                            if ev is not None:
                                append(ev)
                            continue
                        sid = a.alert.signature_id
                        if sid not in sids:
                            foreign += 1
                            continue
                        sensor = a.host
                        if sensor is None:
                            sensor = a.in_iface if a.in_iface is not None else ""
                        t = a.timestamp  # _timestamp(t), its common case inline
                        try:
                            dt = fromiso(t)
                            ts = dt.timestamp() if dt.tzinfo is not None else _timestamp(t)
                        except (ValueError, OverflowError, OSError):
                            ts = _timestamp(t)
                        src_text, dst_text = a.src_ip, a.dest_ip
                        if a.proto != "TCP" or ts is None:
                            info = a.packet_info
                            ev = event(
                                ts, src_text, dst_text, a.proto, a.src_port, a.icmp_type,
                                a.icmp_code, sid, sensor, None, None, None,
                                (a.payload, a.packet, None if info is None else info.linktype),
                            )
                            if ev is not None:
                                append(ev)
                            continue
                        port = a.src_port  # None or in range
                    else:  # orjson: _parse() and _event()
                        try:
                            doc = loads(line)
                        except orjson.JSONDecodeError:
                            doc = None
                        get = doc.get if type(doc) is dict else None
                        alert = get("alert") if get is not None else None
                        sid = alert.get("signature_id") if type(alert) is dict else None
                        if get is None or get("event_type") != "alert" or type(sid) is not int:
                            ev = parse(line)
                            if ev is not None:
                                append(ev)
                            continue
                        if sid not in sids:
                            foreign += 1
                            continue
                        sensor = get("host")
                        if type(sensor) is not str:
                            sensor = get("in_iface")
                            if type(sensor) is not str:
                                sensor = ""
                        t = get("timestamp")
                        ts = None
                        if type(t) is str:  # _timestamp(t), its common case inline
                            try:
                                dt = fromiso(t)
                                ts = dt.timestamp() if dt.tzinfo is not None else _timestamp(t)
                            except (ValueError, OverflowError, OSError):
                                ts = _timestamp(t)
                        src_text, dst_text, proto = get("src_ip"), get("dest_ip"), get("proto")
                        if (proto != "TCP" or ts is None or type(src_text) is not str
                                or type(dst_text) is not str):
                            ev = event(
                                ts, src_text, dst_text, proto, get("src_port"),
                                get("icmp_type"), get("icmp_code"), sid, sensor, None, None,
                                None,
                                (get("payload"), get("packet"), _linktype(get("packet_info"))),
                            )
                            if ev is not None:
                                append(ev)
                            continue
                        port = get("src_port")
                        if type(port) is not int or not 0 <= port <= 0xFFFF:
                            port = None
                    # _event() of a TCP RST
                    src = addr_get(src_text)
                    if src is None:
                        src = addr(src_text)
                    dst = addr_get(dst_text)
                    if dst is None:  # the remote: a fresh one in a flood of spoofed sources
                        try:
                            dst = (dst_text, inet_pton(AF_INET, dst_text))
                        except (OSError, ValueError):
                            dst = addr(dst_text)  # IPv6 or not an address
                        else:
                            if len(addrs) >= _ADDR_CACHE_MAX:
                                addrs.clear()
                            addrs[dst_text] = dst
                    if src is None or dst is None:
                        stats.missing_fields += 1
                        continue
                    if port is None:
                        no_port += 1
                    alerts += 1
                    append(ResponseEvent(ts, dst[0], src[0], port, "tcp", _TCP_RST, sid, sensor))
                    continue
            ev = decode(line)
            if ev is not None:
                append(ev)
        stats.skipped_events += skipped
        stats.foreign_sids += foreign
        stats.alerts += alerts
        stats.no_port += no_port
        return events

    def decode_block(
        self, buf: bytes | bytearray, start: int = 0, end: int = -1
    ) -> list[ResponseEvent]:
        """decode_batch() on the lines of ``buf[start:end]`` (end -1: to the end of buf).

        The lines are separated by newlines; a newline at the very end does not start
        another line. With the C reader, the lines the byte check settles are counted
        without ever becoming Python objects.
        """
        if end < 0:
            end = len(buf)
        prefilter = self._prefilter
        if prefilter is None:
            if start >= end:
                return []
            lines = bytes(memoryview(buf)[start:end]).split(b"\n")  # one copy, bytes lines
            if not lines[-1]:
                lines.pop()
            return self._batch(lines)
        return self._collect(
            *prefilter(buf, start, end, self.max_line_bytes, self._sids, self._ctx)
        )

    def _collect(
        self,
        n: int,
        skipped: int,
        foreign: int,
        items: list[Any],
        kinds: bytearray,
        counts: tuple[int, int, int],
    ) -> list[ResponseEvent]:
        """The events of a C prefilter's result, counted."""
        stats = self.stats
        stats.lines += n
        stats.skipped_events += skipped
        stats.foreign_sids += foreign
        stats.alerts += counts[0]
        stats.no_port += counts[1]
        stats.remote_mismatch += counts[2]
        events: list[ResponseEvent] = []
        event, alert, decode = self._event, self._alert_slow, self._decode
        for item, kind in zip(items, kinds, strict=True):
            if kind == KIND_EVENT:  # already counted above
                events.append(item)  # type: ignore[arg-type]
                continue
            if kind == KIND_FIELDS:
                ev = event(*item)
            elif kind == KIND_ALERT:
                ev = alert(item)
            else:
                ev = decode(item)
            if ev is not None:
                events.append(ev)
        return events

    def _decode(self, line: bytes) -> ResponseEvent | None:
        """decode() without counting the line."""
        if len(line) > self.max_line_bytes:
            self.stats.oversized += 1
            return None
        i = line.find(_ET_KEY)
        if i >= 0 and line.startswith(b':"', i + _ET_LEN):
            i += _ET_LEN + 2
            if line.startswith(b'alert"', i):
                return self._alert(line)
            # Another event type: settled, unless its value starts with an escape
            # (could spell "alert") or "event_type" occurs again.
            if not line.startswith(b"\\", i) and line.find(_ET_KEY, i) < 0:
                self.stats.skipped_events += 1
                return None
        return self._parse(line)

    def _alert(self, line: bytes) -> ResponseEvent | None:
        """A line whose first ``"event_type"`` is a compact ``"alert"``."""
        head = self._head
        if head is not None:
            f = head(line)
            if f is not None:
                if f[7] not in self._sids:
                    self.stats.foreign_sids += 1
                    return None
                return self._event(*f)
        return self._alert_slow(line)

    def _alert_slow(self, line: bytes) -> ResponseEvent | None:
        """_alert() without the C reader: the msgspec reader if chosen, else the full parse."""
        if self._surely_foreign(line):
            self.stats.foreign_sids += 1
            return None
        decode_alert = self._typed
        if decode_alert is not None and line.isascii():  # non-ASCII: orjson checks UTF-8
            try:
                a = decode_alert(line)
            except (typed.DecodeError, RecursionError):
                return self._parse(line)
            if a.event_type == "alert":
                sid = a.alert.signature_id
                if sid not in self._sids:
                    self.stats.foreign_sids += 1
                    return None
                sensor = a.host
                if sensor is None:
                    sensor = a.in_iface if a.in_iface is not None else ""
                info = a.packet_info
                return self._event(
                    _timestamp(a.timestamp),
                    a.src_ip,
                    a.dest_ip,
                    a.proto,
                    a.src_port,
                    a.icmp_type,
                    a.icmp_code,
                    sid,
                    sensor,
                    None,
                    None,
                    None,
                    (a.payload, a.packet, None if info is None else info.linktype),
                )
        return self._parse(line)

    def _surely_foreign(self, line: bytes) -> bool:
        """True only when the line's single compact signature_id is not one of ours."""
        j = line.find(_SID_KEY)
        if j < 0:
            return False
        j += _SID_LEN
        end = line.find(b",", j, j + 21)
        if end < 0:
            return False
        try:
            sid = int(line[j:end])
        except ValueError:
            return False
        # Ours: parse it. Foreign: drop it only if no other signature_id could be ours.
        return sid not in self._sids and line.find(_SID_KEY, end) < 0

    # -- the full parse ------------------------------------------------------------------

    def _parse(self, line: bytes) -> ResponseEvent | None:
        stats = self.stats
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            if not line.isascii():
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    stats.binary += 1
                    return None
            stats.bad_json += 1
            return None
        if type(doc) is not dict:
            stats.bad_json += 1
            return None
        get = doc.get
        if get("event_type") != "alert":
            stats.skipped_events += 1
            return None
        alert = get("alert")
        sid = alert.get("signature_id") if type(alert) is dict else None
        if type(sid) is not int:
            stats.missing_fields += 1
            return None
        if sid not in self._sids:
            stats.foreign_sids += 1
            return None

        sensor = get("host")
        if type(sensor) is not str:
            sensor = get("in_iface")
            if type(sensor) is not str:
                sensor = ""
        return self._event(
            _timestamp(get("timestamp")),
            get("src_ip"),
            get("dest_ip"),
            get("proto"),
            get("src_port"),
            get("icmp_type"),
            get("icmp_code"),
            sid,
            sensor,
            None,
            None,
            None,
            (get("payload"), get("packet"), _linktype(get("packet_info"))),
        )

    def _event(
        self,
        ts: float | None,
        src_text: object,
        dst_text: object,
        proto: object,
        sport: object,
        itype: object,
        icode: object,
        sid: int,
        sensor: str,
        probe_proto: int | None,
        probe_src: bytes | None,
        probe_port: int | None,
        quote: tuple[object, object, object] | None = None,
    ) -> ResponseEvent | None:
        """The event of one of our alerts (``sid``), counted in the stats.

        The arguments are the alert's fields, from the C reader (same order as its tuple,
        ``probe_*`` describing the probe an ICMP error quotes) or from a parse, which passes
        ``quote`` = (payload, packet, packet_info.linktype) instead: the quote is then read
        here, only for a usable ICMP error, so that ``bad_packet`` stays a sub-count of
        ``alerts``.
        """
        stats = self.stats
        addr = self._addrs.get
        src = addr(src_text) if type(src_text) is str else None
        if src is None:
            src = self._addr(src_text)
        dst = addr(dst_text) if type(dst_text) is str else None
        if dst is None:
            dst = self._addr(dst_text)
        if src is None or dst is None or ts is None:
            stats.missing_fields += 1
            return None

        if proto == "TCP":
            kind = _TCP_RST
            name = "tcp"
            port = sport if type(sport) is int and 0 <= sport <= 0xFFFF else None
        else:
            icmp = _icmp_kind(proto, itype, icode)
            if icmp is None:
                stats.unknown_kind += 1
                return None
            kind = icmp
            name = "udp"
            port = None
            if quote is not None:
                quoted = self._quoted(*quote, sid)
                if quoted is not None:
                    probe_proto, probe_src, probe_port = quoted.proto, quoted.src, quoted.dst_port
            if probe_proto is not None:
                name = PORT_PROTOCOLS[probe_proto]
                port = probe_port
                if probe_src != dst[1]:
                    stats.remote_mismatch += 1
        if port is None:
            stats.no_port += 1
        stats.alerts += 1
        return ResponseEvent(ts, dst[0], src[0], port, name, kind, sid, sensor)

    def _quoted(
        self, payload: object, packet: object, linktype: object, sid: int
    ) -> Quoted | None:
        """The probe an ICMP error quotes, from ``payload`` else from ``packet``."""
        if payload is None and packet is None:
            if not self._warned:
                self._warned = True
                log.warning(
                    "eve_no_packet sid=%d: ICMP alerts carry no payload or packet, so the "
                    "probed port is unknown; enable 'payload: yes' or 'packet: yes' in the "
                    "eve-log alert output of suricata.yaml",
                    sid,
                )
            return None
        quoted = None
        if type(payload) is str:
            raw = _b64(payload)
            if raw is not None:
                quoted = quoted_probe(raw)
        if quoted is None and type(packet) is str:
            raw = _b64(packet)
            if raw is not None and type(linktype) is int:
                quoted = quoted_from_frame(raw, linktype)
        if quoted is None:
            self.stats.bad_packet += 1
        return quoted

    def _addr(self, text: object) -> tuple[str, bytes] | None:
        """(canonical text, packed) of an address as Suricata writes it; None if invalid."""
        if type(text) is not str:
            return None
        cache = self._addrs
        hit = cache.get(text)
        if hit is None:
            # inet_pton/ntop first: ipaddress was 40 % of this reader's time on a flood of
            # fresh sources (every address a cache miss)
            hit = ip_packed(text)
            if hit is None:
                try:
                    ip = ip_address(text)
                except ValueError:
                    return None
                hit = (str(ip), ip.packed)
            if len(cache) >= _ADDR_CACHE_MAX:
                cache.clear()
            cache[text] = hit
        return hit


def _linktype(info: object) -> object:
    return info.get("linktype") if type(info) is dict else None


def _icmp_kind(proto: object, itype: object, icode: object) -> Kind | None:
    """The Kind of an ICMP(v6) port-unreachable, None for anything else."""
    if type(itype) is not int:
        return None
    if proto == "ICMP" and itype == 3 and icode == 3:
        return _ICMP4
    if proto == "IPv6-ICMP" and itype == 1 and icode == 4:
        return _ICMP6
    return None


def _timestamp(text: object) -> float | None:
    if type(text) is not str:
        return None
    try:
        # Python >= 3.11 reads Suricata's "+0000" offsets itself.
        dt = _fromisoformat(text)
    except ValueError:
        try:
            return parse_eve_ts(text)
        except ValueError:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def _b64(text: str | bytes) -> bytes | None:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return None
