"""Instructions per spoofed-flood line through ``Engine.process``, this tree against others.

Not part of ``bench.run``: a focused A/B for changes to the flood path (bench/flood.py's
workload), for when the CPU-time figures are too noisy to tell a 2 % change (they move +-10 %
run to run on this kind of machine). valgrind's cachegrind counts the instructions a child
executes; with ``PYTHONHASHSEED=0`` the count is the same run after run (to the instruction
on this machine), so one run per tree is enough. It counts work, not time: cache misses and
page faults (a flood's memory) are not in it, so confirm a gain in time with
``python -m bench.run --only flood`` before claiming it.

The child processes the first N1 and, in a second run, N2 sources of bench/flood.py's lines
(generated up front in both runs, caps scaled down so the tables are full early:
``detect.max_tracked`` 10 000, ``detect.slow_max_tracked`` 2 000); the difference, divided by
the lines between N1 and N2, is the steady state's cost per line.

    PYTHONPATH=$PWD python -m bench.flood_instructions --against /tmp/old-main
    PYTHONPATH=$PWD python -m bench.flood_instructions --reader msgspec --against /tmp/old

Each tree's ``scanguard_ids`` is measured on this checkout's workload (bench/flood.py, put
beside it on PYTHONPATH), so another tree needs no copy of this file or of the benchmark.
~1 min per tree (valgrind slows Python ~40x).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
N1, N2 = 20_000, 40_000
_REFS = re.compile(rb"I\s+refs:\s+([\d,]+)")


def _child(n: int, total: int, reader: str) -> None:
    import dataclasses

    from bench.flood import flood_engine, flood_lines
    from scanguard_ids import config
    from scanguard_ids.clock import FixedClock
    from scanguard_ids.giveback import tune_gc

    tune_gc()
    cfg = config.Config()
    cfg = dataclasses.replace(cfg, detect=dataclasses.replace(
        cfg.detect, max_tracked=10_000, slow_max_tracked=2_000))
    sid = config.SID_FIRST
    batches = [flood_lines(d, 1000, sid) for d in range(0, total, 1000)]
    clock = FixedClock(batches[0][1])
    with tempfile.TemporaryDirectory() as tmp:
        engine = flood_engine(cfg, clock, os.path.join(tmp, "j.jsonl"), reader)
        for i, (lines, t) in enumerate(batches[: n // 1000]):
            clock.set(t)
            engine.process(lines, "flood")
            if (i + 1) % 10 == 0:
                engine.sync(full=False)
        engine.journal.close()


def _refs(tree: str, n: int, total: int, reader: str) -> int:
    """Instructions of one child run: ``scanguard_ids`` from ``tree``, the workload (bench/)
    from this checkout, so every tree is fed the same lines the same way."""
    with tempfile.TemporaryDirectory(prefix="sg-ir-") as shim:
        os.symlink(Path(tree).resolve() / "scanguard_ids", Path(shim) / "scanguard_ids")
        env = dict(os.environ, PYTHONHASHSEED="0",
                   PYTHONPATH=f"{shim}{os.pathsep}{HERE.parents[1]}")
        cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no",
               "--cachegrind-out-file=/dev/null",
               sys.executable, str(HERE), "--child", str(n), str(total), reader]
        res = subprocess.run(cmd, cwd=shim, env=env, capture_output=True, timeout=1800)
    found = _REFS.search(res.stderr)
    if res.returncode != 0 or found is None:
        raise SystemExit(f"{tree}: child failed ({res.returncode}): "
                         f"{res.stderr.decode(errors='replace')[-600:]}")
    return int(found.group(1).replace(b",", b""))


def per_line(tree: str, reader: str = "", n1: int = N1, n2: int = N2) -> float:
    """Instructions per line between n1 and n2 sources (two lines a source on average)."""
    return (_refs(tree, n2, n2, reader) - _refs(tree, n1, n2, reader)) / (2 * (n2 - n1))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "")
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--against", action="append", metavar="TREE", default=[],
                    help="another checkout to count (repeatable)")
    ap.add_argument("--reader", default="", help="EVE reader (c, msgspec, python); default: "
                                                 "the one this install has")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found (Debian package valgrind)")
    here = str(HERE.parents[1])
    mine = per_line(here, args.reader)
    print(f"{here}: {mine:,.0f} instructions per flood line")
    for tree in args.against:
        other = per_line(tree, args.reader)
        print(f"{tree}: {other:,.0f} instructions per flood line; this tree {mine / other:.3f}x")


if __name__ == "__main__":
    main()
