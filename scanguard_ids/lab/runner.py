"""`run_lab(opts) -> LabResult`: the polygon of the paper, end to end.

topology -> listeners -> Suricata (+ its alert latency) -> unprotected scans ->
protected scans (protector started fresh for each, victim reset after each) ->
latency trials -> teardown. Every process is bounded in time and stopped by PID; the
namespaces go however the run ends (exception, Ctrl-C, SIGTERM).

Scanner addresses: nmap scans from 192.0.2.2 (the scanner's primary address) in every
run; helper traffic uses secondary addresses so it never counts against the scanner:
192.0.2.8 primes the EVE socket after a protector start, 192.0.2.9 measures the
sensor, 192.0.2.10+ are one fresh "attacker" per reaction-latency trial.

Use::

    opts = LabOptions(sizes=PAPER_SIZES, delay_ms=10, eve_transport="socket")
    result = run_lab(opts)                      # ~7 min on 2 cores, see report.summary
    report.write_outputs(result, Path("lab-out"))  # result.json, table.txt, figures.png

Measured here (2 cores, 10 ms each way, socket transport): unprotected 65 536-port
scans take ~7.5 s (TCP and UDP), protected ones ~131 s (3 probes per silent port at the
1000/s floor); the whole PAPER_SIZES sweep with 20 latency trials ~6.5 min.

``backend`` "sdn-faucet" / "sdn-openflow" (the paper's Table II, its SDN module): the
topology gets an OVS switch at the victim's edge (under Faucet, or standalone), the
daemon blocks there, and the block times come from polling the switch's flow table
(:mod:`flowwatch`) instead of the victim's ipsets (:mod:`setwatch`); between scans the
switch is emptied (protect.reset_switch). Namespaces are then named
``<prefix>f...``/``<prefix>o...`` so that such a run is told apart from an ipset one.

``fast_path`` (ipset backend): after the response-only protected scans, the same scans
again with the daemon's kernel fast path in block mode (docs/fast-path.md); their rows
carry ``fast_path=True``. The block watch then also polls the fast path's ``blocked``
sets, so a block's time is the kernel's own drop, not the daemon's adoption (<= 1 s
later); each run records which addresses the kernel blocked and which the daemon
journaled (:func:`_fast_path_check`).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scanguard_ids.clock import Clock, SystemClock
from scanguard_ids.lab import (
    analysis,
    capture,
    flowwatch,
    listeners,
    ports,
    probe,
    procs,
    protect,
    scan,
    sensor,
    sensorbench,
    setwatch,
)
from scanguard_ids.lab.netns import Netns
from scanguard_ids.lab.report import LabResult, RunResult
from scanguard_ids.lab.topology import Topology, build, ping

log = logging.getLogger(__name__)

PAPER_SIZES = (100, 1_000, 10_000, 65_536)
#: backend -> the lab switch's controller (None: no switch) and the namespace prefix suffix.
SWITCH = {"ipset": (None, ""), "sdn-faucet": ("faucet", "f"), "sdn-openflow": ("none", "o")}
PRIMER4 = "192.0.2.8"
BENCH4 = "192.0.2.9"
TRIAL_BASE = 10  # 192.0.2.10 ...
MAX_TRIALS = 100
BLOCK_WAIT_S = 10.0  # sdn: how long a decided block may take to reach the switch
FASTPATH_ADOPT_WAIT_S = 3.0  # the daemon polls the fast path's sets once a second


@dataclass(slots=True)
class LabOptions:
    sizes: tuple[int, ...] = (65_536,)  # ports per scan (N); Table I uses the largest
    port_order: str = "numeric"  # N ports = 1..N (all 65 536 incl. 0) | "frequency": top N
    protos: tuple[str, ...] = ("tcp", "udp")
    unprotected: bool = True
    protected: bool = True
    delay_ms: float = 0.0  # each way, via the delaying forwarder
    open_tcp: int = 100
    open_udp: int = 100
    timing: tuple[str, ...] = scan.DEFAULT_TIMING
    scan_timeout: float = 1_800.0
    eve_transport: str = "file"  # how the protector reads EVE: file | socket
    backend: str = "ipset"  # where scanguard blocks: ipset | sdn-faucet | sdn-openflow
    set_name: str = protect.SET_NAME  # ipset set name of the protected runs
    tuning: sensor.Tuning = field(default_factory=sensor.Tuning)
    rules: Path | None = None  # default: rules/scanguard.rules (fallback if missing)
    protector: protect.Protector | None = None  # default: the real `scanguard run`
    ttl: int = 300
    policy: str = "paper"  # scanguard run --policy
    fast_path: protect.FastPathArgs | None = None  # also scan with the kernel fast path
    on_protect: Callable[[Path], None] | None = None  # told each protected run's control socket
    sensor_probes: int = 50  # paced probes to measure Suricata's alert latency (>= 1)
    latency_trials: int = 0  # extra reaction-latency trials, one fresh address each
    setwatch_interval: float = 0.002  # poll interval of the block watcher (ipset or switch)
    settle: float = 1.0  # seconds of quiet before each scan
    outdir: Path | None = None  # artifacts; default: a new temp dir
    keep_pcaps: bool = False
    keep_eve: bool = False
    ipv6_listeners: bool = True
    prefix: str = "sg"
    max_seconds: float = 4 * 3600.0  # lifetime bound of every helper process


@dataclass(slots=True)
class _Lab:
    """What run_lab holds while it runs (not part of the API)."""

    opts: LabOptions
    topo: Topology
    sensor: sensor.Sensor
    outdir: Path
    open_ports: dict[str, list[int]]
    ranked: dict[str, list[int]]
    clock: Clock
    eve_socket: Path | None
    result: LabResult


def scan_ports(ranked: list[int], n: int) -> list[int]:
    """The N ports of a scan: the first N of an ordering of all 65 536 ports."""
    return ranked[:n]


def full_ranking(proto: str, order: str = "numeric",
                 services: Path = ports.NMAP_SERVICES) -> list[int]:
    """All 65 536 ports, port 0 last (so N < 65 536 never includes it).

    ``numeric``: 1, 2, ... 65535 (N ports = ``-p1-N``, the full scan ``-p0-65535``);
    ``frequency``: nmap-services order (``--top-ports N``), then unlisted ports ascending.
    """
    if order == "numeric":
        return [*range(1, 65_536), 0]
    if order != "frequency":
        raise procs.LabError(f"port_order must be numeric or frequency, got {order!r}")
    with open(services, encoding="utf-8", errors="replace") as fh:
        listed = [p for p in ports.by_frequency(ports.parse_services(fh), proto) if p != 0]
    seen = set(listed)
    return listed + [p for p in range(1, 65_536) if p not in seen] + [0]


def _add_scanner_addrs(scanner: Netns, ifname: str, addrs: list[str]) -> None:
    for addr in addrs:
        scanner.run(["ip", "addr", "add", f"{addr}/24", "dev", ifname], check=False)


def _sensor_latency(lab: _Lab) -> None:
    """Measure wire -> EVE latency with paced probes from BENCH4; proves the rules fire."""
    topo = lab.topo
    closed = [p for p in range(40_000, 50_000) if p not in lab.open_ports["tcp"]]
    closed = closed[:max(1, lab.opts.sensor_probes) + 1]
    if lab.eve_socket is not None:
        src, kind = lab.eve_socket, "socket"
    else:
        src, kind = lab.sensor.eve_path, "file"

    def send(ports: list[int]) -> object:
        return probe.send(topo.scanner, topo.victim4, BENCH4, tcp=ports, interval=0.02)

    lat = sensorbench.measure(src, kind, send, closed if kind == "socket" else closed[1:])
    if lat.n == 0:
        raise procs.LabError("Suricata raised no alert for probes of closed ports: "
                             f"rules {lab.sensor.rules_path} do not fire\n{lab.sensor.log_tail()}")
    lab.result.sensor = {"tuning": lab.sensor.tuning.describe(), "transport": kind,
                         "alert_latency": lat.to_dict(), "rules": str(lab.sensor.rules_path),
                         "ready_after_s": round(lab.sensor.ready_after, 2),
                         "notes": list(lab.sensor.notes)}
    log.info("sensor alert latency transport=%s p50_ms=%.2f p99_ms=%.2f n=%d", kind,
             lat.p50_ms, lat.p99_ms, lat.n)


def _prime_socket(lab: _Lab, before: int) -> None:
    """After a protector (re)binds the EVE socket, make Suricata reconnect before the scan.

    Suricata drops EVE lines while its socket is disconnected and retries the connect
    at most every few hundred ms, on a write; probes from PRIMER4 cause those writes.
    """
    deadline = time.monotonic() + 10
    port = 20_000
    while sensor.reconnects(lab.sensor) <= before and time.monotonic() < deadline:
        probe.send(lab.topo.scanner, lab.topo.victim4, PRIMER4, tcp=[port])
        port += 1
        time.sleep(0.2)
    if sensor.reconnects(lab.sensor) <= before:
        lab.result.notes.append("EVE socket: no reconnect seen after the protector started")


def _truth(lab: _Lab, proto: str, scanned: list[int]) -> tuple[set[int], set[int]]:
    opened = set(lab.open_ports[proto]) & set(scanned)
    return opened, set(scanned) - opened


def _run_result(lab: _Lab, res: scan.ScanResult, protection: bool, scanned: list[int]) -> RunResult:
    opened, closed = _truth(lab, res.proto, scanned)
    found_open, found_closed = res.ports_in("open"), res.ports_in("closed")
    states: dict[str, int] = {}
    for port in scanned:
        st = res.states.get(port, "missing")
        states[st] = states.get(st, 0) + 1
    return RunResult(
        protection=protection, proto=res.proto, n_ports=len(scanned),
        counts=res.paper_counts(scanned), nmap_states=states, truth_open=len(opened),
        correct_open=sorted(found_open & opened), correct_closed=len(found_closed & closed),
        wrong=len(found_open - opened) + len(found_closed & opened),
        duration=round(res.elapsed, 2), nmap_argv=res.argv, reasons=res.reasons)


def _nmap(lab: _Lab, proto: str, scanned: list[int]) -> scan.ScanResult:
    return scan.run_scan(lab.topo.scanner, lab.topo.victim4, proto, scanned, lab.opts.timing,
                         timeout=lab.opts.scan_timeout, clock=lab.clock)


def _unprotected(lab: _Lab, proto: str, n: int) -> None:
    scanned = scan_ports(lab.ranked[proto], n)
    _reset(lab)
    time.sleep(lab.opts.settle)
    res = _nmap(lab, proto, scanned)
    lab.result.runs.append(_run_result(lab, res, False, scanned))


def _reset(lab: _Lab) -> None:
    """No block and no connection state left from an earlier scan (victim and switch)."""
    protect.reset_victim(lab.topo.victim)
    if lab.topo.switch is not None:
        protect.reset_switch(lab.topo.switch)


def _block_watch(lab: _Lab, out: Path,
                 fast_path: bool = False) -> contextlib.AbstractContextManager[Path]:
    """Who timestamps the blocks: the victim's ipsets (and the fast path's sets), or the
    switch's drop flows."""
    opts, topo = lab.opts, lab.topo
    if topo.switch is not None and topo.switch_ns is not None:
        return flowwatch.watching(topo.switch_ns, topo.switch.bridge.target, out,
                                  opts.setwatch_interval, opts.max_seconds)
    return setwatch.watching(topo.victim, out, opts.setwatch_interval, opts.max_seconds,
                             nft_table=protect.FASTPATH_TABLE if fast_path else None)


