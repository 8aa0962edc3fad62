"""Reaction time of the sdn backends: block() -> the switch drops the scanner's traffic.

``python -m scanguard_ids.lab.sdn.measure --controller faucet --trials 10
--preload 0,100`` (as root) builds the switched lab (:func:`network.switched_pair`),
and for each trial starts an ICMP probe from the scanner every 5 ms, calls
``block()`` and takes the send time of the first probe that got no reply; then
unblocks and waits until traffic passes again. ``--preload N`` first blocks N other
(documentation) addresses, as the Faucet path's cost grows with the ACL. Prints one
JSON object with per-size statistics in milliseconds.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scanguard_ids.block.sdn.faucet import FaucetBackend
from scanguard_ids.block.sdn.openflow import OpenFlowBackend
from scanguard_ids.lab.sdn.network import SCANNER4, VICTIM4, SdnNet, switched_pair

FILLER = ipaddress.ip_network("2001:db8:5ca9::/64")


def _probe(net: SdnNet, until: str, limit: float) -> subprocess.Popen[str]:
    argv = net.scanner.argv([sys.executable, "-m", "scanguard_ids.lab.sdn.probe", VICTIM4,
                             "--src", SCANNER4, "--until", until, "--interval", "0.005",
                             "--timeout", "0.3", "--max", str(limit)])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    return proc


def _wait(proc: subprocess.Popen[str], limit: float) -> float | None:
    out, _ = proc.communicate(timeout=limit + 30)
    t = json.loads(out or "{}").get("t")
    return float(t) if t is not None else None


def _stats(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {"n": len(s), "min": round(s[0], 1), "median": round(statistics.median(s), 1),
            "max": round(s[-1], 1), "mean": round(statistics.fmean(s), 1)}


def run(controller: str, trials: int, preload: list[int], transport: str, limit: float,
        pause: float = 1.0, batch_window: float = 0.15,
        min_reload_interval: float = 0.5) -> dict[str, Any]:
    out: dict[str, Any] = {"controller": controller, "pause_s": pause, "results": {}}
    if controller == "faucet":
        out.update(batch_window_s=batch_window, min_reload_interval_s=min_reload_interval)
    with tempfile.TemporaryDirectory(prefix="sg-sdn-measure-") as tmp, \
            switched_pair(Path(tmp), controller) as net:
        kw = net.switch.backend_kwargs()
        for size in preload:
            b: FaucetBackend | OpenFlowBackend
            if controller == "faucet":
                b = FaucetBackend(**kw, max_blocks=size + 10, batch_window=batch_window,
                                  min_reload_interval=min_reload_interval)
            else:
                b = OpenFlowBackend(**kw, transport=transport)
            b.start()
            try:
                for i in range(size):
                    b.block(str(FILLER[i + 1]), 3600)
                if isinstance(b, FaucetBackend):
                    b.flush()
                    time.sleep(2 + size / 50)  # let Faucet finish the preload
                lat: list[float] = []
                back: list[float] = []
                for _ in range(trials):
                    time.sleep(pause)  # an isolated change, not one queued behind the last
                    probe = _probe(net, "dropped", limit)
                    t0 = time.monotonic()
                    b.block(SCANNER4, 600)
                    t = _wait(probe, limit)
                    if t is not None:
                        lat.append((t - t0) * 1000)
                    time.sleep(pause)
                    probe = _probe(net, "passing", limit)
                    t0 = time.monotonic()
                    b.unblock(SCANNER4)
                    t = _wait(probe, limit)
                    if t is not None:
                        back.append((t - t0) * 1000)
                out["results"][str(size)] = {"block_to_drop_ms": _stats(lat) if lat else None,
                                             "unblock_to_pass_ms": _stats(back) if back
                                             else None}
            finally:
                b.remove()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--controller", choices=("faucet", "none"), default="faucet")
    ap.add_argument("--transport", choices=("native", "ofctl"), default="native")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--preload", default="0", help="comma-separated ACL sizes, e.g. 0,100")
    ap.add_argument("--limit", type=float, default=30.0, help="give up a trial after (s)")
    ap.add_argument("--pause", type=float, default=1.0, help="idle time before each change")
    ap.add_argument("--batch-window", type=float, default=0.15)
    ap.add_argument("--min-reload-interval", type=float, default=0.5)
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.preload.split(",") if x.strip()]
    res = run(args.controller, max(1, min(args.trials, 100)), sizes, args.transport,
              min(args.limit, 120.0), min(args.pause, 30.0), args.batch_window,
              args.min_reload_interval)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
