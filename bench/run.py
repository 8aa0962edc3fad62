"""Run the benchmarks and write BENCHMARKS.md at the repository root.

    .venv/bin/python -m bench.run                   # everything (under ten minutes)
    .venv/bin/python -m bench.run --only replay     # a subset (repeatable / comma list)
    .venv/bin/python -m bench.run --quick           # small corpora, few repeats (smoke run)

A benchmark that cannot run here (a module not written yet, no root, a tool missing) is
reported as "not run: <reason>" and the others go on.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import time
import traceback
from pathlib import Path

from bench.common import ROOT, Context, NotRun, Section, machine
from bench.report import render

#: name -> module, in run (and report) order.
BENCHMARKS = {
    "replay": "bench.throughput",
    "profile": "bench.hotpath",
    "reaction": "bench.reaction",
    "memory": "bench.memory",
    "footprint": "bench.footprint",
    "blocking": "bench.blocking",
    "fleet": "bench.fleet",
    "flood": "bench.flood",
    "fastpath": "bench.fastpath",
}


def _one(name: str, modname: str, ctx: Context) -> Section:
    t0 = time.monotonic()
    title = name
    try:
        mod = importlib.import_module(modname)
        title = getattr(mod, "TITLE", name)
        sec = mod.run(ctx)
    except NotRun as exc:
        sec = Section(name, title, not_run=str(exc))
    except Exception as exc:  # one broken benchmark must not lose the others' figures
        traceback.print_exc()
        sec = Section(name, title, not_run=f"crashed: {type(exc).__name__}: {exc}")
    sec.seconds = time.monotonic() - t0
    return sec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these ({', '.join(BENCHMARKS)}); repeatable or comma-separated",
    )
    ap.add_argument("--quick", action="store_true", help="small corpora and few repeats")
    ap.add_argument(
        "--repeats", type=int, default=5, help="repeats of the fast measurements (default 5)"
    )
    ap.add_argument(
        "--output", default=str(ROOT / "BENCHMARKS.md"), help="where to write the report"
    )
    args = ap.parse_args(argv)
    only = [n for item in args.only for n in item.split(",") if n]
    unknown = [n for n in only if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    ctx = Context(quick=args.quick, repeats=max(1, args.repeats))
    t0 = time.monotonic()
    sections = []
    for name, modname in BENCHMARKS.items():
        if only and name not in only:
            continue
        ctx.say(f"--- {name}")
        sec = _one(name, modname, ctx)
        ctx.say(
            f"--- {name} done in {sec.seconds:.0f}s"
            + (f" (not run: {sec.not_run})" if sec.not_run else "")
        )
        sections.append(sec)
    command = ".venv/bin/python -m bench.run" + (
        "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    )
    text = render(machine(), command, sections, time.monotonic() - t0)
    Path(args.output).write_text(text)
    ctx.say(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
