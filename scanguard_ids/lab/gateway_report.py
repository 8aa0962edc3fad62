"""The gateway lab's result: one row per (sweep, protection), as a text table and JSON.

Columns, per sweep, without and with protection:

- ``open`` / ``closed``: endpoints (host, port) the scanner learned, from its own output
  (``/truth`` after the slash: endpoints of that state it probed on live hosts);
- ``resp``: responses that reached the scanner (tcpdump on the router's outside
  interface, i.e. after the FORWARD chain), ``pre-block``: those before the block;
- ``react ms``: first RST / port-unreachable delivered -> the scanner's address in a
  kernel set on the router (polled, exact to the set watch's interval);
- ``open>blk``: open answers (SYN-ACK, UDP reply) delivered after the block: must be 0;
- ``goal``: the sweep goal of the issue for single-port sweeps (blocked, no open answer
  after the block, at most 5 closed endpoints learned plus those in flight, i.e. closed
  answers delivered between the 5th closed answer and the block); "-" for other rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scanguard_ids.lab import analysis
from scanguard_ids.lab.capture import OFFENDING, SYNACK, UDP_REPLY, WirePacket
from scanguard_ids.lab.gateway_scan import Endpoint, Sweep, SweepRun

GOAL_CLOSED = 5
OPEN_KINDS = frozenset({SYNACK, UDP_REPLY})


@dataclass(slots=True)
class Row:
    sweep: str
    scanner: str
    protection: bool
    source: str
    open_learned: int
    closed_learned: int
    truth_open: int
    truth_closed: int
    responses: int
    before_block: int | None  # None: never blocked
    blocked: float | None  # epoch seconds the address entered a set
    reaction_ms: float | None
    trigger_ms: float | None  # the response meeting the vertical rule -> set
    open_after_block: int
    in_flight: int
    goal: bool | None  # None: not a single-port sweep
    window: float
    elapsed: float
    exit: int | None
    argv: list[str] = field(default_factory=list)
    wrong: int = 0  # learned endpoints whose state contradicts the truth

    @classmethod
    def of(cls, sweep: Sweep, run: SweepRun, protection: bool, truth: set[Endpoint],
           packets: Sequence[WirePacket], react: analysis.Reaction,
           intervals: Sequence[tuple[float, float]], window: float) -> Row:
        blocked = intervals[0][0] if intervals else None
        t_open = {(e.host, e.port) for e in truth if e.state == "open"}
        t_closed = {(e.host, e.port) for e in truth if e.state == "closed"}
        learned_open = {(e.host, e.port) for e in run.learned("open")}
        learned_closed = {(e.host, e.port) for e in run.learned("closed")}
        after = [p for p in packets if blocked is not None and p.ts > blocked]
        row = cls(
            sweep=sweep.name, scanner=sweep.tool, protection=protection, source=run.source,
            open_learned=len(learned_open), closed_learned=len(learned_closed),
            truth_open=len(t_open), truth_closed=len(t_closed), responses=len(packets),
            before_block=None if blocked is None else len(packets) - len(after),
            blocked=blocked, reaction_ms=_round(react.from_first_ms),
            trigger_ms=_round(react.from_trigger_ms),
            open_after_block=sum(1 for p in after if p.kind in OPEN_KINDS),
            in_flight=in_flight(packets, blocked), goal=None, window=window,
            elapsed=round(run.elapsed, 2), exit=run.exit, argv=run.argv,
            wrong=len(learned_open & t_closed) + len(learned_closed & t_open))
        if len(sweep.ports) == 1 and sweep.network and protection:
            row.goal = (blocked is not None and row.open_after_block == 0
                        and row.closed_learned <= GOAL_CLOSED + row.in_flight)
        return row


def in_flight(packets: Sequence[WirePacket], blocked: float | None) -> int:
    """Closed answers delivered after the GOAL_CLOSED-th one and before the block."""
    if blocked is None:
        return 0
    closed = sorted(p.ts for p in packets if p.kind in OFFENDING)
    if len(closed) <= GOAL_CLOSED:
        return 0
    t5 = closed[GOAL_CLOSED - 1]
    return sum(1 for t in closed if t5 < t <= blocked)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


@dataclass(slots=True)
class GatewayResult:
    started: float = 0.0
    finished: float = 0.0
    elapsed: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, sweep: str, protection: bool) -> Row | None:
        return next((r for r in self.rows if r.sweep == sweep and r.protection == protection),
                    None)

    def to_dict(self) -> dict[str, Any]:
        return {"started": self.started, "finished": self.finished, "elapsed_s": self.elapsed,
                "options": self.options, "rows": [asdict(r) for r in self.rows],
                "notes": self.notes}


def _opt(v: object, fmt: str = "{}") -> str:
    if v is None or (isinstance(v, float) and math.isinf(v)):
        return "-"
    return fmt.format(v)


HEADER = ("sweep", "prot", "open", "closed", "resp", "pre-block", "react ms", "open>blk",
          "goal", "time s")


def table(result: GatewayResult) -> str:
    """The rows as a fixed-width text table."""
    rows = [HEADER]
    for r in result.rows:
        rows.append((
            r.sweep, "yes" if r.protection else "no", f"{r.open_learned}/{r.truth_open}",
            f"{r.closed_learned}/{r.truth_closed}", str(r.responses), _opt(r.before_block),
            _opt(r.reaction_ms, "{:.1f}"), str(r.open_after_block),
            "-" if r.goal is None else ("met" if r.goal else "NOT met"), f"{r.elapsed:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(result: GatewayResult) -> str:
    o = result.options
    lines = ["scanguard gateway lab: scanner -> router (Suricata + scanguard run) -> "
             f"{o.get('hosts', '?')} hosts in {', '.join(o.get('victim_net', []))}",
             f"detect: {o.get('detect')}  backend: {o.get('backend')}  "
             f"rate: {o.get('rate_pps')} pps",
             f"slow time base: {o.get('slow_time_base')}", "", table(result), ""]
    for name, text in dict(o.get("sweeps", {})).items():
        lines.append(f"  {name}: {text}")
    lines += [f"note: {n}" for n in result.notes]
    lines.append(f"lab wall time: {result.elapsed:.1f} s")
    return "\n".join(lines)


def to_json(result: GatewayResult) -> str:
    def _clean(obj: Any) -> Any:
        if isinstance(obj, float) and math.isinf(obj):
            return None
        if isinstance(obj, dict):
            return {k: _clean(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [_clean(v) for v in obj]
        return obj

    return json.dumps(_clean(result.to_dict()), indent=2, sort_keys=True)


def write_outputs(result: GatewayResult, outdir: Path) -> dict[str, Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {"json": outdir / "gateway.json", "table": outdir / "gateway.txt"}
    paths["json"].write_text(to_json(result) + "\n")
    paths["table"].write_text(summary(result) + "\n")
    return paths
