"""The kernel fast path: an nftables table that stops bursty scans before they learn much.

The response-based detector needs three closed-port responses; on a full SYN scan the
popular open ports have answered long before that. The probes themselves give a scan
away: it reaches many distinct ports within milliseconds. This table watches them in
the kernel and drops a source on its own, with no packet going to user space:

* A TCP SYN without ACK (ct state new) or a new UDP flow is a *probe* of a
  (source, protocol, port) pair - in gateway placement (source, destination, protocol,
  port), so host sweeps count too.
* A pair already in ``seen`` never counts again (retransmissions, reconnects); a new
  one is added and the source's per-element ``limit rate over R/second burst B
  packets`` in ``meter`` is charged one token. Over it, the source goes into
  ``blocked`` (dropped: mode block) or ``would_block`` (nothing dropped: mode detect).
* Never metered: sources in ``allow`` (config allowlist + own addresses, kept by
  :meth:`FastPath.set_allowlist`), ``live`` peers (an established connection that carried
  ``live_bytes`` both ways: a connect scan completes handshakes but sends no data, so it
  never qualifies), and ``exclude`` ports.
* Every set is bounded. A full ``seen`` or ``meter`` set fails open *for the meter
  only*: the packet passes uncounted and the named counter ``seen_full`` / ``meter_full``
  counts it; the Suricata path still protects.

The table is independent of the block backend (beside ipset or nftables) and is set up
and removed as ONE ``nft -f -`` transaction each, like block/nftables.py. Its base chains
run at priority -155, before the backend's -150. The daemon reads ``blocked`` /
``would_block`` once a second over netlink (block/nlnft.py) and adopts new entries.
Conntrack accounting (``ct bytes``) is switched on by the kernel for the namespace as soon
as a rule uses it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from scanguard_ids.block.common import Runner, check_result, run_argv
from scanguard_ids.config import FastpathConfig
from scanguard_ids.errors import BackendError

if TYPE_CHECKING:
    from scanguard_ids.block.nlnft import SetReader

#: The configured defaults ([fastpath] in config/schema.py): defined once, there (read from
#: the fields: building a FastpathConfig here would import this module back for parse_ports).
_DEFAULT: dict[str, Any] = {f.name: f.default for f in fields(FastpathConfig)}

log = logging.getLogger(__name__)

PRIORITY = -155
COUNTERS = ("seen_full", "meter_full", "tripped")
_V = {4: ("ip", "ipv4_addr"), 6: ("ip6", "ipv6_addr")}
MODES = ("off", "detect", "block")
PLACEMENTS = ("host", "gateway")


def parse_ports(items: Iterable[str | int]) -> tuple[tuple[int, int], ...]:
    """``("21", "50000-51000", 8080)`` -> ((21, 21), (50000, 51000), (8080, 8080)).

    Raises ValueError naming the bad item.
    """
    out = []
    for item in items:
        text = str(item).strip()
        lo_s, sep, hi_s = text.partition("-")
        try:
            lo = int(lo_s)
            hi = int(hi_s) if sep else lo
        except ValueError:
            raise ValueError(f"not a port or port range: {item!r}") from None
        if not 1 <= lo <= hi <= 65535:
            raise ValueError(f"not a port or port range in 1..65535: {item!r}")
        out.append((lo, hi))
    return tuple(sorted(set(out)))


def _port_elems(ranges: Iterable[tuple[int, int]]) -> str:
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


@dataclass(frozen=True, slots=True)
class FastPathLayout:
    """What the fast path installs, as data; renders the nft transactions (pure)."""

    table: str = "scanguard_fp"
    mode: str = "block"  # detect | block
    placement: str = "host"  # host | gateway
    burst: int = _DEFAULT["burst"]
    rate: int = _DEFAULT["rate"]
    ttl: int = _DEFAULT["ttl"]
    seen_timeout: int = _DEFAULT["seen_timeout"]
    meter_timeout: int = 60
    live_timeout: int = _DEFAULT["live_timeout"]
    live_bytes: int = _DEFAULT["live_bytes"]
    max_sources: int = _DEFAULT["max_sources"]
    max_pairs: int = _DEFAULT["max_pairs"]
    exclude_ports: tuple[tuple[int, int], ...] = ()

    @classmethod
    def from_config(cls, fp: FastpathConfig) -> FastPathLayout:
        return cls(mode=fp.mode, placement=fp.placement, burst=fp.burst, rate=fp.rate,
                   ttl=fp.ttl, seen_timeout=fp.seen_timeout, live_timeout=fp.live_timeout,
                   live_bytes=fp.live_bytes, max_sources=fp.max_sources,
                   max_pairs=fp.max_pairs, exclude_ports=parse_ports(fp.exclude_ports))

    @property
    def target(self) -> str:
        """The set a tripped source goes to."""
        return "blocked" if self.mode == "block" else "would_block"

    @property
    def hook(self) -> str:
        return "forward" if self.placement == "gateway" else "input"

    def _pair(self, v: int) -> tuple[str, str]:
        """(set type, key expression) of one probe pair."""
        proto, addr = _V[v]
        if self.placement == "gateway":
            return (f"{addr} . {addr} . inet_proto . inet_service",
                    f"{proto} saddr . {proto} daddr . meta l4proto . th dport")
        return f"{addr} . inet_proto . inet_service", f"{proto} saddr . meta l4proto . th dport"

    def sets(self) -> list[str]:
        t = f"inet {self.table}"
        lines = []
        for v in (4, 6):
            addr = _V[v][1]
            lines += [
                f"add set {t} allow{v} {{ type {addr}; flags interval; auto-merge; }}",
                f"add set {t} live{v} {{ type {addr}; flags dynamic, timeout; "
                f"size {self.max_sources}; timeout {self.live_timeout}s; }}",
                f"add set {t} seen{v} {{ type {self._pair(v)[0]}; flags dynamic, timeout; "
                f"size {self.max_pairs}; timeout {self.seen_timeout}s; }}",
                f"add set {t} track{v} {{ type {addr}; flags dynamic, timeout; "
                f"size {self.max_sources}; timeout {self.meter_timeout}s; }}",
                f"add set {t} meter{v} {{ type {addr}; flags dynamic, timeout; "
                f"size {self.max_sources}; timeout {self.meter_timeout}s; }}",
                f"add set {t} blocked{v} {{ type {addr}; flags dynamic, timeout; "
                f"size {self.max_sources}; timeout {self.ttl}s; }}",
                f"add set {t} would_block{v} {{ type {addr}; flags dynamic, timeout; "
                f"size {self.max_sources}; timeout {self.ttl}s; }}",
            ]
        lines.append(f"add set {t} exclude {{ type inet_service; flags interval; }}")
        return lines

    def rules(self) -> dict[str, list[str]]:
        """Chain name -> its rules. The base chain dispatches probes to ``probe``; the
        per-family chains meter them."""
        base: list[str] = []
        if self.mode == "block":
            base += [f"{p} saddr @blocked{v} drop" for v, (p, _) in _V.items()]
        live = (f"ct state established ct original bytes > {self.live_bytes} "
                f"ct reply bytes > {self.live_bytes}")
        base += [f"{live} {p} saddr != @live{v} update @live{v} {{ {p} saddr }}"
                 for v, (p, _) in _V.items()]
        base += ["tcp flags & (syn | ack) == syn ct state new jump probe",
                 "meta l4proto udp ct state new jump probe"]
        probe = ["th dport @exclude return"]
        probe += [f"meta nfproto ipv{v} goto probe{v}" for v in (4, 6)]
        out = {self.hook: base, "probe": probe}
        verdict = "drop" if self.mode == "block" else "return"
        for v, (p, _) in _V.items():
            key = self._pair(v)[1]
            out[f"probe{v}"] = [
                f"{p} saddr @allow{v} return",
                f"{p} saddr @live{v} return",
                f"{key} @seen{v} return",
                f"add @seen{v} {{ {key} }} goto meter{v}",
                "counter name seen_full return",  # reached only when the add failed: full
            ]
            target = "blocked" if self.mode == "block" else "would_block"
            out[f"meter{v}"] = [
                # track{v} holds the same keys as meter{v} (same size and timeout): a lookup
                # in meter{v} would run the element's limit again (Linux 6.18: it spends a
                # token and "misses" while under the limit), so this plain set tells "full"
                # apart from "under the limit".
                f"update @track{v} {{ {p} saddr }} goto charge{v}",
                "counter name meter_full return",  # the update failed: full
            ]
            out[f"charge{v}"] = [
                f"update @meter{v} {{ {p} saddr limit rate over {self.rate}/second "
                f"burst {self.burst} packets }} counter name tripped "
                f"add @{target}{v} {{ {p} saddr }} {verdict}",
            ]
        return out

    def install(self, allow: Iterable[str] = ()) -> str:
        t = f"inet {self.table}"
        lines = [f"add table {t}"]
        lines += [f"add counter {t} {c}" for c in COUNTERS]
        lines += self.sets()
        rules = self.rules()
        for chain in rules:
            if chain == self.hook:
                lines.append(f"add chain {t} {chain} {{ type filter hook {chain} "
                             f"priority {PRIORITY}; policy accept; }}")
            else:
                lines.append(f"add chain {t} {chain}")
        for chain in rules:
            lines.append(f"flush chain {t} {chain}")
        lines.append(f"flush set {t} exclude")
        if self.exclude_ports:
            lines.append(f"add element {t} exclude {{ {_port_elems(self.exclude_ports)} }}")
        for chain, body in rules.items():
            lines.extend(f"add rule {t} {chain} {rule}" for rule in body)
        return "\n".join(lines) + "\n" + self.allowlist(allow)

    def allowlist(self, nets: Iterable[str]) -> str:
        """Replace the allow sets' contents (one transaction with the rest, or alone)."""
        t = f"inet {self.table}"
        by_v: dict[int, list[str]] = {4: [], 6: []}
        for n in nets:
            net = ipaddress.ip_network(n, strict=False)
            by_v[net.version].append(str(net))
        lines = []
        for v in (4, 6):
            lines.append(f"flush set {t} allow{v}")
            if by_v[v]:
                lines.append(f"add element {t} allow{v} {{ {', '.join(sorted(set(by_v[v])))} }}")
        return "\n".join(lines) + "\n"

    def remove(self) -> str:
        return f"add table inet {self.table}\ndelete table inet {self.table}\n"

    def forget(self, ip: str) -> str:
        """Remove an address from blocked/would_block (and its meter state)."""
        addr = ipaddress.ip_address(ip)
        t = f"inet {self.table}"
        lines = []
        for s in ("blocked", "would_block", "meter", "track"):
            name = f"{s}{addr.version}"
            # add-then-delete: never fails on a missing element
            lines += [f"add element {t} {name} {{ {addr} }}",
                      f"delete element {t} {name} {{ {addr} }}"]
        return "\n".join(lines) + "\n"


