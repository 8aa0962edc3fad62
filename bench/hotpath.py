"""Profile of the replay hot path (cProfile, one core): where the time of replay() goes.

Not a figure with a target: the top entries by own time for the mixed and the alerts-only
corpus, so changes to decode.py / detector.py can be aimed at what costs.
"""

from __future__ import annotations

import cProfile
import io
import pstats
from typing import Any

from bench import corpus
from bench.common import Context, Section, child, child_main, emit, pin_one_core, require
from bench.report import md_table

NAME = "profile"
TITLE = "1b. Profile of the replay hot path"
TOP = 12


def _child(argv: list[str]) -> None:
    from scanguard_ids import config
    from scanguard_ids.commands.replay import replay

    path = argv[0]
    pin_one_core()
    prof = cProfile.Profile()
    prof.enable()
    result, decoder, _ = replay([path], config.Config())
    prof.disable()
    st = pstats.Stats(prof, stream=io.StringIO())
    total = st.total_tt  # type: ignore[attr-defined]
    rows: list[dict[str, Any]] = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        where = file.replace(str(corpus.HERE.parent) + "/", "")
        if "site-packages/" in where:
            where = where.split("site-packages/", 1)[1]
        rows.append(
            {
                "func": f"{where}:{line}({func})" if line else func,
                "calls": nc,
                "tottime": tt,
                "cumtime": ct,
            }
        )
    rows.sort(key=lambda r: -r["tottime"])
    emit({"total": total, "lines": result.lines, "alerts": decoder.stats.alerts, "top": rows[:TOP]})


def run(ctx: Context) -> Section:
    require(
        "scanguard_ids.eve.decode", "scanguard_ids.detect.detector", "scanguard_ids.commands.replay"
    )
    sec = Section(NAME, TITLE)
    parts = []
    for label in ("mixed", "alerts"):
        path, meta = corpus.ensure(label, ctx.quick)
        ctx.say(f"profile: {label}")
        out = child("hotpath", [str(path)], timeout=900)
        per = out["total"] / max(1, out["lines"]) * 1e6
        parts.append(
            f"**{label} corpus** ({out['lines']:,} lines, {out['alerts']:,} our alerts; "
            f"{out['total']:.2f} s under cProfile = {per:.2f} us/line):\n"
        )
        parts.append(
            md_table(
                ("function", "calls", "own s", "own %", "cumulative s"),
                (
                    (
                        f"`{r['func']}`",
                        f"{r['calls']:,}",
                        f"{r['tottime']:.3f}",
                        f"{100 * r['tottime'] / out['total']:.1f}",
                        f"{r['cumtime']:.3f}",
                    )
                    for r in out["top"]
                ),
            )
        )
        parts.append("")
    sec.extra_md = "\n".join(parts)
    sec.notes.append(
        "cProfile adds per-call overhead, so many small calls look dearer than they are; "
        "use it to rank, not to predict throughput."
    )
    return sec


if __name__ == "__main__":
    child_main(__doc__, _child)
