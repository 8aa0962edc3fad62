"""Deterministic EVE corpora for the benchmarks, shaped like what Suricata 7 writes.

Field layouts and key order follow real Suricata 7.0 output captured by
``bench/capture_samples.py`` (``bench/samples/suricata7-eve.jsonl``): compact JSON, keys in
Suricata's order (timestamp, flow_id, in_iface, event_type, src_ip, ...), IPv6 addresses in
Suricata's uncompressed form, stats events copied from a real one (~8 KB each, one per 8 s of
event time). Our alerts carry ``payload`` / ``packet`` base64 of real frame layouts (Ethernet,
IPv4/IPv6, TCP RST-ACK or ICMP/ICMPv6 port-unreachable quoting the probe).

Two corpora (``--quick`` shrinks both ten-fold):

- ``mixed``: ~1 M lines; flow, dns, tls, http, fileinfo, anomaly, snmp and stats events, ~1 %
  alerts of other rules and ~4 % our alerts from scanners of many sizes (single stray responses
  that must not block, small scans, nmap-sized scans).
- ``alerts``: ~300 k lines, only our alerts.

Addresses: the protected hosts are 192.0.2.0/24 and 2001:db8::/64 (RFC 5737/3849); remote
peers come from 198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15 (RFC 2544, benchmarking) and
2001:db8:1::/48. The files only ever feed a parser; nothing is sent anywhere.

    .venv/bin/python -m bench.corpus [--quick] [--force] [mixed|alerts ...]
    .venv/bin/python -m bench.corpus mixed --lines 5000 --out sample.eve.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import struct
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from bench.common import CACHE, HERE
from scanguard_ids.lab.rtt import checksum as _csum

SAMPLES = HERE / "samples" / "suricata7-eve.jsonl"
VERSION = 1  # bump when the generator changes: cached corpora are rebuilt

SID_TCP_RST = 9_400_001
SID_ICMP4 = 9_400_002
SID_ICMP6 = 9_400_003
T0 = 1_793_610_000.0  # 2026-11-02T09:00:00Z
STATS_EVERY = 8.0  # Suricata's default stats interval
IFACE = "ens192"

_MSG = {
    SID_TCP_RST: "SCANGUARD TCP RST answering a remote probe (closed TCP port)",
    SID_ICMP4: "SCANGUARD ICMP port unreachable answering a remote probe (closed UDP port)",
    SID_ICMP6: "SCANGUARD ICMPv6 port unreachable answering a remote probe (closed UDP port)",
}
_FOREIGN = (
    (2010935, "ET SCAN Suspicious inbound to MSSQL port 1433", "Potentially Bad Traffic", 2),
    (2001219, "ET SCAN Potential SSH Scan", "Attempted Information Leak", 2),
    (2402000, "ET DROP Dshield Block Listed Source", "Misc Attack", 2),
    (2013028, "ET POLICY curl User-Agent Outbound", "Attempted Information Leak", 2),
)
_HOSTS = (
    "www.example.com",
    "mail.example.org",
    "cdn.example.net",
    "api.example.com",
    "login.example.org",
    "static.example.net",
    "updates.example.com",
    "example.com",
)
_UAS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "curl/7.88.1",
    "Debian APT-HTTP/1.3 (2.6.1)",
)
_URLS = (
    "/",
    "/index.html",
    "/api/v1/status",
    "/static/app.js",
    "/images/logo.png",
    "/debian/dists/bookworm/InRelease",
    "/wp-login.php",
    "/report.pdf",
    "/favicon.ico",
)
_CTYPES = (
    "text/html",
    "application/json",
    "application/javascript",
    "image/png",
    "application/pdf",
    "text/plain",
)


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    lines: int
    alert_share: float  # share of lines that are our alerts
    foreign_share: float  # share of lines that are other rules' alerts
    rate: float  # background events per second of event time
    seed: int


@dataclass(slots=True)
class Meta:
    name: str
    version: int
    lines: int = 0
    bytes: int = 0
    alerts: int = 0  # ours
    foreign_alerts: int = 0
    stats_events: int = 0
    scanners: int = 0
    span_s: float = 0.0
    by_type: dict[str, int] | None = None


SPECS = {
    "mixed": Spec("mixed", 1_000_000, 0.04, 0.01, 150.0, 20261125),
    "alerts": Spec("alerts", 300_000, 1.0, 0.0, 0.0, 20261126),
}


def spec(name: str, quick: bool = False) -> Spec:
    s = SPECS[name]
    if quick:
        s = Spec(s.name, s.lines // 10, s.alert_share, s.foreign_share, s.rate, s.seed)
    return s


def path_of(name: str, quick: bool = False) -> Path:
    return CACHE / f"{name}{'-quick' if quick else ''}-v{VERSION}.eve.json"


def ensure(name: str, quick: bool = False, force: bool = False) -> tuple[Path, Meta]:
    """The corpus file (generated on first use, then reused) and its metadata."""
    path = path_of(name, quick)
    meta_path = path.with_suffix(".meta.json")
    if not force and path.exists() and meta_path.exists():
        return path, Meta(**json.loads(meta_path.read_text()))
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    meta = write(spec(name, quick), tmp)
    os.replace(tmp, path)
    meta_path.write_text(json.dumps(asdict(meta), indent=1))
    return path, meta


# -- small formatting helpers ------------------------------------------------------------------


class _Ts:
    """Epoch seconds -> Suricata's '2026-11-02T08:20:00.123456+0000', cached per second."""

    __slots__ = ("_prefix", "_sec")

    def __init__(self) -> None:
        self._sec = -1
        self._prefix = ""

    def __call__(self, t: float) -> str:
        sec = int(t)
        if sec != self._sec:
            self._sec = sec
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._prefix}.{int((t - sec) * 1e6):06d}+0000"