@dataclass(slots=True)
class FastPathCounters:
    """The named counters, in packets."""

    seen_full: int = 0
    meter_full: int = 0
    tripped: int = 0


class FastPath:
    """Installs, refreshes and removes the fast-path table (``nft -f -``, one transaction
    each); reads its sets through :mod:`scanguard_ids.block.nlnft`."""

    def __init__(self, layout: FastPathLayout, runner: Runner = run_argv) -> None:
        self.layout = layout
        self._run = runner
        self._reader: SetReader | None = None
        self._known: set[str] = set()

    def poll(self) -> list[str]:
        """Addresses that entered the target set (blocked / would_block) since the last
        call: one netlink dump per family, no fork."""
        from scanguard_ids.block.nlnft import SetReader

        if self._reader is None:
            self._reader = SetReader(self.layout.table)
        now: set[str] = set()
        try:
            for v in (4, 6):
                now.update(e.ip for e in self._reader.elements(f"{self.layout.target}{v}"))
        except OSError as exc:
            self.close()
            raise BackendError(f"reading the fast-path sets: {exc}") from None
        new = sorted(now - self._known)
        self._known = now
        return new

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._reader = None

    def _nft(self, script: str, what: str) -> str:
        return check_result(self._run(["nft", "-f", "-"], stdin=script), what)

    def install(self, allow: Iterable[str] = ()) -> None:
        self._nft(self.layout.install(allow), f"installing nft table inet {self.layout.table}")
        log.info("action=install fastpath=inet:%s mode=%s placement=%s burst=%d rate=%d/s "
                 "ttl=%d", self.layout.table, self.layout.mode, self.layout.placement,
                 self.layout.burst, self.layout.rate, self.layout.ttl)

    def set_allowlist(self, nets: Iterable[str]) -> None:
        self._nft(self.layout.allowlist(nets), "refreshing the fast-path allowlist")

    def forget(self, ip: str) -> None:
        self._nft(self.layout.forget(ip), f"removing {ip} from the fast path")
        self._known.discard(ip)

    def remove(self) -> None:
        self.close()
        self._nft(self.layout.remove(), f"removing nft table inet {self.layout.table}")
        log.info("action=remove fastpath=inet:%s", self.layout.table)

    def counters(self) -> FastPathCounters:
        res = self._run(["nft", "-j", "list", "counters", "table", "inet", self.layout.table])
        out = FastPathCounters()
        if res.returncode != 0:
            raise BackendError(f"listing fast-path counters failed: {res.stderr.strip()}")
        for item in json.loads(res.stdout).get("nftables", []):
            c = item.get("counter")
            if isinstance(c, dict) and c.get("name") in COUNTERS:
                setattr(out, c["name"], int(c.get("packets", 0)))
        return out
