"""Network namespaces for the lab and the tests: created, used, always removed.

Only RFC 5737 / RFC 3849 documentation addresses are used on these links and no
default route is ever added, so nothing can leave the namespaces.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

_DOC_NETS = [
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]


def check_doc_address(addr: str) -> None:
    """Refuse any address outside the documentation ranges."""
    ip = ipaddress.ip_interface(addr).ip
    if not any(ip in net for net in _DOC_NETS):
        raise ValueError(f"{addr} is not an RFC 5737/3849 documentation address")


def run(
    argv: Sequence[str], check: bool = True, timeout: float = 60, **kw: object
) -> subprocess.CompletedProcess[str]:
    """Run a command (argv list, never a shell string)."""
    return subprocess.run(
        list(argv), check=check, text=True, capture_output=True, timeout=timeout, **kw
    )  # type: ignore[call-overload]


def ns_argv(ns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


@dataclass
class Netns:
    name: str

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ns_argv(self.name, argv)

    def run(
        self, argv: Sequence[str], check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return run(self.argv(argv), check=check, timeout=timeout)

    def popen(self, argv: Sequence[str], **kw: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv(argv), **kw)  # type: ignore[call-overload]


@dataclass
class Link:
    """A veth pair between two namespaces with addresses on both ends."""

    a: Netns
    b: Netns
    a_if: str
    b_if: str
    a_addrs: list[str] = field(default_factory=list)  # with prefix, e.g. 192.0.2.1/24
    b_addrs: list[str] = field(default_factory=list)


def unique(prefix: str) -> str:
    """A short unique namespace/interface name (interface names max 15 chars)."""
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def create_ns(name: str) -> Netns:
    run(["ip", "netns", "add", name])
    ns = Netns(name)
    ns.run(["ip", "link", "set", "lo", "up"])
    return ns


def delete_ns(name: str) -> None:
    # Kill what still runs inside (only processes in *our* namespace, by PID).
    res = run(["ip", "netns", "pids", name], check=False)
    for pid in res.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), 9)
    run(["ip", "netns", "del", name], check=False)


def connect(
    a: Netns,
    b: Netns,
    a_addrs: Sequence[str],
    b_addrs: Sequence[str],
    a_if: str | None = None,
    b_if: str | None = None,
    tx_off: bool = False,
) -> Link:
    """Create a veth pair a<->b, address both ends (documentation ranges only)."""
    for addr in (*a_addrs, *b_addrs):
        check_doc_address(addr)
    a_if = a_if or unique("va")
    b_if = b_if or unique("vb")
    tmp = unique("vt")
    run(["ip", "link", "add", a_if, "netns", a.name, "type", "veth", "peer", "name", tmp])
    run(["ip", "link", "set", tmp, "netns", b.name])
    b.run(["ip", "link", "set", tmp, "name", b_if])
    for ns, ifname, addrs in ((a, a_if, a_addrs), (b, b_if, b_addrs)):
        for addr in addrs:
            extra = ["nodad"] if ":" in addr else []
            ns.run(["ip", "addr", "add", addr, "dev", ifname, *extra])
        ns.run(["ip", "link", "set", ifname, "up"])
        if tx_off:
            ns.run(["ethtool", "-K", ifname, "tx", "off"], check=False)
    return Link(a, b, a_if, b_if, list(a_addrs), list(b_addrs))


@contextlib.contextmanager
def namespaces(*prefixes: str) -> Iterator[list[Netns]]:
    """Create uniquely named namespaces and delete them however the block ends."""
    made: list[Netns] = []
    try:
        for p in prefixes:
            made.append(create_ns(unique(p)))
        yield made
    finally:
        for ns in reversed(made):
            delete_ns(ns.name)


@dataclass
class Pair:
    """The common topology: a victim and a scanner joined by one veth."""

    victim: Netns
    scanner: Netns
    link: Link
    victim4: str = "192.0.2.1"
    scanner4: str = "192.0.2.2"
    victim6: str = "2001:db8::1"
    scanner6: str = "2001:db8::2"


@contextlib.contextmanager
def victim_scanner(prefix: str = "sg") -> Iterator[Pair]:
    """victim (192.0.2.1, 2001:db8::1) <-veth-> scanner (192.0.2.2, 2001:db8::2)."""
    with namespaces(f"{prefix}v", f"{prefix}s") as (victim, scanner):
        link = connect(
            victim,
            scanner,
            ["192.0.2.1/24", "2001:db8::1/64"],
            ["192.0.2.2/24", "2001:db8::2/64"],
            a_if="victim0",
            b_if="scan0",
        )
        yield Pair(victim, scanner, link)
