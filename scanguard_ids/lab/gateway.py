"""`run_gateway(opts) -> GatewayResult`: sweeps through a protecting router, end to end.

topology (:mod:`gateway_topo`) -> listeners on the servers -> Suricata on the router's
inside interface (HOME_NET = the victim network) -> every sweep without protection ->
every sweep with ``scanguard run`` on the router (a fresh daemon per sweep, its config
written by :mod:`gateway_config`, blocks in the router's FORWARD chain) -> teardown.

Per sweep the lab records what reached the scanner (tcpdump on the router's outside
interface: responses that passed FORWARD) and when the scanner's address entered a
kernel set on the router (:mod:`setwatch`); what the scanner *learned* comes from the
tool's own output (:mod:`gateway_scan`). Each sweep has its own scanner address, so no
block carries over; the router's sets and conntrack table are emptied between sweeps.

The slow vertical scan runs on a scaled time base: nmap ``--scan-delay`` of
``60 s * slow_scale`` between probes, and the daemon's window scaled by the same factor
(``Thresholds.scaled``), i.e. one probe a minute against a 60 s window.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scanguard_ids.clock import SystemClock
from scanguard_ids.lab import (
    analysis,
    capture,
    gateway_config,
    gateway_nftwatch,
    gateway_scan,
    gateway_topo,
    listeners,
    procs,
    protect,
    sensor,
    setwatch,
)
from scanguard_ids.lab.gateway_report import GatewayResult, Row
from scanguard_ids.lab.gateway_scan import Sweep
from scanguard_ids.lab.gateway_topo import GatewayTopology

log = logging.getLogger(__name__)

SET_NAME = "sggw"
UNPROTECTED_BASE, PROTECTED_BASE = 10, 60  # scanner addresses 192.0.2.10+i / .60+i
SCANNER6_PREFIX = "2001:db8:1::"  # ... and 2001:db8:1::10+i / ::60+i (hex digits, decimal i)
MAX_SWEEPS = 40
SWEEP3_TCP = (22, 80, 443)
SWEEP3_UDP = (53, 123, 161)
SLOW_PORTS = (21, 22, 23, 25, 80, 110, 143, 443, 445, 993)
#: What the first probe's responses may take to pass the daemon (its window is restarted
#: per sweep, so nothing before the daemon's start counts).
SETTLE_S = 0.3
LATE_S = 0.5  # after a sweep: late EVE lines and blocks reach journal and set watch


@dataclass(slots=True)
class GatewayOptions:
    hosts: int = 61  # victim hosts (the /26 holds at most 61 beside the router)
    servers: int = 4  # the first ones, with open services
    open_tcp: tuple[int, ...] = (80, 443)
    open_udp: tuple[int, ...] = (53,)
    sweeps: tuple[str, ...] = ()  # names from default_sweeps(); empty = all
    rate: int = 2000  # masscan / zmap pps and nmap --max-rate
    slow_scale: float = 0.05  # slow scan: scan-delay 60 s and window scaled by this
    unprotected: bool = True
    protected: bool = True
    thresholds: gateway_config.Thresholds = field(default_factory=gateway_config.Thresholds)
    scanguard_config: Path | None = None  # merged over the lab's keys (keys of the future)
    backend: str = "ipset"  # ipset | nftables (rules in INPUT/FORWARD/OUTPUT either way)
    setwatch_interval: float = 0.002
    outdir: Path | None = None
    prefix: str = "sgg"
    sweep_timeout: float = 120.0
    max_seconds: float = 1800.0  # lifetime bound of every helper process


def default_sweeps(topo: GatewayTopology, rate: int, slow_scale: float) -> list[Sweep]:
    """The scans of the lab: single-port and 3-port sweeps, and a slow vertical scan."""
    net = topo.net4
    return [
        Sweep("masscan-tcp-1", "masscan", "tcp", (80,), net, rate),
        Sweep("zmap-tcp-1", "zmap", "tcp", (80,), net, rate),
        Sweep("nmap-sS-1", "nmap", "tcp", (80,), net, rate),
        Sweep("nmap-sS-3", "nmap", "tcp", SWEEP3_TCP, net, rate),
        Sweep("nmap-sU-1", "nmap", "udp", (53,), net, rate),
        Sweep("nmap-sU-3", "nmap", "udp", SWEEP3_UDP, net, rate),
        Sweep("nmap-sS6-3", "nmap", "tcp", SWEEP3_TCP, topo.net6, rate,
              hosts=(topo.router_inside6, *topo.hosts6)),
        Sweep("nmap-slow-vertical", "nmap", "tcp", SLOW_PORTS, topo.servers4[0], rate,
              scan_delay=round(60.0 * slow_scale, 3)),
    ]


def pick(sweeps: list[Sweep], names: tuple[str, ...]) -> list[Sweep]:
    if not names:
        return sweeps[:MAX_SWEEPS]
    known = {s.name: s for s in sweeps}
    missing = [n for n in names if n not in known]
    if missing:
        raise procs.LabError(f"unknown sweep(s) {', '.join(missing)}: one of "
                             f"{', '.join(known)}")
    return [known[n] for n in names][:MAX_SWEEPS]


@dataclass(slots=True)
class _Lab:
    opts: GatewayOptions
    topo: GatewayTopology
    sensor: sensor.Sensor
    outdir: Path
    extra: gateway_config.Table
    result: GatewayResult


def _reset(topo: GatewayTopology, backend: str) -> None:
    """No block and no connection state left on the router from an earlier scan."""
    protect.reset_victim(topo.router)  # ipsets and conntrack
    if backend == "nftables":
        for name in ("blocked4", "blocked6"):
            topo.router.run(["nft", "flush", "set", "inet", SET_NAME, name], check=False)


def _thresholds(lab: _Lab, sweep: Sweep) -> gateway_config.Thresholds:
    t = lab.opts.thresholds
    return t.scaled(lab.opts.slow_scale) if sweep.scan_delay else t


def _daemon(lab: _Lab, run_dir: Path, sweep: Sweep) -> protect.CommandProtector:
    """``python -m scanguard_ids.cli run --config <the lab's file>`` on the router."""
    cfg = gateway_config.merge(
        gateway_config.lab_config(run_dir, lab.sensor.eve_path, _thresholds(lab, sweep),
                                  lab.opts.backend, SET_NAME), lab.extra)
    path = run_dir / "scanguard.toml"
    path.write_text(gateway_config.render(cfg))
    argv = [sys.executable, "-m", "scanguard_ids.cli", "run", "--config", str(path)]
    return protect.CommandProtector(
        name="scanguard", argv_for=lambda _ctx: argv,
        journal_for=lambda ctx: ctx.workdir / "decisions.jsonl",
        ready_marker="scanguard running")