def v6_text(packed: bytes) -> str:
    """Suricata writes IPv6 addresses uncompressed: 2001:0db8:0000:...:0001."""
    return ":".join(packed[i : i + 2].hex() for i in range(0, 16, 2))


def _ipv4(
    src: bytes,
    dst: bytes,
    proto: int,
    payload_len: int,
    ident: int,
    ttl: int,
    tos: int = 0,
    df: bool = True,
) -> bytes:
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        tos,
        20 + payload_len,
        ident,
        0x4000 if df else 0,
        ttl,
        proto,
        0,
        src,
        dst,
    )
    return hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:]


def _ipv6(src: bytes, dst: bytes, nh: int, payload_len: int, hlim: int, flow: int) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000 | flow, payload_len, nh, hlim, src, dst)


_B64 = __import__("base64").b64encode


def _b64(data: bytes) -> str:
    return _B64(data).decode()


# -- the address space -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Addr:
    text: str
    packed: bytes

    @property
    def v6(self) -> bool:
        return len(self.packed) == 16


def _v4(n: int) -> Addr:
    p = n.to_bytes(4, "big")
    return Addr(".".join(map(str, p)), p)


def _v6(n: int) -> Addr:
    p = n.to_bytes(16, "big")
    return Addr(v6_text(p), p)


LOCAL4 = [_v4(0xC0000200 + i) for i in range(1, 31)]  # 192.0.2.1-30
LOCAL6 = [_v6((0x20010DB8 << 96) + i) for i in range(1, 11)]  # 2001:db8::1-a
_PEERS4 = [0xC6336400 + i for i in range(1, 255)] + [0xCB007100 + i for i in range(1, 255)]
_BENCH4 = (0xC6120000, 1 << 17)  # 198.18.0.0/15


def _remote(rng: random.Random, v6: bool) -> Addr:
    if v6:  # 2001:db8:1::/48, random below
        return _v6((0x20010DB80001 << 80) | rng.getrandbits(80))
    if rng.random() < 0.25:
        return _v4(rng.choice(_PEERS4))
    return _v4(_BENCH4[0] + rng.randrange(1, _BENCH4[1] - 1))


