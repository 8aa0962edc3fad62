"""Addresses that are never blocked: configured CIDRs plus this host's own addresses.

:class:`Allowlist` answers ``ip in allowlist`` for textual addresses (v4 and v6)
with a bounded cache in front of a per-prefix-length set lookup, so the cost
does not grow with the number of networks. :func:`own_addresses` reads the
addresses of the network namespace the process runs in; it does I/O and is
kept apart from the pure detector, which only receives the built Allowlist.
:class:`OwnAddressWatch` follows address changes (netlink events, a poll as fallback) so an
address that becomes ours is allowlisted at once, not at the next SIGHUP.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import selectors
import socket
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scanguard_ids.config import DetectConfig

log = logging.getLogger(__name__)

_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse6(ip: str) -> int | None:
    """Integer value of a textual IPv6 address, None if it is not one."""
    addr = ip.split("%", 1)[0]  # fe80::1%eth0: the zone does not matter here
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6, addr), "big")
    except (OSError, ValueError):
        return None


def _table(nets: Iterable[_Net], bits: int) -> tuple[tuple[int, frozenset[int]], ...]:
    """Group networks by prefix length: ((shift, {network >> shift, ...}), ...)."""
    by_len: dict[int, set[int]] = {}
    for net in nets:
        shift = bits - net.prefixlen
        by_len.setdefault(shift, set()).add(int(net.network_address) >> shift)
    # Widest networks first: they are the likeliest to match.
    return tuple((shift, frozenset(v)) for shift, v in sorted(by_len.items(), reverse=True))


def _heads4(nets: Iterable[ipaddress.IPv4Network]) -> frozenset[str]:
    """The first octets, as text, of every address in ``nets``.

    inet_pton(AF_INET) takes only canonical dotted quads (no leading zeros, no short forms:
    tested), so a text without ":" whose part before the first "." is none of these is no
    allowlisted address: the common miss costs a find and a set lookup, no parse.
    """
    heads: set[str] = set()
    for net in nets:
        first = int(net.network_address) >> 24
        heads.update(str(o) for o in range(first, (int(net.broadcast_address) >> 24) + 1))
    return frozenset(heads)


class Allowlist:
    """A set of networks; ``"192.0.2.7" in allowlist`` is cheap and cached.

    Invalid address strings are never "in" the allowlist. IPv4-mapped IPv6
    addresses (``::ffff:192.0.2.7``) also match the IPv4 networks.
    """

    __slots__ = ("_cache", "_cache_size", "_nets", "_v4", "_v6", "heads4", "known")

    def __init__(self, networks: Iterable[str | _Net] = (), cache_size: int = 65_536) -> None:
        nets: list[_Net] = []
        for n in networks:
            nets.append(n if isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network)
                        else ipaddress.ip_network(n, strict=False))
        self._nets = tuple(nets)
        self._v4 = _table((n for n in nets if n.version == 4), 32)
        self._v6 = _table((n for n in nets if n.version == 6), 128)
        self.heads4 = _heads4(n for n in nets if isinstance(n, ipaddress.IPv4Network))
        self._cache: dict[str, bool] = {}
        self._cache_size = max(1, cache_size)
        #: ``known(ip)``: the cached answer (True/False) or None: the hot path's first look,
        #: one dict lookup and no call into this class; on None ask :meth:`lookup`.
        self.known = self._cache.get  # the cache is only ever cleared in place

    @classmethod
    def from_config(cls, cfg: DetectConfig, own: Iterable[str] = ()) -> Allowlist:
        """The configured allowlist, plus ``own`` addresses if allow_own_addresses is set."""
        extra = list(own) if cfg.allow_own_addresses else []
        return cls([*cfg.allowlist, *extra])

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(str(n) for n in self._nets)

    def __len__(self) -> int:
        return len(self._nets)

    def __repr__(self) -> str:
        return f"Allowlist({list(self.networks)!r})"

    def __contains__(self, ip: object) -> bool:
        hit = self._cache.get(ip)  # type: ignore[call-overload]
        if hit is not None:
            return hit
        return self.lookup(ip)

    def cache_miss(self, ip: str) -> None:
        """Cache ``ip`` as not allowlisted (the caller asked :meth:`lookup`; the answer was
        False) while the cache has room: for a client seen again, not for a flood."""
        if len(self._cache) < self._cache_size:
            self._cache[ip] = False

    def lookup(self, ip: object) -> bool:
        """``ip in self`` for an address :attr:`known` does not hold. A hit is cached; a miss
        is not (the caller caches it with :meth:`cache_miss` when the address comes back):
        a flood of fresh IPv6 sources would otherwise fill the cache, and hold each one's
        text alive, ~40 B per source."""
        if not isinstance(ip, str):
            return False
        if ":" not in ip and ip[:ip.find(".")] not in self.heads4:
            return False  # most misses: no IPv4 network starts with this octet (uncached)
        found = self._lookup(ip)
        if found:
            cache = self._cache
            if len(cache) >= self._cache_size:
                cache.clear()  # crude but O(1) amortised and bounded
            cache[ip] = True
        return found

    def overlaps(self, net: str | _Net) -> bool:
        """Does the network ``net`` (e.g. a prefix to block) share any address with an
        allowlisted network - contain one of them, or lie inside one?

        Walks the networks (a control-path check, not the hot path). IPv4-mapped IPv6
        networks in the allowlist also match IPv4 prefixes, as in ``in``.
        """
        if not isinstance(net, ipaddress.IPv4Network | ipaddress.IPv6Network):
            net = ipaddress.ip_network(net, strict=False)
        for n in self._nets:
            if n.version == 6 and net.version == 4 and n.prefixlen >= 96 \
                    and n.network_address.ipv4_mapped is not None:
                n = ipaddress.IPv4Network((n.network_address.ipv4_mapped, n.prefixlen - 96))
            if n.version == net.version and n.overlaps(net):  # type: ignore[arg-type]
                return True
        return False

    def _lookup(self, ip: str) -> bool:
        try:
            value = int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
            table = self._v4
        except OSError:
            parsed = _parse6(ip)
            if parsed is None:
                return False
            value = parsed
            if value >> 32 == 0xFFFF and self._v4:  # ::ffff:a.b.c.d
                v4 = value & 0xFFFFFFFF
                for shift, prefixes in self._v4:
                    if v4 >> shift in prefixes:
                        return True
            table = self._v6
        except ValueError:  # embedded NUL
            return False
        for shift, prefixes in table:  # noqa: SIM110 - a plain loop beats any(genexpr) here
            if value >> shift in prefixes:
                return True
        return False


def own_addresses(netns: str | None = None) -> list[str]:
    """The addresses configured on this host's interfaces (of the current netns).

    ``netns`` names another network namespace to read instead (tests, lab).
    Returns an empty list, with a warning, if the addresses cannot be read.
    """
    from pyroute2 import IPRoute  # lazy: the pure detector never needs it
    from pyroute2.netlink.exceptions import NetlinkError

    found: list[str] = []
    try:
        with (IPRoute(netns=netns) if netns else IPRoute()) as ipr:
            for msg in ipr.get_addr():
                # On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
                addr = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
                if addr and addr not in found:
                    found.append(addr)
    except (OSError, NetlinkError) as exc:
        log.warning("own_addresses error=%s netns=%s", exc, netns or "-")
        return []
    return found


#: RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR: address added / removed, either family.
IFADDR_GROUPS = 0x10 | 0x100
_ADDR_EVENTS = frozenset({"RTM_NEWADDR", "RTM_DELADDR"})


class OwnAddressWatch:
    """Calls ``on_change(addresses)`` from its own thread when this host's addresses change.

    Netlink address events (a multicast subscription, no polling) only *wake* it; the
    addresses are then read afresh with :func:`own_addresses`, so a lost or merged event
    costs nothing. When the subscription is not possible, :meth:`poll` (the daemon calls it
    every housekeeping second) compares a fresh read instead.
    """

    def __init__(self, on_change: Callable[[frozenset[str]], None], current: Iterable[str] = (),
                 netns: str | None = None) -> None:
        self.on_change = on_change
        self.netns = netns
        self.known = frozenset(current)
        self.events = 0
        self.changes = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def subscribed(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Subscribe to address events; False (logged) if netlink refuses: poll() then."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="own-addresses",
                                        daemon=True)
        self._thread.start()
        ready.wait(5)
        if not self.subscribed:
            return False
        self.refresh()  # an address added between the first read and the subscription
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def poll(self) -> None:
        """The fallback: a fresh read when no subscription runs (cheap: one dump)."""
        if not self.subscribed:
            self.refresh()

    def refresh(self) -> None:
        with self._lock:
            found = own_addresses(self.netns)
            now = frozenset(found)
            if not found or now == self.known:  # an empty read is an error (logged)
                return
            added, gone = now - self.known, self.known - now
            self.known = now
            self.changes += 1
        log.info("own_addresses_changed added=%s removed=%s", ",".join(sorted(added)) or "-",
                 ",".join(sorted(gone)) or "-")
        try:
            self.on_change(now)
        except Exception:  # a failing consumer must not end the watch
            log.exception("own address change not applied")

    def _run(self, ready: threading.Event) -> None:
        # pyroute2 (0.9) wants its socket used by the thread that made it: all of it is here.
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            ipr = IPRoute(netns=self.netns) if self.netns else IPRoute()
        except (OSError, NetlinkError) as exc:
            log.warning("own_address_watch unavailable error=%s: polling every second", exc)
            ready.set()
            return
        sel = selectors.DefaultSelector()
        try:
            ipr.bind(groups=IFADDR_GROUPS)
            sel.register(ipr.fileno(), selectors.EVENT_READ)
            ready.set()
            while not self._stop.is_set():
                if not sel.select(timeout=0.5):
                    continue
                n = sum(1 for m in ipr.get() if m.get("event") in _ADDR_EVENTS)
                if n:
                    self.events += n
                    self.refresh()
        except (OSError, NetlinkError) as exc:
            log.warning("own_address_watch stopped error=%s: polling every second", exc)
        except Exception:  # the watch must never take the daemon down; poll() takes over
            log.exception("own_address_watch failed: polling every second")
        finally:
            ready.set()
            sel.close()
            with contextlib.suppress(OSError):
                ipr.close()
