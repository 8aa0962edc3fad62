"""What crosses Redis: response events in compact batches, decisions as small JSON, validated.

Pure: no I/O, no clock. Everything read from Redis is untrusted (another node's bug, an old
version, a hand-made entry): a decoder returns None, or skips the line, for anything malformed,
and the caller counts it as garbage.

Evidence entry (stream PREFIX:events), one per batch of up to ``fleet.batch`` events, written
as version 2: the batch's distinct addresses once, then fixed-width columns (little-endian)::

    {"v": "2", "n": NODE, "a": "ADDR\nADDR...", "e": TS[N] RI[N] LI[N] PORT[N] KP[N]}

TS float64 epoch seconds, RI/LI uint32 indices into the address list (remote, local), PORT
uint32 (65536: the alert carried no packet), KP uint8 = 2 * kind (0 tcp-rst, 1 icmp, 2 icmp6)
+ probed protocol (0 tcp, 1 udp). It decodes without parsing a number or an address per event
(each address once per entry); an entry that breaks any of this is refused whole. Version 1
(one text line per event, read still, from nodes not yet upgraded; a bad line is skipped)::

    {"v": "1", "n": NODE, "e": "TS|REMOTE|LOCAL|PORT|KP\n..."}

KP is the kind code (r = tcp-rst, 4 = icmp, 6 = icmp6) then the probed protocol (t/u); PORT is
empty when the alert carried no packet. Decision entry (stream PREFIX:decisions and the value of
PREFIX:block:<ip>)::

    {"v": 1, "id": ID, "n": NODE, "a": "block"|"unblock", "ip": IP, "ttl": S, "exp": EPOCH,
     "ts": EPOCH, "s": STRIKES, "c": COUNT, "p": [PORTS], "r": REASON, "m": MANUAL}

``id`` names one decision fleet-wide (node, its clock in us, a sequence number): applying is
idempotent per (ip, id).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from operator import itemgetter
from typing import TypeVar

import orjson

from scanguard_ids.model import Decision, Kind, ResponseEvent, ip_text, parse_target

VERSION = "2"  # of the evidence entries written
V1, V2 = b"1", b"2"
_KIND_CODE = {Kind.TCP_RST: "r", Kind.ICMP4_PORT_UNREACH: "4", Kind.ICMP6_PORT_UNREACH: "6"}
_CODE_KIND = {v: k for k, v in _KIND_CODE.items()}
_PROTO_CODE = {"tcp": "t", "udp": "u"}
_CODE_PROTO = {v: k for k, v in _PROTO_CODE.items()}
MAX_NODE = 64  # characters of a node name
_T = TypeVar("_T")
_KINDS = (Kind.TCP_RST, Kind.ICMP4_PORT_UNREACH, Kind.ICMP6_PORT_UNREACH)
_KIND_INDEX = {k: i for i, k in enumerate(_KINDS)}
_KP_KIND = tuple(k for k in _KINDS for _ in range(2))  # KP -> kind
_KP_PROTO = ("tcp", "udp") * len(_KINDS)  # KP -> probed protocol
NO_PORT = 65536
_ROW = 8 + 4 + 4 + 4 + 1  # bytes per event in a version 2 entry


# -- evidence -----------------------------------------------------------------------------


def encode_events(events: list[ResponseEvent], node: str) -> dict[str, str | bytes]:
    """One stream entry's fields for a batch of events (version 2)."""
    index: dict[str, int] = {}
    at = index.setdefault
    n = len(events)
    remotes = [at(ev.remote, len(index)) for ev in events]
    locals_ = [at(ev.local, len(index)) for ev in events]
    kinds = _KIND_INDEX
    body = struct.pack(
        f"<{n}d{3 * n}I{n}B",
        *[ev.ts for ev in events], *remotes, *locals_,
        *[NO_PORT if ev.local_port is None else ev.local_port for ev in events],
        *[2 * kinds[ev.kind] + (ev.proto == "udp") for ev in events],
    )
    return {"v": VERSION, "n": node, "a": "\n".join(index), "e": body}