# -- our alerts ---------------------------------------------------------------------------------

_MAC_L = bytes.fromhex("1a291c43af03")
_MAC_R = bytes.fromhex("863bb93096d9")


@dataclass(slots=True)
class Probe:
    """One response of our host to one probe: the unit the corpus' alerts are made of."""

    t: float
    remote: Addr
    local: Addr
    port: int  # the probed (closed) local port
    sport: int  # the prober's source port
    udp: bool
    data: bytes  # UDP probe payload (quoted back in the ICMP error)


def alert_line(p: Probe, rng: random.Random, ts: _Ts) -> bytes:
    """An EVE alert line for one response, as Suricata 7 writes it (payload + packet on)."""
    v6 = p.local.v6
    start = ts(p.t - rng.uniform(0.00002, 0.0004))
    flow_id = rng.getrandbits(51)
    if not p.udp:
        tcp = struct.pack(
            "!HHIIBBHHH", p.port, p.sport, 0, rng.getrandbits(32), 0x50, 0x14, 0, 0, 0
        )
        if v6:
            frame = (
                _MAC_R
                + _MAC_L
                + b"\x86\xdd"
                + _ipv6(p.local.packed, p.remote.packed, 6, 20, 64, 0)
                + tcp
            )
            probe_len = 86
        else:
            frame = (
                _MAC_R
                + _MAC_L
                + b"\x08\x00"
                + _ipv4(p.local.packed, p.remote.packed, 6, 20, 0, 64)
                + tcp
            )
            probe_len = 58
        doc = {
            "timestamp": ts(p.t),
            "flow_id": flow_id,
            "in_iface": IFACE,
            "event_type": "alert",
            "src_ip": p.local.text,
            "src_port": p.port,
            "dest_ip": p.remote.text,
            "dest_port": p.sport,
            "proto": "TCP",
            "pkt_src": "wire/pcap",
            "alert": {
                "action": "allowed",
                "gid": 1,
                "signature_id": SID_TCP_RST,
                "rev": 1,
                "signature": _MSG[SID_TCP_RST],
                "category": "Attempted Information Leak",
                "severity": 2,
            },
            "direction": "to_client",
            "flow": {
                "pkts_toserver": 1,
                "pkts_toclient": 1,
                "bytes_toserver": probe_len,
                "bytes_toclient": len(frame),
                "start": start,
                "src_ip": p.remote.text,
                "dest_ip": p.local.text,
                "src_port": p.sport,
                "dest_port": p.port,
            },
            "stream": 0,
            "packet": _b64(frame),
            "packet_info": {"linktype": 1},
        }
        return orjson.dumps(doc)
    udp = struct.pack("!HHHH", p.sport, p.port, 8 + len(p.data), rng.getrandbits(16)) + p.data
    if v6:
        quoted = (
            _ipv6(p.remote.packed, p.local.packed, 17, len(udp), rng.choice((50, 57, 64)), 0) + udp
        )
        icmp = struct.pack("!BBHI", 1, 4, rng.getrandbits(16), 0) + quoted
        frame = (
            _MAC_R
            + _MAC_L
            + b"\x86\xdd"
            + _ipv6(p.local.packed, p.remote.packed, 58, len(icmp), 64, rng.getrandbits(20))
            + icmp
        )
        sid, proto, itype, icode = SID_ICMP6, "IPv6-ICMP", 1, 4
        direction = "to_server"
    else:
        quoted = (
            _ipv4(
                p.remote.packed,
                p.local.packed,
                17,
                len(udp),
                rng.getrandbits(16),
                rng.choice((37, 44, 51, 64)),
                df=False,
            )
            + udp
        )
        icmp = struct.pack("!BBHI", 3, 3, 0, 0) + quoted
        icmp = icmp[:2] + struct.pack("!H", _csum(icmp)) + icmp[4:]
        frame = (
            _MAC_R
            + _MAC_L
            + b"\x08\x00"
            + _ipv4(
                p.local.packed,
                p.remote.packed,
                1,
                len(icmp),
                rng.getrandbits(16),
                64,
                tos=0xC0,
                df=False,
            )
            + icmp
        )
        sid, proto, itype, icode = SID_ICMP4, "ICMP", 3, 3
        direction = "to_client"
    doc = {
        "timestamp": ts(p.t),
        "flow_id": flow_id,
        "in_iface": IFACE,
        "event_type": "alert",
        "src_ip": p.local.text,
        "dest_ip": p.remote.text,
        "proto": proto,
        "icmp_type": itype,
        "icmp_code": icode,
        "pkt_src": "wire/pcap",
        "alert": {
            "action": "allowed",
            "gid": 1,
            "signature_id": sid,
            "rev": 1,
            "signature": _MSG[sid],
            "category": "Attempted Information Leak",
            "severity": 2,
        },
    }
    if not v6:
        doc["app_proto"] = "failed"
    doc["direction"] = direction
    doc["flow"] = {
        "pkts_toserver": 1,
        "pkts_toclient": 1 if not v6 else 0,
        "bytes_toserver": len(quoted) + 14 if not v6 else len(frame),
        "bytes_toclient": len(frame) if not v6 else 0,
        "start": start,
        "src_ip": p.remote.text if not v6 else p.local.text,
        "dest_ip": p.local.text if not v6 else p.remote.text,
    }
    doc["payload"] = _b64(quoted)
    doc["stream"] = 0
    doc["packet"] = _b64(frame)
    doc["packet_info"] = {"linktype": 1}
    return orjson.dumps(doc)