@contextlib.contextmanager
def _protected_session(lab: _Lab, run_dir: Path, fast_path: bool = False
                       ) -> Iterator[tuple[Path, Path, protect.Protector]]:
    """Capture + set watch + a freshly started protector; reset the victim afterwards."""
    opts, topo = lab.opts, lab.topo
    protector = opts.protector or protect.scanguard_protector()
    ctx = protect.ProtectContext(
        topo.victim, run_dir, lab.sensor.eve_path, lab.eve_socket, opts.ttl, opts.policy,
        backend=opts.backend, set_name=opts.set_name,
        sdn=topo.switch.backend_kwargs() if topo.switch is not None else {},
        fast_path=opts.fast_path if fast_path else None)
    _reset(lab)
    pcap = run_dir / "capture.pcap"
    watch = run_dir / ("flowwatch.jsonl" if topo.switch is not None else "setwatch.jsonl")
    with capture.capture(topo.victim, topo.victim_if, [topo.victim4, topo.victim6], pcap), \
            _block_watch(lab, watch, fast_path):
        reconnects = sensor.reconnects(lab.sensor)
        try:
            protector.start(ctx)
            if opts.on_protect is not None:
                opts.on_protect(run_dir / "control.sock")
            if lab.eve_socket is not None:
                _prime_socket(lab, reconnects)
            yield pcap, watch, protector
            time.sleep(0.5)  # late EVE lines and blocks land in the capture / watch
            _await_blocks(watch, protector, BLOCK_WAIT_S if topo.switch is not None else 0.0)
            if fast_path:
                _await_adoption(watch, protector, FASTPATH_ADOPT_WAIT_S)
        finally:
            protector.stop()
            notes = getattr(protector, "notes", None)
            if isinstance(notes, list):
                lab.result.notes.extend(notes)
                notes.clear()
            _reset(lab)


