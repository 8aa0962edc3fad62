"""ICMP echo probes for the switched lab, run inside a namespace (no iputils needed).

``python -m scanguard_ids.lab.sdn.probe DST [--src SRC]`` sends one echo request
(IPv4 or IPv6) and exits 0 if the reply came. With ``--until dropped`` (or
``passing``) it probes every ``--interval`` seconds until the outcome changes and
prints one JSON line: ``{"t": <CLOCK_MONOTONIC of the first probe with the new
outcome>, "probes": n}``; ``t`` is null if it never changed within ``--max``
seconds. CLOCK_MONOTONIC is one clock for every process on the host, so the caller
subtracts its own ``time.monotonic()`` of the block to get the reaction time.
Destinations are documentation addresses only (checked).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import socket
import struct
import sys
import time

from scanguard_ids.lab.netns import check_doc_address
from scanguard_ids.lab.rtt import echo_request


class Pinger:
    """One raw ICMP/ICMPv6 socket sending numbered echo requests and reading the replies."""

    def __init__(self, dst: str, src: str | None = None) -> None:
        check_doc_address(dst)
        self.dst = dst
        self.v6 = ":" in dst
        fam, proto = ((socket.AF_INET6, socket.IPPROTO_ICMPV6) if self.v6
                      else (socket.AF_INET, socket.IPPROTO_ICMP))
        self.sock = socket.socket(fam, socket.SOCK_RAW, proto)
        if src:
            self.sock.bind((src, 0))
        self.ident = os.getpid() & 0xFFFF

    def send(self, seq: int) -> None:
        payload = b"scanguard-sdn-probe"
        if self.v6:  # the kernel computes ICMPv6 checksums on raw sockets
            msg = struct.pack("!BBHHH", 128, 0, 0, self.ident, seq & 0xFFFF) + payload
        else:
            msg = echo_request(self.ident, seq & 0xFFFF, payload)
        with contextlib.suppress(OSError):  # a local drop is a lost probe
            self.sock.sendto(msg, (self.dst, 0))

    def replies(self, timeout: float) -> list[int]:
        """Sequence numbers of echo replies: waits up to ``timeout`` for the first, then
        takes whatever else is already queued."""
        rep = 129 if self.v6 else 0
        out: list[int] = []
        wait = timeout
        while select.select([self.sock], [], [], wait)[0]:
            wait = 0.0
            data, addr = self.sock.recvfrom(2048)
            icmp = data if self.v6 else data[(data[0] & 0x0F) * 4:]
            if len(icmp) >= 8 and addr[0] == self.dst:
                typ, _, _, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
                if typ == rep and rid == self.ident:
                    out.append(rseq)
        return out

    def echo(self, timeout: float) -> bool:
        self.send(1)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if 1 in self.replies(left):
                return True
        return False

    def close(self) -> None:
        self.sock.close()


def until(pinger: Pinger, want_reply: bool, interval: float, timeout: float,
          limit: float) -> dict[str, object]:
    """Probe every ``interval`` s; the send time of the first probe whose outcome (a reply
    within ``timeout`` s, or none) is ``want_reply``. Probes overlap, so a slow reply is
    not taken for a drop."""
    start = time.monotonic()
    sent: dict[int, float] = {}
    replied: set[int] = set()
    seq, oldest, next_send = 0, 1, start
    while True:
        now = time.monotonic()
        if now >= next_send and now < start + limit:
            seq += 1
            sent[seq] = now
            pinger.send(seq)
            next_send += interval
        replied.update(s for s in pinger.replies(max(0.0, min(next_send - now, 0.01)))
                       if s in sent)
        now = time.monotonic()
        while oldest <= seq:
            if oldest in replied:
                outcome = True
            elif now > sent[oldest] + timeout:
                outcome = False
            else:
                break
            if outcome == want_reply:
                return {"t": sent[oldest], "probes": oldest}
            oldest += 1
        if oldest > seq and now >= start + limit:
            return {"t": None, "probes": seq}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dst")
    ap.add_argument("--src")
    ap.add_argument("--timeout", type=float, default=1.0, help="wait for a reply (s)")
    ap.add_argument("--until", choices=("dropped", "passing"))
    ap.add_argument("--interval", type=float, default=0.01)
    ap.add_argument("--max", type=float, default=10.0)
    args = ap.parse_args(argv)
    pinger = Pinger(args.dst, args.src)
    try:
        if args.until is None:
            return 0 if pinger.echo(args.timeout) else 1
        res = until(pinger, args.until == "passing", args.interval, args.timeout,
                    min(args.max, 120.0))
        print(json.dumps(res), flush=True)
        return 0 if res["t"] is not None else 1
    finally:
        pinger.close()


if __name__ == "__main__":
    sys.exit(main())
