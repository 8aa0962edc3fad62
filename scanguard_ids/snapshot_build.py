"""The engine's state -> a Snapshot: all the copying the UI and `scanguard status` need.

Pure: the engine calls build() under its lock with what it holds (and the sources'
health, gathered before); nothing here reads a clock, a source or the kernel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from scanguard_ids.config import DetectConfig
from scanguard_ids.detect.detector import DetectorSnapshot
from scanguard_ids.detect.distributed import Alarm
from scanguard_ids.model import Block, Decision
from scanguard_ids.snapshot import (
    BlockRow,
    DecisionRow,
    FleetHealth,
    PortRow,
    Snapshot,
    SourceHealth,
    WatchRow,
)

TOP_PORTS = 10
RATE_SECONDS = 10  # responses/s is the mean of the last this many whole seconds


@dataclass(slots=True)
class Evidence:
    """What the engine knows of a block beyond the kernel's view of it."""

    ttl: int
    since: float
    ports: tuple[int, ...] = ()
    responses: int = 0
    strikes: int = 1
    manual: bool = False
    reason: str = ""
    node: str = ""


def build(
    *,
    now: float,
    started: float,
    backend: str,
    detect: DetectConfig,
    watch: DetectorSnapshot,
    active: Mapping[str, Block],
    evidence: Mapping[str, Evidence],
    counters: Mapping[str, int],
    bad_lines: int,
    no_port: int,
    journal_errors: int,
    history: Iterable[int],
    ports: Counter[tuple[int, str]],
    decisions: Iterable[Decision],
    sources: tuple[SourceHealth, ...],
    block_limit: int = 500,
    fleet: FleetHealth | None = None,
    fleet_counters: Mapping[str, int] | None = None,
    alarms: tuple[Alarm, ...] = (),
) -> Snapshot:
    blocked = sorted((_block_row(ip, b, evidence.get(ip), now) for ip, b in active.items()),
                     key=lambda r: -r.since)
    hist = tuple(float(x) for x in history)
    last = hist[-RATE_SECONDS - 1:-1] if len(hist) > RATE_SECONDS else hist  # whole seconds
    return Snapshot(
        taken=now,
        started=started,
        alarms=alarms,
        backend=backend,
        count=detect.count,
        ports=detect.ports,
        window=detect.window,
        policy=detect.policy,
        sources=sources,
        counters={
            **counters,
            "decode_errors": bad_lines,
            "no_port": no_port,
            "allowlisted": watch.stats.allowlisted,
            "suppressed": watch.stats.suppressed,
            "too_late": watch.stats.too_late,
            "tracked": watch.stats.tracked,
            "journal_errors": journal_errors,
            **(fleet_counters or {}),
        },
        events_per_s=sum(h.lines_per_s for h in sources),
        responses_per_s=sum(last) / max(1, len(last)),
        watching=tuple(
            WatchRow(
                ip=w.ip,
                responses=w.responses,
                ports=w.ports,
                count_needed=detect.count,
                ports_needed=detect.ports,
                window_left=w.window_left,
                first_seen=w.first_seen,
                last_seen=w.last_seen,
                kinds=tuple(w.kinds),
            )
            for w in watch.watching
        ),
        watching_total=watch.total,
        blocked=tuple(blocked[:block_limit]),
        blocked_total=len(blocked),
        history=hist,
        top_ports=tuple(PortRow(p, proto, n) for (p, proto), n in ports.most_common(TOP_PORTS)),
        decisions=tuple(map(DecisionRow.of, decisions)),
        fleet=fleet,
    )


def _block_row(ip: str, b: Block, ev: Evidence | None, now: float) -> BlockRow:
    remaining = None if b.expires is None else max(0.0, b.expires - now)
    if ev is None:  # in the kernel, but we hold nothing on it (yet)
        return BlockRow(ip=ip, remaining=remaining)
    return BlockRow(
        ip=ip,
        remaining=remaining,
        ttl=ev.ttl,
        ports=ev.ports,
        responses=ev.responses,
        strikes=ev.strikes,
        manual=ev.manual,
        since=ev.since,
        reason=ev.reason,
        node=ev.node,
    )

