"""A delaying layer-2 forwarder: the lab's stand-in for ``tc netem delay``.

This kernel has no netem qdisc (``tc qdisc add ... netem`` answers "Specified qdisc
kind is unknown", and fq/EDT is missing too), so the lab's middle namespace runs this
process instead: one AF_PACKET socket per interface, every frame received on one
side is re-sent on the other ``delay`` seconds later. Both directions share one
FIFO queue (a constant delay keeps it time-ordered). The queue is bounded (frames
beyond it are dropped and counted) and so is the lifetime (``--max-seconds``).

Run inside the namespace::

    python -m scanguard_ids.lab.delayfwd --if-a pv0 --if-b ps0 --delay-ms 10 --max-seconds 600

On exit it prints one JSON line of counters to stdout.
"""

from __future__ import annotations

import argparse
import collections
import json
import select
import socket
import sys
import time
from dataclasses import asdict, dataclass

from scanguard_ids.lab import procs

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
MAX_FRAME = 65_536
BATCH = 64


@dataclass(slots=True)
class Counters:
    forwarded: int = 0
    dropped_queue_full: int = 0
    send_errors: int = 0
    max_queue: int = 0


def _open(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((ifname, 0))
    sock.setblocking(False)
    return sock


def forward(if_a: str, if_b: str, delay: float, max_seconds: float, max_queue: int) -> Counters:
    """Bridge ``if_a`` <-> ``if_b`` with ``delay`` seconds each way until stopped."""
    a, b = _open(if_a), _open(if_b)
    other = {a.fileno(): b, b.fileno(): a}
    socks = {a.fileno(): a, b.fileno(): b}
    poller = select.epoll()
    for fd in socks:
        poller.register(fd, select.EPOLLIN)
    queue: collections.deque[tuple[float, socket.socket, bytes]] = collections.deque()
    c = Counters()
    stop = procs.stop_on_signals()
    deadline = time.monotonic() + max_seconds
    while not stop.requested:
        now = time.monotonic()
        if now >= deadline:
            break
        while queue and queue[0][0] <= now:
            _, out, frame = queue.popleft()
            try:
                out.send(frame)
                c.forwarded += 1
            except OSError:
                c.send_errors += 1
        timeout = min(deadline - now, 0.5) if not queue else max(queue[0][0] - now, 0.0)
        try:
            events = poller.poll(timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
            continue
        arrived = time.monotonic()
        for fd, _ in events:
            sock, out = socks[fd], other[fd]
            for _ in range(BATCH):
                try:
                    frame, addr = sock.recvfrom(MAX_FRAME)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:  # older kernels ignore IGNORE_OUTGOING
                    continue
                if len(queue) >= max_queue:
                    c.dropped_queue_full += 1
                    continue
                queue.append((arrived + delay, out, frame))
        c.max_queue = max(c.max_queue, len(queue))
    a.close()
    b.close()
    return c


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="delayfwd", description=__doc__.splitlines()[0])
    p.add_argument("--if-a", required=True)
    p.add_argument("--if-b", required=True)
    p.add_argument("--delay-ms", type=float, required=True)
    p.add_argument("--max-seconds", type=float, default=3600.0)
    p.add_argument("--max-queue", type=int, default=200_000)
    args = p.parse_args(argv)
    c = forward(args.if_a, args.if_b, args.delay_ms / 1000.0, args.max_seconds, args.max_queue)
    sys.stdout.write(json.dumps(asdict(c)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
