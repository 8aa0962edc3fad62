"""The ``sdn-openflow`` backend: drop flows with a hard timeout, so the switch expires them.

The direct path for a switch that no Faucet manages: for each blocked address one
flow matching it as source (and, with ``block.block_outbound``, one as destination)
in ``table`` at ``priority``, with no instructions (= drop) and
``hard_timeout = ttl``. The switch removes the flow when the timeout runs out, so a
dead daemon leaves nothing blocked forever, just as ipset's kernel timeouts do;
re-adding an identical flow replaces it and restarts its timeout (OpenFlow 1.3 §6.4).
All flows carry ``cookie`` in the bits of ``cookie_mask``: list, unblock and remove
touch those flows only. The switch's table is the source of truth: a restarted
daemon finds its blocks with the time each has left.

Two transports reach the switch:

* ``native`` (default): one persistent OpenFlow 1.3 connection (:mod:`ofconn`) to
  the switch's passive listener, a FLOW_MOD batch + BARRIER per call; errors the
  switch raises (table full, bad table) come back as BackendError.
* ``ofctl``: ``ovs-ofctl -O OpenFlow13 add-flows TARGET -`` per call (argv, flows on
  stdin), for when only the OVS tools may talk to the switch.

hard_timeout is 16 bits on the wire: a ttl above 65535 s (18.2 h) is cut to that.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from scanguard_ids.block.base import BackendInfo
from scanguard_ids.block.common import (
    IPAddress,
    Runner,
    check_result,
    check_ttl,
    normalize_ip,
    run_argv,
)
from scanguard_ids.block.sdn import ofp13
from scanguard_ids.block.sdn.ofconn import OfConnection
from scanguard_ids.clock import Clock, SystemClock
from scanguard_ids.config import BlockConfig
from scanguard_ids.errors import BackendError
from scanguard_ids.model import Block

log = logging.getLogger(__name__)

DEFAULT_TARGET = "unix:/var/run/openvswitch/br0.mgmt"
DEFAULT_COOKIE = 0x5CA9_0000_0000_0000  # "scanguard" in the top 16 bits
DEFAULT_COOKIE_MASK = 0xFFFF_0000_0000_0000
DEFAULT_PRIORITY = 40000


@dataclass(frozen=True, slots=True)
class DropFlow:
    addr: IPAddress
    direction: str  # "src" | "dst"
    hard_timeout: int = 0


@dataclass(frozen=True, slots=True)
class FlowLayout:
    table: int = 0
    priority: int = DEFAULT_PRIORITY
    cookie: int = DEFAULT_COOKIE
    cookie_mask: int = DEFAULT_COOKIE_MASK

    def flows(self, addr: IPAddress, ttl: int, outbound: bool) -> list[DropFlow]:
        dirs = ("src", "dst") if outbound else ("src",)
        return [DropFlow(addr, d, ttl) for d in dirs]

    # -- ovs-ofctl text (pure) -----------------------------------------------------
    def ofctl_match(self, f: DropFlow) -> str:
        if f.addr.version == 4:
            return f"ip,nw_{f.direction}={f.addr}"
        return f"ipv6,ipv6_{f.direction}={f.addr}"

    def ofctl_add(self, f: DropFlow) -> str:
        return (f"add cookie={self.cookie:#x},table={self.table},priority={self.priority},"
                f"hard_timeout={f.hard_timeout},{self.ofctl_match(f)},actions=drop")

    def ofctl_delete(self, f: DropFlow) -> str:
        return (f"delete cookie={self.cookie:#x}/{self.cookie_mask:#x},table={self.table},"
                f"{self.ofctl_match(f)}")

    def ofctl_cookie(self) -> str:
        return f"cookie={self.cookie:#x}/{self.cookie_mask:#x}"


@dataclass(frozen=True, slots=True)
class Installed:
    """One of our flows as the switch reports it."""

    ip: str
    direction: str
    left: float | None  # seconds until the switch removes it; None = no timeout


def parse_ofctl_dump(text: str) -> list[Installed]:
    """Our flows from ``ovs-ofctl dump-flows`` output (one flow per line)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("cookie="):
            continue
        spec = line.split(" actions=", 1)[0].replace(", ", ",")
        kv = dict(tok.split("=", 1) for tok in spec.split(",") if "=" in tok)
        ip = direction = None
        for key in ("nw_src", "nw_dst", "ipv6_src", "ipv6_dst"):
            if key in kv:
                ip, direction = kv[key], key.rsplit("_", 1)[1]
        if ip is None or direction is None:
            continue
        hard = int(kv.get("hard_timeout", "0"))
        dur = float(kv.get("duration", "0s").rstrip("s"))
        out.append(Installed(ip, direction, max(0.0, hard - dur) if hard else None))
    return out


