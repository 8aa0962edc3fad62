"""Benchmark 4: footprint of the running daemon, idle and at the everyday load.

The real daemon (``scanguard run --eve FILE --backend ipset``, default config otherwise) runs in
a network namespace made for the run. After it settles, CPU (utime+stime of all its threads
and of the children it forked and reaped, /proc/PID/stat) and RSS are read over 30 s idle,
then over 30 s while 10 scanning responses per second are appended to its EVE file (the
paper's everyday load: new scanners drawing three responses each, which block them, and stray
single responses that do not).

Baseline, measured at the same time in its own namespace under the same load: fail2ban-server
(Debian's 1.0) with the equivalent filter and the iptables-ipset action on the same kind of file.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    ROOT,
    Context,
    NotRun,
    Row,
    Section,
    answer,
    child_main,
    emit,
    is_root,
    proc_cpu_seconds,
    proc_rss_bytes,
    require,
)
from bench.corpus import _Ts

NAME = "footprint"
TITLE = "4. Daemon footprint"
RATE = 10.0  # responses per second
TARGET_PCT = 1.0


def _load(path: str, seconds: float, rng: random.Random, ts: _Ts, first: int) -> int:
    """Append RATE responses/s for ``seconds``: 3-line scans (70 %) and single strays (30 %)."""
    from bench import daemonlab as lab

    written = 0
    i = first
    queue: list[bytes] = []
    t0 = time.monotonic()
    with open(path, "ab", buffering=0) as fh:
        while True:
            due = int((time.monotonic() - t0) * RATE)
            if time.monotonic() - t0 >= seconds:
                break
            while written < due:
                if not queue:
                    i += 1
                    lines = lab.scan_lines(lab.scanner_addr(i), rng, ts)
                    queue = lines if rng.random() < 0.7 else lines[:1]
                fh.write(queue.pop(0))
                written += 1
            time.sleep(0.02)
    return written


def _child(argv: list[str]) -> None:
    from bench import daemonlab as lab

    target, seconds = argv[0], float(argv[1])
    rng = random.Random(11)
    ts = _Ts()
    with tempfile.TemporaryDirectory(prefix="sg-bench-") as tmp:
        w = lab.Workdir(Path(tmp))
        if target in ("scanguard", "scanguard-noct"):
            cm = lab.scanguard_daemon(w, None, socket_source=False, conntrack=target == "scanguard")
        elif target == "fail2ban":
            cm = lab.fail2ban_server(w, None)
        else:
            raise SystemExit(f"unknown target {target}")
        with cm as proc:
            # Warm-up: one block (creates fail2ban's set on demand), then let it settle.
            _load(w.eve, 0.5, rng, ts, 0)
            time.sleep(3)
            c0, t0 = proc_cpu_seconds(proc.pid), time.monotonic()
            time.sleep(seconds)
            c1, t1 = proc_cpu_seconds(proc.pid), time.monotonic()
            rss_idle = proc_rss_bytes(proc.pid)
            n = _load(w.eve, seconds, rng, ts, 1000)
            c2, t2 = proc_cpu_seconds(proc.pid), time.monotonic()
            rss_load = proc_rss_bytes(proc.pid)
            out = {
                "target": target,
                "idle_pct": 100 * (c1 - c0) / (t1 - t0),
                "load_pct": 100 * (c2 - c1) / (t2 - t1),
                "rss_idle": rss_idle,
                "rss_load": rss_load,
                "lines": n,
                "load_s": t2 - t1,
            }
            if target == "fail2ban":
                out["backend"] = lab.fail2ban_backend(w)
    emit(out)


def run(ctx: Context) -> Section:
    if not is_root():
        raise NotRun("needs root (network namespace, ipset)")
    require("scanguard_ids.daemon", "scanguard_ids.eve.tail", "scanguard_ids.block.ipset")
    from scanguard_ids.lab.netns import namespaces

    sec = Section(NAME, TITLE)
    seconds = 5.0 if ctx.quick else 30.0
    ctx.say(
        f"footprint: scanguard (conntrack clearing on, off) and fail2ban-server side by side, "
        f"{seconds:.0f} s idle + "
        f"{seconds:.0f} s at {RATE:g} responses/s"
    )
    results: dict[str, dict] = {}
    with namespaces("sgfa", "sgfb", "sgfc") as (na, nb, nc):
        procs = {}
        for target, ns in (("scanguard", na), ("fail2ban", nb), ("scanguard-noct", nc)):
            argv = ns.argv(
                [sys.executable, "-m", "bench.footprint", "--child", target, str(seconds)]
            )
            procs[target] = subprocess.Popen(
                argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        for target, p in procs.items():
            try:
                out, err = p.communicate(timeout=2 * seconds + 90)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            try:
                results[target] = answer(f"{target}: not run", p.returncode, out, err)
            except NotRun as exc:
                sec.notes.append(str(exc))
    sg, f2b = results.get("scanguard"), results.get("fail2ban")
    if sg is None:
        raise NotRun("the scanguard daemon run failed: " + "; ".join(sec.notes))
    bname = f"fail2ban-server + jail ({f2b.get('backend')})" if f2b else "fail2ban-server (not run)"

    def b(key: str, scale: float = 1.0) -> float | None:
        return f2b[key] / scale if f2b else None

    sec.rows += [
        Row(
            "idle: CPU, % of one core",
            sg["idle_pct"],
            "%",
            bname,
            b("idle_pct"),
            f"< {TARGET_PCT:g} %",
            sg["idle_pct"] < TARGET_PCT,
            lower_is_better=True,
        ),
        Row(
            f"{RATE:g} responses/s: CPU, % of one core",
            sg["load_pct"],
            "%",
            bname,
            b("load_pct"),
            f"< {TARGET_PCT:g} %",
            sg["load_pct"] < TARGET_PCT,
            lower_is_better=True,
        ),
        Row(
            "idle: RSS",
            sg["rss_idle"] / 2**20,
            "MiB",
            bname,
            b("rss_idle", 2**20),
            lower_is_better=True,
        ),
        Row(
            f"{RATE:g} responses/s: RSS",
            sg["rss_load"] / 2**20,
            "MiB",
            bname,
            b("rss_load", 2**20),
            lower_is_better=True,
        ),
    ]
    noct = results.get("scanguard-noct")
    if noct:
        sec.rows += [
            Row(
                "idle, conntrack clearing off: CPU %",
                noct["idle_pct"],
                "%",
                bname,
                b("idle_pct"),
                lower_is_better=True,
            ),
            Row(
                f"{RATE:g} responses/s, conntrack clearing off: CPU %",
                noct["load_pct"],
                "%",
                bname,
                b("load_pct"),
                lower_is_better=True,
            ),
        ]
    sec.notes.append(
        f"{seconds:.0f} s per phase; {sg['lines']} response lines written in "
        f"{sg['load_s']:.1f} s; CPU includes every thread of the process "
        "(tail, control socket, housekeeping, conntrack worker) and the children it forks "
        "(fail2ban: its ipset actions)."
    )
    return sec


if __name__ == "__main__":
    child_main(__doc__, _child)
