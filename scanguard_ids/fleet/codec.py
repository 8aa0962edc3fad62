"""What crosses Redis: response events in compact batches, decisions as small JSON, validated.

Pure: no I/O, no clock. Everything read from Redis is untrusted (another node's bug, an old
version, a hand-made entry): a decoder returns None, or skips the line, for anything malformed,
and the caller counts it as garbage.

Evidence entry (stream PREFIX:events), one per batch of up to ``fleet.batch`` events::

    {"v": "1", "n": NODE, "e": "TS|REMOTE|LOCAL|PORT|KP\\n..."}

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
from dataclasses import dataclass
from functools import lru_cache

import orjson

from scanguard_ids.model import Decision, Kind, ResponseEvent, ip_text, parse_target

VERSION = "1"
_KIND_CODE = {Kind.TCP_RST: "r", Kind.ICMP4_PORT_UNREACH: "4", Kind.ICMP6_PORT_UNREACH: "6"}
_CODE_KIND = {v: k for k, v in _KIND_CODE.items()}
_PROTO_CODE = {"tcp": "t", "udp": "u"}
_CODE_PROTO = {v: k for k, v in _PROTO_CODE.items()}
MAX_NODE = 64  # characters of a node name


# -- evidence -----------------------------------------------------------------------------


def encode_events(events: list[ResponseEvent], node: str) -> dict[str, str]:
    """One stream entry's fields for a batch of events."""
    kc, pc = _KIND_CODE, _PROTO_CODE
    body = "\n".join(
        f"{ev.ts:.6f}|{ev.remote}|{ev.local}|{'' if ev.local_port is None else ev.local_port}"
        f"|{kc[ev.kind]}{pc.get(ev.proto, 't')}"
        for ev in events
    )
    return {"v": VERSION, "n": node, "e": body}


@lru_cache(maxsize=65_536)
def _addr(text: str) -> str | None:
    """The canonical form of an address, None if it is not one (cached: scanners repeat)."""
    return ip_text(text)


def decode_events(fields: dict[bytes, bytes]) -> tuple[str, list[ResponseEvent], int] | None:
    """(node, events, garbage lines) of one evidence entry; None if the entry is unusable."""
    node = _node(fields.get(b"n"))
    body = fields.get(b"e")
    if fields.get(b"v") != VERSION.encode() or node is None or not isinstance(body, bytes):
        return None
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