def _await_blocks(watch: Path, protector: protect.Protector, limit: float,
                  also: str | None = None) -> None:
    """Wait (at most ``limit`` s) until every address the protector decided to block
    (and ``also``, decided or not yet) shows up in the block watch: a Faucet reload takes
    ~0.5 s or more, so a decision taken at the end of a session would otherwise be cut off
    by the protector's stop."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        decided = {str(d.get("ip")) for d in protector.decisions()}
        if also is not None:
            decided.add(also)
        seen = {str(e.get("ip", "")).split("/", 1)[0] for e in setwatch.read_events(watch)
                if e.get("event") == "add"}
        if decided <= seen:
            return
        time.sleep(0.05)


def fast_path_blocked(events: list[dict[str, object]]) -> set[str]:
    """Addresses that entered the fast path's own blocked sets (setwatch ``table:set``)."""
    prefix = f"{protect.FASTPATH_TABLE}:"
    return {str(e.get("ip", "")).split("/", 1)[0] for e in events
            if e.get("event") == "add" and str(e.get("set", "")).startswith(prefix)}


def _adopted(decisions: list[dict[str, object]]) -> set[str]:
    """Addresses with a block decision whose sensors include the fast path."""
    return {str(d.get("ip")) for d in decisions
            if "fast-path" in (d.get("sensors") or ())}  # type: ignore[operator]