@contextlib.contextmanager
def _watched(lab: _Lab, run_dir: Path) -> Iterator[tuple[Path, Path]]:
    topo = lab.topo
    pcap, watch = run_dir / "outside.pcap", run_dir / "setwatch.jsonl"
    opts = lab.opts
    watcher = (gateway_nftwatch.watching(topo.router, SET_NAME, watch, opts.setwatch_interval,
                                         opts.max_seconds)
               if opts.backend == "nftables" else
               setwatch.watching(topo.router, watch, opts.setwatch_interval, opts.max_seconds))
    with capture.capture(topo.router, gateway_topo.OUTSIDE_IF, topo.victim_addrs()
                         + [topo.router_inside4, topo.router_inside6], pcap), watcher:
        yield pcap, watch


def _sweep(lab: _Lab, sweep: Sweep, source: str, protection: bool) -> Row:
    topo = lab.topo
    run_dir = lab.outdir / ("protected" if protection else "unprotected") / sweep.name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    _reset(topo, lab.opts.backend)
    decisions: list[dict[str, object]] = []
    with _watched(lab, run_dir) as (pcap, watch):
        daemon = _daemon(lab, run_dir, sweep) if protection else None
        try:
            if daemon is not None:
                daemon.start(protect.ProtectContext(topo.router, run_dir, lab.sensor.eve_path,
                                                    None, backend=lab.opts.backend,
                                                    set_name=SET_NAME))
            time.sleep(SETTLE_S)
            run = gateway_scan.run(topo.scanner, sweep, source, gateway_topo.SCANNER_IF,
                                   topo.router_mac, run_dir)
            time.sleep(LATE_S)
        finally:
            if daemon is not None:
                daemon.stop()
                decisions = daemon.decisions()
                lab.result.notes.extend(daemon.notes)
    _reset(topo, lab.opts.backend)
    packets = [p for p in capture.read_pcap(pcap) if p.remote == source]
    events = setwatch.read_events(watch)
    return _row(lab, sweep, run, protection, packets, events, decisions)


