"""Benchmark 7: a flood of spoofed sources stays bounded in memory and keeps up.

A spoofer sends probes from N distinct forged IPv4 sources (the 11.0.0.0/8 stand-in for "any
address": nothing is sent anywhere), each drawing 1-3 TCP RSTs on ports 20-22, so a third of
them meet the threshold (3 responses, 2+ ports) and make a decision that the safety valve
mostly refuses. The EVE alert lines go through ``Engine.process`` (decoder, dedup, detector,
valve, dry-run backend, journal) in a fresh child with the daemon's collector settings
(giveback.tune_gc), batches of 1000 lines, event time 100 000 sources a second. RSS
(/proc/self/statm, after gc) is sampled at 0 and at each mark, and "after": once event time
has moved past window + ttl and the engine's sync ran (which rebuilds emptied tables and
calls malloc_trim, scanguard_ids/giveback.py), what the flood left behind.

Marks: ``make bench`` runs 1 M and 2 M sources (the section takes ~2-4 min); the issue's full
curve, 1 M and 6 M (~6-10 min of CPU), with ``SCANGUARD_FLOOD_MARKS=1000000,6000000 python -m
bench.run --only flood``; ``--quick``: 30 k and 100 k.

- RSS at each mark, target < 200 MB; "after" should be well below the flood's peak;
- alerts/s: lines through ``Engine.process`` per second of the child's CPU time, for each
  EVE reader this install has (``Decoder(reader=...)``): the default one (the C reader when
  it is built, as a pip install does) in the RSS run, the others on the first
  ``READER_SOURCES`` sources in a child of their own.

Before the fix (detector heap and evidence of refused blocks, strikes of refused blocks) RSS
grew ~880 B per source: 0.92 GB at 1 M.
"""

from __future__ import annotations

import gc
import os
import resource
import sys
import tempfile
import time
from typing import Any

from bench.common import (
    Context,
    NotRun,
    Row,
    Section,
    child,
    child_main,
    emit,
    require,
    rss_bytes,
    speed_target,
)
from bench.throughput import yardstick

NAME = "flood"
TITLE = "7. Spoofed flood: memory bound and throughput"
BOUND_MB = 200.0
TARGET_RATE = 100_000.0  # lines/s of distinct sources (on the reference day's machine)
RATE = 100_000.0  # sources per second of event time
T0 = 1_768_489_200.0
MARKS = (1_000_000, 2_000_000)  # make bench; SCANGUARD_FLOOD_MARKS overrides (1 M, 6 M: full)
QUICK_MARKS = (30_000, 100_000)
READER_SOURCES = 100_000  # the other readers' throughput runs
MARKS_ENV = "SCANGUARD_FLOOD_MARKS"

_LINE = (
    b'{"timestamp":"%s","event_type":"alert","src_ip":"192.0.2.10","src_port":%d,'
    b'"dest_ip":"%s","dest_port":40000,"proto":"TCP","alert":{"action":"allowed","gid":1,'
    b'"signature_id":%d,"rev":1},"direction":"to_client"}'
)


def _stamp(t: float) -> bytes:
    lt = time.gmtime(t)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", lt) + f".{int(t % 1 * 1e6):06d}+0000").encode()


def _addr(i: int) -> bytes:
    n = 0x0B000000 + i
    return b"%d.%d.%d.%d" % (n >> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255)


def flood_lines(first: int, count: int, sid: int) -> tuple[list[bytes], float]:
    """EVE lines of sources first..first+count (1-3 RSTs each); returns them and the end ts."""
    lines: list[bytes] = []
    t = T0 + first / RATE
    stamp = _stamp(t)
    for i in range(first, first + count):
        ip = _addr(i)
        for k in range(1 + i % 3):
            lines.append(_LINE % (stamp, 20 + k, ip, sid))
    return lines, t


