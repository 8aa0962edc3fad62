"""The nftables backend: table ``inet <set_name>`` with timeout sets blocked4 / blocked6.

Prefix blocks ("2001:db8:1:2::/64") go to companion sets blocked4n / blocked6n with
``flags interval, timeout`` (per-element timeouts in interval sets work on Linux 6.18
with nft 1.0.6; tests/block/test_block_kernel.py checks it). The address sets keep
their definition, so a table made by an older version is completed, not replaced, by
start(). Prefixes in one set must not overlap (the kernel refuses "interval overlaps
with an existing one"); the detector's prefixes all have one length, so they never do.
A prefix block always goes through ``nft -f -`` (prefix blocks are rare: one per
scanning network), an address block over netlink as below. Conntrack entries of a
blocked prefix are not cleared (the clearer works per address); the drop rules run
before any "accept established", so those flows stop all the same.

Setup and removal are each ONE ``nft -f -`` transaction fed a generated ruleset on
stdin, so the table appears and disappears atomically. Re-running start() is
convergent: ``add`` of an existing table/set/chain is a no-op and the chains are
flushed and refilled inside the same transaction, so rules never double and there is
no instant without them.

Chains hook input, forward and output at priority -150 ("mangle"): after conntrack
(-200) and before every chain at the ``filter`` priority (0) - iptables-nft's filter
table, firewalld, a hand-written ``inet filter`` table with its ``ct state
established accept``. A drop verdict is final across base chains anyway, but going
first means a blocked packet is gone before any other rule counts, logs or NATs it.

Per-block changes go over netlink (pyroute2's nfnetlink socket), one batch per block:
add, delete, add with the new timeout. That refreshes the timeout of an element that
is already there on every kernel (before Linux 6.10 a plain ``add element`` on an
existing element kept the old timeout), and never fails on a missing one. If the
netlink path cannot be set up, the same transaction goes through ``nft -f -``.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any

from scanguard_ids.block.base import BackendInfo
from scanguard_ids.block.common import (
    IPAddress,
    Runner,
    check_result,
    check_ttl,
    normalize_ip,
    normalize_target,
    run_argv,
)
from scanguard_ids.block.conntrack import ConntrackClearer
from scanguard_ids.clock import Clock, SystemClock
from scanguard_ids.config import BlockConfig
from scanguard_ids.errors import BackendError
from scanguard_ids.model import Block, IPNetwork

log = logging.getLogger(__name__)

NFPROTO_INET = 1
PRIORITY = -150
SETS = {4: "blocked4", 6: "blocked6"}
NET_SETS = {4: "blocked4n", 6: "blocked6n"}
_KEY = {4: ("ip", "ipv4_addr"), 6: ("ip6", "ipv6_addr")}
_NFNL_BATCH_BEGIN = 0x10
_NFNL_BATCH_END = 0x11


@dataclass(frozen=True, slots=True)
class NftLayout:
    """What start() installs, as data; renders the nft transactions (pure)."""

    table: str
    size: int
    timeout: int
    outbound: bool

    def rules(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {"input": [], "forward": [], "output": []}
        for v in (4, 6):
            for s in (SETS[v], NET_SETS[v]):
                proto = _KEY[v][0]
                out["input"].append(f"{proto} saddr @{s} drop")
                out["forward"].append(f"{proto} saddr @{s} drop")
                if self.outbound:
                    out["forward"].append(f"{proto} daddr @{s} drop")
                    out["output"].append(f"{proto} daddr @{s} drop")
        return out

    def install(self) -> str:
        t = f"inet {self.table}"
        lines = [f"add table {t}"]
        for v in (4, 6):
            lines.append(f"add set {t} {SETS[v]} {{ type {_KEY[v][1]}; flags timeout; "
                         f"size {self.size}; timeout {self.timeout}s; }}")
        for v in (4, 6):
            lines.append(f"add set {t} {NET_SETS[v]} {{ type {_KEY[v][1]}; flags interval, "
                         f"timeout; size {self.size}; timeout {self.timeout}s; }}")
        rules = self.rules()
        for chain in rules:
            lines.append(f"add chain {t} {chain} {{ type filter hook {chain} "
                         f"priority {PRIORITY}; policy accept; }}")
        for chain in rules:
            lines.append(f"flush chain {t} {chain}")
        for chain, body in rules.items():
            lines.extend(f"add rule {t} {chain} {rule}" for rule in body)
        return "\n".join(lines) + "\n"

    def remove(self) -> str:
        # "add" first so that "delete" never fails: removal is idempotent and atomic.
        return f"add table inet {self.table}\ndelete table inet {self.table}\n"

    def set_of(self, target: IPAddress | IPNetwork) -> str:
        """The set that holds an address (blocked4/6) or a prefix (blocked4n/6n)."""
        return (NET_SETS if isinstance(target, IPNetwork) else SETS)[target.version]

    def refresh(self, addr: IPAddress | IPNetwork, ttl: int) -> str:
        s = f"inet {self.table} {self.set_of(addr)}"
        return (f"add element {s} {{ {addr} timeout {ttl}s }}\n"
                f"delete element {s} {{ {addr} }}\n"
                f"add element {s} {{ {addr} timeout {ttl}s }}\n")

    def drop(self, addr: IPAddress | IPNetwork) -> str:
        s = f"inet {self.table} {self.set_of(addr)}"
        return f"add element {s} {{ {addr} timeout 1s }}\ndelete element {s} {{ {addr} }}\n"


def parse_set_json(text: str, now: float) -> list[Block]:
    """Blocks from ``nft -j list set`` output; ``expires`` (seconds left) -> epoch.

    An interval set's element is a prefix ``{"prefix": {"addr": ..., "len": ...}}``.
    """
    blocks = []
    for item in json.loads(text).get("nftables", []):
        nft_set = item.get("set")
        if not nft_set:
            continue
        for elem in nft_set.get("elem", []):
            if isinstance(elem, str):
                blocks.append(Block(elem, None))
            elif isinstance(elem, dict) and isinstance(elem.get("elem"), dict):
                e = elem["elem"]
                val = e.get("val")
                if isinstance(val, dict) and isinstance(val.get("prefix"), dict):
                    val = f"{val['prefix'].get('addr')}/{val['prefix'].get('len')}"
                if isinstance(val, str):
                    left = e.get("expires")
                    blocks.append(Block(val, now + left if left is not None else None))
    return blocks


def _code(exc: Exception) -> int | None:
    """The errno of an OSError or of a pyroute2 NetlinkError (its ``code``)."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else getattr(exc, "errno", None)


