"""Scenario pcaps for the extended (off by default) signatures of rules/scanguard-extended.rules.

Built with the blocks of tests/pcaps.py. Each scenario declares how many alerts of SID 9400050
("a remote reset half-open connections to our open ports") each remote address must draw when
Suricata runs the core pack plus the extended rules enabled, with the scenarios' HOME_NET.
9400050 alerts from the 3rd such connection within 60 s (detection_filter by_src, count 2).

    from pcaps_extended import EXTENDED
    path = EXTENDED["halfopen_scan_v4"].build(tmp_path)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pcaps import (
    CLOSED_TCP,
    LINK_ETHER,
    T0,
    VICTIM4,
    VICTIM6,
    Capture,
    tcp_closed,
    tcp_open,
    tcp_session,
)
from scapy.layers.inet import TCP

HALF_OPEN_SID = 9_400_050
OPEN_TCP = (22, 25, 80, 443, 8080, 8443)


def tcp_connect(cap: Capture, t: float, remote: str, local: str, dport: int) -> None:
    """nmap -sT of an open port: a full handshake, then the scanner's RST+ACK without data."""
    ts = cap.at(t)
    sport, seq, vseq = cap.eph(), cap.isn(), cap.isn()
    cap.add(ts, cap.ip(remote, local, False) / TCP(sport=sport, dport=dport, flags="S", seq=seq,
                                                  window=64240, options=[("MSS", 1460)]), False)
    cap.add(ts + 70, cap.ip(local, remote, True) / TCP(sport=dport, dport=sport, flags="SA",
                                                      seq=vseq, ack=seq + 1, window=64240,
                                                      options=[("MSS", 1460)]), True)
    cap.add(ts + 140, cap.ip(remote, local, False) / TCP(sport=sport, dport=dport, flags="A",
                                                        seq=seq + 1, ack=vseq + 1, window=502),
            False)
    cap.add(ts + 200, cap.ip(remote, local, False) / TCP(sport=sport, dport=dport, flags="RA",
                                                        seq=seq + 1, ack=vseq + 1, window=0),
            False)


@dataclass(frozen=True, slots=True)
class ExtScenario:
    name: str
    doc: str
    make: Callable[[Capture], None]
    expect: Mapping[str, int]  # remote -> 9400050 alerts
    hour: int

    def build(self, directory: str | Path) -> Path:
        cap = Capture(start=T0 + 3600 * self.hour, seed=self.hour + 101)
        self.make(cap)
        return cap.write(Path(directory) / f"{self.name}.pcap", LINK_ETHER)


def _halfopen_v4(cap: Capture) -> None:
    scanner = "198.51.100.61"
    for i, port in enumerate(OPEN_TCP[:5]):  # nmap -sS: one source port, bare RST after SYN-ACK
        tcp_open(cap, 0.002 * i, scanner, VICTIM4, port, sport=61_000)
    for i, port in enumerate(CLOSED_TCP[:4]):
        tcp_closed(cap, 0.02 + 0.002 * i, scanner, VICTIM4, port, sport=61_000)


def _halfopen_v6(cap: Capture) -> None:
    for i, port in enumerate(OPEN_TCP[:4]):
        tcp_open(cap, 0.003 * i, "2001:db8:1::61", VICTIM6, port, sport=61_001)


def _completed(cap: Capture) -> None:
    for i in range(6):  # one busy client: completed connections, closed or aborted after data
        tcp_session(cap, 0.3 * i, "203.0.113.5", VICTIM4, OPEN_TCP[i % 4], client_is_victim=False,
                    end=("fin", "client-rst")[i % 2])
    for i in range(4):
        tcp_session(cap, 3.0 + 0.3 * i, "2001:db8:1::5", VICTIM6, 443, client_is_victim=False)
    for i in range(4):  # connections we open, completed
        tcp_session(cap, 5.0 + 0.3 * i, VICTIM4, "203.0.113.6", 443, client_is_victim=True)


def _connect_scan(cap: Capture) -> None:
    for i, port in enumerate(OPEN_TCP):
        tcp_connect(cap, 0.01 * i, "198.51.100.62", VICTIM4, port)


def _two_halfopen(cap: Capture) -> None:
    for i, port in enumerate((443, 443)):  # a client whose connect() gave up twice
        tcp_open(cap, 1.0 * i, "203.0.113.7", VICTIM4, port)


def _slow_halfopen(cap: Capture) -> None:
    for i, port in enumerate(OPEN_TCP[:5]):  # one every 40 s: never 3 within a 60 s window
        tcp_open(cap, 40.0 * i, "198.51.100.63", VICTIM4, port)


_ALL = (
    ExtScenario("halfopen_scan_v4", "SYN scan of 5 open and 4 closed ports", _halfopen_v4,
                {"198.51.100.61": 3}, 20),
    ExtScenario("halfopen_scan_v6", "IPv6 SYN scan of 4 open ports", _halfopen_v6,
                {"2001:db8:1::61": 2}, 21),
    ExtScenario("completed_connections", "normal completed connections, in and out, v4 and v6",
                _completed, {}, 22),
    ExtScenario("connect_scan", "nmap -sT of 6 open ports: handshakes complete (not detected)",
                _connect_scan, {}, 23),
    ExtScenario("two_halfopen", "a client whose connect() gave up twice", _two_halfopen, {}, 24),
    ExtScenario("slow_halfopen", "5 half-open connections 40 s apart", _slow_halfopen, {}, 25),
)

EXTENDED: dict[str, ExtScenario] = {s.name: s for s in _ALL}