def _await_adoption(watch: Path, protector: protect.Protector, limit: float) -> None:
    """Wait (at most ``limit`` s) until the daemon journaled every address the kernel's
    fast path blocked (it polls the set once a second)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        blocked = fast_path_blocked(setwatch.read_events(watch))
        if blocked <= {str(d.get("ip")) for d in protector.decisions()}:
            return
        time.sleep(0.1)


Analysis = tuple[analysis.Reaction, analysis.LeakReport, int]


def _analyse(lab: _Lab, run: RunResult | None, addr: str, packets: list[capture.WirePacket],
             events: list[dict[str, object]], decisions: list[dict[str, object]],
             found_open: set[int], proto: str) -> Analysis:
    mine = [p for p in packets if p.remote == addr]
    intervals = analysis.block_intervals(events, addr)
    decided = [float(d["ts"]) for d in decisions if d.get("ip") == addr]  # type: ignore[arg-type]
    reaction = analysis.reaction(mine, intervals, min(decided) if decided else None,
                                 lab.opts.setwatch_interval)
    leaks = analysis.leaks(found_open, proto, mine, intervals)
    if run is not None:
        run.reaction, run.leaks = reaction, leaks
        run.decisions, run.blocks = len(decided), len(intervals)
    return reaction, leaks, len(intervals)


def _protected(lab: _Lab, proto: str, n: int, fast_path: bool = False) -> None:
    scanned = scan_ports(lab.ranked[proto], n)
    run_dir = lab.outdir / f"{'fastpath' if fast_path else 'protected'}-{proto}-{n}"
    if run_dir.exists():  # a reused --out: start the protector from scratch (no old strikes)
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    time.sleep(lab.opts.settle)
    with _protected_session(lab, run_dir, fast_path) as (pcap, watch, protector):
        res = _nmap(lab, proto, scanned)
    run = _run_result(lab, res, True, scanned)
    lab.result.runs.append(run)
    events, decisions = setwatch.read_events(watch), protector.decisions()
    if fast_path:
        run.fast_path = True
        run.fp_blocked = sorted(fast_path_blocked(events))
        run.fp_adopted = sorted(_adopted(decisions) & set(run.fp_blocked))
        run.fp_journaled = sorted({str(d.get("ip")) for d in decisions}
                                  & set(run.fp_blocked))
    _, leaks, blocks = _analyse(lab, run, lab.topo.scanner4, capture.read_pcap(pcap),
                                events, decisions, res.ports_in("open"), proto)
    lab.result.block_count += blocks
    lab.result.leaks_after_block += len(leaks.after_block)
    if not lab.opts.keep_pcaps:
        pcap.unlink(missing_ok=True)


def _latency_trials(lab: _Lab) -> list[analysis.Reaction]:
    """Fresh addresses each probe 6 closed TCP ports one by one (20 ms apart); the
    threshold (3 responses, 2 ports) is met on the 3rd, the rest show the block."""
    n = min(lab.opts.latency_trials, MAX_TRIALS)
    if n <= 0:
        return []
    addrs = [f"192.0.2.{TRIAL_BASE + i}" for i in range(n)]
    _add_scanner_addrs(lab.topo.scanner, lab.topo.scanner_if, addrs)
    run_dir = lab.outdir / "latency-trials"
    run_dir.mkdir(parents=True, exist_ok=True)
    out: list[analysis.Reaction] = []
    with _protected_session(lab, run_dir) as (pcap, watch, protector):
        for i, addr in enumerate(addrs):
            base = 30_000 + 10 * i
            probe.send(lab.topo.scanner, lab.topo.victim4, addr, tcp=range(base, base + 6))
            # One trial at a time: the next one must not run into this one's block being
            # installed (a Faucet reload rewrites the switch's tables for ~0.5-1 s).
            _await_blocks(watch, protector, BLOCK_WAIT_S if lab.topo.switch else 1.0, addr)
    packets, events = capture.read_pcap(pcap), setwatch.read_events(watch)
    decisions = protector.decisions()
    for addr in addrs:
        reaction, _, _ = _analyse(lab, None, addr, packets, events, decisions, set(), "tcp")
        out.append(reaction)
    if not lab.opts.keep_pcaps:
        pcap.unlink(missing_ok=True)
    return out


def run_lab(opts: LabOptions, clock: Clock | None = None) -> LabResult:
    """Build the polygon, run the scans, analyse them, tear everything down."""
    clock = clock or SystemClock()
    if opts.eve_transport not in ("file", "socket"):
        raise procs.LabError(f"eve_transport must be file or socket, got {opts.eve_transport!r}")
    if opts.backend not in SWITCH:
        raise procs.LabError(f"backend must be one of {', '.join(SWITCH)}, got {opts.backend!r}")
    if opts.fast_path is not None and opts.backend != "ipset":
        raise procs.LabError("fast_path: the lab watches the fast path beside the ipset backend "
                             "only")
    controller, suffix = SWITCH[opts.backend]
    outdir = opts.outdir or Path(tempfile.mkdtemp(prefix="scanguard-lab-"))
    outdir.mkdir(parents=True, exist_ok=True)
    result = LabResult(started=clock.now())
    result.options = {"sizes": list(opts.sizes), "protos": list(opts.protos),
                      "port_order": opts.port_order, "delay_ms": opts.delay_ms,
                      "timing": list(opts.timing), "eve_transport": opts.eve_transport,
                      "open_tcp": opts.open_tcp, "open_udp": opts.open_udp, "ttl": opts.ttl,
                      "policy": opts.policy, "backend": opts.backend,
                      "fast_path": ({"burst": opts.fast_path.burst, "rate": opts.fast_path.rate}
                                    if opts.fast_path else None),
                      "outdir": str(outdir)}
    result.backend = opts.backend
    open_ports = {"tcp": ports.top_ports("tcp", opts.open_tcp),
                  "udp": ports.top_ports("udp", opts.open_udp)}
    ranked = {proto: full_ranking(proto, opts.port_order) for proto in ("tcp", "udp")}
    sizes = sorted(set(min(max(1, n), 65_536) for n in opts.sizes))
    sock_dir = Path(tempfile.mkdtemp(prefix="sglab-"))  # short path: sun_path is 108 bytes
    eve_socket = sock_dir / "eve.sock" if opts.eve_transport == "socket" else None
    try:
        with procs.signals_raise(), \
                build(opts.delay_ms, opts.prefix + suffix, opts.max_seconds, controller,
                      sock_dir / "sdn") as topo, \
                listeners.running(topo.victim, open_ports["tcp"], open_ports["udp"],
                                  opts.ipv6_listeners, opts.max_seconds), \
                sensor.run_suricata(topo.victim, topo.victim_if, [topo.victim4, topo.victim6],
                                    opts.rules, str(eve_socket) if eve_socket else None,
                                    opts.tuning,
                                    keep_dir=outdir / "suricata" if opts.keep_eve else None) as sen:
            _add_scanner_addrs(topo.scanner, topo.scanner_if, [PRIMER4, BENCH4])
            if topo.switch is not None:
                result.switch = _switch_info(topo, opts)
            stats = ping(topo, count=50, interval=0.02)
            result.delay = {"requested_ms": opts.delay_ms,
                            **(stats.to_dict() if stats else {"one_way_ms": None})}
            lab = _Lab(opts, topo, sen, outdir, open_ports, ranked, clock, eve_socket, result)
            _sensor_latency(lab)
            if opts.unprotected:
                for n in sizes:
                    for proto in opts.protos:
                        _unprotected(lab, proto, n)
            if opts.protected:
                result.protector = getattr(opts.protector, "name", "") or "scanguard"
                for n in sizes:
                    for proto in opts.protos:
                        _protected(lab, proto, n)
                if opts.fast_path is not None:
                    result.fast_path = {"mode": "block", "burst": opts.fast_path.burst,
                                        "rate": opts.fast_path.rate}
                    for n in sizes:
                        for proto in opts.protos:
                            _protected(lab, proto, n, fast_path=True)
                result.latency_trials = _latency_trials(lab)
                scans = [r.reaction for r in result.runs if r.reaction and not r.fast_path]
                result.reaction_first = analysis.LatencyStats.of(
                    [r.from_first_ms for r in scans])
                result.reaction_trigger = analysis.LatencyStats.of(
                    [r.from_trigger_ms for r in scans + result.latency_trials])
            result.notes.extend(sen.notes)
    finally:
        if controller is not None:
            _keep_switch_files(sock_dir / "sdn", outdir / "switch")
        shutil.rmtree(sock_dir, ignore_errors=True)
        result.finished = clock.now()
    return result


def _switch_info(topo: Topology, opts: LabOptions) -> dict[str, object]:
    sw = topo.switch
    assert sw is not None and topo.switch_ns is not None
    return {"backend": sw.backend(), "controller": "faucet" if sw.faucet else "none",
            "namespace": topo.switch_ns.name, "target": sw.bridge.target,
            "placement": "victim's edge; the delaying path, if any, between switch and scanner",
            "block_time": "first flow-table poll (OpenFlow flow-stats over the bridge's "
                          "mgmt socket) showing a drop flow for the source address",
            "poll_interval_ms": opts.setwatch_interval * 1000.0}


#: What is worth keeping from the switch's work dir (logs, Faucet's config, the ACL).
_SWITCH_FILES = ("*.log", "*.yaml")
_MAX_KEEP = 5_000_000


def _keep_switch_files(src: Path, dst: Path) -> None:
    """Copy the switch's logs and configs out of the temp dir before it goes."""
    if not src.is_dir():
        return
    for pattern in _SWITCH_FILES:
        for path in src.rglob(pattern):
            with contextlib.suppress(OSError):
                if path.is_file() and path.stat().st_size <= _MAX_KEEP:
                    target = dst / path.relative_to(src)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
