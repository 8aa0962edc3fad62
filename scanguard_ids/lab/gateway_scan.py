"""The gateway lab's scanners: masscan, zmap and nmap sweeps, and what each one learned.

A :class:`Sweep` says what to scan (tool, protocol, ports, targets, pace); :func:`argv`
turns it into the tool's command line (the one place to adjust when a tool's CLI
differs), :func:`run` runs it in the scanner namespace, bounded in time, and the parsers
turn the tool's own output into :class:`Endpoint` records: the (host, port) pairs the
scanner *learned*, open or closed. Parsers are pure and tested on sample outputs.

Tool facts this relies on (Debian's masscan 1.3, zmap 2.1, nmap 7):

- masscan and zmap bypass the kernel: inside a namespace they must be told the next
  hop's MAC (masscan ``--router-mac``, zmap ``-G``) and the source address (masscan
  ``--adapter-ip``, zmap ``-S``). masscan reports closed ports only with ``--show closed``.
- zmap's default blacklist excludes the documentation ranges: it gets an empty one (``-b``).
  Its default output filter keeps successes (SYN-ACKs) only; ``success = 0 || success = 1``
  keeps RSTs too (zmap 2.1.1 rejects an empty filter; ``repeat = 0`` alone still drops them).
- nmap sweeps use ``-n -Pn`` (no DNS, no host discovery: every host of the network is
  probed) and ``-S``/``-e`` for the per-scan source address.
"""

from __future__ import annotations

import csv
import io
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scanguard_ids.lab import procs
from scanguard_ids.lab.netns import Netns, check_doc_address

log = logging.getLogger(__name__)

TOOLS = ("masscan", "zmap", "nmap")
LEARNED = ("open", "closed")


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    host: str
    port: int
    proto: str  # tcp | udp
    state: str  # open | closed


@dataclass(frozen=True, slots=True)
class Sweep:
    """One scan of the lab: ``targets`` is a network (CIDR) or one host; ``hosts``, when
    given, are the addresses actually listed to the tool (an IPv6 /64 cannot be swept)."""

    name: str
    tool: str
    proto: str
    ports: tuple[int, ...]
    targets: str
    rate: int = 2000  # packets per second (masscan, zmap; nmap: --max-rate)
    scan_delay: float = 0.0  # nmap --scan-delay, seconds (the slow scan)
    wait: float = 2.0  # masscan --wait / zmap cooldown, seconds after the last probe
    timeout: float = 120.0  # hard bound of the whole run
    hosts: tuple[str, ...] = ()

    @property
    def ipv6(self) -> bool:
        return ":" in self.targets

    @property
    def network(self) -> bool:
        return "/" in self.targets

    def describe(self) -> str:
        pace = f"scan-delay {self.scan_delay:g}s" if self.scan_delay else f"{self.rate} pps"
        ports = ",".join(map(str, self.ports))
        where = f"{len(self.hosts)} hosts of {self.targets}" if self.hosts else self.targets
        return f"{self.tool} {self.proto} port(s) {ports} of {where}, {pace}"


@dataclass(slots=True)
class SweepRun:
    sweep: Sweep
    source: str
    argv: list[str]
    endpoints: set[Endpoint] = field(default_factory=set)
    started: float = 0.0  # wall clock
    elapsed: float = 0.0
    exit: int | None = None
    stderr_tail: str = ""

    def learned(self, state: str) -> set[Endpoint]:
        return {e for e in self.endpoints if e.state == state}


def argv(sweep: Sweep, source: str, ifname: str, router_mac: str, out: Path,
         blacklist: Path) -> list[str]:
    """The command line of ``sweep`` sent from ``source`` out of ``ifname`` (pure)."""
    check_doc_address(source)
    check_doc_address(sweep.targets)
    for host in sweep.hosts:
        check_doc_address(host)
    if sweep.hosts and sweep.tool != "nmap":
        raise procs.LabError(f"{sweep.tool}: sweeps a network, not a host list")
    ports = ",".join(map(str, sweep.ports))
    if sweep.tool == "masscan":
        spec = ports if sweep.proto == "tcp" else ",".join(f"U:{p}" for p in sweep.ports)
        return ["masscan", sweep.targets, "-p", spec, "--rate", str(sweep.rate),
                "--wait", str(max(0, round(sweep.wait))), "-e", ifname, "--adapter-ip", source,
                "--router-mac", router_mac, "--show", "closed", "-oL", str(out)]
    if sweep.tool == "zmap":
        if sweep.proto != "tcp" or len(sweep.ports) != 1:
            raise procs.LabError("zmap sweeps one TCP port (tcp_synscan)")
        return ["zmap", "-p", ports, "-i", ifname, "-S", source, "-G", router_mac,
                "-b", str(blacklist), "-r", str(sweep.rate), "-c", str(max(1, round(sweep.wait))),
                "-M", "tcp_synscan", "-O", "csv", "-f", "saddr,sport,classification,success,repeat",
                "--output-filter", "success = 0 || success = 1", "-o", str(out), "--disable-syslog",
                "--sender-threads", "1", sweep.targets]
    if sweep.tool == "nmap":
        pace = (["--scan-delay", f"{sweep.scan_delay:g}s", "--max-retries", "0"]
                if sweep.scan_delay else
                ["-T4", "--max-retries", "1", "--max-rate", str(sweep.rate),
                 "--max-rtt-timeout", "300ms"])
        flags = ["-sS" if sweep.proto == "tcp" else "-sU"] + (["-6"] if sweep.ipv6 else [])
        return ["nmap", "-n", "-Pn", *flags, "-p", ports, "-S", source, "-e", ifname, *pace,
                "--reason", "-oX", str(out), *(sweep.hosts or (sweep.targets,))]
    raise procs.LabError(f"unknown scanner {sweep.tool!r}: one of {', '.join(TOOLS)}")