def encode_events_v1(events: list[ResponseEvent], node: str) -> dict[str, str]:
    """Version 1 of an entry (what a node not yet upgraded writes; tests and benchmarks)."""
    kc, pc = _KIND_CODE, _PROTO_CODE
    body = "\n".join(
        f"{ev.ts:.6f}|{ev.remote}|{ev.local}|{'' if ev.local_port is None else ev.local_port}"
        f"|{kc[ev.kind]}{pc.get(ev.proto, 't')}"
        for ev in events
    )
    return {"v": "1", "n": node, "e": body}


@lru_cache(maxsize=65_536)
def _addr(text: str) -> str | None:
    """The canonical form of an address, None if it is not one (cached: scanners repeat)."""
    return ip_text(text)


def decode_events(fields: dict[bytes, bytes]) -> tuple[str, list[ResponseEvent], int] | None:
    """(node, events, garbage lines) of one evidence entry; None if the entry is unusable."""
    node = _node(fields.get(b"n"))
    body = fields.get(b"e")
    if node is None or not isinstance(body, bytes):
        return None
    version = fields.get(b"v")
    if version == V2:
        events = _decode_v2(body, fields.get(b"a"), node)
        return None if events is None else (node, events, 0)
    if version == V1:
        return _decode_v1(body, node)
    return None


def _decode_v2(body: bytes, addrs: object, node: str) -> list[ResponseEvent] | None:
    """The events of a version 2 entry, None if anything in it is malformed. Checked by
    column, in C: the per-event work left is looking up and building the events."""
    n, rest = divmod(len(body), _ROW)
    if rest or not isinstance(addrs, bytes):
        return None
    if not n:
        return []
    try:
        table = [_addr(a) for a in addrs.decode().split("\n")]
    except UnicodeDecodeError:
        return None
    if None in table:
        return None
    ts = struct.unpack_from(f"<{n}d", body)
    idx = struct.unpack_from(f"<{2 * n}I", body, 8 * n)
    ports = struct.unpack_from(f"<{n}I", body, 16 * n)
    kp = body[20 * n:]
    if (not math.isfinite(sum(ts)) or min(ts) <= 0 or max(ports) > NO_PORT):
        return None
    if NO_PORT in ports:
        ports = tuple(None if p == NO_PORT else p for p in ports)  # type: ignore[misc]
    try:
        remotes = _pick(table, idx[:n])
        locals_ = _pick(table, idx[n:])
        kinds = _pick(_KP_KIND, kp)
        protos = _pick(_KP_PROTO, kp)
    except IndexError:
        return None
    return list(map(ResponseEvent, ts, remotes, locals_, ports, protos, kinds,
                    repeat(0, n), repeat(node, n)))


def _pick(table: Sequence[_T], idx: Sequence[int]) -> tuple[_T, ...]:
    """``tuple(table[i] for i in idx)``, in C (itemgetter: ~3x cheaper than a map); raises
    IndexError for an index out of range."""
    if len(idx) == 1:
        return (table[idx[0]],)
    return itemgetter(*idx)(table)  # type: ignore[no-any-return]


def _decode_v1(body: bytes, node: str) -> tuple[str, list[ResponseEvent], int] | None:
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return None
    out: list[ResponseEvent] = []
    bad = 0
    append = out.append
    kinds, protos = _CODE_KIND, _CODE_PROTO
    for line in text.split("\n"):
        parts = line.split("|")
        if len(parts) != 5 or len(parts[4]) != 2:
            bad += 1
            continue
        ts_s, remote, local, port_s, kp = parts
        kind = kinds.get(kp[0])
        proto = protos.get(kp[1])
        remote_n = _addr(remote)
        local_n = _addr(local)
        try:
            ts = float(ts_s)
            port = int(port_s) if port_s else None
        except ValueError:
            bad += 1
            continue
        if (kind is None or proto is None or remote_n is None or local_n is None
                or not math.isfinite(ts) or ts <= 0
                or (port is not None and not 0 <= port <= 65535)):
            bad += 1
            continue
        append(ResponseEvent(ts, remote_n, local_n, port, proto, kind, 0, node))
    return node, out, bad


