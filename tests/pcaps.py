"""Scenario pcaps built with scapy: port scans and their look-alikes, with expected outcomes.

Each scenario writes one small pcap with explicit, realistic timestamps (microseconds) and
deterministic sequence numbers, and declares what Suricata with rules/scanguard.rules must alert
on (counted per remote address and kind) and what the detector must block with the default
thresholds (3 responses covering 2 local ports within 60 s, 300 s blocks; an address already
blocked is not blocked again while its block lasts).

The victim (our host) is 192.0.2.1 / 2001:db8::1; HOME_NET is 192.0.2.0/24 + 2001:db8::/64.
Remotes are in 198.51.100.0/24, 203.0.113.0/24 and 2001:db8:1::/64.

    from pcaps import SCENARIOS, HOME_NET   # tests/ is on sys.path under pytest (conftest)
    path = SCENARIOS["syn_scan_v4"].build(tmp_path)   # -> tmp_path/syn_scan_v4.pcap
    SCENARIOS["syn_scan_v4"].expect_blocked             # frozenset({"198.51.100.23"})

Run as a script to write every pcap: ``.venv/bin/python tests/pcaps.py DIR``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
from scapy.layers.l2 import CookedLinux, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw
from scapy.utils import RawPcapWriter

VICTIM4 = "192.0.2.1"
VICTIM6 = "2001:db8::1"
HOME_NET: tuple[str, ...] = ("192.0.2.0/24", "2001:db8::/64")

TCP_RST = "tcp-rst"
ICMP4 = "icmp-port-unreachable"
ICMP6 = "icmp6-port-unreachable"

#: pcap link types written (and what Suricata reports as packet_info.linktype).
LINK_ETHER = 1
LINK_SLL = 113
LINK_RAW = 101
#: What Suricata 7 writes as packet_info.linktype for each (it reports LINKTYPE_RAW as DLT_RAW 12).
EVE_LINKTYPE = {LINK_ETHER: 1, LINK_SLL: 113, LINK_RAW: 12}

VICTIM_MAC = "02:00:00:00:00:01"
ROUTER_MAC = "02:00:00:00:00:fe"

#: 2026-01-15T10:00:00Z; each scenario starts at its own hour after this.
T0 = int(datetime(2026, 1, 15, 10, 0, tzinfo=UTC).timestamp())

_MS = 1_000
_S = 1_000_000


def _is6(addr: str) -> bool:
    return ":" in addr


@dataclass(slots=True)
class Capture:
    """Frames of one pcap: L3 packets with a time (µs) and a direction; framed on write."""

    start: int  # epoch seconds
    seed: int = 1
    vlans: tuple[tuple[int, int], ...] = ()  # (tpid, vid), outermost first
    frames: list[tuple[int, bool, Packet]] = field(default_factory=list)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def at(self, seconds: float) -> int:
        """Microsecond timestamp `seconds` after the capture's start."""
        return self.start * _S + round(seconds * _S)

    def add(self, ts_us: int, pkt: Packet, outbound: bool) -> None:
        self.frames.append((ts_us, outbound, pkt))

    def isn(self) -> int:
        return self.rng.randrange(1, 2**32)

    def eph(self) -> int:
        return self.rng.randrange(32768, 61000)

    def ip(self, src: str, dst: str, outbound: bool) -> Packet:
        """An IP header as Linux (victim) or a remote host would write it."""
        if _is6(src):
            return IPv6(src=src, dst=dst, hlim=64 if outbound else self.rng.randrange(40, 60))
        if outbound:
            return IP(src=src, dst=dst, ttl=64, flags="DF", id=self.rng.randrange(65536))
        return IP(src=src, dst=dst, ttl=self.rng.randrange(40, 60), id=self.rng.randrange(65536))

    def _frame(self, pkt: Packet, outbound: bool, link: int) -> bytes:
        if link == LINK_RAW:
            return bytes(pkt)
        ethertype = 0x86DD if isinstance(pkt, IPv6) else 0x0800
        if link == LINK_SLL:
            mac = VICTIM_MAC if outbound else ROUTER_MAC
            sll = CookedLinux(pkttype=4 if outbound else 0, lladdrtype=1, lladdrlen=6,
                              src=bytes.fromhex(mac.replace(":", "")) + b"\0\0",
                              proto=ethertype)
            return bytes(sll / pkt)
        src, dst = (VICTIM_MAC, ROUTER_MAC) if outbound else (ROUTER_MAC, VICTIM_MAC)
        frame: Packet = Ether(src=src, dst=dst)
        for tpid, vid in self.vlans:
            frame = frame / (Dot1AD(vlan=vid) if tpid == 0x88A8 else Dot1Q(vlan=vid))
        return bytes(frame / pkt)

    def write(self, path: Path, link: int = LINK_ETHER) -> Path:
        """Write the frames sorted by time (stable) as a classic pcap of the given link type."""
        if self.vlans and link != LINK_ETHER:
            raise ValueError("VLAN tags need an Ethernet link type")
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = RawPcapWriter(str(path), linktype=link, sync=False)
        try:
            writer.write_header(None)
            for ts_us, outbound, pkt in sorted(self.frames, key=lambda f: f[0]):
                writer.write_packet(self._frame(pkt, outbound, link),
                                    sec=ts_us // _S, usec=ts_us % _S)
        finally:
            writer.close()
        return path


# -- building blocks: one exchange each, `t` in seconds after the capture's start ------------


def tcp_closed(cap: Capture, t: float, remote: str, local: str, dport: int,
               sport: int | None = None, flags: str = "S") -> None:
    """A remote probe (SYN, FIN, NULL '', Xmas 'FPU', ...) to a closed port; Linux's RST+ACK."""
    ts = cap.at(t)
    sport = sport or cap.eph()
    seq = cap.isn()
    opts = [("MSS", 1460)] if "S" in flags else []
    probe = TCP(sport=sport, dport=dport, flags=flags, seq=seq, window=1024, options=opts)
    cap.add(ts, cap.ip(remote, local, False) / probe, False)
    # RFC 793 / Linux tcp_v4_send_reset: no ACK in the probe -> seq 0, ack = seq + SYN + FIN.
    ack = (seq + ("S" in flags) + ("F" in flags)) % 2**32
    rst = TCP(sport=dport, dport=sport, flags="RA", seq=0, ack=ack, window=0)
    cap.add(ts + 60 + cap.rng.randrange(40), cap.ip(local, remote, True) / rst, True)


def tcp_open(cap: Capture, t: float, remote: str, local: str, dport: int,
             sport: int | None = None) -> None:
    """A SYN to an open port: SYN-ACK, then the half-open scanner's RST (no alert)."""
    ts = cap.at(t)
    sport = sport or cap.eph()
    seq, vseq = cap.isn(), cap.isn()
    cap.add(ts, cap.ip(remote, local, False) / TCP(sport=sport, dport=dport, flags="S", seq=seq,
                                                  window=1024, options=[("MSS", 1460)]), False)
    cap.add(ts + 70, cap.ip(local, remote, True) / TCP(
        sport=dport, dport=sport, flags="SA", seq=vseq, ack=seq + 1, window=64240,
        options=[("MSS", 1460), ("SAckOK", b""), ("WScale", 7)]), True)
    cap.add(ts + 400, cap.ip(remote, local, False) / TCP(
        sport=sport, dport=dport, flags="R", seq=seq + 1, window=0), False)


def udp_closed(cap: Capture, t: float, remote: str, local: str, dport: int,
               sport: int | None = None, payload: bytes = b"") -> None:
    """A UDP probe to a closed port and the port-unreachable quoting it (ICMPv4 3/3, v6 1/4)."""
    ts = cap.at(t)
    sport = sport or cap.eph()
    probe = cap.ip(remote, local, False) / UDP(sport=sport, dport=dport) / Raw(payload)
    cap.add(ts, probe, False)
    cap.add(ts + 50 + cap.rng.randrange(40), _port_unreachable(cap, local, remote, probe), True)


def _port_unreachable(cap: Capture, local: str, remote: str, quoted: Packet) -> Packet:
    if _is6(local):
        return cap.ip(local, remote, True) / ICMPv6DestUnreach(code=4) / Raw(bytes(quoted)[:1232])
    head = cap.ip(local, remote, True)
    head.tos = 0xC0  # Linux sends ICMP errors with precedence 6
    return head / ICMP(type=3, code=3) / Raw(bytes(quoted)[:548])


def udp_silent(cap: Capture, t: float, remote: str, local: str, dport: int) -> None:
    """A UDP probe that draws no answer (open|filtered): no alert."""
    probe = UDP(sport=cap.eph(), dport=dport) / Raw(b"\0" * 8)
    cap.add(cap.at(t), cap.ip(remote, local, False) / probe, False)


def tcp_session(cap: Capture, t: float, client: str, server: str, dport: int,
                client_is_victim: bool, end: str = "fin", data: int = 2) -> None:
    """A real connection: handshake, `data` request/response pairs, then the client ends it.

    end="fin": orderly close; end="client-rst": the client aborts with RST+ACK;
    end="server-rst": the server aborts the established connection with RST+ACK.
    """
    ts = cap.at(t)
    sport = cap.eph()
    c_out, s_out = client_is_victim, not client_is_victim
    cseq, sseq = cap.isn(), cap.isn()
    rtt = 20 * _MS

    def c(dt: int, flags: str, seq: int, ack: int, load: bytes = b"") -> None:
        seg = TCP(sport=sport, dport=dport, flags=flags, seq=seq % 2**32, ack=ack % 2**32,
                  window=502)
        cap.add(ts + dt, cap.ip(client, server, c_out) / seg / Raw(load), c_out)

    def s(dt: int, flags: str, seq: int, ack: int, load: bytes = b"") -> None:
        seg = TCP(sport=dport, dport=sport, flags=flags, seq=seq % 2**32, ack=ack % 2**32,
                  window=509)
        cap.add(ts + dt, cap.ip(server, client, s_out) / seg / Raw(load), s_out)

    cap.add(ts, cap.ip(client, server, c_out) / TCP(
        sport=sport, dport=dport, flags="S", seq=cseq, window=64240,
        options=[("MSS", 1460), ("SAckOK", b""), ("WScale", 7)]), c_out)
    cseq += 1
    s(rtt // 2, "SA", sseq, cseq)
    sseq += 1
    now = rtt
    c(now, "A", cseq, sseq)
    for i in range(data):
        req, resp = b"GET /%d HTTP/1.1\r\n\r\n" % i, b"x" * (200 + 37 * i)
        c(now + 1 * _MS, "PA", cseq, sseq, req)
        cseq += len(req)
        s(now + rtt // 2 + 2 * _MS, "PA", sseq, cseq, resp)
        sseq += len(resp)
        now += rtt + 5 * _MS
        c(now, "A", cseq, sseq)
    if end == "fin":
        c(now + 3 * _MS, "FA", cseq, sseq)
        s(now + rtt // 2 + 3 * _MS, "FA", sseq, cseq + 1)
        c(now + rtt + 3 * _MS, "A", cseq + 1, sseq + 1)
    elif end == "client-rst":
        c(now + 3 * _MS, "RA", cseq, sseq)
    elif end == "server-rst":
        s(now + 3 * _MS, "RA", sseq, cseq)
    else:
        raise ValueError(f"unknown end {end!r}")


def own_syn_late_synack(cap: Capture, t: float, local: str, remote: str, dport: int) -> None:
    """Our connect() gave up; the remote's SYN-ACK arrives later and gets a bare RST."""
    ts = cap.at(t)
    sport, seq, rseq = cap.eph(), cap.isn(), cap.isn()
    cap.add(ts, cap.ip(local, remote, True) / TCP(sport=sport, dport=dport, flags="S", seq=seq,
                                                 window=64240, options=[("MSS", 1460)]), True)
    late = ts + 3 * _S + 200 * _MS
    cap.add(late, cap.ip(remote, local, False) / TCP(
        sport=dport, dport=sport, flags="SA", seq=rseq, ack=seq + 1, window=65535,
        options=[("MSS", 1460)]), False)
    cap.add(late + 40, cap.ip(local, remote, True) / TCP(
        sport=sport, dport=dport, flags="R", seq=seq + 1, window=0), True)


def backscatter(cap: Capture, t: float, remote: str, local: str, sport: int = 80) -> None:
    """An unsolicited SYN-ACK (someone spoofed our address) and our bare RST (seq = its ack)."""
    ts = cap.at(t)
    dport, ack, rseq = cap.eph(), cap.isn(), cap.isn()
    cap.add(ts, cap.ip(remote, local, False) / TCP(
        sport=sport, dport=dport, flags="SA", seq=rseq, ack=ack, window=65535,
        options=[("MSS", 1460)]), False)
    cap.add(ts + 35, cap.ip(local, remote, True) / TCP(
        sport=dport, dport=sport, flags="R", seq=ack, window=0), True)


def late_dns(cap: Capture, t: float, local: str, server: str, delay: float = 5.5,
             name: str = "www.example.com.") -> None:
    """Our resolver's query; the answer arrives after its socket closed -> port unreachable."""
    ts = cap.at(t)
    sport, qid = cap.eph(), cap.rng.randrange(65536)
    query = cap.ip(local, server, True) / UDP(sport=sport, dport=53) / DNS(
        id=qid, rd=1, qd=DNSQR(qname=name, qtype="A"))
    cap.add(ts, query, True)
    answer = cap.ip(server, local, False) / UDP(sport=53, dport=sport) / DNS(
        id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=name, qtype="A"),
        an=DNSRR(rrname=name, type="A", ttl=300, rdata="203.0.113.200"))
    late = ts + round(delay * _S)
    cap.add(late, answer, False)
    cap.add(late + 45, _port_unreachable(cap, local, server, answer), True)


# -- scenarios ---------------------------------------------------------------------------------

Alerts = Mapping[str, Mapping[str, int]]  # remote -> kind -> count


@dataclass(frozen=True, slots=True)
class Scenario:
    """One pcap and what must come of it."""

    name: str
    doc: str
    make: Callable[[Capture], None]
    expect_alerts: Alerts  # per remote and kind, from the rule pack
    expect_blocked: frozenset[str]  # addresses the detector blocks (default thresholds)
    expect_block_count: int  # blocks in total (a re-scan after expiry counts twice)
    hour: int  # the capture starts T0 + hour h
    link: int = LINK_ETHER
    vlans: tuple[tuple[int, int], ...] = ()

    @property
    def start(self) -> int:
        return T0 + 3600 * self.hour

    def capture(self) -> Capture:
        cap = Capture(start=self.start, seed=self.hour + 1, vlans=self.vlans)
        self.make(cap)
        return cap

    def build(self, directory: str | Path) -> Path:
        """Write <directory>/<name>.pcap and return its path."""
        return self.capture().write(Path(directory) / f"{self.name}.pcap", self.link)


CLOSED_TCP = (21, 23, 25, 110, 111, 135, 139, 143, 443, 445, 993, 995, 1723, 3306, 3389, 5900,
              8080, 554, 587, 1025)
CLOSED_UDP = (53, 67, 69, 123, 137, 161, 500, 514, 1900, 4500)


def _syn_scan_v4(cap: Capture) -> None:
    scanner, sport = "198.51.100.23", 61234  # nmap -sS keeps one source port
    tcp_session(cap, 0.0, "203.0.113.5", VICTIM4, 22, client_is_victim=False, data=3)
    for i, port in enumerate(CLOSED_TCP):
        tcp_closed(cap, 1.0 + 0.0021 * i, scanner, VICTIM4, port, sport=sport)
    tcp_open(cap, 1.0 + 0.0021 * len(CLOSED_TCP), scanner, VICTIM4, 22, sport=sport)
    tcp_open(cap, 1.0 + 0.0021 * (len(CLOSED_TCP) + 1), scanner, VICTIM4, 80, sport=sport)


def _stealth_scan_v4(cap: Capture) -> None:
    scanner = "198.51.100.24"
    t = 0.0
    for flags in ("F", "", "FPU", "SEC"):  # FIN, NULL, Xmas, ECN SYN
        for port in (21, 23, 25):
            tcp_closed(cap, t, scanner, VICTIM4, port, sport=50_505, flags=flags)
            t += 0.013


def _udp_scan_v4(cap: Capture) -> None:
    scanner = "198.51.100.31"
    for i, port in enumerate(CLOSED_UDP):
        udp_closed(cap, 0.5 * i, scanner, VICTIM4, port, sport=41_000 + i)
    udp_silent(cap, 5.2, scanner, VICTIM4, 5353)


def _tcp_scan_v6(cap: Capture) -> None:
    scanner = "2001:db8:1::23"
    for i, port in enumerate(CLOSED_TCP[:10]):
        tcp_closed(cap, 0.003 * i, scanner, VICTIM6, port, sport=52_000)
    tcp_open(cap, 0.05, scanner, VICTIM6, 22, sport=52_000)


def _udp_scan_v6(cap: Capture) -> None:
    scanner = "2001:db8:1::31"
    for i, port in enumerate(CLOSED_UDP[:8]):
        udp_closed(cap, 0.25 * i, scanner, VICTIM6, port, payload=b"\x00" * 12)


def _mixed(cap: Capture, remote4: str, remote6: str | None, tcp: int = 5, udp: int = 5,
           udp6: int = 3) -> None:
    for i in range(max(tcp, udp)):
        if i < tcp:
            tcp_closed(cap, 0.2 * i, remote4, VICTIM4, CLOSED_TCP[i], sport=44_321)
        if i < udp:
            udp_closed(cap, 0.2 * i + 0.1, remote4, VICTIM4, CLOSED_UDP[i], sport=44_322)
    if remote6:
        for i in range(udp6):
            tcp_closed(cap, 2.0 + 0.2 * i, remote6, VICTIM6, CLOSED_TCP[i], sport=44_323)
            udp_closed(cap, 2.1 + 0.2 * i, remote6, VICTIM6, CLOSED_UDP[i], sport=44_324)


def _mixed_scan(cap: Capture) -> None:
    _mixed(cap, "203.0.113.77", "2001:db8:1::77")


def _vlan_scan(cap: Capture) -> None:
    _mixed(cap, "198.51.100.41", None, tcp=6, udp=3)


def _one_port_many_times(cap: Capture) -> None:
    scanner = "198.51.100.51"
    for i in range(8):  # eight connection attempts to telnet, new source port each
        tcp_closed(cap, 1.5 * i, scanner, VICTIM4, 23)
    for i in range(2):  # and two retransmissions on the last tuple (same source port)
        tcp_closed(cap, 12.0 + 1.0 * i, scanner, VICTIM4, 23, sport=40_023)


def _too_few(cap: Capture) -> None:
    tcp_closed(cap, 0.0, "198.51.100.52", VICTIM4, 80)
    udp_closed(cap, 0.8, "198.51.100.52", VICTIM4, 161)


def _slow(cap: Capture) -> None:
    for i, port in enumerate(CLOSED_TCP[:5]):  # one response every 40 s: never 3 within 60 s
        tcp_closed(cap, 40.0 * i, "198.51.100.53", VICTIM4, port)


def _exact_threshold(cap: Capture) -> None:
    scanner = "198.51.100.54"
    tcp_closed(cap, 0.0, scanner, VICTIM4, 8080)
    tcp_closed(cap, 0.7, scanner, VICTIM4, 8081)
    tcp_closed(cap, 1.9, scanner, VICTIM4, 8080)


def _rescan(cap: Capture) -> None:
    scanner = "198.51.100.55"
    for i, port in enumerate(CLOSED_TCP[:4]):
        tcp_closed(cap, 0.01 * i, scanner, VICTIM4, port, sport=45_000)
    for i, port in enumerate(CLOSED_TCP[4:8]):  # 400 s later: the 300 s block has expired
        tcp_closed(cap, 400.0 + 0.01 * i, scanner, VICTIM4, port, sport=45_001)


def _own_aborted(cap: Capture) -> None:
    remote = "203.0.113.80"
    for i, port in enumerate((443, 8443, 443, 80, 443)):  # we abort with RST+ACK
        tcp_session(cap, 0.4 * i, VICTIM4, remote, port, client_is_victim=True, end="client-rst")
    for i, port in enumerate((443, 8443, 80)):  # connect() gave up before the SYN-ACK came
        own_syn_late_synack(cap, 3.0 + 0.3 * i, VICTIM4, remote, port)
    for i in range(3):
        tcp_session(cap, 8.0 + 0.4 * i, VICTIM6, "2001:db8:1::80", 443, client_is_victim=True,
                    end="client-rst")


def _backscatter(cap: Capture) -> None:
    for r in range(12):
        remote = f"198.51.100.{100 + r}"
        for k in range(5):
            backscatter(cap, 0.05 * r + 0.9 * k + 0.001 * r * k, remote, VICTIM4,
                        sport=(80, 443)[r % 2])


def _late_dns(cap: Capture) -> None:
    for i in range(6):
        late_dns(cap, 1.0 * i, VICTIM4, "203.0.113.53", name=f"h{i}.example.com.")
    for i in range(4):
        late_dns(cap, 0.5 + 1.0 * i, VICTIM6, "2001:db8:1::53", name=f"v{i}.example.org.")


def _server_abort(cap: Capture) -> None:
    client = "203.0.113.9"
    for i, port in enumerate((25, 587, 25, 465)):  # our server aborts connections clients opened
        tcp_session(cap, 0.5 * i, client, VICTIM4, port, client_is_victim=False, end="server-rst")
    tcp_session(cap, 3.0, "2001:db8:1::9", VICTIM6, 25, client_is_victim=False, end="server-rst")


_MIXED_ALERTS: Alerts = {"203.0.113.77": {TCP_RST: 5, ICMP4: 5},
                         "2001:db8:1::77": {TCP_RST: 3, ICMP6: 3}}
_MIXED_BLOCKED = frozenset(_MIXED_ALERTS)
_VLAN_ALERTS: Alerts = {"198.51.100.41": {TCP_RST: 6, ICMP4: 3}}

_ALL = (
    Scenario("syn_scan_v4", "nmap -sS of 20 closed and 2 open ports, beside a real SSH client",
             _syn_scan_v4, {"198.51.100.23": {TCP_RST: 20}}, frozenset({"198.51.100.23"}), 1, 0),
    Scenario("stealth_scan_v4", "FIN, NULL, Xmas and ECN-SYN probes of 3 closed ports",
             _stealth_scan_v4, {"198.51.100.24": {TCP_RST: 12}}, frozenset({"198.51.100.24"}),
             1, 1),
    Scenario("udp_scan_v4", "UDP scan of 10 closed ports (and one silent one)",
             _udp_scan_v4, {"198.51.100.31": {ICMP4: 10}}, frozenset({"198.51.100.31"}), 1, 2),
    Scenario("tcp_scan_v6", "IPv6 SYN scan of 10 closed ports and one open one",
             _tcp_scan_v6, {"2001:db8:1::23": {TCP_RST: 10}}, frozenset({"2001:db8:1::23"}),
             1, 3),
    Scenario("udp_scan_v6", "IPv6 UDP scan of 8 closed ports",
             _udp_scan_v6, {"2001:db8:1::31": {ICMP6: 8}}, frozenset({"2001:db8:1::31"}), 1, 4),
    Scenario("mixed_scan", "interleaved TCP and UDP probes from one v4 and one v6 scanner",
             _mixed_scan, _MIXED_ALERTS, _MIXED_BLOCKED, 2, 5),
    Scenario("mixed_scan_sll", "mixed_scan on a Linux cooked capture (DLT 113)",
             _mixed_scan, _MIXED_ALERTS, _MIXED_BLOCKED, 2, 5, link=LINK_SLL),
    Scenario("mixed_scan_raw", "mixed_scan on a raw-IP capture (LINKTYPE_RAW 101)",
             _mixed_scan, _MIXED_ALERTS, _MIXED_BLOCKED, 2, 5, link=LINK_RAW),
    Scenario("vlan_scan", "TCP+UDP scan on 802.1Q VLAN 100",
             _vlan_scan, _VLAN_ALERTS, frozenset(_VLAN_ALERTS), 1, 6, vlans=((0x8100, 100),)),
    Scenario("qinq_scan", "TCP+UDP scan on QinQ: 802.1ad S-VLAN 200, 802.1Q C-VLAN 100",
             _vlan_scan, _VLAN_ALERTS, frozenset(_VLAN_ALERTS), 1, 7,
             vlans=((0x88A8, 200), (0x8100, 100))),
    Scenario("one_port_many_times", "10 RSTs, all from port 23: one port is no scan",
             _one_port_many_times, {"198.51.100.51": {TCP_RST: 10}}, frozenset(), 0, 8),
    Scenario("too_few", "2 responses on 2 ports: below the count of 3",
             _too_few, {"198.51.100.52": {TCP_RST: 1, ICMP4: 1}}, frozenset(), 0, 9),
    Scenario("slow_scan", "5 responses 40 s apart: never 3 within 60 s",
             _slow, {"198.51.100.53": {TCP_RST: 5}}, frozenset(), 0, 10),
    Scenario("exact_threshold", "exactly 3 responses on 2 ports within 2 s",
             _exact_threshold, {"198.51.100.54": {TCP_RST: 3}}, frozenset({"198.51.100.54"}),
             1, 11),
    Scenario("rescan_after_expiry", "4 ports, then 4 more 400 s later: blocked twice",
             _rescan, {"198.51.100.55": {TCP_RST: 8}}, frozenset({"198.51.100.55"}), 2, 12),
    Scenario("own_aborted", "connections we opened and aborted (RST+ACK, late SYN-ACK -> RST)",
             _own_aborted, {}, frozenset(), 0, 13),
    Scenario("backscatter", "unsolicited SYN-ACKs from 12 addresses, our bare RSTs",
             _backscatter, {}, frozenset(), 0, 14),
    Scenario("late_dns", "DNS answers after our resolver gave up -> port unreachable (v4, v6)",
             _late_dns, {}, frozenset(), 0, 15),
    Scenario("server_abort", "our server aborts established connections clients opened",
             _server_abort, {}, frozenset(), 0, 16),
)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in _ALL}

#: Scenarios whose real EVE output is kept in tests/data/eve/ (one per link type).
EVE_SAMPLES = ("mixed_scan", "mixed_scan_sll", "mixed_scan_raw")


def expectation(s: Scenario) -> dict[str, object]:
    """A scenario's expectations as JSON-able data (written next to EVE samples)."""
    return {
        "scenario": s.name,
        "doc": s.doc,
        "home_net": list(HOME_NET),
        "linktype": EVE_LINKTYPE[s.link],
        "alerts": {ip: dict(kinds) for ip, kinds in s.expect_alerts.items()},
        "blocked": sorted(s.expect_blocked),
        "block_count": s.expect_block_count,
    }


def main(argv: list[str] | None = None) -> int:
    """Write every scenario pcap into DIR, or (--eve-samples) the EVE samples instead."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--eve-samples", action="store_true",
                        help="run Suricata on EVE_SAMPLES and write <name>.eve.json and "
                             "<name>.expect.json into DIR (tests/data/eve)")
    args = parser.parse_args(argv)
    if not args.eve_samples:
        for s in SCENARIOS.values():
            print(s.build(args.dir))
    else:
        import tempfile

        from scanguard_ids import suricata

        rules = Path(__file__).resolve().parent.parent / "rules" / "scanguard.rules"
        with tempfile.TemporaryDirectory() as tmp:
            for name in EVE_SAMPLES:
                eve = suricata.run_pcap(SCENARIOS[name].build(tmp), rules, HOME_NET,
                                        Path(tmp) / name)
                (args.dir / f"{name}.eve.json").write_bytes(eve.read_bytes())
                (args.dir / f"{name}.expect.json").write_text(
                    json.dumps(expectation(SCENARIOS[name]), indent=2) + "\n")
                print(args.dir / f"{name}.eve.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
