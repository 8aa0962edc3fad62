"""`scanguard replay`: EVE files through decoder and detector on the events' own clock.

The operator's what-if tool for tuning thresholds (like fail2ban-regex): prints every
decision, and a summary on stderr.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field

import orjson

from scanguard_ids import config
from scanguard_ids.commands.common import add_config, add_thresholds, load_config
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.detector import Detector
from scanguard_ids.detect.distributed import Alarm, DistributedDetector
from scanguard_ids.detect.timeguard import ReplayGuard
from scanguard_ids.errors import ConfigError
from scanguard_ids.eve.decode import Decoder
from scanguard_ids.eve.reader import iter_blocks
from scanguard_ids.model import Decision, ResponseEvent
from scanguard_ids.timefmt import iso


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "replay",
        help="feed EVE files through the detector and print decisions",
        description=__doc__,
    )
    add_config(p)
    add_thresholds(p)
    p.add_argument("--format", choices=("text", "json"), default="text", help="decision output")
    p.add_argument(
        "files", nargs="+", metavar="EVE_FILE", help="eve.json files (gzip ok, - = stdin)"
    )
    p.set_defaults(func=run)


@dataclass(slots=True)
class ReplayResult:
    decisions: list[Decision] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)  # "alarm" and "alarm-end" records
    lines: int = 0
    seconds: float = 0.0
    outliers: int = 0  # lone events far ahead of their neighbours, set aside


def replay(
    paths: list[str],
    cfg: config.Config,
    on_decision=None,
    accel: bool = True,
    reader: str | None = None,
    on_alarm=None,
) -> tuple[ReplayResult, Decoder, Detector]:  # type: ignore[no-untyped-def]
    """Decode and detect every line of ``paths``; accel=False forces the pure-Python reader,
    ``reader`` names one ("c", "msgspec", "python"; None: the fastest installed).

    A lone line far ahead of its neighbours is held back (detect/timeguard.py). Every
    admitted event also feeds the distributed-scan alarm (unless alarm.mode is off): its
    records go to ``on_alarm`` and the shield's blocks (alarm.shield) to ``on_decision``.
    """
    decoder = Decoder(
        config.sid_set(cfg), max_line_bytes=cfg.eve.max_line_bytes, accel=accel, reader=reader
    )
    allowlist = Allowlist(cfg.detect.allowlist)
    detector = Detector(cfg.detect, allowlist)
    result = ReplayResult()
    decode_block, feed = decoder.decode_block, detector.feed
    alarms = None
    if cfg.alarm.mode != "off":
        alarms = DistributedDetector(cfg.alarm, cfg.detect.reorder, allowlist)
    alarm_block = alarms.feed_block if alarms is not None else None

    def decided(decision: Decision) -> None:
        result.decisions.append(decision)
        if on_decision is not None:
            on_decision(decision)

    def alarmed(records: list[Alarm]) -> None:
        result.alarms.extend(records)
        if on_alarm is not None:
            for a in records:
                on_alarm(a)

    max_line = cfg.eve.max_line_bytes
    # a lone line far ahead of its neighbours must not blind the replay (detect/timeguard.py)
    guard = ReplayGuard(cfg.detect.window + cfg.detect.reorder)
    note = guard.recent.append
    t0 = time.perf_counter()
    for path in paths:
        for buf, start, end in iter_blocks(path, max_line=max_line):
            decoded = decode_block(buf, start, end)
            if guard.held or any(ev.ts > guard.limit for ev in decoded):
                events: list[ResponseEvent] = []
                for ev in decoded:
                    if ev.ts <= guard.limit and not guard.held:
                        note(ev.ts)
                        events.append(ev)
                    else:
                        events.extend(guard.admit(ev))
            else:
                for ev in decoded:
                    note(ev.ts)
                events = decoded
            feed = detector.feed
            if alarm_block is not None:  # the alarm takes the block first
                marks = alarm_block(events)
                if marks:
                    feed = _interleaved(detector.feed, marks, decided, alarmed)
            for ev in events:
                decision = feed(ev)
                if decision is not None:
                    decided(decision)
            if alarms is not None:
                alarmed(alarms.expire(-math.inf))  # alarms that ended in event time
    for ev in guard.flush():
        decision = detector.feed(ev)
        if decision is not None:
            decided(decision)
    if alarms is not None:
        alarmed(alarms.expire(math.inf))  # the file ended: every alarm ends
    result.outliers = guard.stats.outliers
    result.lines = decoder.stats.lines
    result.seconds = time.perf_counter() - t0
    return result, decoder, detector


def _interleaved(feed, marks, decided, alarmed):  # type: ignore[no-untyped-def]
    """``feed`` for a block in which the alarm raised something: each event's decision, then
    what the alarm raised at that event, as if both were fed event by event; returns None."""
    pending = iter(marks)
    due = next(pending, None)
    index = 0

    def feed_one(ev: ResponseEvent) -> None:
        nonlocal due, index
        decision = feed(ev)
        if decision is not None:
            decided(decision)
        while due is not None and due[0] == index:
            alarmed(due[1])
            for d in due[2]:
                decided(d)
            due = next(pending, None)
        index += 1

    return feed_one


def format_alarm(a: Alarm) -> str:
    return (
        f"{iso(a.ts)} {a.action} {a.target} sources={a.distinct_sources} "
        f"responses={a.responses} ports={','.join(map(str, a.ports)) or '-'} "
        f"until={iso(a.until)}"
    )


def format_text(d: Decision) -> str:
    ports = ",".join(map(str, d.ports)) or "-"
    hosts = ",".join(d.hosts) or "-"
    action = "detect" if d.detect_only else d.action
    return (
        f"{iso(d.ts)} {action} {d.ip} ttl={d.ttl} count={d.count} ports={ports} "
        f"hosts={hosts} tier={d.tier or '-'} rule={d.rule or '-'} "
        f'strikes={d.strikes} reason="{d.reason}"'
    )


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    for path in args.files:
        if path != "-":
            try:
                open(path, "rb").close()
            except OSError as exc:
                raise ConfigError("EVE_FILE", f"cannot read {path}: {exc.strerror}") from None
    out = sys.stdout.buffer

    def emit(d: Decision) -> None:
        if args.format == "json":
            out.write(orjson.dumps(d.to_dict()) + b"\n")
        else:
            out.write(format_text(d).encode() + b"\n")

    def emit_alarm(a: Alarm) -> None:
        if args.format == "json":
            out.write(orjson.dumps(a.to_dict()) + b"\n")
        else:
            out.write(format_alarm(a).encode() + b"\n")

    result, decoder, detector = replay(args.files, cfg, on_decision=emit, on_alarm=emit_alarm)
    out.flush()
    s, ds = decoder.stats, detector.stats
    rate = result.lines / result.seconds if result.seconds > 0 else 0.0
    print(
        f"replay: lines={result.lines} alerts_used={s.alerts} bad_lines={s.bad} "
        f"(bad_json={s.bad_json} oversized={s.oversized} binary={s.binary} "
        f"missing_fields={s.missing_fields}) no_port={s.no_port} foreign_sids={s.foreign_sids} "
        f"allowlisted={ds.allowlisted} suppressed={ds.suppressed} too_late={ds.too_late} "
        f"time_outliers={result.outliers} "
        f"decisions={len(result.decisions)} seconds={result.seconds:.3f} lines_per_s={rate:.0f} "
        f"alarms={sum(1 for a in result.alarms if a.action == 'alarm')} "
        f"reader={decoder.reader}",
        file=sys.stderr,
    )
    return 0
