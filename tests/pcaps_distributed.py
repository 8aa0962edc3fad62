"""Scenario pcaps for the distributed-scan alarm: a scan spread over many sources, and a busy
server's legitimate look-alike. Built with the blocks of tests/pcaps.py.

Each scenario declares the alarms `scanguard replay` must raise with the default [alarm]
settings (20 distinct sources covering 5 local ports of one host within 10 s) and that the
per-address detector blocks nobody (no source draws 3 responses on 2 ports).

    from pcaps_distributed import DISTRIBUTED
    path = DISTRIBUTED["distributed_scan"].build(tmp_path)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pcaps import CLOSED_TCP, CLOSED_UDP, LINK_ETHER, T0, Capture, tcp_closed, udp_closed

TARGET = "192.0.2.20"  # the host the distributed scan probes
SERVER = "192.0.2.21"  # the busy web server of the look-alike
SCANNERS = tuple(f"203.0.113.{10 + i}" for i in range(40))


@dataclass(frozen=True, slots=True)
class DistScenario:
    name: str
    doc: str
    make: Callable[[Capture], None]
    expect_alarms: tuple[str, ...]  # targets alarmed, one alarm each
    sources: frozenset[str]  # the addresses a shield would block
    hour: int

    def build(self, directory: str | Path) -> Path:
        cap = Capture(start=T0 + 3600 * self.hour, seed=self.hour + 201)
        self.make(cap)
        return cap.write(Path(directory) / f"{self.name}.pcap", LINK_ETHER)


def _distributed_scan(cap: Capture) -> None:
    """40 sources, each probing one or two closed ports of one host, in about 4 s."""
    for i, scanner in enumerate(SCANNERS):
        t = 0.1 * i + cap.rng.uniform(0, 0.05)
        tcp_closed(cap, t, scanner, TARGET, CLOSED_TCP[i % len(CLOSED_TCP)])
        if i % 3 == 0:  # a third probe a second port (UDP)
            udp_closed(cap, t + 0.02, scanner, TARGET, CLOSED_UDP[i % len(CLOSED_UDP)])


def _service_restart(cap: Capture) -> None:
    """A busy HTTP(S) server restarts: for ~3 s, 60 clients draw RSTs on 443 and 80 (with a
    retry each); 4 load-balancer health checkers hit the stopped 8080 every second; one
    background scanner probes telnet. 65 sources, but only 4 ports."""
    for i in range(60):
        client = f"198.51.100.{10 + i}"
        port = 443 if i % 4 else 80
        t = 0.05 * i
        sport = cap.eph()
        tcp_closed(cap, t, client, SERVER, port, sport=sport)
        tcp_closed(cap, t + 1.0, client, SERVER, port, sport=sport)  # the SYN retransmission
    for k in range(4):
        for s in range(10):
            tcp_closed(cap, 0.2 * k + s, f"198.51.100.{200 + k}", SERVER, 8080)
    tcp_closed(cap, 2.5, "203.0.113.99", SERVER, 23)


_ALL = (
    DistScenario("distributed_scan", "40 sources, 1-2 closed ports each, one host, ~4 s",
                 _distributed_scan, (TARGET,), frozenset(SCANNERS), 40),
    DistScenario("service_restart", "restart of a busy server: 65 sources on 4 ports",
                 _service_restart, (), frozenset(), 41),
)

DISTRIBUTED: dict[str, DistScenario] = {s.name: s for s in _ALL}