def flood_engine(cfg: Any, clock: Any, journal: str, reader: str = "") -> Any:
    """The engine a flood goes through: dry-run backend, the config's allowlist, a journal at
    ``journal``, and the EVE reader ``reader`` ("" = the default this install has)."""
    from scanguard_ids import config
    from scanguard_ids.block.dryrun import DryRunBackend
    from scanguard_ids.detect.allowlist import Allowlist
    from scanguard_ids.engine import Engine
    from scanguard_ids.eve.decode import Decoder
    from scanguard_ids.journal import Journal

    engine = Engine(cfg, DryRunBackend(cfg.block, clock), clock,
                    Allowlist(cfg.detect.allowlist), Journal(journal))
    if reader:
        engine.decoder = Decoder(config.sid_set(cfg), max_line_bytes=cfg.eve.max_line_bytes,
                                 reader=reader)
    return engine


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _child(argv: list[str]) -> None:
    """argv: marks (comma list), reader ("" = the default), "after" or "no-after"."""
    marks = [int(x) for x in argv[0].split(",")]
    want = argv[1] if len(argv) > 1 else ""
    with_after = len(argv) <= 2 or argv[2] == "after"
    from scanguard_ids import config
    from scanguard_ids.clock import FixedClock
    from scanguard_ids.giveback import tune_gc

    cfg = config.Config()
    sid = config.SID_FIRST
    clock = FixedClock(T0)
    tune_gc()  # as `scanguard run` does
    with tempfile.TemporaryDirectory() as tmp:
        engine = flood_engine(cfg, clock, os.path.join(tmp, "j.jsonl"), want)
        reader = engine.decoder.reader
        samples: list[dict[str, Any]] = []

        def sample(label: str, sources: int) -> None:
            gc.collect()
            det = engine.detector.stats
            samples.append({"label": label, "sources": sources, "rss": rss_bytes(),
                            "tracked": det.tracked, "blocked": det.blocked,
                            "offenders": len(engine.offenders)})
            print(f"flood {samples[-1]} cpu={cpu:.1f}s", file=sys.stderr, flush=True)

        done = 0
        lines_fed = 0
        cpu = 0.0
        sample("0", 0)
        step = 1000
        for mark in marks:
            while done < mark:
                n = min(step, mark - done)
                lines, t = flood_lines(done, n, sid)
                clock.set(t)
                c0 = _cpu()
                engine.process(lines, "flood")
                cpu += _cpu() - c0
                lines_fed += len(lines)
                done += n
                if done % 100_000 == 0:
                    engine.sync(full=False)
            sample(f"{mark:,}", done)
        if with_after:
            # After: event time moves past window + ttl, a last trickle flows, the engine syncs.
            later = done + int(RATE * (cfg.detect.window + cfg.detect.reorder
                                       + cfg.detect.ttl + 5))
            lines, t = flood_lines(later, 10, sid)
            clock.set(t)
            engine.process(lines, "flood")
            engine.sync(full=True)
            sample("after", done)
        engine.journal.close()
    emit({"samples": samples, "lines": lines_fed, "cpu": cpu, "reader": reader,
          "counters": dict(engine.counters), "trims": engine.trims})


def _marks(ctx: Context) -> list[int]:
    env = os.environ.get(MARKS_ENV, "")
    if env:
        try:
            marks = sorted({int(x) for x in env.split(",") if x.strip()})
        except ValueError:
            raise NotRun(f"{MARKS_ENV}={env!r}: not a comma list of source counts") from None
        if marks and marks[0] > 0:
            return marks
        raise NotRun(f"{MARKS_ENV}={env!r}: no positive source count")
    return list(QUICK_MARKS if ctx.quick else MARKS)


def _rate_row(ctx: Context, out: dict[str, Any], what: str) -> Row:
    rate = out["lines"] / out["cpu"] if out["cpu"] > 0 else None
    target, met = speed_target(ctx, rate, TARGET_RATE, "lines/s")
    return Row(f"alerts/s through Engine.process, reader {out['reader']} (per CPU second)",
               round(rate) if rate else None, "lines/s", target=target, passed=met,
               note=f"{out['lines']:,} lines, {what}")


def run(ctx: Context) -> Section:
    require("scanguard_ids.engine")
    from scanguard_ids.eve.decode import READERS

    sec = Section(NAME, TITLE)
    marks = _marks(ctx)
    # two lines a source, >= 15 k lines a second even on a busy machine
    timeout = max(600.0, 2 * marks[-1] / 15_000 + 120)
    out = child(NAME, [",".join(map(str, marks)), "", "after"], timeout=timeout)
    peak = 0
    for s in out["samples"]:
        mb = s["rss"] / 2**20
        if s["label"] != "after":
            peak = max(peak, s["rss"])
        label = ("RSS at the after mark (event time past window + ttl)" if s["label"] == "after"
                 else f"RSS at {s['label']} sources")
        sec.rows.append(Row(label, round(mb, 1), "MB",
                            target=f"< {BOUND_MB:.0f} MB", passed=mb < BOUND_MB,
                            lower_is_better=True,
                            note=f"tracked {s['tracked']:,}, block states {s['blocked']:,}, "
                                 f"offenders {s['offenders']:,}"))
    after = out["samples"][-1]["rss"]
    sec.rows.append(Row("RSS after, vs peak", round(after / peak, 2), "x",
                        target="<= 1", passed=after <= peak, lower_is_better=True,
                        note=f"tables rebuilt + malloc_trim: {out.get('trims', 0)} time(s)"))
    yardstick(ctx)
    sec.rows.append(_rate_row(ctx, out, f"{marks[-1]:,} sources (the RSS run)"))
    n = min(QUICK_MARKS[0] if ctx.quick else READER_SOURCES, marks[-1])
    for reader in READERS:
        if reader == out["reader"]:
            continue
        try:
            other = child(NAME, [str(n), reader, "no-after"], timeout=600)
        except NotRun as exc:
            sec.notes.append(f"reader {reader}: not run ({exc})")
            continue
        sec.rows.append(_rate_row(ctx, other, f"the first {n:,} sources"))
    c = out["counters"]
    sec.notes.append(f"{out['lines']:,} lines; blocks {c.get('blocks', 0):,}, valve refusals "
                     f"{c.get('valve_drops', 0):,}; default reader {out['reader']}; marks "
                     f"{', '.join(f'{m:,}' for m in marks)} ({MARKS_ENV} to change).")
    return sec


if __name__ == "__main__":
    child_main(__doc__, _child)
    sys.exit(0)
