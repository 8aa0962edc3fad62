"""The EVE readers side by side, decode only (no detector), CPU time of this process.

    .venv/bin/python -m bench.readers [--repeats N] [--quick]

For each reader (``c``, ``msgspec``, ``python``, and ``c-prefilter+msgspec``: the C reader's
line skipping with the msgspec typed decoder for alerts instead of the C field reader, an
ablation that shows what each half of _fast.c buys), interleaved, medians of N:

- replay: ``Decoder.decode_block`` over iter_blocks() of the mixed and the alerts-only corpus;
- daemon: ``Decoder.decode_batch`` on batches of 256 lines of the mixed corpus;
- flood: ``decode_batch`` on the spoofed flood's lines of bench/flood.py (our TCP RSTs from
  fresh sources) in batches of 2000 lines (its 1000 sources): the decode share of its
  "alerts/s" rows;
- foreign: ``decode_batch`` on the mixed corpus' alerts of other rules (what the SID check
  before the typed decoder is for), batches of 256.

Not part of ``make bench`` (bench.run): a focused look behind the "JSON reader decision" of
the replay benchmark. Pinned to one (the idlest) core.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from bench import corpus
from bench.common import pin_one_core
from bench.report import md_table

BATCH = 256
FLOOD_SOURCES = 1000  # bench/flood.py's batches: 1000 sources, 1-3 lines each
READERS = ("c", "c-prefilter+msgspec", "msgspec", "python")


def make(reader: str) -> object:
    from scanguard_ids import config
    from scanguard_ids.eve.decode import Decoder

    sids = config.sid_set(config.Config())
    if reader != "c-prefilter+msgspec":
        return Decoder(sids, reader=reader)
    from scanguard_ids.eve import _fast, typed  # type: ignore[attr-defined]

    # The ablation reaches into the decoder: C prefilters without SIDs hand every compact
    # alert back as bytes (their KIND_ALERT), which _alert_slow() reads with msgspec.
    dec = Decoder(sids, reader="c")
    dec._typed = typed.decode_alert
    dec._head = None
    dec._prefilter = lambda buf, s, e, m, _sids, _ctx: _fast.prefilter(buf, s, e, m)
    dec._prefilter_lines = lambda lines, m, _sids, _ctx: _fast.prefilter_lines(lines, m)
    return dec


def replay_rate(path: str, reader: str) -> tuple[float, float]:
    """(lines/s, alerts/s) of decode_block over the file, CPU time."""
    from scanguard_ids.eve.reader import iter_blocks

    dec = make(reader)
    t0 = time.process_time()
    for buf, start, end in iter_blocks(path):
        dec.decode_block(buf, start, end)  # type: ignore[attr-defined]
    cpu = time.process_time() - t0
    return dec.stats.lines / cpu, dec.stats.alerts / cpu  # type: ignore[attr-defined]


def batch_us(lines: list[bytes], reader: str, batch: int = BATCH) -> float:
    """CPU microseconds per line of decode_batch on ``batch``-line lists."""
    batches = [lines[i : i + batch] for i in range(0, len(lines), batch)]
    dec = make(reader)
    decode_batch: Callable[[list[bytes]], object] = dec.decode_batch  # type: ignore[attr-defined]
    t0 = time.process_time()
    for b in batches:
        decode_batch(b)
    return (time.process_time() - t0) / len(lines) * 1e6


def flood_lines_of(sources: int) -> list[bytes]:
    """The lines bench/flood.py feeds for its first ``sources`` sources, in its order."""
    from bench.flood import flood_lines
    from scanguard_ids import config

    lines: list[bytes] = []
    for first in range(0, sources, FLOOD_SOURCES):
        lines += flood_lines(first, FLOOD_SOURCES, config.SID_FIRST)[0]
    return lines


def foreign_alerts(lines: list[bytes]) -> list[bytes]:
    """The alert lines of other rules among ``lines``."""
    from scanguard_ids import config
    from scanguard_ids.eve.decode import Decoder

    sids = config.sid_set(config.Config())
    out = []
    for line in lines:
        if b'"event_type":"alert"' in line:
            dec = Decoder(sids, reader="python")
            dec.decode(line)
            if dec.stats.foreign_sids:
                out.append(line)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.readers", description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="the ten times smaller corpora")
    args = ap.parse_args()
    mixed, _ = corpus.ensure("mixed", args.quick)
    alerts, _ = corpus.ensure("alerts", args.quick)
    daemon_file, _ = corpus.ensure("mixed", quick=True)
    with open(daemon_file, "rb") as fh:
        daemon_lines = fh.read().splitlines()
    flood = flood_lines_of(20_000 if args.quick else 100_000)
    foreign = foreign_alerts(daemon_lines)
    cpu = pin_one_core()
    runs: dict[str, list[tuple[float, ...]]] = {r: [] for r in READERS}
    for _ in range(max(1, args.repeats)):
        for reader in READERS:
            lines_s, _a = replay_rate(str(mixed), reader)
            _l, alerts_s = replay_rate(str(alerts), reader)
            runs[reader].append((lines_s, alerts_s, batch_us(daemon_lines, reader),
                                 batch_us(flood, reader, 2 * FLOOD_SOURCES),
                                 batch_us(foreign, reader)))
    c_us = statistics.median(x[2] for x in runs["c"])
    rows = []
    for reader, rs in runs.items():
        lines_s, alerts_s, us, flood_us, foreign_us = (
            statistics.median(x[i] for x in rs) for i in range(5)
        )
        rows.append((reader, f"{lines_s:,.0f}", f"{alerts_s:,.0f}", f"{us:.2f}",
                     f"{us / c_us:.2f}x", f"{flood_us:.2f}", f"{foreign_us:.2f}"))
    header = (
        "reader",
        "mixed lines/s",
        "alerts-only alerts/s",
        f"daemon us/line ({BATCH}-line batches)",
        "vs c",
        "flood us/line",
        f"foreign alerts us/line ({len(foreign)})",
    )
    print(f"decode only, CPU time, core {cpu}, medians of {args.repeats}:\n")
    print(md_table(header, rows))


if __name__ == "__main__":
    main()
