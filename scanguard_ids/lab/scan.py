"""Real nmap scans from the scanner namespace, and a parser for nmap's XML output.

State mapping to the paper's three columns (Table I):

=================  ==========  =====================================================
nmap state          paper       why
=================  ==========  =====================================================
open                open        SYN-ACK (TCP) / any UDP reply
closed              closed      RST (TCP) / ICMP port unreachable (UDP)
filtered            filtered    no answer after the retries, or an ICMP error other
                                than port-unreachable
open|filtered       filtered    UDP without any answer: nmap cannot tell; the paper
                                calls this "undefined (filtered)"
closed|filtered     filtered    (idle scan only) undefined
unfiltered          filtered    (ACK scan only) open or closed unknown
=================  ==========  =====================================================

Timing (``DEFAULT_TIMING``): ``-T4 --max-retries 2 --min-rate 1000``, the comparison
setting of the issue. A default nmap run is ``-T3`` with up to 10 retries and no rate
floor: it backs off on every unanswered probe, so a protected 65 536-port scan (nothing
answers after the block) and any UDP scan against Linux's ICMP rate limit take hours.
With the floor and 2 retries an all-silent 65 536-port scan costs at most
3 x 65 536 probes at >= 1000/s. ``-n -Pn`` skip DNS and host discovery (a blocked host
would otherwise be reported down and not scanned at all); ``--reason`` records why
each port got its state.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from scanguard_ids.clock import Clock, SystemClock
from scanguard_ids.lab import procs
from scanguard_ids.lab.netns import Netns, check_doc_address
from scanguard_ids.lab.ports import to_ranges

log = logging.getLogger(__name__)

DEFAULT_TIMING: tuple[str, ...] = ("-T4", "--max-retries", "2", "--min-rate", "1000")

PAPER_STATE = {
    "open": "open",
    "closed": "closed",
    "filtered": "filtered",
    "open|filtered": "filtered",
    "closed|filtered": "filtered",
    "unfiltered": "filtered",
}

SCAN_FLAG = {"tcp": "-sS", "udp": "-sU"}


@dataclass(slots=True)
class ScanResult:
    """What nmap learnt about one target in one scan."""

    proto: str
    states: dict[int, str] = field(default_factory=dict)  # port -> nmap state
    reasons: dict[str, int] = field(default_factory=dict)  # nmap reason -> count
    argv: list[str] = field(default_factory=list)
    elapsed: float = 0.0  # seconds, wall clock around the nmap process
    nmap_elapsed: float = 0.0  # seconds, nmap's own runstats
    start: float = 0.0  # epoch seconds when nmap was started
    exit: str = ""

    def paper_counts(self, scanned: Iterable[int] | None = None) -> dict[str, int]:
        """open/closed/filtered counts; ports nmap did not report count as filtered."""
        counts = {"open": 0, "closed": 0, "filtered": 0}
        ports = self.states.keys() if scanned is None else scanned
        for port in ports:
            counts[PAPER_STATE.get(self.states.get(port, "filtered"), "filtered")] += 1
        return counts

    def ports_in(self, paper_state: str) -> set[int]:
        return {p for p, s in self.states.items() if PAPER_STATE.get(s, "filtered") == paper_state}


def parse_portspec(spec: str) -> list[int]:
    """"1-3,7" -> [1, 2, 3, 7]."""
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def parse_xml(text: str, proto: str) -> ScanResult:
    """Per-port states of the first host in nmap ``-oX`` output (extraports expanded)."""
    res = ScanResult(proto)
    root = ET.fromstring(text)
    finished = root.find("runstats/finished")
    if finished is not None:
        res.nmap_elapsed = float(finished.get("elapsed", "0") or 0)
        res.exit = finished.get("exit", "")
    host = root.find("host")
    if host is None:
        return res
    for extra in host.iterfind("ports/extraports"):
        state = extra.get("state", "")
        for why in extra.iterfind("extrareasons"):
            if why.get("proto", proto) != proto:
                continue
            reason = why.get("reason", "")
            res.reasons[reason] = res.reasons.get(reason, 0) + int(why.get("count", "0"))
            for num in parse_portspec(why.get("ports", "")):
                res.states[num] = state
    for elem in host.iterfind("ports/port"):
        if elem.get("protocol") != proto:
            continue
        st = elem.find("state")
        if st is None:
            continue
        res.states[int(elem.get("portid", "0"))] = st.get("state", "")
        reason = st.get("reason", "")
        res.reasons[reason] = res.reasons.get(reason, 0) + 1
    return res


def nmap_argv(target: str, proto: str, ports: Sequence[int] | str,
              timing: Sequence[str] = DEFAULT_TIMING, extra: Sequence[str] = ()) -> list[str]:
    """The nmap command line (argv) for one scan of ``target``."""
    check_doc_address(target)
    spec = ports if isinstance(ports, str) else to_ranges(ports)
    flags = [SCAN_FLAG[proto]]
    if ":" in target:
        flags.append("-6")
    return ["nmap", "-n", "-Pn", *flags, "-p", spec, *timing, "--reason", *extra,
            "-oX", "-", target]


def run_scan(scanner: Netns, target: str, proto: str, ports: Sequence[int] | str,
             timing: Sequence[str] = DEFAULT_TIMING, timeout: float = 900.0,
             extra: Sequence[str] = (), clock: Clock | None = None) -> ScanResult:
    """Run nmap in the scanner namespace (bounded by ``timeout``) and parse its XML."""
    argv = nmap_argv(target, proto, ports, timing, extra)
    # The port spec of a large scan is long; log its size, not its text.
    log.info("nmap start proto=%s target=%s ports=%s timing=%s", proto, target,
             len(parse_portspec(argv[argv.index("-p") + 1])), " ".join(timing))
    clock = clock or SystemClock()
    start_wall, t0 = clock.now(), clock.monotonic()
    res = procs.run(scanner.argv(argv), timeout=timeout)
    parsed = parse_xml(res.stdout, proto)
    parsed.argv = argv
    parsed.elapsed = clock.monotonic() - t0
    parsed.start = start_wall
    log.info("nmap done proto=%s elapsed=%.1f counts=%s", proto, parsed.elapsed,
             parsed.paper_counts())
    return parsed