_COMMON_TCP = (
    21,
    22,
    23,
    25,
    53,
    80,
    110,
    111,
    135,
    139,
    143,
    443,
    445,
    993,
    995,
    1433,
    1723,
    3306,
    3389,
    5432,
    5900,
    6379,
    8080,
    8443,
    9200,
    27017,
)
_COMMON_UDP = (53, 69, 111, 123, 137, 161, 500, 514, 520, 1900, 5060, 5353, 11211)
_UDP_DATA = (
    b"",
    b"",
    b"",
    b"\x00" * 8,
    bytes.fromhex("000001000001000000000000") + b"\x07version\x04bind\x00\x00\x10\x00\x03",
    bytes.fromhex("e30004fa000100000001000000000000") + b"\x00" * 32,
)


def _probes_per_scanner(rng: random.Random) -> tuple[int, bool]:
    """(responses, distinct ports?) for one remote address."""
    r = rng.random()
    if r < 0.30:
        return 1, True  # a stray closed-port hit: must never block
    if r < 0.40:
        return rng.randint(2, 4), False  # retransmissions to one port: never blocks
    if r < 0.80:
        return rng.randint(3, 20), True
    if r < 0.95:
        return rng.randint(20, 200), True
    return rng.randint(200, 1000), True


def scanners(rng: random.Random, budget: int, t0: float, span: float) -> tuple[list[Probe], int]:
    """Responses of many scanners (sorted by emit order), at most ``budget`` of them."""
    out: list[tuple[float, int, Probe]] = []
    n = 0
    seq = 0
    while len(out) < budget:
        n += 1
        k, distinct = _probes_per_scanner(rng)
        k = min(k, budget - len(out))
        v6 = rng.random() < 0.15
        remote = _remote(rng, v6)
        local = rng.choice(LOCAL6 if v6 else LOCAL4)
        udp = rng.random() < 0.3
        start = t0 + rng.uniform(0, span)
        gap = rng.choice((0.0005, 0.002, 0.01, 0.1, 0.7))
        pool = _COMMON_UDP if udp else _COMMON_TCP
        if distinct:
            ports = rng.sample(pool, min(k, len(pool)))
            while len(ports) < k:
                ports.append(rng.randint(1, 65535))
        else:
            ports = [rng.choice(pool)] * k
        sport = rng.randint(32768, 60999)
        t = start
        for port in ports:
            t += rng.expovariate(1.0 / gap)
            probe = Probe(
                t,
                remote,
                local,
                port,
                sport if not udp else rng.randint(32768, 60999),
                udp,
                rng.choice(_UDP_DATA) if udp else b"",
            )
            # Suricata's worker threads write out of order by up to a few ms.
            seq += 1
            out.append((t + rng.uniform(0, 0.004), seq, probe))
    out.sort(key=lambda e: (e[0], e[1]))
    return [p for _, _, p in out], n