class _Netlink:
    """One nfnetlink socket sending element batches to table inet <name>."""

    def __init__(self, table: str) -> None:
        from pyroute2.netlink.exceptions import NetlinkError
        from pyroute2.netlink.nfnetlink.nftsocket import NFTSocket

        self.errors: type[Exception] = NetlinkError
        self.table = table
        self.sock = NFTSocket(nfgen_family=NFPROTO_INET)

    def _elem(self, cmd: int, flags: int, addr: IPAddress, ttl_ms: int | None) -> Any:
        from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
        from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_NFTABLES
        from pyroute2.netlink.nfnetlink.nftsocket import nft_set_elem_list_msg

        family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
        key = socket.inet_pton(family, str(addr))
        elem: list[list[Any]] = [["NFTA_SET_ELEM_KEY", {"attrs": [["NFTA_DATA_VALUE", key]]}]]
        if ttl_ms is not None:
            elem.append(["NFTA_SET_ELEM_TIMEOUT", ttl_ms])
        msg = nft_set_elem_list_msg()
        msg["attrs"] = [["NFTA_SET_ELEM_LIST_TABLE", self.table],
                        ["NFTA_SET_ELEM_LIST_SET", SETS[addr.version]],
                        ["NFTA_SET_ELEM_LIST_ELEMENTS", [{"attrs": elem}]]]
        msg["header"]["type"] = (NFNL_SUBSYS_NFTABLES << 8) | cmd
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
        msg["nfgen_family"] = NFPROTO_INET
        return msg

    def _batch(self, msgs: list[Any]) -> None:
        from pyroute2.netlink import NLM_F_REQUEST
        from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_NFTABLES, nfgen_msg

        ends = []
        for kind in (_NFNL_BATCH_BEGIN, _NFNL_BATCH_END):
            m = nfgen_msg()
            m["res_id"] = NFNL_SUBSYS_NFTABLES
            m["header"]["type"] = kind
            m["header"]["flags"] = NLM_F_REQUEST
            ends.append(m)
        self.sock.nlm_request_batch([ends[0], *msgs, ends[1]])

    def refresh(self, addr: IPAddress, ttl: int) -> None:
        from pyroute2.netlink import NLM_F_CREATE
        from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_DELSETELEM, NFT_MSG_NEWSETELEM

        add = self._elem(NFT_MSG_NEWSETELEM, NLM_F_CREATE, addr, ttl * 1000)
        self._batch([add, self._elem(NFT_MSG_DELSETELEM, 0, addr, None),
                     self._elem(NFT_MSG_NEWSETELEM, NLM_F_CREATE, addr, ttl * 1000)])

    def delete(self, addr: IPAddress) -> None:
        from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_DELSETELEM

        self._batch([self._elem(NFT_MSG_DELSETELEM, 0, addr, None)])

    def close(self) -> None:
        self.sock.close()


