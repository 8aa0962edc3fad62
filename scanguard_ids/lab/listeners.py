"""Real services on the victim's open ports, in one process (selectors, no threads).

TCP: a listening socket per port that accepts and closes at once (a SYN scan only
needs the kernel's SYN-ACK; accepting keeps the backlog empty for connect scans).
UDP: a socket per port that answers every datagram with a short reply, so that
nmap's UDP scan sees a response and marks the port ``open`` (an unanswered probe is
only ``open|filtered``). IPv4 and, with ``--ipv6``, IPv6 (V6ONLY) on the same ports.

Run inside the victim namespace::

    python -m scanguard_ids.lab.listeners --tcp 80,443 --udp 53,161 --max-seconds 600

It prints ``{"ready": true, "tcp": n, "udp": n}`` once every socket is bound, counts
what it served, and prints the counters as JSON when it exits (SIGTERM or lifetime).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

from scanguard_ids.lab import procs
from scanguard_ids.lab.netns import Netns

REPLY = b"scanguard-lab\n"
MAX_EVENTS_PER_WAKE = 256


@dataclass(slots=True)
class Served:
    tcp_accepted: int = 0
    udp_answered: int = 0
    errors: int = 0


def _bind(family: int, kind: int, addr: str, port: int) -> socket.socket:
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((addr, port))
    if kind == socket.SOCK_STREAM:
        sock.listen(1024)
    sock.setblocking(False)
    return sock


def open_sockets(tcp: list[int], udp: list[int], ipv6: bool,
                 addrs: Sequence[str] = ()) -> list[tuple[socket.socket, str]]:
    """Wildcard sockets, or with ``addrs`` one socket per address (then a UDP reply leaves
    from the address that was probed, not from the interface's first address)."""
    fams = [(socket.AF_INET, "0.0.0.0")] + ([(socket.AF_INET6, "::")] if ipv6 else [])
    if addrs:
        fams = [(socket.AF_INET6 if ":" in a else socket.AF_INET, a) for a in addrs]
    socks: list[tuple[socket.socket, str]] = []
    for family, addr in fams:
        socks += [(_bind(family, socket.SOCK_STREAM, addr, p), "tcp") for p in tcp]
        socks += [(_bind(family, socket.SOCK_DGRAM, addr, p), "udp") for p in udp]
    return socks


def serve(socks: list[tuple[socket.socket, str]], max_seconds: float) -> Served:
    sel = selectors.DefaultSelector()
    for sock, kind in socks:
        sel.register(sock, selectors.EVENT_READ, kind)
    served = Served()
    stop = procs.stop_on_signals()
    deadline = time.monotonic() + max_seconds
    while not stop.requested and (left := deadline - time.monotonic()) > 0:
        for key, _ in sel.select(timeout=min(left, 0.5))[:MAX_EVENTS_PER_WAKE]:
            ready = key.fileobj
            if not isinstance(ready, socket.socket):
                continue
            try:
                if key.data == "tcp":
                    conn, _ = ready.accept()
                    conn.close()
                    served.tcp_accepted += 1
                else:
                    _, peer = ready.recvfrom(2048)
                    ready.sendto(REPLY, peer)
                    served.udp_answered += 1
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                served.errors += 1
    sel.close()
    for sock, _ in socks:
        sock.close()
    return served


def _ports(spec: str) -> list[int]:
    return [int(p) for p in spec.split(",") if p.strip()]


@contextlib.contextmanager
def running(ns: Netns, tcp: Sequence[int], udp: Sequence[int], ipv6: bool = True,
            max_seconds: float = 3600.0,
            addrs: Sequence[str] = ()) -> Iterator[subprocess.Popen[bytes]]:
    """This module as a process in ``ns``, ready (every socket bound) inside the block."""
    argv = [sys.executable, "-m", "scanguard_ids.lab.listeners", "--tcp", ",".join(map(str, tcp)),
            "--udp", ",".join(map(str, udp)), "--max-seconds", str(max_seconds)]
    if ipv6:
        argv.append("--ipv6")
    if addrs:
        argv += ["--bind", ",".join(addrs)]
    proc = procs.spawn(ns.argv(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = procs.read_line(proc, timeout=15)
        if b'"ready": true' not in line:
            raise procs.LabError(f"listeners did not start: {line!r}")
        yield proc
    finally:
        procs.stop(proc, grace=3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="listeners")
    p.add_argument("--tcp", default="", help="comma-separated TCP ports")
    p.add_argument("--udp", default="", help="comma-separated UDP ports")
    p.add_argument("--ipv6", action="store_true")
    p.add_argument("--max-seconds", type=float, default=3600.0)
    p.add_argument("--bind", default="", help="comma-separated addresses (default: wildcard)")
    a = p.parse_args(argv)
    tcp, udp = _ports(a.tcp), _ports(a.udp)
    socks = open_sockets(tcp, udp, a.ipv6, [x for x in a.bind.split(",") if x.strip()])
    sys.stdout.write(json.dumps({"ready": True, "tcp": len(tcp), "udp": len(udp)}) + "\n")
    sys.stdout.flush()
    served = serve(socks, a.max_seconds)
    sys.stdout.write(json.dumps(asdict(served)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
