"""What the distributed-scan alarm costs `scanguard replay`: alarm off vs on, one process.

Each round replays the bench corpus (bench/corpus.py, generated on first use) with
``alarm.mode = "off"`` and with the default ``[alarm]`` section, in alternating order, through
``scanguard_ids.commands.replay.replay`` (its own timer: read, decode, detect, alarm), as the
scanguard row of ``bench.run --only replay`` does. Prints the median alerts/s of each and the
ratio on / off, of wall time (replay's own timer, what ``bench.run`` reports) and of this
process' CPU time (steadier on a shared machine); both runs must make the same decisions.

    PYTHONPATH=$PWD .venv/bin/python -m bench.alarm_speed [--rounds 5] [--quick] [alerts mixed]

``--alone`` times only what the alarm adds: ``DistributedDetector.feed_block`` (and the
``expire`` replay calls after it) on the corpus decoded beforehand, CPU microseconds per alert,
best and median of the rounds. To compare two trees, run it from each (`python -m` imports
the tree it is started in).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from bench import corpus
from bench.common import median, pin_one_core


def _replay(path: str, mode: str) -> tuple[float, float, int, int]:
    """(alerts/s, alerts per CPU second, decisions, alarms) of one replay of ``path`` with
    alarm.mode ``mode``."""
    from scanguard_ids import config
    from scanguard_ids.commands.replay import replay

    cfg = config.Config()
    cfg = dataclasses.replace(cfg, alarm=dataclasses.replace(cfg.alarm, mode=mode))
    cpu = time.process_time()
    result, decoder, _ = replay([path], cfg)
    cpu = time.process_time() - cpu
    alarms = sum(1 for a in result.alarms if a.action == "alarm")
    alerts = decoder.stats.alerts
    return alerts / result.seconds, alerts / cpu, len(result.decisions), alarms


def _alone(path: str, rounds: int) -> tuple[float, float, int]:
    """(best, median) CPU microseconds per alert of the alarm alone, and the alarms raised."""
    import gc
    import math

    from scanguard_ids import config
    from scanguard_ids.detect.distributed import DistributedDetector
    from scanguard_ids.eve.decode import Decoder
    from scanguard_ids.eve.reader import iter_blocks

    cfg = config.Config()
    decoder = Decoder(config.sid_set(cfg), max_line_bytes=cfg.eve.max_line_bytes)
    blocks = [decoder.decode_block(buf, start, end)
              for buf, start, end in iter_blocks(path, max_line=cfg.eve.max_line_bytes)]
    n = max(1, sum(map(len, blocks)))
    per: list[float] = []
    alarms = 0
    for _ in range(rounds):
        det = DistributedDetector(cfg.alarm, cfg.detect.reorder)
        gc.collect()
        cpu = time.process_time()
        for block in blocks:
            det.feed_block(block)
            det.expire(-math.inf)
        per.append((time.process_time() - cpu) / n * 1e6)
        alarms = det.stats.alarms
    return min(per), median(per), alarms


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpora", nargs="*", metavar="CORPUS",
                    help=f"of {sorted(corpus.SPECS)} (default: all)")
    ap.add_argument("--rounds", type=int, default=5, help="off/on pairs per corpus (median)")
    ap.add_argument("--quick", action="store_true", help="the ten-fold smaller corpora")
    ap.add_argument("--alone", action="store_true",
                    help="time the alarm alone on pre-decoded blocks (CPU us per alert)")
    args = ap.parse_args(argv)
    for name in args.corpora:
        if name not in corpus.SPECS:
            ap.error(f"unknown corpus {name!r}")
    core = pin_one_core()
    print(f"pinned to cpu {core}; {args.rounds} rounds, order alternating", file=sys.stderr)
    for name in args.corpora or ["alerts", "mixed"]:
        path, _meta = corpus.ensure(name, quick=args.quick)
        if args.alone:
            best, med, alarms = _alone(str(path), args.rounds)
            print(f"{name:6s} alarm alone: best {best:.3f} us/alert, median {med:.3f} "
                  f"(CPU, {args.rounds} rounds; {alarms} alarms)")
            continue
        runs: dict[str, list[float]] = {"off": [], "alarm": []}
        cpu: dict[str, list[float]] = {"off": [], "alarm": []}
        seen: dict[str, tuple[int, int]] = {}
        _replay(str(path), "alarm")  # warm the page cache and the imports
        for i in range(args.rounds):
            for mode in ("off", "alarm") if i % 2 == 0 else ("alarm", "off"):
                rate, cpu_rate, decisions, alarms = _replay(str(path), mode)
                runs[mode].append(rate)
                cpu[mode].append(cpu_rate)
                seen[mode] = (decisions, alarms)
        if seen["off"][0] != seen["alarm"][0]:
            print(f"{name}: decisions differ: {seen}", file=sys.stderr)
            return 1
        for label, rates in (("wall", runs), ("cpu", cpu)):
            off, on = median(rates["off"]), median(rates["alarm"])
            print(f"{name:6s} {label:4s} off {off:7.0f} alerts/s  alarm {on:7.0f} alerts/s  "
                  f"ratio {on / off:.3f}  (off {' '.join(f'{x:.0f}' for x in rates['off'])}; "
                  f"alarm {' '.join(f'{x:.0f}' for x in rates['alarm'])})")
        print(f"{name:6s} decisions {seen['alarm'][0]}, alarms {seen['alarm'][1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