# -- background events ----------------------------------------------------------------------


def _load_stats() -> dict:
    biggest = b""
    with SAMPLES.open("rb") as fh:
        for line in fh:
            if b'"event_type":"stats"' in line and len(line) > len(biggest):
                biggest = line
    return orjson.loads(biggest)


class Background:
    """Non-alert events (and other rules' alerts) in Suricata 7's layouts."""

    def __init__(self, rng: random.Random, ts: _Ts) -> None:
        self.rng = rng
        self.ts = ts
        self.stats = _load_stats()
        self.uptime = 0
        self.pkts = 0

    def _ends(self, v6: bool) -> tuple[Addr, Addr]:
        rng = self.rng
        local = rng.choice(LOCAL6 if v6 else LOCAL4)
        remote = _remote(rng, v6)
        return local, remote

    def _head(
        self,
        t: float,
        etype: str,
        src: Addr,
        sport: int | None,
        dst: Addr,
        dport: int | None,
        proto: str,
        flow_id: int | None = None,
    ) -> dict:
        d: dict = {
            "timestamp": self.ts(t),
            "flow_id": flow_id or self.rng.getrandbits(51),
            "in_iface": IFACE,
            "event_type": etype,
            "src_ip": src.text,
        }
        if sport is not None:
            d["src_port"] = sport
        d["dest_ip"] = dst.text
        if dport is not None:
            d["dest_port"] = dport
        d["proto"] = proto
        return d

    def flow(self, t: float) -> dict:
        rng = self.rng
        local, remote = self._ends(rng.random() < 0.12)
        r = rng.random()
        inbound = rng.random() < 0.5
        src, dst = (remote, local) if inbound else (local, remote)
        age = rng.choice((0, 0, 1, 2, 5, 30, 120))
        start = t - age - rng.uniform(0, 60)
        if r < 0.35:  # DNS over UDP
            d = self._head(t, "flow", src, rng.randint(1024, 65535), dst, 53, "UDP")
            d["app_proto"] = "dns"
            d["flow"] = self._flowobj(
                start, age, rng.randint(1, 2), rng.randint(1, 2), 80, 200, "established", "timeout"
            )
            return d
        if r < 0.45:  # ICMP
            if src.v6:
                d = self._head(t, "flow", src, None, dst, None, "IPv6-ICMP")
                d["icmp_type"], d["icmp_code"] = 128, 0
                d["response_icmp_type"], d["response_icmp_code"] = 129, 0
            else:
                d = self._head(t, "flow", src, None, dst, None, "ICMP")
                d["icmp_type"], d["icmp_code"] = 8, 0
                d["response_icmp_type"], d["response_icmp_code"] = 0, 0
            d["flow"] = self._flowobj(
                start, age, rng.randint(1, 5), rng.randint(1, 5), 98, 98, "established", "timeout"
            )
            return d
        dport = rng.choice((443, 443, 443, 80, 22, 25, 993, 8080, 3306))
        d = self._head(t, "flow", src, rng.randint(1024, 65535), dst, dport, "TCP")
        app = {443: "tls", 80: "http", 8080: "http", 22: "ssh", 25: "smtp", 993: "tls"}.get(
            dport, "failed"
        )
        if rng.random() < 0.8:
            d["app_proto"] = app
        ps, pc = rng.randint(3, 400), rng.randint(2, 900)
        d["flow"] = self._flowobj(
            start,
            age,
            ps,
            pc,
            ps * rng.randint(60, 300),
            pc * rng.randint(60, 1400),
            "closed",
            rng.choice(("timeout", "timeout", "shutdown")),
        )
        d["tcp"] = {
            "tcp_flags": "1b",
            "tcp_flags_ts": "1b",
            "tcp_flags_tc": "1b",
            "syn": True,
            "fin": True,
            "psh": True,
            "ack": True,
            "state": "closed",
            "ts_max_regions": 1,
            "tc_max_regions": 1,
        }
        return d

    def _flowobj(
        self, start: float, age: int, ps: int, pc: int, bs: int, bc: int, state: str, reason: str
    ) -> dict:
        return {
            "pkts_toserver": ps,
            "pkts_toclient": pc,
            "bytes_toserver": bs,
            "bytes_toclient": bc,
            "start": self.ts(start),
            "end": self.ts(start + age + 0.25),
            "age": age,
            "state": state,
            "reason": reason,
            "alerted": False,
        }

    def dns(self, t: float) -> dict:
        rng = self.rng
        local, remote = self._ends(rng.random() < 0.1)
        name = rng.choice(_HOSTS)
        qid = rng.getrandbits(16)
        rrtype = rng.choice(("A", "A", "AAAA", "HTTPS", "MX"))
        if rng.random() < 0.5:
            d = self._head(t, "dns", local, rng.randint(1024, 65535), remote, 53, "UDP")
            d["pkt_src"] = "wire/pcap"
            d["dns"] = {
                "version": 2,
                "type": "query",
                "id": qid,
                "rrname": name,
                "rrtype": rrtype,
                "tx_id": 0,
                "opcode": 0,
            }
            return d
        d = self._head(t, "dns", remote, 53, local, rng.randint(1024, 65535), "UDP")
        d["pkt_src"] = "wire/pcap"
        ips = [f"203.0.113.{rng.randint(1, 254)}" for _ in range(rng.randint(1, 4))]
        d["dns"] = {
            "version": 2,
            "type": "answer",
            "id": qid,
            "flags": "8180",
            "qr": True,
            "rd": True,
            "ra": True,
            "opcode": 0,
            "rrname": name,
            "rrtype": "A",
            "rcode": "NOERROR",
            "answers": [
                {"rrname": name, "rrtype": "A", "ttl": rng.randint(30, 3600), "rdata": ip}
                for ip in ips
            ],
            "grouped": {"A": ips},
        }
        return d

    def tls(self, t: float) -> dict:
        rng = self.rng
        local, remote = self._ends(rng.random() < 0.12)
        d = self._head(t, "tls", local, rng.randint(32768, 60999), remote, 443, "TCP")
        d["pkt_src"] = "wire/pcap"
        sni = rng.choice(_HOSTS)
        if rng.random() < 0.6:
            d["tls"] = {"sni": sni, "version": "TLS 1.3"}
        else:
            fp = ":".join(f"{rng.getrandbits(8):02x}" for _ in range(20))
            serial = ":".join(f"{rng.getrandbits(8):02X}" for _ in range(18))
            d["tls"] = {
                "subject": f"CN={sni}",
                "issuerdn": "C=US, O=Let's Encrypt, CN=R11",
                "serial": serial,
                "fingerprint": fp,
                "sni": sni,
                "version": "TLS 1.2",
                "notbefore": "2026-10-01T07:12:40",
                "notafter": "2026-12-30T07:12:39",
            }
        return d

    def _http(self) -> dict:
        rng = self.rng
        return {
            "hostname": rng.choice(_HOSTS),
            "url": rng.choice(_URLS),
            "http_user_agent": rng.choice(_UAS),
            "http_content_type": rng.choice(_CTYPES),
            "http_method": rng.choice(("GET", "GET", "POST")),
            "protocol": "HTTP/1.1",
            "status": rng.choice((200, 200, 200, 304, 404, 301)),
            "length": rng.randint(0, 250_000),
        }

    def http(self, t: float) -> dict:
        rng = self.rng
        local, remote = self._ends(rng.random() < 0.12)
        d = self._head(t, "http", remote, rng.randint(1024, 65535), local, 80, "TCP")
        d["pkt_src"] = "wire/pcap"
        d["tx_id"] = rng.randint(0, 3)
        d["http"] = self._http()
        return d

    def fileinfo(self, t: float) -> dict:
        rng = self.rng
        local, remote = self._ends(False)
        d = self._head(t, "fileinfo", local, 80, remote, rng.randint(1024, 65535), "TCP")
        d["pkt_src"] = "wire/pcap"
        h = self._http()
        d["http"] = h
        d["app_proto"] = "http"
        d["fileinfo"] = {
            "filename": h["url"],
            "gaps": False,
            "state": "CLOSED",
            "stored": False,
            "size": h["length"],
            "tx_id": rng.randint(0, 3),
        }
        return d

    def anomaly(self, t: float) -> dict:
        rng = self.rng
        local, remote = self._ends(False)
        app, event = rng.choice(
            (
                ("snmp", "version_mismatch"),
                ("http", "REQUEST_HEADER_INVALID"),
                ("tls", "INVALID_RECORD_TYPE"),
                ("dns", "MALFORMED_DATA"),
            )
        )
        d = self._head(t, "anomaly", remote, rng.randint(1024, 65535), local, 161, "UDP")
        d["pkt_src"] = "wire/pcap"
        d["tx_id"] = rng.randint(0, 2)
        d["anomaly"] = {
            "app_proto": app,
            "type": "applayer",
            "event": event,
            "layer": "proto_parser",
        }
        return d

    def snmp(self, t: float) -> dict:
        rng = self.rng
        local, remote = self._ends(False)
        d = self._head(t, "snmp", remote, rng.randint(1024, 65535), local, 161, "UDP")
        d["pkt_src"] = "wire/pcap"
        d["snmp"] = {
            "version": 2,
            "pdu_type": "get_request",
            "vars": ["1.3.6.1.2.1.1.1.0"],
            "community": "public",
        }
        return d

    def foreign_alert(self, t: float) -> dict:
        rng = self.rng
        local, remote = self._ends(False)
        sid, msg, cat, sev = rng.choice(_FOREIGN)
        d = self._head(
            t, "alert", remote, rng.randint(1024, 65535), local, rng.choice((22, 1433, 80)), "TCP"
        )
        d["pkt_src"] = "wire/pcap"
        d["alert"] = {
            "action": "allowed",
            "gid": 1,
            "signature_id": sid,
            "rev": rng.randint(2, 9),
            "signature": msg,
            "category": cat,
            "severity": sev,
            "metadata": {"created_at": ["2010_07_30"], "updated_at": ["2019_07_26"]},
        }
        d["direction"] = "to_server"
        d["flow"] = {
            "pkts_toserver": 1,
            "pkts_toclient": 0,
            "bytes_toserver": 74,
            "bytes_toclient": 0,
            "start": self.ts(t - 0.0001),
            "src_ip": remote.text,
            "dest_ip": local.text,
            "src_port": d["src_port"],
            "dest_port": d["dest_port"],
        }
        frame = (
            _MAC_L
            + _MAC_R
            + b"\x08\x00"
            + _ipv4(remote.packed, local.packed, 6, 40, rng.getrandbits(16), 51)
            + bytes(40)
        )
        d["payload"] = ""
        d["stream"] = 0
        d["packet"] = _b64(frame)
        d["packet_info"] = {"linktype": 1}
        return d

    def stats_event(self, t: float) -> bytes:
        self.uptime += int(STATS_EVERY)
        self.pkts += self.rng.randint(50_000, 90_000)
        s = self.stats["stats"]
        s["uptime"] = self.uptime
        s["decoder"]["pkts"] = self.pkts
        s["decoder"]["bytes"] = self.pkts * 612
        s["capture"]["kernel_packets"] = self.pkts
        return orjson.dumps({"timestamp": self.ts(t), "event_type": "stats", "stats": s})


