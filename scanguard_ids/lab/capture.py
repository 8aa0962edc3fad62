"""What the victim put on the wire: tcpdump in the victim namespace, and a pcap reader.

The capture keeps only packets *from* the victim (its responses: SYN-ACK, RST, ICMP
port unreachable, UDP replies), with kernel nanosecond timestamps on the same clock
as the rest of the lab (CLOCK_REALTIME). :func:`read_pcap` turns them into
:class:`WirePacket` records: which local port answered, to whom, and how.

No scapy: a classic pcap file of Ethernet frames is simple enough to decode here.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import select
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scanguard_ids.lab import procs
from scanguard_ids.lab.netns import Netns

log = logging.getLogger(__name__)

SYNACK = "syn-ack"
RST = "rst"
ICMP4_UNREACH = "icmp-port-unreachable"
ICMP6_UNREACH = "icmp6-port-unreachable"
UDP_REPLY = "udp"
OTHER = "other"

#: Kinds the detector counts (responses from closed ports).
OFFENDING = frozenset({RST, ICMP4_UNREACH, ICMP6_UNREACH})

_MAGIC = {0xA1B2C3D4: ("<", 1e-6), 0xA1B23C4D: ("<", 1e-9),
          0xD4C3B2A1: (">", 1e-6), 0x4D3CB2A1: (">", 1e-9)}


@dataclass(frozen=True, slots=True)
class WirePacket:
    """One response the victim sent: ``local_port`` is the victim's (probed) port."""

    ts: float
    kind: str
    local: str
    remote: str
    local_port: int
    remote_port: int
    proto: str  # protocol of the probed port: tcp | udp


def _tcp(ts: float, src: str, dst: str, seg: bytes) -> WirePacket | None:
    if len(seg) < 14:
        return None
    sport, dport = struct.unpack_from("!HH", seg)
    flags = seg[13]
    if flags & 0x04:
        kind = RST
    elif flags & 0x12 == 0x12:
        kind = SYNACK
    else:
        kind = OTHER
    return WirePacket(ts, kind, src, dst, sport, dport, "tcp")


def _quoted(ts: float, kind: str, src: str, dst: str, inner: bytes, v6: bool) -> WirePacket | None:
    """An ICMP error: the quoted probe says which local port was hit."""
    if v6:
        if len(inner) < 44:
            return None
        proto, hlen = inner[6], 40
    else:
        if len(inner) < 24:
            return None
        proto, hlen = inner[9], (inner[0] & 0x0F) * 4
    if len(inner) < hlen + 4:
        return None
    # The probe went remote -> local: its destination port is our port.
    rport, lport = struct.unpack_from("!HH", inner, hlen)
    probed = {6: "tcp", 17: "udp"}.get(proto, str(proto))
    return WirePacket(ts, kind, src, dst, lport, rport, probed)


def decode_frame(ts: float, frame: bytes) -> WirePacket | None:
    """Decode one Ethernet frame sent by the victim, or None if it is not a response."""
    if len(frame) < 14:
        return None
    etype = struct.unpack_from("!H", frame, 12)[0]
    ip = frame[14:]
    if etype == 0x0800 and len(ip) >= 20:
        hlen = (ip[0] & 0x0F) * 4
        proto = ip[9]
        src, dst = str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20]))
        body = ip[hlen:]
        if proto == 6:
            return _tcp(ts, src, dst, body)
        if proto == 17 and len(body) >= 4:
            sport, dport = struct.unpack_from("!HH", body)
            return WirePacket(ts, UDP_REPLY, src, dst, sport, dport, "udp")
        if proto == 1 and len(body) >= 8 and body[0] == 3 and body[1] == 3:
            return _quoted(ts, ICMP4_UNREACH, src, dst, body[8:], v6=False)
        return None
    if etype == 0x86DD and len(ip) >= 40:
        nxt = ip[6]
        src, dst = str(ipaddress.IPv6Address(ip[8:24])), str(ipaddress.IPv6Address(ip[24:40]))
        body = ip[40:]
        if nxt == 6:
            return _tcp(ts, src, dst, body)
        if nxt == 17 and len(body) >= 4:
            sport, dport = struct.unpack_from("!HH", body)
            return WirePacket(ts, UDP_REPLY, src, dst, sport, dport, "udp")
        if nxt == 58 and len(body) >= 8 and body[0] == 1 and body[1] == 4:
            return _quoted(ts, ICMP6_UNREACH, src, dst, body[8:], v6=True)
    return None


def read_pcap(path: Path) -> list[WirePacket]:
    """Responses in a classic pcap file (Ethernet link type), in file order."""
    data = path.read_bytes() if path.exists() else b""
    if len(data) < 24:
        return []
    magic = struct.unpack_from("<I", data)[0]
    if magic not in _MAGIC:
        raise ValueError(f"{path}: not a pcap file (magic {magic:#x})")
    endian, unit = _MAGIC[magic]
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    if linktype != 1:
        raise ValueError(f"{path}: link type {linktype}, expected Ethernet (1)")
    out: list[WirePacket] = []
    off = 24
    rec = struct.Struct(endian + "IIII")
    while off + 16 <= len(data):
        sec, frac, caplen, _ = rec.unpack_from(data, off)
        off += 16
        frame = data[off:off + caplen]
        off += caplen
        pkt = decode_frame(sec + frac * unit, frame)
        if pkt is not None:
            out.append(pkt)
    return out


@contextlib.contextmanager
def capture(ns: Netns, interface: str, sources: list[str], path: Path,
            snaplen: int = 160, ready_timeout: float = 10.0) -> Iterator[Path]:
    """tcpdump on ``interface`` in ``ns``, keeping packets sent from ``sources``."""
    flt = " or ".join(f"src host {ipaddress.ip_address(s)}" for s in sources)
    argv = ns.argv(["tcpdump", "-i", interface, "-n", "-U", "-s", str(snaplen),
                    "-B", "32768", "--time-stamp-precision", "nano", "-w", str(path), flt])
    proc = procs.spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_listening(proc, ready_timeout)
        yield path
    finally:
        procs.stop(proc, grace=5)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        for line in err.splitlines():
            if "dropped" in line or "received" in line:
                log.info("tcpdump %s", line.strip())


def _wait_listening(proc: subprocess.Popen[bytes], timeout: float) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = b""
    while (left := deadline - time.monotonic()) > 0:
        if proc.poll() is not None:
            text = seen.decode(errors="replace")
            raise procs.LabError(f"tcpdump exited {proc.returncode}: {text}")
        ready, _, _ = select.select([proc.stderr], [], [], min(left, 0.2))
        if ready:
            chunk = proc.stderr.read1(4096)  # type: ignore[attr-defined]
            seen += chunk
            if b"listening on" in seen:
                return
    raise procs.LabError("tcpdump did not start listening")
