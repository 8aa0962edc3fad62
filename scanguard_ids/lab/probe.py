"""Single, paced probes from the scanner: one TCP connect or UDP datagram per port.

Used to check that the sensor's rules fire before a scan, and to measure alert and
block latency one response at a time (nmap's bursts make single latencies hard to
pair). Run inside the scanner namespace::

    python -m scanguard_ids.lab.probe 192.0.2.1 --tcp 1,2,3 --udp 4 --interval 0.05 \
        --source 192.0.2.9

Prints one JSON line per probe: ``{"proto", "port", "sent", "result"}`` where ``sent``
is the epoch time the probe left and ``result`` is refused/open/timeout/reply/sent.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Sequence

from scanguard_ids.lab import procs
from scanguard_ids.lab.netns import Netns, check_doc_address


def _socket(target: str, kind: int, source: str | None) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in target else socket.AF_INET, kind)
    if source:
        sock.bind((source, 0))
    return sock


def probe_tcp(target: str, port: int, timeout: float,
              source: str | None = None) -> tuple[float, str]:
    with _socket(target, socket.SOCK_STREAM, source) as sock:
        sock.settimeout(timeout)
        sent = time.time()
        try:
            sock.connect((target, port))
            return sent, "open"
        except ConnectionRefusedError:
            return sent, "refused"
        except TimeoutError:
            return sent, "timeout"
        except OSError as exc:
            return sent, f"error:{exc.errno}"


def probe_udp(target: str, port: int, timeout: float,
              source: str | None = None) -> tuple[float, str]:
    with _socket(target, socket.SOCK_DGRAM, source) as sock:
        sock.settimeout(timeout)
        sock.connect((target, port))
        sent = time.time()
        sock.send(b"")
        try:
            sock.recv(2048)
            return sent, "reply"
        except ConnectionRefusedError:
            return sent, "refused"
        except TimeoutError:
            return sent, "timeout"


def send(ns: Netns, target: str, source: str, tcp: Sequence[int] = (), udp: Sequence[int] = (),
         interval: float = 0.02, timeout: float = 0.3) -> list[dict[str, object]]:
    """Run this module in ``ns`` (bounded in time); one result dict per probe."""
    argv = [sys.executable, "-m", "scanguard_ids.lab.probe", target, "--source", source,
            "--interval", str(interval), "--timeout", str(timeout)]
    if tcp:
        argv += ["--tcp", ",".join(map(str, tcp))]
    if udp:
        argv += ["--udp", ",".join(map(str, udp))]
    n = len(tcp) + len(udp)
    res = procs.run(ns.argv(argv), timeout=n * (interval + timeout + 0.5) + 30)
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def _ports(spec: str) -> list[int]:
    return [int(p) for p in spec.split(",") if p.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="probe")
    p.add_argument("target")
    p.add_argument("--tcp", default="")
    p.add_argument("--udp", default="")
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--timeout", type=float, default=0.5)
    p.add_argument("--source", help="local address to send from (default: the route's)")
    a = p.parse_args(argv)
    for addr in (a.target, a.source):
        if addr:
            check_doc_address(addr)
    todo = [("tcp", port) for port in _ports(a.tcp)] + [("udp", port) for port in _ports(a.udp)]
    for i, (proto, port) in enumerate(todo[:10_000]):
        fn = probe_tcp if proto == "tcp" else probe_udp
        sent, result = fn(a.target, port, a.timeout, a.source)
        sys.stdout.write(json.dumps({"proto": proto, "port": port, "sent": sent,
                                     "result": result}) + "\n")
        sys.stdout.flush()
        if i + 1 < len(todo):
            time.sleep(a.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