_MIX = (
    ("flow", 0.46),
    ("dns", 0.24),
    ("tls", 0.12),
    ("http", 0.09),
    ("fileinfo", 0.05),
    ("anomaly", 0.02),
    ("snmp", 0.02),
)


def lines(sp: Spec, meta: Meta) -> Iterator[bytes]:
    """The corpus' lines in write order (no newlines)."""
    rng = random.Random(sp.seed)
    ts = _Ts()
    n_alerts = int(sp.lines * sp.alert_share)
    if sp.rate > 0:
        span = sp.lines * (1.0 - sp.alert_share) / sp.rate * 0.98
    else:
        span = max(60.0, n_alerts / 100.0)
    probes, meta.scanners = scanners(random.Random(sp.seed + 1), n_alerts, T0, span)
    alert_rng = random.Random(sp.seed + 2)
    bg = Background(rng, ts)
    kinds = [k for k, _ in _MIX]
    weights = [w for _, w in _MIX]
    counts: dict[str, int] = {}
    t = T0
    next_stats = T0 + STATS_EVERY
    pi = 0
    emitted = 0
    while emitted < sp.lines:
        if sp.rate > 0:
            t += rng.expovariate(sp.rate)
        elif pi < len(probes):
            t = probes[pi].t
        while pi < len(probes) and probes[pi].t <= t and emitted < sp.lines:
            yield alert_line(probes[pi], alert_rng, ts)
            counts["alert"] = counts.get("alert", 0) + 1
            meta.alerts += 1
            pi += 1
            emitted += 1
        if emitted >= sp.lines:
            break
        if sp.rate > 0 and t >= next_stats:
            yield bg.stats_event(next_stats)
            next_stats += STATS_EVERY
            meta.stats_events += 1
            counts["stats"] = counts.get("stats", 0) + 1
            emitted += 1
            continue
        if sp.rate <= 0:
            if pi >= len(probes):
                break
            continue
        if rng.random() < sp.foreign_share:
            doc = bg.foreign_alert(t)
            meta.foreign_alerts += 1
            kind = "foreign-alert"
        else:
            kind = rng.choices(kinds, weights)[0]
            doc = getattr(bg, kind)(t)
        counts[kind] = counts.get(kind, 0) + 1
        emitted += 1
        yield orjson.dumps(doc)
    meta.span_s = t - T0
    meta.by_type = dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def write(sp: Spec, out: Path) -> Meta:
    meta = Meta(sp.name, VERSION)
    with out.open("wb", buffering=1 << 20) as fh:
        for line in lines(sp, meta):
            fh.write(line)
            fh.write(b"\n")
            meta.lines += 1
            meta.bytes += len(line) + 1
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="generate the benchmark EVE corpora into bench/.cache/"
    )
    ap.add_argument("names", nargs="*", metavar="NAME", help="mixed, alerts (default: both)")
    ap.add_argument("--quick", action="store_true", help="ten times smaller")
    ap.add_argument("--force", action="store_true", help="regenerate even if cached")
    ap.add_argument("--lines", type=int, help="with --out: this many lines of one corpus kind")
    ap.add_argument("--out", help="write one corpus (of NAME, with --lines) here, not to the cache")
    args = ap.parse_args(argv)
    names = args.names or list(SPECS)
    for name in names:
        if name not in SPECS:
            ap.error(f"unknown corpus {name!r} (known: {', '.join(SPECS)})")
    if args.out:
        if len(names) != 1:
            ap.error("--out takes exactly one NAME")
        sp = spec(names[0], args.quick)
        if args.lines:
            sp = Spec(sp.name, args.lines, sp.alert_share, sp.foreign_share, sp.rate, sp.seed)
        meta = write(sp, Path(args.out))
        print(json.dumps(asdict(meta)))
        return 0
    for name in names:
        t0 = time.perf_counter()
        path, meta = ensure(name, args.quick, args.force)
        print(
            f"{path}: {meta.lines} lines, {meta.bytes / 1e6:.0f} MB, {meta.alerts} our alerts, "
            f"{meta.scanners} scanners ({time.perf_counter() - t0:.1f}s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
