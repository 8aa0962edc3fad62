"""The read-only picture of a running daemon that the UI and `scanguard status` render.

The daemon builds one of these on demand; it crosses the control socket as JSON
(to_dict / from_dict) so `scanguard top` renders exactly what `run --tui` renders.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from scanguard_ids.detect.distributed import Alarm
from scanguard_ids.eve.source import SourceHealth

if TYPE_CHECKING:
    from scanguard_ids.model import Decision

__all__ = ["BlockRow", "DecisionRow", "FleetHealth", "FleetPeer", "PortRow", "Snapshot",
           "SourceHealth", "WatchRow"]


@dataclass(frozen=True, slots=True)
class WatchRow:
    """An address on its way to a block."""

    ip: str
    responses: int
    ports: int  # distinct local ports so far
    count_needed: int
    ports_needed: int
    window_left: float  # seconds until its oldest counted response leaves the window
    first_seen: float
    last_seen: float
    kinds: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BlockRow:
    ip: str
    remaining: float | None  # seconds left, from the kernel; None = unknown
    ttl: int = 0
    ports: tuple[int, ...] = ()
    responses: int = 0
    strikes: int = 1
    manual: bool = False
    since: float = 0.0
    reason: str = ""
    node: str = ""  # fleet node that decided ("" = this daemon)


@dataclass(frozen=True, slots=True)
class PortRow:
    port: int
    proto: str
    responses: int


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One recent decision as the journal writes it (Decision.to_dict(): ISO times)."""

    ts: str
    action: str  # "block" | "unblock" | "expire"
    ip: str
    ttl: int = 0
    count: int = 0
    ports: tuple[int, ...] = ()
    reason: str = ""
    first_seen: str | None = None
    last_seen: str | None = None
    strikes: int = 1
    sensors: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    manual: bool = False
    node: str = ""
    hosts: tuple[str, ...] = ()
    tier: str = ""
    rule: str = ""
    detect_only: bool = False
    provenance: str = ""  # Decision.provenance: "responses", "manual", ...
    widens: str = ""  # Decision.widens: the address whose block this prefix block covers

    @classmethod
    def of(cls, d: Decision) -> DecisionRow:
        return _row(cls, d.to_dict())


@dataclass(frozen=True, slots=True)
class FleetPeer:
    """Another node this one heard from on the fleet streams."""

    name: str
    last_seen: float  # seconds since its last entry (this node's clock)
    lag_ms: float  # its last entry: stream id time -> read here


@dataclass(frozen=True, slots=True)
class FleetHealth:
    """Fleet mode as this node sees it (scanguard_ids.fleet.node builds it)."""

    node: str
    url: str  # password removed
    connected: bool
    queued: int = 0  # response events waiting to be published
    outbox: int = 0  # decisions waiting for Redis
    lag_ms: float = 0.0  # newest entry read: stream id time -> read here
    error: str = ""  # the last connection error
    peers: tuple[FleetPeer, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    taken: float  # wall clock when built
    started: float  # daemon start (wall clock)
    backend: str
    count: int = 3
    ports: int = 2
    window: float = 60.0
    policy: str = "default"
    sources: tuple[SourceHealth, ...] = ()
    counters: dict[str, int] = field(default_factory=dict)  # events, responses, blocks, ...
    events_per_s: float = 0.0
    responses_per_s: float = 0.0
    watching: tuple[WatchRow, ...] = ()
    watching_total: int = 0  # before truncation
    blocked: tuple[BlockRow, ...] = ()
    blocked_total: int = 0
    history: tuple[float, ...] = ()  # responses/s, one value per second, oldest first
    top_ports: tuple[PortRow, ...] = ()
    decisions: tuple[DecisionRow, ...] = ()  # newest last
    fleet: FleetHealth | None = None  # None: fleet mode off
    alarms: tuple[Alarm, ...] = ()  # distributed-scan alarms not ended yet, newest first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        """Rebuild from to_dict() output; unknown keys are ignored (newer daemons)."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        kw["sources"] = tuple(_row(SourceHealth, r) for r in kw.get("sources", ()))
        kw["watching"] = tuple(_row(WatchRow, r) for r in kw.get("watching", ()))
        kw["blocked"] = tuple(_row(BlockRow, r) for r in kw.get("blocked", ()))
        kw["top_ports"] = tuple(_row(PortRow, r) for r in kw.get("top_ports", ()))
        kw["history"] = tuple(kw.get("history", ()))
        kw["decisions"] = tuple(_row(DecisionRow, r) for r in kw.get("decisions", ()))
        kw["alarms"] = tuple(_alarm(a) for a in kw.get("alarms", ()))
        if kw.get("fleet") is not None:
            peers = tuple(_row(FleetPeer, p) for p in kw["fleet"].get("peers", ()))
            kw["fleet"] = _row(FleetHealth, {**kw["fleet"], "peers": peers})
        return cls(**kw)


def _alarm(data: dict[str, Any]) -> Alarm:
    """An Alarm from Snapshot.to_dict() (asdict: raw floats, not the journal's ISO times)."""
    return _row(Alarm, data)  # type: ignore[no-any-return]


def _row(cls: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known}
    return cls(**kw)
