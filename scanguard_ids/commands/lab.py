"""`scanguard lab`: the paper's polygon on this machine. Builds its own namespaces (victim,
scanner, an optional delaying path), opens the 100 most popular TCP and UDP ports on the
victim, runs real Suricata and nmap without and with `scanguard run`, and prints Table I
beside the paper's figures. Needs root; touches nothing outside the namespaces it makes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path

from scanguard_ids.errors import ConfigError


def _sizes(text: str) -> tuple[int, ...]:
    """'65536', '1-3000' (= 3000 ports) or '100,1000,10000,65536' (one scan per size)."""
    out = []
    for part in text.split(","):
        part = part.strip()
        lo, _, hi = part.partition("-")
        try:
            n = int(hi) - int(lo) + 1 if hi else int(lo)
            if hi and int(lo) != 1:
                raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected N, 1-N or N,N,...; got {part!r}") from None
        if not 1 <= n <= 65_536:
            raise argparse.ArgumentTypeError(f"port count must be 1..65536, got {n}")
        out.append(n)
    return tuple(out)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("lab", help="reproduce the paper's experiment in namespaces",
                       description=__doc__)
    p.add_argument("--ports", type=_sizes, default=(65_536,), metavar="RANGE",
                   help="ports scanned: N, 1-N, or sizes N,N,... for the figures (default 65536)")
    p.add_argument("--tcp", action="store_true", help="TCP SYN scans only")
    p.add_argument("--udp", action="store_true", help="UDP scans only")
    p.add_argument("--policy", choices=("paper", "default"), default="default",
                   help="scanguard's policy while protecting (default: default)")
    p.add_argument("--backend", choices=("ipset", "sdn-faucet", "sdn-openflow"), default="ipset",
                   help="where the protected runs block: the victim's ipset (Table I), or an "
                        "OVS switch at the victim's edge under Faucet / standalone (Table II)")
    p.add_argument("--delay", type=float, default=10.0, metavar="MS",
                   help="one-way delay of the scanner's path in ms (default 10; 0 = direct veth)")
    p.add_argument("--transport", choices=("socket", "file"), default="socket",
                   help="how scanguard reads Suricata's EVE (default: unix_stream socket)")
    p.add_argument("--latency-trials", type=int, default=10, metavar="N",
                   help="extra reaction-latency trials with fresh scanner addresses")
    p.add_argument("--no-unprotected", action="store_true", help="skip the runs without protection")
    p.add_argument("--out", metavar="DIR", help="keep result.json, table.txt, figures.png here")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON here")
    p.add_argument("--plot", metavar="FILE", help="draw the paper's Figures 1-3 as PNG here")
    p.add_argument("--tui", action="store_true", help="live monitor during protected scans")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scanguard_ids.lab import report
    from scanguard_ids.lab.runner import LabOptions, run_lab

    if os.geteuid() != 0:
        raise ConfigError("scanguard lab", "needs root (it creates network namespaces)")
    if args.latency_trials < 0:
        raise ConfigError("--latency-trials", "must be >= 0")
    if args.delay < 0 or args.delay > 1000:
        raise ConfigError("--delay", "must be between 0 and 1000 ms")
    protos = tuple(p for p, on in (("tcp", args.tcp), ("udp", args.udp)) if on) or ("tcp", "udp")
    outdir = Path(args.out) if args.out else None
    monitor = _Monitor() if args.tui and sys.stdout.isatty() else None
    if monitor is not None:  # the monitor owns the terminal: log to a file
        log_path = (outdir or Path(".")) / "lab.log"
        logging.getLogger().handlers[:] = [logging.FileHandler(log_path)]
    opts = LabOptions(sizes=args.ports, protos=protos, unprotected=not args.no_unprotected,
                      delay_ms=args.delay, eve_transport=args.transport, policy=args.policy,
                      backend=args.backend,
                      latency_trials=args.latency_trials, outdir=outdir,
                      on_protect=monitor.attach if monitor else None)
    try:
        result = run_lab(opts)
    finally:
        if monitor is not None:
            monitor.close()
    print(report.summary(result))
    if outdir is not None:
        for name, path in report.write_outputs(result, outdir).items():
            print(f"{name}: {path}")
    if args.json:
        report.write_json(result, Path(args.json))
    if args.plot:
        report.plot(result, Path(args.plot))
    return 0


class _Monitor:
    """`scanguard top` on the lab's daemon of the moment, in a thread beside the lab."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def attach(self, control_socket: Path) -> None:
        self.path = control_socket
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="lab-monitor", daemon=True)
            self.thread.start()

    def _get(self):  # type: ignore[no-untyped-def]
        from scanguard_ids import control
        from scanguard_ids.snapshot import Snapshot

        if self.path is None:
            return None
        return Snapshot.from_dict(control.call(str(self.path), "snapshot", timeout=1.0))

    def _run(self) -> None:
        from scanguard_ids.tui.app import run_live

        run_live(self._get, refresh=0.5, stop=self.stop)

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