class FlowTransport(Protocol):
    name: str

    def check(self) -> None: ...

    def add(self, flows: list[DropFlow]) -> None: ...

    def delete(self, flows: list[DropFlow]) -> None: ...

    def delete_all(self) -> None: ...

    def dump(self) -> list[Installed]: ...

    def close(self) -> None: ...


class NativeTransport:
    """FLOW_MODs over one OpenFlow 1.3 connection; reconnects once when it was dropped."""

    name = "native"

    def __init__(self, target: str, layout: FlowLayout, timeout: float = 5.0) -> None:
        self.layout = layout
        self.conn = OfConnection(target, timeout)

    def _transact(self, build: Iterable[bytes] | None, what: str,
                  stats: bool = False) -> list[tuple[int, bytes]]:
        for attempt in (1, 2):
            try:
                fresh = not self.conn.connected
                msgs = list(build or [])
                if stats:
                    msgs.append(ofp13.flow_stats_request(
                        self.conn.xid(), cookie=self.layout.cookie,
                        cookie_mask=self.layout.cookie_mask))
                reply = self.conn.transact(msgs)
            except BackendError:
                if attempt == 2 or fresh:
                    raise
                log.info("action=reconnect backend=sdn-openflow target=%s", self.conn.target)
                continue
            if reply.errors:
                raise BackendError(f"{what}: the switch refused: "
                                   + "; ".join(sorted({e for _, e in reply.errors})))
            return reply.multipart
        raise AssertionError("unreachable")

    def _mods(self, flows: list[DropFlow], command: int) -> list[bytes]:
        lay = self.layout
        return [ofp13.flow_mod(self.conn.xid(), command=command,
                               match=ofp13.match_ip(f.addr, f.direction), cookie=lay.cookie,
                               cookie_mask=lay.cookie_mask if command == ofp13.DELETE else 0,
                               table_id=lay.table, priority=lay.priority,
                               hard_timeout=f.hard_timeout if command == ofp13.ADD else 0,
                               flags=ofp13.FF_RESET_COUNTS if command == ofp13.ADD else 0)
                for f in flows]

    def check(self) -> None:
        self._transact([], "connecting")

    def add(self, flows: list[DropFlow]) -> None:
        self._transact(self._mods(flows, ofp13.ADD), "adding drop flows")

    def delete(self, flows: list[DropFlow]) -> None:
        self._transact(self._mods(flows, ofp13.DELETE), "deleting drop flows")

    def delete_all(self) -> None:
        lay = self.layout
        self._transact([ofp13.flow_mod(self.conn.xid(), command=ofp13.DELETE,
                                       match=ofp13.match_all(), cookie=lay.cookie,
                                       cookie_mask=lay.cookie_mask, table_id=ofp13.TABLE_ALL)],
                       "deleting all scanguard flows")

    def dump(self) -> list[Installed]:
        out = []
        for _xid, body in self._transact(None, "reading flows", stats=True):
            mp_type, _flags, payload = ofp13.parse_multipart(body)
            if mp_type != ofp13.MP_FLOW:
                continue
            for st in ofp13.parse_flow_stats(payload):
                found = st.address()
                if found is None or (st.cookie & self.layout.cookie_mask) != self.layout.cookie:
                    continue
                left = max(0.0, st.hard_timeout - st.duration) if st.hard_timeout else None
                out.append(Installed(found[0], found[1], left))
        return out

    def close(self) -> None:
        self.conn.close()


class OfctlTransport:
    """The same flow mods through ``ovs-ofctl`` (one process per call, argv + stdin)."""

    name = "ofctl"

    def __init__(self, target: str, layout: FlowLayout, runner: Runner = run_argv,
                 timeout: float = 5.0) -> None:
        self.target = target
        self.layout = layout
        self._run = runner
        self.timeout = timeout

    def _ofctl(self, *args: str, stdin: str | None = None, what: str) -> str:
        argv = ["ovs-ofctl", "-O", "OpenFlow13", f"--timeout={max(1, int(self.timeout))}",
                args[0], self.target, *args[1:]]
        return check_result(self._run(argv, stdin=stdin, timeout=self.timeout + 5), what)

    def check(self) -> None:
        self._ofctl("dump-flows", self.layout.ofctl_cookie(), what="reading flows")

    def add(self, flows: list[DropFlow]) -> None:
        lines = "".join(self.layout.ofctl_add(f) + "\n" for f in flows)
        self._ofctl("add-flows", "-", stdin=lines, what="adding drop flows")

    def delete(self, flows: list[DropFlow]) -> None:
        lines = "".join(self.layout.ofctl_delete(f) + "\n" for f in flows)
        self._ofctl("add-flows", "-", stdin=lines, what="deleting drop flows")

    def delete_all(self) -> None:
        self._ofctl("del-flows", self.layout.ofctl_cookie(), what="deleting scanguard flows")

    def dump(self) -> list[Installed]:
        return parse_ofctl_dump(self._ofctl("dump-flows", self.layout.ofctl_cookie(),
                                            what="reading flows"))

    def close(self) -> None:
        pass


