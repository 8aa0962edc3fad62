"""The lab's network: a victim and a scanner namespace, optionally a delaying path and a switch.

Without delay::

    victim [sv0 192.0.2.1/24 2001:db8::1/64] <-veth-> [ss0 192.0.2.2/24 2001:db8::2/64] scanner

With ``delay_ms > 0`` a middle namespace ``path`` holds one end of each veth and runs
:mod:`scanguard_ids.lab.delayfwd`, which bridges the two at layer 2 and delays every
frame by ``delay_ms`` each way (this kernel has no netem). Victim and scanner stay on
one /24, so ARP and neighbour discovery cross the forwarder too.

With ``switch`` ("faucet" or "none", for the sdn-faucet / sdn-openflow backends) a
namespace ``switch`` at the victim's edge holds an OVS bridge between ``wv0`` (towards
the victim) and ``ws0`` (towards the scanner), under Faucet or standalone
(:func:`scanguard_ids.lab.sdn.network.attach_switch`); the delaying path, if any,
sits between the switch and the scanner, where the internet would be::

    victim sv0 <-> [wv0 | OVS br0 (+ Faucet) | ws0] <-> [pv0 | delay | ps0] <-> ss0 scanner

Only documentation addresses, no routes out. Everything is removed when the context
ends, however it ends (exception, Ctrl-C, SIGTERM via procs.signals_raise).
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from scanguard_ids.lab import netns, procs
from scanguard_ids.lab.netns import Netns

if TYPE_CHECKING:
    from scanguard_ids.lab.sdn.network import SdnSwitch

log = logging.getLogger(__name__)

VICTIM4 = "192.0.2.1"
SCANNER4 = "192.0.2.2"
VICTIM6 = "2001:db8::1"
SCANNER6 = "2001:db8::2"
VICTIM_IF = "sv0"
SCANNER_IF = "ss0"
SWITCH_PORTS = ("wv0", "ws0")  # OpenFlow ports 1 (victim side) and 2 (scanner side)
SWITCH_CONTROLLERS = ("faucet", "none")

#: Inside the victim: no ICMP rate limit, so closed UDP ports answer every probe.
#: ``icmp_ratelimit``/``icmp.ratelimit`` = 0 turns off the per-destination token bucket
#: (default: one error per second per destination after a burst); the host-wide
#: ``icmp_msgs_per_sec`` cannot be turned off (0 means *no* ICMP errors at all), so it
#: is raised far above any scan rate.
VICTIM_SYSCTLS = {
    "net.ipv4.icmp_ratelimit": "0",
    "net.ipv6.icmp.ratelimit": "0",
    "net.ipv4.icmp_msgs_per_sec": "1000000",
    "net.ipv4.icmp_msgs_burst": "1000000",
}

@dataclass(slots=True)
class PingStats:
    """ICMP echo round trips from the scanner to the victim (ms)."""

    sent: int
    received: int
    rtt_min: float
    rtt_p50: float
    rtt_avg: float
    rtt_max: float

    @property
    def one_way(self) -> float:
        """The achieved one-way delay, about half the median round trip."""
        return self.rtt_p50 / 2

    def to_dict(self) -> dict[str, float]:
        return {"sent": self.sent, "received": self.received, "rtt_min_ms": self.rtt_min,
                "rtt_p50_ms": self.rtt_p50, "rtt_avg_ms": self.rtt_avg,
                "rtt_max_ms": self.rtt_max, "one_way_ms": self.one_way}


@dataclass(slots=True)
class Topology:
    victim: Netns
    scanner: Netns
    path: Netns | None = None
    delay_ms: float = 0.0
    victim_if: str = VICTIM_IF
    scanner_if: str = SCANNER_IF
    victim4: str = VICTIM4
    scanner4: str = SCANNER4
    victim6: str = VICTIM6
    scanner6: str = SCANNER6
    forwarder: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    switch_ns: Netns | None = None
    switch: SdnSwitch | None = field(default=None, repr=False)

    def namespaces(self) -> list[Netns]:
        return [n for n in (self.victim, self.scanner, self.path, self.switch_ns)
                if n is not None]


def ping_stats(sent: int, rtts: list[float]) -> PingStats | None:
    if not rtts:
        return None
    srt = sorted(rtts)
    return PingStats(sent, len(srt), srt[0], srt[len(srt) // 2], sum(srt) / len(srt), srt[-1])


def ping(topo: Topology, count: int = 20, interval: float = 0.05) -> PingStats | None:
    """Measure the scanner->victim round trip (the achieved delay is about rtt/2)."""
    res = procs.run(topo.scanner.argv([sys.executable, "-m", "scanguard_ids.lab.rtt", topo.victim4,
                                       "--count", str(count), "--interval", str(interval)]),
                    timeout=count * (interval + 1) + 10, check=False)
    try:
        data = json.loads(res.stdout)
    except ValueError:
        return None
    return ping_stats(int(data["sent"]), [float(r) for r in data["rtt_ms"]])


def _tune_victim(ns: Netns) -> None:
    for key, value in VICTIM_SYSCTLS.items():
        ns.run(["sysctl", "-q", "-w", f"{key}={value}"], check=False)


def _offload_off(ns: Netns, ifname: str) -> None:
    # Full checksums and no GSO on the wire: AF_PACKET forwarding and Suricata see
    # frames exactly as a real NIC would put them on a cable.
    ns.run(["ethtool", "-K", ifname, "tx", "off", "tso", "off", "gso", "off", "gro", "off"],
           check=False)


def _wait_reachable(topo: Topology, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(topo, count=1) is not None:
            return
        time.sleep(0.1)
    raise procs.LabError(f"victim {topo.victim4} not reachable from the scanner in {timeout}s")


def _start_forwarder(path: Netns, if_a: str, if_b: str, delay_ms: float,
                     max_seconds: float) -> subprocess.Popen[bytes]:
    argv = path.argv([sys.executable, "-m", "scanguard_ids.lab.delayfwd", "--if-a", if_a,
                      "--if-b", if_b, "--delay-ms", str(delay_ms),
                      "--max-seconds", str(max_seconds)])
    return procs.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def switch_missing(controller: str) -> str | None:
    """Why a switch with ``controller`` cannot run here (None: it can)."""
    if controller not in SWITCH_CONTROLLERS:
        return f"switch controller {controller!r}: one of {', '.join(SWITCH_CONTROLLERS)}"
    from scanguard_ids.lab.sdn import faucetproc, ovs

    return ovs.missing() or (faucetproc.missing() if controller == "faucet" else None)


def _stop_forwarder(proc: subprocess.Popen[bytes]) -> None:
    procs.stop(proc, grace=2)
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    log.info("delay forwarder stopped counters=%s", out.strip() or "-")


def _delete(made: list[Netns]) -> None:
    for ns in reversed(made):
        netns.delete_ns(ns.name)


@contextlib.contextmanager
def build(delay_ms: float = 0.0, prefix: str = "sg", max_seconds: float = 7200.0,
          switch: str | None = None, switch_dir: Path | None = None) -> Iterator[Topology]:
    """Create the namespaces, links, forwarder and switch; remove them all on exit.

    ``switch``: None (no switch), "faucet" or "none" (standalone OVS); its daemons
    keep their files in ``switch_dir`` (keep the path short: OVS's unix sockets live
    there and sun_path holds 108 bytes).
    """
    if switch is not None:
        why = switch_missing(switch)
        if why:
            raise procs.LabError(f"cannot build the switch: {why}")
        if switch_dir is None:
            raise procs.LabError("a switch needs switch_dir")
    made: list[Netns] = []
    with contextlib.ExitStack() as stack:
        stack.callback(_delete, made)  # runs last
        victim = netns.create_ns(netns.unique(f"{prefix}v"))
        made.append(victim)
        scanner = netns.create_ns(netns.unique(f"{prefix}s"))
        made.append(scanner)
        topo = Topology(victim, scanner, delay_ms=max(delay_ms, 0.0))
        # Chain victim -> (switch) -> (path) -> scanner; ``end`` is the free side so far.
        end, end_if, end_addrs = victim, VICTIM_IF, [f"{VICTIM4}/24", f"{VICTIM6}/64"]
        middle: list[tuple[Netns, str]] = []
        if switch is not None:
            topo.switch_ns = netns.create_ns(netns.unique(f"{prefix}w"))
            made.append(topo.switch_ns)
            netns.connect(end, topo.switch_ns, end_addrs, [], a_if=end_if, b_if=SWITCH_PORTS[0])
            end, end_if, end_addrs = topo.switch_ns, SWITCH_PORTS[1], []
            middle += [(topo.switch_ns, p) for p in SWITCH_PORTS]
        if delay_ms > 0:
            topo.path = netns.create_ns(netns.unique(f"{prefix}p"))
            made.append(topo.path)
            netns.connect(end, topo.path, end_addrs, [], a_if=end_if, b_if="pv0")
            end, end_if, end_addrs = topo.path, "ps0", []
            middle += [(topo.path, "pv0"), (topo.path, "ps0")]
        netns.connect(end, scanner, end_addrs, [f"{SCANNER4}/24", f"{SCANNER6}/64"],
                      a_if=end_if, b_if=SCANNER_IF)
        for ns, ifname in [(victim, VICTIM_IF), (scanner, SCANNER_IF), *middle]:
            _offload_off(ns, ifname)
        _tune_victim(victim)
        if topo.path is not None:
            topo.forwarder = _start_forwarder(topo.path, "pv0", "ps0", delay_ms, max_seconds)
            stack.callback(_stop_forwarder, topo.forwarder)
        if switch is not None and topo.switch_ns is not None and switch_dir is not None:
            from scanguard_ids.lab.sdn.network import attach_switch

            topo.switch = stack.enter_context(attach_switch(
                topo.switch_ns, list(SWITCH_PORTS), switch_dir, controller=switch,
                start_timeout=60.0))
        _wait_reachable(topo, timeout=20 if switch else 10)
        log.info("lab topology victim=%s scanner=%s path=%s switch=%s delay_ms=%s",
                 victim.name, scanner.name, topo.path.name if topo.path else "-",
                 f"{topo.switch_ns.name}:{switch}" if topo.switch_ns else "-", delay_ms)
        yield topo
