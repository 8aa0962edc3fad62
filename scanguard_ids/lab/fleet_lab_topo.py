"""The fleet lab's network: one scanner, N victim hosts on one segment, one Redis.

::

    scanner [fbr0 bridge 192.0.2.2/24]  <- the bridge lives in the scanner's namespace
       |-- veth -- host a [fv0 192.0.2.11/24]  Suricata + scanguard (own ipset)
       |-- veth -- host b [fv0 192.0.2.12/24]  Suricata + scanguard (own ipset)
       '-- veth -- host c [fv0 192.0.2.13/24]  Suricata + scanguard (own ipset)

Every host sees the scanner as the same 192.0.2.2, so a block decided at one host names the
address the others must drop. Redis is a redis-server started by PID on a unix socket in the
lab's work dir: a path every namespace reaches (network namespaces share the file system),
with no TCP port at all (``--port 0``), no persistence (``--save '' --appendonly no``).
Only documentation addresses, no routes; everything removed however the block ends.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scanguard_ids.lab import netns, procs
from scanguard_ids.lab.gateway_topo import _sysctls
from scanguard_ids.lab.netns import Netns
from scanguard_ids.lab.topology import VICTIM_SYSCTLS

log = logging.getLogger(__name__)

SCANNER4 = "192.0.2.2"
BRIDGE = "fbr0"
HOST_IF = "fv0"
NAMES = "abcdefgh"
MAX_HOSTS = len(NAMES)


@dataclass(slots=True)
class FleetHost:
    name: str  # "a", "b", ... (the fleet node name too)
    ns: Netns
    addr: str


@dataclass(slots=True)
class FleetTopology:
    scanner: Netns
    hosts: list[FleetHost]


def host_addr(i: int) -> str:
    return f"192.0.2.{11 + i}"


@contextlib.contextmanager
def build(n_hosts: int = 3, prefix: str = "sgf") -> Iterator[FleetTopology]:
    """The scanner with its bridge and ``n_hosts`` victims, reachable; removed on exit."""
    if not 2 <= n_hosts <= MAX_HOSTS:
        raise procs.LabError(f"hosts must be 2..{MAX_HOSTS}, got {n_hosts}")
    names = [f"{prefix}s", *(f"{prefix}{NAMES[i]}" for i in range(n_hosts))]
    with netns.namespaces(*names) as made:
        scanner, victims = made[0], made[1:]
        scanner.run(["ip", "link", "add", BRIDGE, "type", "bridge", "stp_state", "0"])
        scanner.run(["ip", "addr", "add", f"{SCANNER4}/24", "dev", BRIDGE])
        scanner.run(["ip", "link", "set", BRIDGE, "up"])
        hosts = []
        for i, ns in enumerate(victims):
            port = f"fp{NAMES[i]}0"
            netns.connect(ns, scanner, [f"{host_addr(i)}/24"], [], a_if=HOST_IF, b_if=port)
            scanner.run(["ip", "link", "set", port, "master", BRIDGE])
            _sysctls(ns, VICTIM_SYSCTLS)
            ns.run(["ethtool", "-K", HOST_IF, "tx", "off", "tso", "off", "gso", "off", "gro",
                    "off"], check=False)
            hosts.append(FleetHost(NAMES[i], ns, host_addr(i)))
        topo = FleetTopology(scanner, hosts)
        _wait_reachable(topo, 15.0)
        log.info("fleet topology scanner=%s hosts=%s", scanner.name,
                 ",".join(h.ns.name for h in hosts))
        yield topo


def _wait_reachable(topo: FleetTopology, timeout: float) -> None:
    """Each host answers an ICMP echo from the scanner (bounded)."""
    from scanguard_ids.lab.gateway_topo import _echo

    deadline = time.monotonic() + timeout
    left = [h.addr for h in topo.hosts]
    while left and time.monotonic() < deadline:
        left = [a for a in left if not _echo(topo.scanner, a)]
        if left:
            time.sleep(0.1)
    if left:
        raise procs.LabError(f"fleet hosts {left} not reachable from the scanner in {timeout}s")


@contextlib.contextmanager
def redis_server(workdir: Path, timeout: float = 10.0) -> Iterator[str]:
    """A redis-server on ``workdir/redis.sock`` (stopped by its PID on exit); yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise procs.LabError("redis-server not installed")
    sock = workdir / "redis.sock"
    proc = procs.spawn([binary, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm",
                        "777", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        procs.wait_for("redis-server", sock.exists, timeout, proc=proc, interval=0.02)
        log.info("redis-server pid=%d socket=%s", proc.pid, sock)
        yield f"unix://{sock}"
    finally:
        procs.stop(proc, grace=5)
