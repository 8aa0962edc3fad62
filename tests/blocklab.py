"""Helpers for the enforcement-backend tests: the namespace lab, reachability probes,
a read-only snapshot of the host firewall."""

from __future__ import annotations

import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from nsutil import run_in_netns  # tests/nsutil.py (tests/ is on sys.path: rootdir conftest)
from waiting import wait_for

from scanguard_ids.lab.netns import Netns, Pair, victim_scanner
from scanguard_ids.lab.rtt import checksum

PORT = 8080
NEIGHBOUR4 = "192.0.2.3"
NEIGHBOUR6 = "2001:db8::3"

LISTENER = """
import select, socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1])))
s.listen(64)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    if select.select([s], [], [], 0.2)[0]:
        c, _ = s.accept()
        c.close()
"""


def need_root() -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 (network namespaces)")


def tcp_ok(dst: str, port: int, src: str | None = None, timeout: float = 1.0) -> bool:
    """Run in a namespace: does a TCP connect to dst:port succeed?"""
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        if src:
            s.bind((src, 0))
        try:
            s.connect((dst, port))
            return True
        except OSError:
            return False


def ping_ok(dst: str, src: str | None = None, timeout: float = 1.0) -> bool:
    """Run in a namespace: one ICMP(v6) echo to dst, like ``ping -c1 -W1 [-I src] dst``
    (iputils-ping is not installed everywhere; this needs only root)."""
    v6 = ":" in dst
    fam, proto = (socket.AF_INET6, socket.IPPROTO_ICMPV6) if v6 else (socket.AF_INET,
                                                                     socket.IPPROTO_ICMP)
    ident, seq = os.getpid() & 0xFFFF, 1
    req_type, rep_type = (128, 129) if v6 else (8, 0)
    payload = b"scanguard-ping"
    header = struct.pack("!BBHHH", req_type, 0, 0, ident, seq)
    if not v6:  # the kernel fills in the ICMPv6 checksum on raw sockets
        header = struct.pack("!BBHHH", req_type, 0, checksum(header + payload), ident, seq)
    with socket.socket(fam, socket.SOCK_RAW, proto) as s:
        if src:
            s.bind((src, 0))
        try:
            s.sendto(header + payload, (dst, 0))
        except OSError:  # EPERM: an OUTPUT rule dropped it
            return False
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([s], [], [], left)[0]:
                return False
            data, addr = s.recvfrom(2048)
            icmp = data if v6 else data[(data[0] & 0x0F) * 4:]
            if len(icmp) >= 8 and addr[0] == dst:
                typ, _, _, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
                if typ == rep_type and rid == ident and rseq == seq:
                    return True
    return False


@dataclass
class Lab:
    pair: Pair
    listener: subprocess.Popen[bytes]

    @property
    def victim(self) -> Netns:
        return self.pair.victim

    @property
    def scanner(self) -> Netns:
        return self.pair.scanner

    def ping(self, ns: Netns, dst: str, src: str | None = None) -> bool:
        return run_in_netns(ns.name, ping_ok, dst, src, timeout=10)

    def tcp(self, ns: Netns, dst: str, src: str | None = None) -> bool:
        return run_in_netns(ns.name, tcp_ok, dst, PORT, src, timeout=10)

    def reach(self, src_addr: str) -> dict[str, bool]:
        """From the scanner ns, using source src_addr: ping and TCP to the victim."""
        dst = self.pair.victim6 if ":" in src_addr else self.pair.victim4
        return {"ping": self.ping(self.scanner, dst, src_addr),
                "tcp": self.tcp(self.scanner, dst, src_addr)}


@contextmanager
def listening_lab(prefix: str, neighbours: bool = False) -> Iterator[Lab]:
    """The victim/scanner namespace pair (names start with ``prefix``) with the victim's TCP
    listener on PORT up and reachable from the scanner. ``neighbours``: the scanner also holds
    NEIGHBOUR4/NEIGHBOUR6 on its interface. The one lab fixture body of the live tests."""
    need_root()
    with victim_scanner(prefix) as pair:
        if neighbours:
            pair.scanner.run(["ip", "addr", "add", f"{NEIGHBOUR4}/24", "dev", "scan0"])
            pair.scanner.run(["ip", "addr", "add", f"{NEIGHBOUR6}/64", "dev", "scan0", "nodad"])
        listener = pair.victim.popen([sys.executable, "-c", LISTENER, str(PORT), "120"])
        try:
            lab = Lab(pair, listener)
            wait_for(lambda: lab.tcp(pair.scanner, pair.victim4), 10, "the victim's listener",
                     step=0.1)
            yield lab
        finally:
            listener.kill()
            listener.wait(timeout=10)


_HOST_READS = (
    ["ipset", "list", "-n"],
    ["nft", "list", "ruleset"],
    ["iptables-nft-save"], ["ip6tables-nft-save"],
    ["iptables-legacy-save"], ["ip6tables-legacy-save"],
)


def host_firewall() -> dict[str, str]:
    """The host namespace's sets and rules, read-only, without timestamps and counters."""
    out = {}
    for argv in _HOST_READS:
        if shutil.which(argv[0]) is None:
            continue
        res = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        lines = [re.sub(r"\[\d+:\d+\]", "", line) for line in res.stdout.splitlines()
                 if not line.startswith("#")]
        out[" ".join(argv)] = "\n".join(lines)
    return out


def ct_count(addr: str) -> int:
    """In a namespace: conntrack entries whose original tuple has addr at either end."""
    from pyroute2.conntrack import Conntrack

    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    ct = Conntrack(nfgen_family=fam)
    try:  # unfiltered: the kernel's tuple filter does not match IPv6 addresses
        return sum(1 for e in ct.dump_entries() if addr in (e.tuple_orig.saddr, e.tuple_orig.daddr))
    finally:
        ct.close()
