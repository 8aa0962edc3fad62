"""The gateway lab's network: a scanner, a forwarding router, a victim network behind it.

::

    scanner [gs0 192.0.2.2/24 2001:db8:1::2/64]
       |  (route to the victim net via the router only; no default route anywhere)
    router  [go0 192.0.2.1/24 2001:db8:1::1/64]  ip_forward=1
            [gbr0 bridge 198.51.100.1/26 2001:db8:64::1/64]   <- Suricata sniffs here
       |-- servers [gv0 198.51.100.2..(1+servers), 2001:db8:64::2..]  listeners run here
       '-- hosts   [gh0 the rest of the hosts, all ports closed]

Every victim address is one "host" of the sweep; the servers namespace holds the first
``servers`` of them (one listener process answers on all of its addresses), the hosts
namespace the rest. Both hang off a bridge inside the router, so the router's inside
interface is the bridge: every packet between the scanner and any victim host crosses it
exactly once, routed (and passes the router's FORWARD chain, where scanguard drops).

Scanner addresses: 192.0.2.2 is the scanner's primary address; each scan of the lab uses
its own secondary address (:func:`add_scanner_addrs`) so that a block never carries over
from one scan to another.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from scanguard_ids.lab import netns, procs
from scanguard_ids.lab.netns import Netns
from scanguard_ids.lab.topology import VICTIM_SYSCTLS

log = logging.getLogger(__name__)

SCANNER_IF = "gs0"
OUTSIDE_IF = "go0"  # router, towards the scanner
INSIDE_IF = "gbr0"  # router, the bridge towards the victim network
SERVERS_IF = "gv0"
HOSTS_IF = "gh0"
ROUTER4, SCANNER4 = "192.0.2.1", "192.0.2.2"
ROUTER6, SCANNER6 = "2001:db8:1::1", "2001:db8:1::2"
NET4 = ipaddress.ip_network("198.51.100.0/26")
NET6 = ipaddress.ip_network("2001:db8:64::/64")
MAX_HOSTS = NET4.num_addresses - 3  # minus network, broadcast and the router (.1)

ROUTER_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv6.conf.all.forwarding": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv4.conf.all.send_redirects": "0",
}


@dataclass(slots=True)
class GatewayTopology:
    scanner: Netns
    router: Netns
    servers: Netns
    hosts: Netns
    hosts4: list[str] = field(default_factory=list)  # every victim host, servers first
    hosts6: list[str] = field(default_factory=list)
    n_servers: int = 0
    router_mac: str = ""  # of OUTSIDE_IF: the next hop masscan and zmap must be told

    @property
    def servers4(self) -> list[str]:
        return self.hosts4[:self.n_servers]

    @property
    def router_inside4(self) -> str:
        return str(NET4.network_address + 1)

    @property
    def router_inside6(self) -> str:
        return str(NET6.network_address + 1)

    @property
    def net4(self) -> str:
        return str(NET4)

    @property
    def net6(self) -> str:
        return str(NET6)

    def victim_addrs(self) -> list[str]:
        return [*self.hosts4, *self.hosts6]

    def namespaces(self) -> list[Netns]:
        return [self.scanner, self.router, self.servers, self.hosts]


def host_addrs(n_hosts: int) -> tuple[list[str], list[str]]:
    """The victim hosts: 198.51.100.2.. and 2001:db8:64::2.. (pure)."""
    if not 2 <= n_hosts <= MAX_HOSTS:
        raise procs.LabError(f"hosts must be 2..{MAX_HOSTS}, got {n_hosts}")
    v4 = [str(NET4.network_address + 2 + i) for i in range(n_hosts)]
    v6 = [str(NET6.network_address + 2 + i) for i in range(n_hosts)]
    return v4, v6


def add_scanner_addrs(topo: GatewayTopology, addrs: list[str]) -> None:
    for addr in addrs:
        netns.check_doc_address(addr)
        plen, extra = ("64", ["nodad"]) if ":" in addr else ("24", [])
        topo.scanner.run(["ip", "addr", "add", f"{addr}/{plen}", "dev", SCANNER_IF, *extra],
                         check=False)


def _sysctls(ns: Netns, values: dict[str, str]) -> None:
    for key, value in values.items():
        ns.run(["sysctl", "-q", "-w", f"{key}={value}"], check=False)


def _addrs(ns: Netns, ifname: str, v4: list[str], v6: list[str]) -> None:
    for a in v4:
        ns.run(["ip", "addr", "add", f"{a}/{NET4.prefixlen}", "dev", ifname])
    for a in v6:
        ns.run(["ip", "addr", "add", f"{a}/{NET6.prefixlen}", "dev", ifname, "nodad"])


def _mac(ns: Netns, ifname: str) -> str:
    res = ns.run(["cat", f"/sys/class/net/{ifname}/address"])
    return res.stdout.strip()


def _echo(ns: Netns, target: str) -> bool:
    """One ICMP echo answered (the lab's own rtt module; no iputils ping needed)."""
    res = procs.run(ns.argv([sys.executable, "-m", "scanguard_ids.lab.rtt", target, "--count",
                             "1", "--interval", "0.1"]), timeout=10, check=False)
    try:
        return int(json.loads(res.stdout)["received"]) > 0
    except (ValueError, KeyError):
        return False


def _wait_reachable(topo: GatewayTopology, timeout: float) -> None:
    """Ping the first and the last victim host from the scanner (bounded)."""
    deadline = time.monotonic() + timeout
    targets = [topo.hosts4[0], topo.hosts4[-1]]
    while time.monotonic() < deadline:
        if all(_echo(topo.scanner, t) for t in targets):
            return
        time.sleep(0.1)
    raise procs.LabError(f"victim hosts {targets} not reachable through the router in {timeout}s")


@contextlib.contextmanager
def build(n_hosts: int = 61, n_servers: int = 4, prefix: str = "sgg") -> Iterator[GatewayTopology]:
    """Create the four namespaces, links and routes; remove them however the block ends."""
    hosts4, hosts6 = host_addrs(n_hosts)
    if not 1 <= n_servers < n_hosts:
        raise procs.LabError(f"servers must be 1..hosts-1, got {n_servers}")
    names = ("s", "r", "v", "h")
    with netns.namespaces(*(f"{prefix}{n}" for n in names)) as (scanner, router, servers, hosts):
        topo = GatewayTopology(scanner, router, servers, hosts, hosts4, hosts6, n_servers)
        netns.connect(scanner, router, [f"{SCANNER4}/24", f"{SCANNER6}/64"],
                      [f"{ROUTER4}/24", f"{ROUTER6}/64"], a_if=SCANNER_IF, b_if=OUTSIDE_IF)
        router.run(["ip", "link", "add", INSIDE_IF, "type", "bridge", "stp_state", "0"])
        _addrs(router, INSIDE_IF, [str(NET4.network_address + 1)],
               [str(NET6.network_address + 1)])
        router.run(["ip", "link", "set", INSIDE_IF, "up"])
        for ns, ifname, lo, hi in ((servers, SERVERS_IF, 0, n_servers),
                                   (hosts, HOSTS_IF, n_servers, n_hosts)):
            port = f"gp{ifname[-2:]}"
            netns.connect(ns, router, [], [], a_if=ifname, b_if=port)
            router.run(["ip", "link", "set", port, "master", INSIDE_IF])
            _addrs(ns, ifname, hosts4[lo:hi], hosts6[lo:hi])
            ns.run(["ip", "route", "add", "192.0.2.0/24", "via", str(NET4.network_address + 1)])
            ns.run(["ip", "-6", "route", "add", "2001:db8:1::/64", "via",
                    str(NET6.network_address + 1)])
            _sysctls(ns, VICTIM_SYSCTLS)
        scanner.run(["ip", "route", "add", str(NET4), "via", ROUTER4])
        scanner.run(["ip", "-6", "route", "add", str(NET6), "via", ROUTER6])
        _sysctls(router, ROUTER_SYSCTLS)
        for ns, ifname in ((scanner, SCANNER_IF), (router, OUTSIDE_IF), (router, INSIDE_IF),
                           (servers, SERVERS_IF), (hosts, HOSTS_IF)):
            ns.run(["ethtool", "-K", ifname, "tx", "off", "tso", "off", "gso", "off", "gro",
                    "off"], check=False)
        topo.router_mac = _mac(router, OUTSIDE_IF)
        _wait_reachable(topo, timeout=15)
        log.info("gateway topology scanner=%s router=%s servers=%s hosts=%s n_hosts=%d",
                 scanner.name, router.name, servers.name, hosts.name, n_hosts)
        yield topo