class OpenFlowBackend:
    def __init__(self, cfg: BlockConfig | None = None, clock: Clock | None = None, *,
                 target: str = DEFAULT_TARGET, transport: str = "native", table: int = 0,
                 priority: int = DEFAULT_PRIORITY, cookie: int = DEFAULT_COOKIE,
                 cookie_mask: int = DEFAULT_COOKIE_MASK, timeout: float = 5.0,
                 max_blocks: int | None = None, runner: Runner = run_argv) -> None:
        self.cfg = cfg or BlockConfig()
        self.clock: Clock = clock or SystemClock()
        if cookie & ~cookie_mask or not cookie_mask:
            raise BackendError(f"sdn cookie {cookie:#x} must lie inside cookie_mask "
                               f"{cookie_mask:#x}")
        self.layout = FlowLayout(table, priority, cookie, cookie_mask)
        self.max_blocks = max_blocks if max_blocks is not None else self.cfg.max_set_size
        self.transport: FlowTransport
        if transport == "native":
            self.transport = NativeTransport(target, self.layout, timeout)
        elif transport == "ofctl":
            self.transport = OfctlTransport(target, self.layout, runner, timeout)
        else:
            raise BackendError(f"sdn transport {transport!r}: one of native, ofctl")
        self.target = target
        self._lock = threading.Lock()
        self._known: dict[str, float] = {}  # ip -> expiry (epoch), for the size cap
        self.info = BackendInfo("sdn-openflow", f"drop flows on {target} via {transport}, "
                                f"table {table} priority {priority} cookie {cookie:#x}")

    def start(self) -> None:
        with self._lock:
            self.transport.check()
        log.info("action=install backend=sdn-openflow target=%s transport=%s table=%d "
                 "priority=%d cookie=%#x outbound=%s", self.target, self.transport.name,
                 self.layout.table, self.layout.priority, self.layout.cookie,
                 self.cfg.block_outbound)

    def block(self, ip: str, ttl: int) -> None:
        addr = normalize_ip(ip)
        ttl = check_ttl(ttl)
        if ttl > ofp13.MAX_HARD_TIMEOUT:
            log.warning("action=clamp-ttl backend=sdn-openflow ip=%s ttl=%d max=%d", addr, ttl,
                        ofp13.MAX_HARD_TIMEOUT)
            ttl = ofp13.MAX_HARD_TIMEOUT
        now = self.clock.now()
        with self._lock:
            self._known = {k: v for k, v in self._known.items() if v > now}
            if str(addr) not in self._known and len(self._known) >= self.max_blocks:
                raise BackendError(f"block {addr}: {len(self._known)} blocks on the switch "
                                   f"already (max_blocks {self.max_blocks})")
            self.transport.add(self.layout.flows(addr, ttl, self.cfg.block_outbound))
            self._known[str(addr)] = now + ttl
        log.debug("action=block ip=%s ttl=%d backend=sdn-openflow target=%s", addr, ttl,
                  self.target)

    def unblock(self, ip: str) -> None:
        addr = normalize_ip(ip)
        with self._lock:
            self.transport.delete(self.layout.flows(addr, 0, outbound=True))
            self._known.pop(str(addr), None)
        log.debug("action=unblock ip=%s backend=sdn-openflow target=%s", addr, self.target)

    def list(self) -> list[Block]:
        with self._lock:
            flows = self.transport.dump()
            now = self.clock.now()
            left: dict[str, float | None] = {}
            for f in flows:
                ip = str(normalize_ip(f.ip))
                if ip in left:
                    old = left[ip]
                    left[ip] = None if old is None or f.left is None else max(old, f.left)
                else:
                    left[ip] = f.left
            blocks = [Block(ip, None if s is None else now + s) for ip, s in sorted(left.items())]
            self._known = {b.ip: b.expires if b.expires is not None else float("inf")
                           for b in blocks}
        return blocks

    def show(self) -> str:
        blocks = self.list()
        v6 = sum(1 for b in blocks if ":" in b.ip)
        return (f"sdn-openflow: {self.target} via {self.transport.name}, table "
                f"{self.layout.table}, priority {self.layout.priority}, cookie "
                f"{self.layout.cookie:#x}/{self.layout.cookie_mask:#x}\n"
                f"{len(blocks)} blocked addresses ({len(blocks) - v6} IPv4, {v6} IPv6; "
                f"max {self.max_blocks})\n")

    def stop(self) -> None:
        with self._lock:
            self.transport.close()

    def remove(self) -> None:
        with self._lock:
            self.transport.delete_all()
            self._known.clear()
            self.transport.close()
        log.info("action=remove backend=sdn-openflow target=%s cookie=%#x", self.target,
                 self.layout.cookie)