# -- decisions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FleetDecision:
    """A block or unblock as the fleet carries it: a Decision plus who, which and until when."""

    id: str
    node: str
    action: str  # "block" | "unblock"
    ip: str
    ttl: int
    expires: float  # epoch s the block ends (blocks); 0 for unblocks
    ts: float  # the deciding node's wall clock when it decided
    strikes: int = 1
    count: int = 0
    ports: tuple[int, ...] = ()
    reason: str = ""
    manual: bool = False

    @classmethod
    def of(cls, d: Decision, node: str, now: float, seq: int) -> FleetDecision:
        """A local decision, taken at wall-clock ``now``, as the fleet will carry it."""
        return cls(
            id=f"{node}:{int(now * 1e6)}:{seq}",
            node=node,
            action=d.action,
            ip=d.ip,
            ttl=d.ttl,
            expires=now + d.ttl if d.action == "block" else 0.0,
            ts=now,
            strikes=d.strikes,
            count=d.count,
            ports=d.ports,
            reason=d.reason,
            manual=d.manual,
        )

    def decision(self) -> Decision:
        """The Decision a receiving node applies and journals (node = the decider)."""
        return Decision(ts=self.ts, action=self.action, ip=self.ip, ttl=self.ttl,
                        count=self.count, ports=self.ports, reason=self.reason,
                        strikes=self.strikes, manual=self.manual, node=self.node)

    def encode(self) -> bytes:
        return orjson.dumps({
            "v": 1, "id": self.id, "n": self.node, "a": self.action, "ip": self.ip,
            "ttl": self.ttl, "exp": self.expires, "ts": self.ts, "s": self.strikes,
            "c": self.count, "p": list(self.ports), "r": self.reason, "m": self.manual,
        })


def decode_decision(raw: object) -> FleetDecision | None:
    """A FleetDecision from its JSON, None when anything in it is malformed."""
    if not isinstance(raw, bytes | str):
        return None
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(d, dict) or d.get("v") != 1:
        return None
    try:
        action, ident, ip = d["a"], d["id"], d["ip"]
        ttl, exp, ts = d["ttl"], d["exp"], d["ts"]
        strikes, count, ports = d.get("s", 1), d.get("c", 0), d.get("p", [])
        reason, manual = d.get("r", ""), d.get("m", False)
    except KeyError:
        return None
    node = _node(d.get("n"))
    if (
        node is None
        or action not in ("block", "unblock")
        or not isinstance(ident, str) or not 0 < len(ident) <= 200
        or not isinstance(ip, str)
        or not all(_int(x) for x in (ttl, strikes, count))
        or not all(_num(x) for x in (exp, ts))
        or not isinstance(ports, list) or not all(_int(p) and p <= 65535 for p in ports)
        or not isinstance(reason, str) or not isinstance(manual, bool)
    ):
        return None
    if action == "block" and not 0 < ttl <= 2_147_483:
        return None
    try:
        target = str(parse_target(ip))
    except ValueError:
        return None
    return FleetDecision(id=ident, node=node, action=action, ip=target, ttl=ttl,
                         expires=float(exp), ts=float(ts), strikes=max(1, strikes), count=count,
                         ports=tuple(ports), reason=reason[:500], manual=manual)


def _node(raw: object) -> str | None:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode()
        except UnicodeDecodeError:
            return None
    if not isinstance(raw, str) or not 0 < len(raw) <= MAX_NODE or not raw.isprintable():
        return None
    return raw


def _int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _num(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x >= 0
