"""`scanguard lab --fleet`: does a block at one host protect the others?

Three victim hosts (:mod:`scanguard_ids.lab.fleet_lab_topo`), each with its own Suricata and
its own ``scanguard run`` (ipset in its own namespace), one Redis. The scanner nmaps host a,
then host b, then host c (the same ports each time). Run twice: with every daemon in one
fleet (``--fleet unix://...``), and with each daemon alone (the baseline). Reported per host:
how many ports answered the scan (open or closed in nmap's view: a SYN-ACK or RST reached
the scanner) and, for the fleet run, when the scanner's address entered that host's set
relative to host a's set and to host a's decision (propagation latency; each host's set is
watched every ``setwatch_interval`` by :mod:`scanguard_ids.lab.setwatch`).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scanguard_ids.lab import fleet_lab_topo, procs, protect, scan, sensor, setwatch
from scanguard_ids.lab.fleet_lab_topo import SCANNER4, FleetHost, FleetTopology

log = logging.getLogger(__name__)

TIMING: tuple[str, ...] = ("-T4", "--max-retries", "1", "--min-rate", "1000",
                           "--host-timeout", "60s")
BLOCK_WAIT_S = 10.0  # for host a's own block after its scan
SPREAD_WAIT_S = 5.0  # for the other hosts' sets after host a's block


@dataclass(slots=True)
class FleetLabOptions:
    hosts: int = 3
    ports: int = 100  # 1..N scanned on every host
    proto: str = "tcp"
    ttl: int = 300
    baseline: bool = True  # also run with every daemon alone
    setwatch_interval: float = 0.002
    outdir: Path | None = None
    prefix: str = "sgf"  # of the namespaces' names


@dataclass(slots=True)
class HostRow:
    mode: str  # "fleet" | "alone"
    host: str
    addr: str
    order: int  # 1 = scanned first
    scanned: int
    answered: int  # open + closed in nmap's view
    blocked: bool  # the scanner ended up in this host's set
    decided_by: str  # node of the journaled block ("" = this host, "-" = no block)
    after_a_set_ms: float | None = None  # in this host's set - in host a's set
    after_a_decision_ms: float | None = None  # in this host's set - host a's decision


@dataclass(slots=True)
class FleetLabResult:
    opts: dict[str, object]
    rows: list[HostRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"opts": self.opts, "rows": [asdict(r) for r in self.rows], "notes": self.notes}


@dataclass(slots=True)
class _Node:
    host: FleetHost
    sensor: sensor.Sensor
    protector: protect.CommandProtector
    watch: Path
    ctx: protect.ProtectContext


def _first_add(path: Path, ip: str) -> float | None:
    ts = [float(e["t"]) for e in setwatch.read_events(path)  # type: ignore[arg-type]
          if e.get("event") == "add" and str(e.get("ip", "")).split("/", 1)[0] == ip]
    return min(ts) if ts else None


def _journal_block(node: _Node) -> dict[str, object] | None:
    rows = [d for d in node.protector.decisions() if d.get("ip") == SCANNER4]
    return rows[0] if rows else None


def _wait_add(node: _Node, limit: float) -> float | None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        t = _first_add(node.watch, SCANNER4)
        if t is not None:
            return t
        time.sleep(0.02)
    return None


def _protector(url: str | None, name: str) -> protect.CommandProtector:
    def argv(ctx: protect.ProtectContext) -> list[str]:
        extra = ["--fleet", url, "--node", name] if url else []
        return [*protect.scanguard_argv(ctx), *extra]

    return protect.CommandProtector(name=f"scanguard-{name}", argv_for=argv,
                                    journal_for=lambda ctx: ctx.workdir / "decisions.jsonl",
                                    ready_marker="scanguard running")


def _wait_fleet(nodes: list[_Node], timeout: float = 15.0) -> None:
    """Every daemon has synced with Redis (its log says so)."""
    def ready() -> bool:
        return all(n.protector._log is not None and "fleet connected"
                   in n.protector._log.read_text(errors="replace") for n in nodes)
    procs.wait_for("fleet daemons connected", ready, timeout)


def _run_mode(topo: FleetTopology, sensors: list[sensor.Sensor], url: str | None,
              opts: FleetLabOptions, workdir: Path, result: FleetLabResult) -> None:
    mode = "fleet" if url else "alone"
    nodes: list[_Node] = []
    stack = ExitStack()
    try:
        for h, s in zip(topo.hosts, sensors, strict=True):
            protect.reset_victim(h.ns)
            d = workdir / f"{mode}-{h.name}"
            d.mkdir()
            ctx = protect.ProtectContext(h.ns, d, s.eve_path, None, opts.ttl, "paper",
                                         set_name=protect.SET_NAME)
            watch = stack.enter_context(
                setwatch.watching(h.ns, d / "setwatch.jsonl", opts.setwatch_interval, 900))
            p = _protector(url, h.name)
            nodes.append(_Node(h, s, p, watch, ctx))
            p.start(ctx)
        if url:
            _wait_fleet(nodes)
        ports = list(range(1, opts.ports + 1))
        a = nodes[0]
        a_set = a_dec = None
        for order, node in enumerate(nodes, 1):
            res = scan.run_scan(topo.scanner, node.host.addr, opts.proto, ports, TIMING,
                                timeout=180)
            counts = res.paper_counts(ports)
            t_add = _wait_add(node, BLOCK_WAIT_S if order == 1 else 0.5)
            if order == 1:
                a_set = t_add
                blk = _journal_block(a)
                a_dec = float(blk["ts"]) if blk else None  # type: ignore[arg-type]
                if url and a_set is not None:  # the others' sets before their scans
                    for other in nodes[1:]:
                        _wait_add(other, SPREAD_WAIT_S)
            blk = _journal_block(node)
            row = HostRow(mode, node.host.name, node.host.addr, order, len(ports),
                          counts["open"] + counts["closed"], t_add is not None,
                          "-" if blk is None else str(blk.get("node") or node.host.name))
            if order > 1 and t_add is not None:
                if a_set is not None:
                    row.after_a_set_ms = round((t_add - a_set) * 1e3, 2)
                if a_dec is not None:
                    row.after_a_decision_ms = round((t_add - a_dec) * 1e3, 2)
            result.rows.append(row)
            log.info("fleet lab mode=%s host=%s answered=%d blocked=%s", mode, node.host.name,
                     row.answered, row.blocked)
    finally:
        for n in nodes:
            n.protector.stop()
            result.notes.extend(f"{mode}: {x}" for x in n.protector.notes)
        stack.close()
        for h in topo.hosts:
            protect.reset_victim(h.ns)


def run_fleet_lab(opts: FleetLabOptions) -> FleetLabResult:
    for tool in ("nmap", "suricata", "ipset", "redis-server"):
        if shutil.which(tool) is None:
            raise procs.LabError(f"{tool} not installed")
    if not 2 <= opts.ports <= 65_535:
        raise procs.LabError("ports must be 2..65535")
    result = FleetLabResult({"hosts": opts.hosts, "ports": opts.ports, "proto": opts.proto,
                             "ttl": opts.ttl, "setwatch_interval": opts.setwatch_interval})
    workdir = Path(tempfile.mkdtemp(prefix="scanguard-fleetlab-"))
    workdir.chmod(0o755)
    try:
        with procs.signals_raise(), fleet_lab_topo.build(opts.hosts, opts.prefix) as topo, \
                fleet_lab_topo.redis_server(workdir) as url, ExitStack() as stack:
            sensors = [stack.enter_context(sensor.run_suricata(
                h.ns, fleet_lab_topo.HOST_IF, [f"{h.addr}/32"],
                keep_dir=opts.outdir / f"suricata-{h.name}" if opts.outdir else None))
                for h in topo.hosts]
            _run_mode(topo, sensors, url, opts, workdir, result)
            if opts.baseline:
                _run_mode(topo, sensors, None, opts, workdir, result)
        if opts.outdir is not None:
            opts.outdir.mkdir(parents=True, exist_ok=True)
            (opts.outdir / "fleet-lab.json").write_text(to_json(result) + "\n")
            (opts.outdir / "fleet-lab.txt").write_text(summary(result) + "\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


# -- report ------------------------------------------------------------------------------------


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def summary(result: FleetLabResult) -> str:
    o = result.opts
    lines = [f"Fleet lab: {o['hosts']} hosts, nmap {o['proto']} ports 1-{o['ports']} at each "
             "in turn (a first), one Redis",
             "",
             f"{'mode':<6} {'host':<4} {'order':>5} {'answered':>9} {'blocked':>7} "
             f"{'decided by':>10} {'set after a (ms)':>16} {'after a decided (ms)':>20}"]
    for r in result.rows:
        lines.append(f"{r.mode:<6} {r.host:<4} {r.order:>5} {r.answered:>5}/{r.scanned:<3} "
                     f"{'yes' if r.blocked else 'no':>7} {r.decided_by:>10} "
                     f"{_ms(r.after_a_set_ms):>16} {_ms(r.after_a_decision_ms):>20}")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def to_json(result: FleetLabResult) -> str:
    return json.dumps(result.to_dict(), indent=2)
