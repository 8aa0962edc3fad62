"""Scenario pcaps for detection at the network edge: sweeps, slow scans, IPv6 prefixes, look-alikes.

Built with the blocks of tests/pcaps.py. The protected networks are whole subnets here, so
Suricata runs with :data:`HOME_NET` (the scenarios' HOME_NET plus 198.51.100.0/24 and
2001:db8:64::/64); the remotes are in 203.0.113.0/24 and 2001:db8:1::/48, outside it. Each
scenario declares what ``scanguard replay`` (default config: sweep and slow tier on, prefix6 64)
must decide: the addresses (or /64) blocked, how many blocks, and the tier and rule of each.

    from pcaps_edge import EDGE, HOME_NET
    path = EDGE["sweep_tcp_v4"].build(tmp_path)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pcaps
from pcaps import CLOSED_TCP, LINK_ETHER, T0, Capture, tcp_closed, udp_closed, udp_silent

HOME_NET: tuple[str, ...] = (*pcaps.HOME_NET, "198.51.100.0/24", "2001:db8:64::/64")
NET4 = "198.51.100."
NET6 = "2001:db8:64::"


@dataclass(frozen=True, slots=True)
class EdgeScenario:
    name: str
    doc: str
    make: Callable[[Capture], None]
    expect: Mapping[str, tuple[str, str]]  # blocked address or prefix -> (tier, rule)
    hour: int
    blocks: int = -1  # blocks in total; -1: one per expected entry
    extra: Mapping[str, object] = field(default_factory=dict)  # further checks, per test

    @property
    def block_count(self) -> int:
        return len(self.expect) if self.blocks < 0 else self.blocks

    def build(self, directory: str | Path) -> Path:
        cap = Capture(start=T0 + 3600 * self.hour, seed=self.hour + 1)
        self.make(cap)
        return cap.write(Path(directory) / f"{self.name}.pcap", LINK_ETHER)


# -- scans that must be blocked -------------------------------------------------------------


def _sweep_tcp_v4(cap: Capture) -> None:  # nmap -sS -p 22 198.51.100.0/24 (all closed)
    for i in range(10):
        tcp_closed(cap, 0.02 * i, "203.0.113.10", f"{NET4}{1 + i}", 22, sport=40_001)


def _sweep_udp_v4(cap: Capture) -> None:  # nmap -sU -p 161 over the subnet
    for i in range(10):
        udp_closed(cap, 0.05 * i, "203.0.113.11", f"{NET4}{20 + i}", 161, sport=40_002)


def _sweep_tcp_v6(cap: Capture) -> None:
    for i in range(10):
        tcp_closed(cap, 0.02 * i, "2001:db8:1::10", f"{NET6}{1 + i:x}", 22, sport=40_003)


def _sweep_3ports(cap: Capture) -> None:  # nmap -p 22,80,443 over 8 hosts, host by host
    for i in range(8):
        for k, port in enumerate((22, 80, 443)):
            tcp_closed(cap, 0.3 * i + 0.01 * k, "203.0.113.12", f"{NET4}{40 + i}", port)


def _vertical_t0(cap: Capture) -> None:  # nmap -T0: one probe every 300 s, one host
    for i, port in enumerate(CLOSED_TCP[:10]):
        tcp_closed(cap, 300.0 * i, "203.0.113.13", f"{NET4}60", port, sport=40_004)


def _rotation_v6(cap: Capture) -> None:  # a new source address of one /64 for every probe
    for i, port in enumerate(CLOSED_TCP[:8]):
        tcp_closed(cap, 0.5 * i, f"2001:db8:1:2::{0x100 + 7 * i:x}", f"{NET6}1", port)


# -- look-alikes that must not be -------------------------------------------------------------


def _monitor_poll(cap: Capture) -> None:  # an uptime check of one closed endpoint, every 30 s
    for i in range(120):
        tcp_closed(cap, 30.0 * i, "203.0.113.20", f"{NET4}70", 8080)


def _two_web_servers(cap: Capture) -> None:  # a browser retrying a dead service behind 2 names
    for i in range(3):
        tcp_closed(cap, 1.0 * i, "203.0.113.21", f"{NET4}80", 443)
        tcp_closed(cap, 1.0 * i + 0.2, "203.0.113.21", f"{NET4}81", 443)


def _nat_office(cap: Capture) -> None:  # refusals over a working day: 1 per 15 min, 60 servers
    rng = cap.rng
    for i in range(40):  # 10 h
        server = f"{NET4}{100 + rng.randrange(60)}"
        tcp_closed(cap, 900.0 * i + rng.uniform(0, 60), "203.0.113.22", server,
                   rng.choice((80, 443)))


def _traceroute(cap: Capture) -> None:  # Linux traceroute: UDP, 3 probes a hop, 8 hops
    hop = 8
    for ttl in range(1, hop + 1):
        for k in range(3):
            port = 33434 + 3 * (ttl - 1) + k
            t = 0.05 * ttl + 0.001 * k
            if ttl < hop:  # answered by a router on the way (not our host): invisible here
                udp_silent(cap, t, "203.0.113.23", f"{NET4}90", port)
            else:
                udp_closed(cap, t, "203.0.113.23", f"{NET4}90", port, payload=b"@" * 32)


_ALL = (
    EdgeScenario("sweep_tcp_v4", "TCP sweep of port 22 over 10 hosts", _sweep_tcp_v4,
                 {"203.0.113.10": ("fast", "hosts")}, 100),
    EdgeScenario("sweep_udp_v4", "UDP sweep of port 161 over 10 hosts", _sweep_udp_v4,
                 {"203.0.113.11": ("fast", "hosts")}, 101),
    EdgeScenario("sweep_tcp_v6", "IPv6 TCP sweep of port 22 over 10 hosts", _sweep_tcp_v6,
                 {"2001:db8:1::10": ("fast", "hosts")}, 102),
    EdgeScenario("sweep_3ports", "3-port sweep (22, 80, 443) of 8 hosts, host by host",
                 _sweep_3ports, {"203.0.113.12": ("fast", "ports")}, 103),
    EdgeScenario("vertical_t0", "nmap -T0: 10 closed ports of one host, 300 s apart",
                 _vertical_t0, {"203.0.113.13": ("slow", "ports")}, 104,
                 extra={"count": 6, "span": 1500.0}),
    EdgeScenario("rotation_v6", "vertical scan, each probe from a new address of one /64",
                 _rotation_v6, {"2001:db8:1:2::/64": ("fast", "ports")}, 105),
    EdgeScenario("traceroute", "UDP traceroute to a protected host 8 hops away (3 probes)",
                 _traceroute, {"203.0.113.23": ("fast", "ports")}, 106),
    EdgeScenario("monitor_poll", "one closed endpoint polled every 30 s for an hour",
                 _monitor_poll, {}, 107),
    EdgeScenario("two_web_servers", "a client refused on 443 by two web servers, 3 tries",
                 _two_web_servers, {}, 108),
    EdgeScenario("nat_office", "an office NAT refused 40 times over 10 h by 60 servers",
                 _nat_office, {}, 109),
)

EDGE: dict[str, EdgeScenario] = {s.name: s for s in _ALL}