def _row(lab: _Lab, sweep: Sweep, run: gateway_scan.SweepRun, protection: bool,
         packets: list[capture.WirePacket], events: list[dict[str, object]],
         decisions: list[dict[str, object]]) -> Row:
    topo, opts = lab.topo, lab.opts
    intervals = analysis.block_intervals(events, run.source)
    decided = [float(d["ts"]) for d in decisions if d.get("ip") == run.source]  # type: ignore[arg-type]
    th = _thresholds(lab, sweep)
    react = analysis.reaction(packets, intervals, min(decided) if decided else None,
                              opts.setwatch_interval, th.count, th.ports)
    # A network sweep also probes the router's inside address (it answers, all closed).
    if sweep.hosts:
        hosts = list(sweep.hosts)
    elif sweep.network:
        hosts = [topo.router_inside4, *topo.hosts4]
    else:
        hosts = [sweep.targets]
    servers = [*topo.servers4, *topo.hosts6[:topo.n_servers]]
    opened = opts.open_tcp if sweep.proto == "tcp" else opts.open_udp
    truth = gateway_scan.endpoints_of(hosts, sweep.ports, sweep.proto, servers, opened)
    return Row.of(sweep, run, protection, truth, packets, react, intervals,
                  window=th.window)


def run_gateway(opts: GatewayOptions) -> GatewayResult:
    """Build the gateway polygon, run the sweeps without and with protection, tear down."""
    clock = SystemClock()
    if opts.backend not in ("ipset", "nftables"):
        raise procs.LabError(f"backend must be ipset or nftables, got {opts.backend!r}")
    if not 0 < opts.slow_scale <= 1:
        raise procs.LabError(f"slow_scale must be in (0, 1], got {opts.slow_scale}")
    outdir = opts.outdir or Path(tempfile.mkdtemp(prefix="scanguard-gateway-"))
    outdir.mkdir(parents=True, exist_ok=True)
    extra = gateway_config.read_extra(opts.scanguard_config)
    result = GatewayResult(started=clock.now())
    t0 = time.monotonic()
    try:
        with procs.signals_raise(), \
                gateway_topo.build(opts.hosts, opts.servers, opts.prefix) as topo, \
                listeners.running(topo.servers, opts.open_tcp, opts.open_udp, True,
                                  opts.max_seconds,
                                  addrs=[*topo.servers4, *topo.hosts6[:topo.n_servers]]), \
                sensor.run_suricata(topo.router, gateway_topo.INSIDE_IF,
                                    [topo.net4, topo.net6]) as sen:
            sweeps = pick(default_sweeps(topo, opts.rate, opts.slow_scale), opts.sweeps)
            sweeps = [_bounded(s, opts.sweep_timeout) for s in sweeps]
            gateway_topo.add_scanner_addrs(
                topo, [_source(s, b + i) for b in (UNPROTECTED_BASE, PROTECTED_BASE)
                       for i, s in enumerate(sweeps)])
            lab = _Lab(opts, topo, sen, outdir, extra, result)
            result.options = _describe(opts, topo, sweeps, extra)
            for protection, base, on in ((False, UNPROTECTED_BASE, opts.unprotected),
                                         (True, PROTECTED_BASE, opts.protected)):
                if not on:
                    continue
                for i, sweep in enumerate(sweeps):
                    result.rows.append(_sweep(lab, sweep, _source(sweep, base + i), protection))
            result.notes.extend(sen.notes)
    finally:
        result.finished = clock.now()
        result.elapsed = round(time.monotonic() - t0, 1)
    return result


def _source(sweep: Sweep, n: int) -> str:
    """The scanner address of one scan: its own, in the family of its targets."""
    return f"{SCANNER6_PREFIX}{n}" if sweep.ipv6 else f"192.0.2.{n}"


def _bounded(sweep: Sweep, timeout: float) -> Sweep:
    from dataclasses import replace

    return replace(sweep, timeout=min(sweep.timeout, timeout))


def _describe(opts: GatewayOptions, topo: GatewayTopology, sweeps: list[Sweep],
              extra: gateway_config.Table) -> dict[str, object]:
    th = opts.thresholds
    return {
        "victim_net": [topo.net4, topo.net6], "hosts": opts.hosts, "servers": topo.servers4,
        "servers6": topo.hosts6[:topo.n_servers], "open_tcp": list(opts.open_tcp),
        "open_udp": list(opts.open_udp),
        "backend": opts.backend, "rate_pps": opts.rate,
        "detect": {"count": th.count, "ports": th.ports, "window": th.window, "ttl": th.ttl,
                   **gateway_config.detect_keys(extra)},
        "scanguard_config": str(opts.scanguard_config) if opts.scanguard_config else None,
        "slow_scale": opts.slow_scale,
        "slow_time_base": (f"scan-delay {60.0 * opts.slow_scale:g}s stands for 60 s; "
                           f"window {th.window * opts.slow_scale:g}s stands for "
                           f"{th.window:g}s; slow window {th.slow_window * opts.slow_scale:g}s "
                           f"stands for {th.slow_window:g}s"),
        "sweeps": {s.name: s.describe() for s in sweeps},
    }