class NftablesBackend:
    def __init__(self, cfg: BlockConfig | None = None, clock: Clock | None = None, *,
                 default_timeout: int = 300, runner: Runner = run_argv,
                 conntrack: ConntrackClearer | None = None, netlink: bool = True) -> None:
        self.cfg = cfg or BlockConfig()
        self.clock: Clock = clock or SystemClock()
        self.layout = NftLayout(self.cfg.set_name, self.cfg.max_set_size, default_timeout,
                                self.cfg.block_outbound)
        self._run = runner
        self._want_netlink = netlink
        self._nl: _Netlink | None = None
        self._nl_tried = False
        self._lock = threading.Lock()
        self._conntrack = conntrack if conntrack is not None else (
            ConntrackClearer(runner=runner) if self.cfg.clear_conntrack else None)
        self.info = BackendInfo("nftables", f"nft table inet {self.cfg.set_name}, "
                                f"sets {SETS[4]}/{SETS[6]}, priority {PRIORITY}")

    # -- setup -------------------------------------------------------------
    def _nft(self, script: str, what: str) -> str:
        return check_result(self._run(["nft", "-f", "-"], stdin=script), what)

    def start(self) -> None:
        try:
            self._nft(self.layout.install(), f"installing nft table inet {self.layout.table}")
        except BackendError as exc:
            raise BackendError(f"{exc}; if table inet {self.layout.table} was made by an "
                               "incompatible version, run `scanguard firewall remove` "
                               "first") from None
        with self._lock:
            self._netlink()
        log.info("action=install backend=nftables table=inet:%s sets=%s,%s size=%d "
                 "priority=%d outbound=%s per_block=%s", self.layout.table, SETS[4], SETS[6],
                 self.layout.size, PRIORITY, self.layout.outbound,
                 "netlink" if self._nl else "nft-argv")

    def _netlink(self) -> _Netlink | None:
        if self._want_netlink and not self._nl_tried:
            self._nl_tried = True
            try:
                self._nl = _Netlink(self.layout.table)
            except Exception as exc:  # noqa: BLE001 - no usable pyroute2 path: use nft argv
                log.warning("action=netlink-unavailable backend=nftables fallback=nft-argv "
                            "reason=%r", exc)
        return self._nl

    # -- per block ---------------------------------------------------------
    def block(self, ip: str, ttl: int) -> None:
        if "/" in ip:
            target = normalize_target(ip)
            if isinstance(target, IPNetwork):
                self._block_net(target, ttl)
                return
            ip = str(target)
        addr = normalize_ip(ip)
        ttl = check_ttl(ttl)
        with self._lock:
            nl = self._netlink()
            if nl is not None:
                try:
                    nl.refresh(addr, ttl)
                except (OSError, nl.errors) as exc:
                    raise self._error("block", addr, exc) from None
            else:
                self._nft(self.layout.refresh(addr, ttl), f"block {addr}")
        log.debug("action=block ip=%s ttl=%d backend=nftables set=%s", addr, ttl,
                  SETS[addr.version])
        if self._conntrack is not None:
            self._conntrack.submit(str(addr))

    def unblock(self, ip: str) -> None:
        if "/" in ip:
            target = normalize_target(ip)
            if isinstance(target, IPNetwork):
                with self._lock:
                    self._nft(self.layout.drop(target), f"unblock {target}")
                log.info("action=unblock ip=%s backend=nftables", target)
                return
            ip = str(target)
        addr = normalize_ip(ip)
        with self._lock:
            nl = self._netlink()
            if nl is not None:
                try:
                    nl.delete(addr)
                except (OSError, nl.errors) as exc:
                    if _code(exc) != errno.ENOENT:
                        raise self._error("unblock", addr, exc) from None
            else:
                self._nft(self.layout.drop(addr), f"unblock {addr}")
        log.debug("action=unblock ip=%s backend=nftables", addr)

    def _block_net(self, net: IPNetwork, ttl: int) -> None:
        ttl = check_ttl(ttl)
        with self._lock:
            self._nft(self.layout.refresh(net, ttl), f"block {net}")
        log.info("action=block ip=%s ttl=%d backend=nftables set=%s", net, ttl,
                 self.layout.set_of(net))

    def _error(self, what: str, addr: IPAddress, exc: Exception) -> BackendError:
        code = _code(exc)
        if code == errno.ENFILE:
            return BackendError(f"{what} {addr}: set {SETS[addr.version]} is full "
                                f"(size {self.layout.size})")
        if code == errno.ENOENT:
            return BackendError(f"{what} {addr}: table inet {self.layout.table} or its set is "
                                "missing; run `scanguard firewall install`")
        return BackendError(f"{what} {addr}: netlink error {exc}")

    # -- state -------------------------------------------------------------
    def list(self) -> list[Block]:
        now = self.clock.now()
        blocks: list[Block] = []
        for name in (*SETS.values(), *NET_SETS.values()):
            res = self._run(["nft", "-j", "list", "set", "inet", self.layout.table, name])
            if res.returncode != 0 and "No such file" in res.stderr:
                continue  # not installed (or an older layout without it): nothing blocked
            blocks.extend(parse_set_json(check_result(res, f"listing set {name}"), now))
        return blocks

    def show(self) -> str:
        res = self._run(["nft", "-t", "list", "table", "inet", self.layout.table])
        if res.returncode != 0:
            if "No such file" in res.stderr:
                return f"nftables: table inet {self.layout.table} is not installed\n"
            check_result(res, "listing the table")
        counts = dict.fromkeys((*SETS.values(), *NET_SETS.values()), 0)
        for b in self.list():
            counts[self.layout.set_of(normalize_target(b.ip))] += 1
        sizes = ", ".join(f"{name}: {n} of {self.layout.size}" for name, n in counts.items())
        return f"nftables table inet {self.layout.table} ({sizes})\n{res.stdout}"

    def stop(self) -> None:
        with self._lock:
            if self._nl is not None:
                self._nl.close()
            self._nl = None
            self._nl_tried = False
        if self._conntrack is not None:
            self._conntrack.close()

    def remove(self) -> None:
        self.stop()
        self._nft(self.layout.remove(), f"removing nft table inet {self.layout.table}")
        log.info("action=remove backend=nftables table=inet:%s", self.layout.table)
