"""The few value types everything shares."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields, make_dataclass
from enum import StrEnum
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The widest prefix a block may name: a typo like "2001:db8::/3" must not block a continent.
MIN_PREFIXLEN = {4: 8, 6: 32}


def parse_ip(text: object) -> IPAddress:
    """The one address parser: an IPv4-mapped IPv6 address becomes its IPv4 address.

    Raises ValueError ("not an IP address: ...") for anything else; callers turn it into
    their own error (argument, control request, backend).
    """
    try:
        addr = ipaddress.ip_address(str(text).strip())
    except ValueError:
        raise ValueError(f"not an IP address: {text!r}") from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


_ZERO10 = bytes(10)


def ip_packed(text: str) -> tuple[str, bytes] | None:
    """(canonical text, packed address) of a plain address by inet_pton/inet_ntop (C), as
    :func:`ip_text` spells it; None where this fast path does not answer (not an address, a
    zone id, the first 80 bits zero): the caller asks ipaddress then."""
    try:
        if ":" not in text:
            return text, inet_pton(AF_INET, text)  # a strict dotted quad is already canonical
        packed = inet_pton(AF_INET6, text)
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return None
    if packed.startswith(_ZERO10):
        return None
    return inet_ntop(AF_INET6, packed), packed


def ip_text(text: str) -> str | None:
    """``str(parse_ip(text))`` for a plain address, None if ``text`` is not one; the hot
    paths' version: inet_pton/inet_ntop (C) instead of ipaddress, ~20x cheaper on a sweep of
    fresh IPv6 addresses. inet_ntop differs from ipaddress only where the first 80 bits are
    zero (``::ffff:a.b.c.d`` and ``::a.b.c.d`` print as dotted quads): those take parse_ip.
    """
    try:
        if ":" not in text:
            inet_pton(AF_INET, text)  # a strict dotted quad is already canonical
            return text
        packed = inet_pton(AF_INET6, text)
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return None
    if packed.startswith(_ZERO10):
        return str(parse_ip(text))
    return inet_ntop(AF_INET6, packed)


def parse_target(text: object) -> IPAddress | IPNetwork:
    """The one block-target parser: an address (as :func:`parse_ip`) or a network prefix.

    "a/32" (IPv4) and "a/128" (IPv6) are the address a; an IPv4-mapped IPv6 prefix of
    length >= 96 is its IPv4 network. A network must be written with its host bits clear
    ("2001:db8:1:2::/64", not "2001:db8:1:2::9/64": blocking a prefix named by one of its
    addresses is more likely a typo than intended) and be at most as wide as
    MIN_PREFIXLEN allows (/8 for IPv4, /32 for IPv6). Raises ValueError naming the problem.
    """
    raw = str(text).strip()
    if "/" not in raw:
        return parse_ip(raw)
    try:
        net = ipaddress.ip_network(raw, strict=False)
        written = ipaddress.ip_interface(raw).ip
    except ValueError:
        raise ValueError(f"not an IP address or network: {text!r}") from None
    if written != net.network_address:
        raise ValueError(f"host bits set in {text!r}: the network is {net}")
    if isinstance(net, ipaddress.IPv6Network):
        mapped = net.network_address.ipv4_mapped
        if mapped is not None and net.prefixlen >= 96:
            net = ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    if net.prefixlen == net.max_prefixlen:
        return net.network_address
    if net.prefixlen < MIN_PREFIXLEN[net.version]:
        raise ValueError(f"prefix too wide: {net} (at most /{MIN_PREFIXLEN[net.version]} "
                         f"for IPv{net.version})")
    return net


class Kind(StrEnum):
    """What the protected host sent back."""

    TCP_RST = "tcp-rst"
    ICMP4_PORT_UNREACH = "icmp-port-unreachable"
    ICMP6_PORT_UNREACH = "icmp6-port-unreachable"

    @property
    def proto(self) -> str:
        """The protocol of the probed local port."""
        return "tcp" if self is Kind.TCP_RST else "udp"


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~4x more on the decode hot path
class ResponseEvent:
    """One outbound response to a probe: the unit the detector counts. Treat as immutable.

    ``remote`` is the address that probed us (and receives the response),
    ``local_port`` the probed port, None when the EVE line carried no packet.
    ``proto`` is the probed port's protocol, as ICMP errors quote UDP or TCP.
    """

    ts: float
    remote: str
    local: str
    local_port: int | None
    proto: str
    kind: Kind
    sid: int = 0
    sensor: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """What the detector (or an operator) decided about one address or IPv6 prefix (CIDR)."""

    ts: float
    action: str  # "block" | "unblock"
    ip: str
    ttl: int = 0
    count: int = 0
    ports: tuple[int, ...] = ()
    reason: str = ""
    first_seen: float = 0.0
    last_seen: float = 0.0
    strikes: int = 1
    sensors: tuple[str, ...] = ()
    manual: bool = False
    kinds: tuple[str, ...] = field(default=())
    node: str = ""  # the fleet node that decided ("" = this daemon, fleet mode off)
    hosts: tuple[str, ...] = ()  # the distinct local addresses that answered
    tier: str = ""  # "fast" | "slow" (detection); "" for an operator's decision
    rule: str = ""  # "ports" (vertical) | "hosts" (sweep); "" for an operator's decision
    detect_only: bool = False  # journal and show it, do not block (detect.sweep/slow "detect")
    #: what the decision rests on: "responses" (the detector), "manual", "fast-path",
    #: "shield", "fleet", "adopted"; "" for bookkeeping (expiry, allowlist lifts)
    provenance: str = ""
    #: a detector decision that widens an earlier one: that decision's address, whose
    #: block this prefix now covers (late evidence from another address of the prefix)
    widens: str = ""

    def to_dict(self) -> dict[str, object]:
        from scanguard_ids.timefmt import iso

        return {
            "ts": iso(self.ts),
            "action": self.action,
            "ip": self.ip,
            "ttl": self.ttl,
            "count": self.count,
            "ports": list(self.ports),
            "reason": self.reason,
            "first_seen": iso(self.first_seen) if self.first_seen else None,
            "last_seen": iso(self.last_seen) if self.last_seen else None,
            "strikes": self.strikes,
            "sensors": list(self.sensors),
            "kinds": list(self.kinds),
            "manual": self.manual,
            "node": self.node,
            "hosts": list(self.hosts),
            "tier": self.tier,
            "rule": self.rule,
            "detect_only": self.detect_only,
            "provenance": self.provenance,
            "widens": self.widens,
        }


# A frozen dataclass's __init__ sets each field through object.__setattr__: ~6 us for the
# 20 fields of a Decision, which made up most of a refused flood decision (bench/flood.py).
# The detector builds its decisions through a plain slots twin with the same fields and
# layout, then gives the instance the Decision class: ~1 us, and the result is an ordinary
# frozen Decision (equal, hashing alike, FrozenInstanceError on assignment;
# tests/test_model.py).
_DecisionBuild = make_dataclass(
    "_DecisionBuild", [(f.name, f.type, f) for f in fields(Decision)], slots=True, eq=False,
    repr=False)


def decision_of(*values: object) -> Decision:
    """``Decision(*values)`` (positional, model field order) for the detector's hot path."""
    d = _DecisionBuild(*values)
    d.__class__ = Decision  # type: ignore[assignment]
    return d  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Block:
    """An active block as the enforcement backend (the kernel) reports it."""

    ip: str
    expires: float | None  # epoch seconds; None = no timeout known