def parse_masscan(text: str) -> set[Endpoint]:
    """masscan ``-oL``: ``<state> <proto> <port> <ip> <ts>`` lines (``#`` comments)."""
    out: set[Endpoint] = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] in LEARNED and parts[2].isdigit():
            out.add(Endpoint(parts[3], int(parts[2]), parts[1], parts[0]))
    return out


def parse_zmap(text: str, port: int) -> set[Endpoint]:
    """zmap CSV with ``saddr,sport,classification,success``: synack = open, rst = closed."""
    out: set[Endpoint] = set()
    for row in csv.DictReader(io.StringIO(text)):
        cls = row.get("classification", "")
        state = "open" if cls == "synack" else "closed" if cls == "rst" else ""
        if state and row.get("saddr"):
            sport = row.get("sport") or ""
            out.add(Endpoint(row["saddr"], int(sport) if sport.isdigit() else port, "tcp", state))
    return out


def parse_nmap(text: str) -> set[Endpoint]:
    """nmap ``-oX``: every host's ports in state open or closed (``extraports`` expanded
    from ``extrareasons``, whose ``ports`` attribute lists them)."""
    from scanguard_ids.lab.scan import parse_portspec

    out: set[Endpoint] = set()
    if not text.strip():
        return out
    try:
        root = ET.fromstring(text)
    except ET.ParseError:  # an nmap stopped by its bound leaves the XML unfinished
        return out
    for host in root.iterfind("host"):
        addr = next((a.get("addr", "") for a in host.iterfind("address")
                     if a.get("addrtype") in ("ipv4", "ipv6")), "")
        for elem in host.iterfind("ports/port"):
            st = elem.find("state")
            state = st.get("state", "") if st is not None else ""
            if state in LEARNED:
                out.add(Endpoint(addr, int(elem.get("portid", "0")),
                                 elem.get("protocol", ""), state))
        for extra in host.iterfind("ports/extraports"):
            state = extra.get("state", "")
            if state not in LEARNED:
                continue
            for why in extra.iterfind("extrareasons"):
                for num in parse_portspec(why.get("ports", "")):
                    out.add(Endpoint(addr, num, why.get("proto", ""), state))
    return out


def parse(sweep: Sweep, text: str) -> set[Endpoint]:
    if sweep.tool == "masscan":
        return parse_masscan(text)
    if sweep.tool == "zmap":
        return parse_zmap(text, sweep.ports[0])
    return parse_nmap(text)


def run(scanner: Netns, sweep: Sweep, source: str, ifname: str, router_mac: str,
        workdir: Path) -> SweepRun:
    """Run ``sweep`` in ``scanner`` (bounded by ``sweep.timeout``) and parse its output."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"{sweep.name}.out"
    out.unlink(missing_ok=True)
    blacklist = workdir / "zmap-empty-blacklist.conf"
    blacklist.write_text("")
    cmd = argv(sweep, source, ifname, router_mac, out, blacklist)
    res = SweepRun(sweep, source, cmd, started=time.time())
    t0 = time.monotonic()
    log.info("sweep start name=%s source=%s argv=%s", sweep.name, source, " ".join(cmd))
    try:
        done = procs.run(scanner.argv(cmd), timeout=sweep.timeout, check=False)
        res.exit, res.stderr_tail = done.returncode, done.stderr.strip()[-500:]
    except procs.LabError as exc:  # the time bound: keep what the tool wrote so far
        res.stderr_tail = str(exc)
    res.elapsed = time.monotonic() - t0
    text = out.read_text(errors="replace") if out.exists() else ""
    res.endpoints = parse(sweep, text)
    log.info("sweep done name=%s exit=%s elapsed=%.1f open=%d closed=%d", sweep.name, res.exit,
             res.elapsed, len(res.learned("open")), len(res.learned("closed")))
    return res


def endpoints_of(hosts: Iterable[str], ports: Sequence[int], proto: str,
                 open_hosts: Iterable[str], open_ports: Iterable[int]) -> set[Endpoint]:
    """The truth: every probed (host, port) and its real state (pure)."""
    servers, opened = set(open_hosts), set(open_ports)
    return {Endpoint(h, p, proto, "open" if h in servers and p in opened else "closed")
            for h in hosts for p in ports}
