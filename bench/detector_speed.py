"""Detector-only speed: ``Detector.feed`` on in-memory RST events, this tree against another.

Not part of ``bench.run``: a focused A/B of the hot path, for changes to scanguard_ids/detect/.
Each run is a fresh child pinned to one core that imports ``scanguard_ids`` from the tree it is
given (PYTHONPATH), builds the events (seeded, so both trees see the same stream), then times
the feed loop alone. Trees alternate run by run; the median of each is reported with the ratio.

Workloads (300 000 TCP RST events each, default DetectConfig, event time 1 ms apart, arrival
jittered by up to 2 s so some events come out of order):

- ``repeat``: 5 000 remotes from 198.18.0.0/15, each refused again and again on its own one
  endpoint (a client retrying, a monitor): ~60 responses each, none ever blocks; plus one
  vertical scanner (a fresh address, 3 ports) every 500 events, which blocks.
- ``once``: 300 000 distinct remotes, one response each (a spoofed flood).

IPv6 /64 prefix groups (``--workload``; default prefix6 = 64):

- ``repeat6``: 5 000 remotes in 1 000 /64s (five addresses each), each /64 refused again and
  again on its own one endpoint: never blocks; plus a scanner every 250 events in a fresh /64
  that blocks, by turns from one address (an address block) and from two (the /64's block).
- ``blocked6``: as repeat6, but the 1 000 /64s each hold a block first (half the /64's CIDR,
  half one address of it): the rest is suppressed or checked against those blocks.
- ``once6``: 300 000 distinct /64s, one response each (a spoofed flood).

    PYTHONPATH=$PWD python -m bench.detector_speed --against /work/main --runs 5
    PYTHONPATH=$PWD python -m bench.detector_speed --against /tmp/pre-edge --against /work/main

Rates are events per CPU second of the feed loop (process_time: steadier than wall time on a
shared machine). ``--against`` repeats: every tree is compared with this one, order alternating.

The child runs as a script (``python bench/detector_speed.py --child``), so the other tree
needs no copy of this file.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
N = 300_000
T0 = 1_700_000_000.0
WORKLOADS = ("repeat", "once", "repeat6", "blocked6", "once6")


def _events(workload: str, n_events: int) -> list:
    if workload.endswith("6"):
        return _events6(workload, n_events)
    from scanguard_ids.model import Kind, ResponseEvent

    rng = random.Random(7)
    out: list[tuple[float, ResponseEvent]] = []
    scanners = 0
    for i in range(n_events):
        t = T0 + i * 0.001
        if workload == "once":
            n = i
            remote = f"198.{18 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"
            local, port = "192.0.2.1", 22
        elif i % 500 == 0:
            scanners += 1
            n = 65_536 + scanners // 3
            remote = f"198.{18 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"
            local, port = "192.0.2.2", 1000 + scanners % 3
        else:
            n = rng.randrange(5000)
            remote = f"198.18.{n >> 8}.{n & 255}"
            local, port = f"192.0.2.{10 + n % 200}", 8000 + n % 7
        ev = ResponseEvent(ts=t, remote=remote, local=local, local_port=port, proto="tcp",
                           kind=Kind.TCP_RST, sid=9_400_001)
        out.append((t + rng.uniform(0, 2.0), ev))
    out.sort(key=lambda x: x[0])
    return [e for _, e in out]


def _net(n: int) -> str:
    return f"2001:db8:{n >> 16:x}:{n & 0xFFFF:x}::"


def _events6(workload: str, n_events: int) -> list:
    from scanguard_ids.model import Kind, ResponseEvent

    rng = random.Random(7)
    out: list[tuple[float, ResponseEvent]] = []

    def add(t: float, remote: str, local: str, port: int, jitter: bool = True) -> None:
        ev = ResponseEvent(ts=t, remote=remote, local=local, local_port=port, proto="tcp",
                           kind=Kind.TCP_RST, sid=9_400_001)
        out.append((t + (rng.uniform(0, 2.0) if jitter else 0.0), ev))

    t = T0
    if workload == "blocked6":  # first a block in each of the 1 000 /64s
        for g in range(1000):
            for k in range(3):
                t += 0.001
                a = 1 + (k % 2 if g % 2 else 0)  # odd /64s: two addresses -> the CIDR
                add(t, f"{_net(g)}{a:x}", "2001:db8:ffff::2", 1000 + k, jitter=False)
    scanners = 0
    for i in range(n_events - len(out)):
        t += 0.001
        if workload == "once6":
            add(t, f"{_net(100_000 + i)}1", "2001:db8:ffff::1", 22)
        elif i % 250 == 0:
            scanners += 1
            n = 65_536 + scanners // 3
            a = 1 + (scanners % 2 if (scanners // 3) % 2 else 0)
            add(t, f"{_net(n)}{a:x}", "2001:db8:ffff::2", 1000 + scanners % 3)
        else:
            n = rng.randrange(5000)
            g = n // 5  # one endpoint per /64: its five addresses never make a scan
            add(t, f"{_net(g)}{10 + n % 5:x}", f"2001:db8:ffff::{10 + g % 200:x}", 8000 + g % 7)
    out.sort(key=lambda x: x[0])
    return [e for _, e in out]


def _child(workload: str, n_events: int, cpu: int) -> None:
    from scanguard_ids.config import Config
    from scanguard_ids.detect.allowlist import Allowlist
    from scanguard_ids.detect.detector import Detector

    os.sched_setaffinity(0, {cpu})
    cfg = Config().detect
    events = _events(workload, n_events)
    det = Detector(cfg, Allowlist(cfg.allowlist))
    feed = det.feed
    blocks = 0
    gc.collect()
    t = time.process_time()
    for ev in events:
        if feed(ev) is not None:
            blocks += 1
    dt = time.process_time() - t
    print(json.dumps({"rate": len(events) / dt, "blocks": blocks}))


def _run(tree: str, workload: str, n_events: int, cpu: int) -> dict:
    env = dict(os.environ, PYTHONPATH=tree)
    out = subprocess.run([sys.executable, str(HERE), "--child", workload, str(n_events),
                          str(cpu)], env=env,
                         check=True, capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--child", nargs=3, metavar=("WORKLOAD", "EVENTS", "CPU"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--against", action="append", metavar="TREE",
                    help="a baseline tree (repeatable; default /work/main)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workload", choices=WORKLOADS, action="append",
                    help="repeatable; default repeat and once")
    ap.add_argument("--events", type=int, default=N, help="events per run (default %(default)s)")
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    trees = {"this": str(HERE.parent.parent)}
    for tree in args.against or ["/work/main"]:
        trees[tree] = tree
    cpu = max(os.sched_getaffinity(0))
    for workload in args.workload or ["repeat", "once"]:
        rates: dict[str, list[float]] = {name: [] for name in trees}
        blocks: dict[str, int] = {}
        for i in range(args.runs):
            order = list(trees.items())
            for name, tree in order if i % 2 else order[::-1]:
                r = _run(tree, workload, args.events, cpu)
                rates[name].append(r["rate"])
                blocks[name] = r["blocks"]
        this = statistics.median(rates["this"])
        print(f"{workload}: this {this / 1e3:.0f} k ev/s ({blocks['this']} blocks) "
              f"{[round(x / 1e3) for x in rates['this']]}")
        for name in trees:
            if name == "this":
                continue
            base = statistics.median(rates[name])
            print(f"  vs {name}: {base / 1e3:.0f} k ev/s ({blocks[name]} blocks) "
                  f"{[round(x / 1e3) for x in rates[name]]}: ratio {this / base:.2f}x "
                  f"(medians of {args.runs}, CPU time)")

if __name__ == "__main__":
    main()
