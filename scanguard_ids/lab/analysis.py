"""Pure analysis of a lab run: percentiles, reaction latency, leaks of open ports.

Inputs are plain records: the victim's responses on the wire (capture.WirePacket),
the times the scanner's address entered/left a kernel set (setwatch), the daemon's
decisions. Nothing here reads a clock or a file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from scanguard_ids.lab.capture import OFFENDING, SYNACK, UDP_REPLY, WirePacket


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; nan for no values."""
    if not values:
        return math.nan
    srt = sorted(values)
    pos = (len(srt) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(srt) - 1)
    return srt[lo] + (srt[hi] - srt[lo]) * (pos - lo)


def block_intervals(events: Iterable[dict[str, object]], ip: str) -> list[tuple[float, float]]:
    """[(added, removed-or-inf)] for ``ip`` from setwatch events (any set)."""
    out: list[tuple[float, float]] = []
    start: float | None = None
    for ev in sorted(events, key=lambda e: float(e.get("t", 0.0))):  # type: ignore[arg-type]
        member = str(ev.get("ip", "")).split("/", 1)[0]
        if member != ip:
            continue
        t = float(ev["t"])  # type: ignore[arg-type]
        if ev.get("event") == "add" and start is None:
            start = t
        elif ev.get("event") == "del" and start is not None:
            out.append((start, t))
            start = None
    if start is not None:
        out.append((start, math.inf))
    return out


def trigger_time(packets: Sequence[WirePacket], count: int = 3, ports: int = 2) -> float | None:
    """Time of the response that first met the threshold (count responses, distinct ports)."""
    n = 0
    seen: set[tuple[str, int]] = set()
    for p in sorted(packets, key=lambda p: p.ts):
        if p.kind not in OFFENDING:
            continue
        n += 1
        seen.add((p.proto, p.local_port))
        if n >= count and len(seen) >= ports:
            return p.ts
    return None


@dataclass(slots=True)
class Reaction:
    """How fast the scanner was blocked in one protected scan (times: epoch seconds)."""

    first_offending: float | None = None  # first RST / port unreachable to the scanner
    trigger: float | None = None  # the response that met the threshold
    journal_ts: float | None = None  # ``ts`` of the protector's journal entry (scanguard
    # writes the event time of the deciding alert there, so it is ~trigger, not wall time)
    blocked: float | None = None  # first poll that saw the address in a kernel set
    poll_interval: float = 0.0  # ``blocked`` is exact to within this

    def _ms(self, a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else (b - a) * 1000.0

    @property
    def from_first_ms(self) -> float | None:
        return self._ms(self.first_offending, self.blocked)

    @property
    def from_trigger_ms(self) -> float | None:
        return self._ms(self.trigger, self.blocked)

    def to_dict(self) -> dict[str, object]:
        return {"first_offending": self.first_offending, "trigger": self.trigger,
                "journal_ts": self.journal_ts, "blocked": self.blocked,
                "poll_interval_ms": self.poll_interval * 1000.0,
                "from_first_ms": self.from_first_ms, "from_trigger_ms": self.from_trigger_ms}


def reaction(packets: Sequence[WirePacket], intervals: Sequence[tuple[float, float]],
             journal_ts: float | None, poll_interval: float, count: int = 3,
             ports: int = 2) -> Reaction:
    offending = sorted((p for p in packets if p.kind in OFFENDING), key=lambda p: p.ts)
    return Reaction(
        first_offending=offending[0].ts if offending else None,
        trigger=trigger_time(offending, count, ports),
        journal_ts=journal_ts,
        blocked=intervals[0][0] if intervals else None,
        poll_interval=poll_interval,
    )


def _blocked_at(t: float, intervals: Sequence[tuple[float, float]]) -> bool:
    return any(a < t < b for a, b in intervals)


@dataclass(slots=True)
class LeakReport:
    """Open ports nmap found with protection on, by when the victim answered them."""

    found_open: list[int] = field(default_factory=list)
    before_block: list[int] = field(default_factory=list)  # answered before the block
    after_block: list[int] = field(default_factory=list)  # answered while blocked: a leak
    no_answer_seen: list[int] = field(default_factory=list)  # not in the capture
    responses_after_block: int = 0  # any response (open or closed port) while blocked

    @property
    def ok(self) -> bool:
        return not self.after_block

    def to_dict(self) -> dict[str, object]:
        return {"found_open": self.found_open, "before_block": self.before_block,
                "after_block": self.after_block, "no_answer_seen": self.no_answer_seen,
                "responses_after_block": self.responses_after_block, "ok": self.ok}


def leaks(found_open: Iterable[int], proto: str, packets: Sequence[WirePacket],
          intervals: Sequence[tuple[float, float]]) -> LeakReport:
    """For each port nmap called open: was its first open-answer sent before the block?"""
    answer_kind = SYNACK if proto == "tcp" else UDP_REPLY
    first: dict[int, float] = {}
    rep = LeakReport(found_open=sorted(found_open))
    for p in packets:
        if p.proto != proto:
            continue
        if _blocked_at(p.ts, intervals):
            rep.responses_after_block += 1
        if p.kind == answer_kind and p.local_port not in first:
            first[p.local_port] = p.ts
    for port in rep.found_open:
        ts = first.get(port)
        if ts is None:
            rep.no_answer_seen.append(port)
        elif _blocked_at(ts, intervals):
            rep.after_block.append(port)
        else:
            rep.before_block.append(port)
    return rep


@dataclass(slots=True)
class LatencyStats:
    n: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, values: Iterable[float | None]) -> LatencyStats:
        vals = [v for v in values if v is not None and not math.isnan(v)]
        if not vals:
            return cls(0, math.nan, math.nan, math.nan)
        return cls(len(vals), percentile(vals, 50), percentile(vals, 99), max(vals))

    def to_dict(self) -> dict[str, float]:
        return {"n": self.n, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "max_ms": self.max_ms}
