"""ICMP echo round-trip times, measured in-process (the lab does not rely on iputils ping).

Run inside a namespace: ``python -m scanguard_ids.lab.rtt 192.0.2.1 --count 20`` prints one
JSON object ``{"sent": n, "received": n, "rtt_ms": [...]}``. IPv4 only; the target must be
a documentation address (checked).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import struct
import sys
import time

from scanguard_ids.lab.netns import check_doc_address


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``: the lab's and the bench corpus's one."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes = b"scanguard-lab-rtt") -> bytes:
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, checksum(head + payload), ident, seq) + payload


def measure(target: str, count: int, interval: float, timeout: float) -> list[float | None]:
    """One rtt in ms per echo request, None for a lost one."""
    check_doc_address(target)
    ident = os.getpid() & 0xFFFF
    out: list[float | None] = []
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        for seq in range(count):
            sent = time.perf_counter()
            sock.sendto(echo_request(ident, seq), (target, 0))
            got = None
            deadline = sent + timeout
            while (left := deadline - time.perf_counter()) > 0:
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    break
                data = sock.recv(2048)
                ihl = (data[0] & 0x0F) * 4
                typ, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
                if typ == 0 and rid == ident and rseq == seq:
                    got = (time.perf_counter() - sent) * 1000.0
                    break
            out.append(got)
            if seq + 1 < count:
                time.sleep(interval)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="rtt")
    p.add_argument("target")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--timeout", type=float, default=1.0)
    a = p.parse_args(argv)
    rtts = measure(a.target, min(a.count, 10_000), a.interval, a.timeout)
    got = [r for r in rtts if r is not None]
    sys.stdout.write(json.dumps({"sent": len(rtts), "received": len(got), "rtt_ms": got}) + "\n")
    return 0 if got else 1


if __name__ == "__main__":
    sys.exit(main())
