"""`scanguard lab`: the paper's polygon on this machine. Builds its own namespaces (victim,
scanner, an optional delaying path), opens the 100 most popular TCP and UDP ports on the
victim, runs real Suricata and nmap without and with `scanguard run`, and prints Table I
beside the paper's figures. Needs root; touches nothing outside the namespaces it makes.

`--fast-path`: the protected scans once more with the daemon's kernel fast path in block
mode (docs/fast-path.md), as extra rows of Table I and series of the figures.

`--topology gateway`: a scanner, a forwarding router running Suricata and `scanguard run`
(blocks in FORWARD), and a victim network of up to 61 hosts behind it; masscan, zmap and
nmap sweeps and a slow vertical scan, without and with protection (docs/gateway-lab.md).

`--fleet`: three victim hosts, each with its own Suricata and `scanguard run`, one Redis; the
scanner scans host a, then b, then c; how much b and c answered after a's block, and how fast
the block spread, with fleet mode and with each daemon alone (docs/fleet.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path

from scanguard_ids import config
from scanguard_ids.errors import ConfigError

HOST_PORTS = (65_536,)  # --ports by default: the paper's full vertical scan
FLEET_PORTS = 100  # --ports by default with --fleet: 3 hosts, each scanned twice


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
    p.add_argument("--topology", choices=("host", "gateway"), default="host",
                   help="host: the paper's one-host vertical scan (default); gateway: sweeps "
                        "of a victim network through a protecting router")
    p.add_argument("--ports", type=_sizes, default=None, metavar="RANGE",
                   help="ports scanned: N, 1-N, or sizes N,N,... for the figures (default "
                        f"{HOST_PORTS[0]}; with --fleet one count 2..65535, default "
                        f"{FLEET_PORTS})")
    p.add_argument("--tcp", action="store_true", help="TCP SYN scans only")
    p.add_argument("--udp", action="store_true", help="UDP scans only")
    p.add_argument("--policy", choices=("paper", "default"), default="default",
                   help="scanguard's policy while protecting (default: default)")
    p.add_argument("--backend", choices=("ipset", "nftables", "sdn-faucet", "sdn-openflow"),
                   default="ipset",
                   help="where the protected runs block: the victim's ipset (Table I), or an "
                        "OVS switch at the victim's edge under Faucet / standalone (Table II); "
                        "gateway: the router's ipset or nftables")
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
    f = p.add_argument_group("host topology: kernel fast path")
    f.add_argument("--fast-path", action="store_true",
                   help="also run the protected scans with [fastpath] mode = \"block\" "
                        "(extra rows of Table I; docs/fast-path.md)")
    fp = config.FastpathConfig()
    f.add_argument("--fast-path-burst", type=int, default=fp.burst, metavar="N",
                   help=f"[fastpath] burst of those runs (default {fp.burst})")
    f.add_argument("--fast-path-rate", type=int, default=fp.rate, metavar="N",
                   help=f"[fastpath] rate of those runs, new ports/s (default {fp.rate})")
    p.add_argument("--fleet", action="store_true",
                   help="fleet lab: 3 hosts, each with Suricata + scanguard, one Redis; scans "
                        f"a then b then c (--ports N, default {FLEET_PORTS} here)")
    g = p.add_argument_group("gateway topology")
    g.add_argument("--hosts", type=int, default=61, metavar="N",
                   help="victim hosts behind the router (2..61, default 61; 4 run services)")
    g.add_argument("--sweeps", metavar="NAME,...",
                   help="run only these sweeps (default: all; see docs/gateway-lab.md)")
    g.add_argument("--rate", type=int, default=2000, metavar="PPS",
                   help="masscan/zmap rate and nmap --max-rate (default 2000, at most 5000)")
    g.add_argument("--slow-scale", type=float, default=0.05, metavar="F",
                   help="slow scan time base: scan-delay 60 s x F, window x F (default 0.05)")
    g.add_argument("--count", type=int, default=3, help="scanguard [detect] count (default 3)")
    g.add_argument("--distinct-ports", type=int, default=2, metavar="N",
                   help="scanguard [detect] ports (default 2; --ports is the host lab's range)")
    g.add_argument("--window", type=float, default=60.0, metavar="S",
                   help="scanguard [detect] window in seconds (default 60)")
    g.add_argument("--scanguard-config", metavar="FILE",
                   help="TOML merged over the lab's scanguard config (e.g. keys of new tiers)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise ConfigError("scanguard lab", "needs root (it creates network namespaces)")
    if args.fleet:
        return run_fleet(args)
    if args.topology == "gateway":
        if args.fast_path:
            raise ConfigError("--fast-path", "is for --topology host")
        return run_gateway(args)
    if args.backend == "nftables":
        raise ConfigError("--backend", "nftables is for --topology gateway only")
    return run_host(args)


def run_fleet(args: argparse.Namespace) -> int:
    from scanguard_ids.lab.fleet_lab import FleetLabOptions, run_fleet_lab, summary, to_json

    sizes = args.ports or (FLEET_PORTS,)  # an explicit --ports 65536 is refused, not 100
    ports = sizes[0]
    if len(sizes) > 1 or not 2 <= ports <= 65_535:
        raise ConfigError("--ports", "the fleet lab takes one count, 2..65535")
    outdir = Path(args.out) if args.out else None
    result = run_fleet_lab(FleetLabOptions(ports=ports, proto="udp" if args.udp else "tcp",
                                           baseline=not args.no_unprotected, outdir=outdir))
    print(summary(result))
    if args.json:
        Path(args.json).write_text(to_json(result) + "\n")
    return 0


def run_gateway(args: argparse.Namespace) -> int:
    from scanguard_ids.lab import gateway_report
    from scanguard_ids.lab.gateway import GatewayOptions, run_gateway
    from scanguard_ids.lab.gateway_config import Thresholds
    from scanguard_ids.lab.gateway_topo import MAX_HOSTS

    if args.backend not in ("ipset", "nftables"):
        raise ConfigError("--backend", "the gateway lab blocks with ipset or nftables")
    if not 2 <= args.hosts <= MAX_HOSTS:
        raise ConfigError("--hosts", f"must be 2..{MAX_HOSTS}")
    if not 1 <= args.rate <= 5000:
        raise ConfigError("--rate", "must be 1..5000 pps")
    if not 0 < args.slow_scale <= 1:
        raise ConfigError("--slow-scale", "must be in (0, 1]")
    if args.count < 1 or args.distinct_ports < 1 or args.window <= 0:
        raise ConfigError("--count/--distinct-ports/--window", "must be positive")
    outdir = Path(args.out) if args.out else None
    opts = GatewayOptions(
        hosts=args.hosts, sweeps=tuple(s for s in (args.sweeps or "").split(",") if s),
        rate=args.rate, slow_scale=args.slow_scale, unprotected=not args.no_unprotected,
        thresholds=Thresholds(args.count, args.distinct_ports, args.window),
        scanguard_config=Path(args.scanguard_config) if args.scanguard_config else None,
        backend=args.backend, outdir=outdir)
    result = run_gateway(opts)
    print(gateway_report.summary(result))
    if outdir is not None:
        for name, path in gateway_report.write_outputs(result, outdir).items():
            print(f"{name}: {path}")
    if args.json:
        Path(args.json).write_text(gateway_report.to_json(result) + "\n")
    return 0


def run_host(args: argparse.Namespace) -> int:
    from scanguard_ids.lab import report
    from scanguard_ids.lab.protect import FastPathArgs
    from scanguard_ids.lab.runner import LabOptions, run_lab

    if args.latency_trials < 0:
        raise ConfigError("--latency-trials", "must be >= 0")
    if args.delay < 0 or args.delay > 1000:
        raise ConfigError("--delay", "must be between 0 and 1000 ms")
    fast_path = None
    if args.fast_path:
        if args.backend != "ipset":
            raise ConfigError("--fast-path", "the host lab runs it beside the ipset backend only")
        for flag, value in (("--fast-path-burst", args.fast_path_burst),
                            ("--fast-path-rate", args.fast_path_rate)):
            if not 1 <= value <= 10_000:
                raise ConfigError(flag, "must be 1..10000")
        fast_path = FastPathArgs(burst=args.fast_path_burst, rate=args.fast_path_rate)
    protos = tuple(p for p, on in (("tcp", args.tcp), ("udp", args.udp)) if on) or ("tcp", "udp")
    outdir = Path(args.out) if args.out else None
    monitor = _Monitor() if args.tui and sys.stdout.isatty() else None
    if monitor is not None:  # the monitor owns the terminal: log to a file
        log_path = (outdir or Path(".")) / "lab.log"
        logging.getLogger().handlers[:] = [logging.FileHandler(log_path)]
    opts = LabOptions(sizes=args.ports or HOST_PORTS, protos=protos,
                      unprotected=not args.no_unprotected, delay_ms=args.delay,
                      eve_transport=args.transport, policy=args.policy,
                      backend=args.backend, fast_path=fast_path,
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
