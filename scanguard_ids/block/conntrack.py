"""Blocked means blocked: forget the connection-tracking entries of a blocked address.

The drop rules already stop every packet, but a stale ESTABLISHED entry would let a
flow resume the instant a block expires or is lifted, and it keeps NAT bindings
alive. Entries whose original tuple has the address as source or destination are
deleted over ctnetlink with pyroute2 (a kernel-filtered dump, then one delete per
entry); if that path is unusable the ``conntrack -D -s IP`` / ``-d IP`` commands are
used. Errors are logged, never raised: clearing is best effort after the block.

A dump walks the kernel's whole conntrack hash (every namespace shares it: 262144
buckets on a 24 GiB host, ~15 ms per walk), so the backends do not clear inline:
``submit(ip)`` queues the address for a worker thread and block() returns as soon
as the set holds the entry. The worker takes everything queued at once; for more
than ``BULK`` addresses (and always for IPv6, whose kernel-side filter does not
match) it does one unfiltered dump per family instead of two filtered dumps per
address.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

from scanguard_ids.block.common import Runner, normalize_ip, run_argv
from scanguard_ids.errors import BackendError

log = logging.getLogger(__name__)

BULK = 8  # more queued addresses than this: one unfiltered dump per family
MAX_PENDING = 4096
GATHER_S = 0.5  # collect blocks this long before one conntrack dump

_DELETED = re.compile(r"(\d+) flow entr(?:y|ies) ha(?:s|ve) been deleted")


def parse_deleted(stderr: str) -> int:
    """The count in conntrack(8)'s 'N flow entries have been deleted.' line (0 if absent)."""
    m = _DELETED.search(stderr)
    return int(m.group(1)) if m else 0


def _table_empty() -> bool:
    """This namespace tracks no connection at all: nothing to clear, skip the table walk."""
    try:
        with open("/proc/sys/net/netfilter/nf_conntrack_count", "rb") as fh:
            return fh.read().strip() == b"0"
    except OSError:  # no conntrack module: nothing tracked either way is unknown; walk
        return False


class ConntrackClearer:
    """``clear(ip)`` deletes tracked flows from/to ip; method "auto", "netlink" or "argv"."""

    def __init__(self, method: str = "auto", runner: Runner = run_argv,
                 max_pending: int = MAX_PENDING, gather: float = GATHER_S) -> None:
        if method not in ("auto", "netlink", "argv"):
            raise ValueError(f"unknown conntrack method {method!r}")
        self.method = method
        self._runner = runner
        self._lock = threading.Lock()  # one kernel conversation at a time
        self._sockets: dict[int, Any] = {}
        self._netlink_broken = method == "argv"
        self._max_pending = max_pending
        self.gather = gather
        self._cond = threading.Condition()
        self._pending: dict[str, None] = {}  # insertion-ordered set
        self._busy = False
        self._closing = False
        self._worker: threading.Thread | None = None
        self.stats = {"queued": 0, "dropped": 0, "deleted": 0}

    # -- background --------------------------------------------------------
    def submit(self, ip: str) -> None:
        """Queue ip for clearing by the worker thread (started on first use)."""
        with self._cond:
            if self._closing:
                return
            if len(self._pending) >= self._max_pending and ip not in self._pending:
                self.stats["dropped"] += 1
                if self.stats["dropped"] == 1 or self.stats["dropped"] % 1000 == 0:
                    log.warning("action=conntrack-queue-full ip=%s dropped=%d", ip,
                                self.stats["dropped"])
                return
            self._pending[ip] = None
            self.stats["queued"] += 1
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="conntrack-clear",
                                                daemon=True)
                self._worker.start()
            self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return
                # Gather a burst into one kernel dump (each walks the whole shared table,
                # ~6 ms of our CPU). The drop rule already sits above "accept established",
                # so clearing a moment later lets nothing through.
                deadline = time.monotonic() + self.gather
                while not self._closing and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                batch = list(self._pending)
                self._pending.clear()
                self._busy = True
            try:
                n = self.clear_many(batch)
                with self._cond:
                    self.stats["deleted"] += n
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any failure
                log.error("action=conntrack-clear ips=%d error=%r", len(batch), exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far has been cleared; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    # -- synchronous ---------------------------------------------------------
    def clear(self, ip: str) -> int:
        """Delete the entries of one address now; returns how many went. Never raises."""
        return self.clear_many([ip])

    def clear_many(self, ips: Iterable[str]) -> int:
        addrs = []
        for ip in ips:
            try:
                addrs.append(normalize_ip(ip))
            except BackendError as exc:
                log.warning("action=conntrack-clear ip=%s error=%r", ip, str(exc))
        if not addrs or _table_empty():
            return 0
        with self._lock:
            if not self._netlink_broken:
                try:
                    n = self._clear_netlink(addrs)
                    log.debug("action=conntrack-clear ips=%d deleted=%d via=netlink",
                              len(addrs), n)
                    return n
                except Exception as exc:  # noqa: BLE001 - any pyroute2 failure: fall back
                    if self.method == "netlink":
                        log.warning("action=conntrack-clear ips=%d via=netlink error=%r",
                                    len(addrs), exc)
                        return 0
                    log.warning("action=conntrack-fallback via=argv reason=%r", exc)
                    self._netlink_broken = True
                    self._close_sockets()
            return sum(self._clear_argv(a) for a in addrs)

    def _socket(self, family: int) -> Any:
        sock = self._sockets.get(family)
        if sock is None:
            from pyroute2.conntrack import Conntrack

            sock = self._sockets[family] = Conntrack(nfgen_family=family)
        return sock

    def _clear_netlink(self, addrs: list[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> int:
        from pyroute2.netlink.exceptions import NetlinkError
        from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

        deleted = 0
        for version, family in ((4, socket.AF_INET), (6, socket.AF_INET6)):
            wanted = {str(a) for a in addrs if a.version == version}
            if not wanted:
                continue
            ct = self._socket(family)
            entries = []
            if version == 6 or len(wanted) > BULK:
                # The kernel's tuple filter does not match IPv6 addresses (seen on 6.18:
                # a filtered dump for a present address returns nothing), so IPv6 - and
                # any large batch - is one unfiltered dump of the family, matched here.
                for entry in ct.dump_entries():
                    t = entry.tuple_orig
                    if t is not None and (t.saddr in wanted or t.daddr in wanted):
                        entries.append(entry)
            else:
                for ip in wanted:
                    for key in ("saddr", "daddr"):
                        flt = NFCTAttrTuple(family=family, **{key: ip})
                        entries.extend(ct.dump_entries(tuple_orig=flt))
            for entry in entries:
                try:
                    ct.delete(entry)
                    deleted += 1
                except NetlinkError as exc:
                    if exc.code != errno.ENOENT:  # gone meanwhile (or listed twice): fine
                        log.warning("action=conntrack-clear entry=%r error=%r", entry, exc)
        return deleted

    def _clear_argv(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
        fam = ["-f", "ipv6"] if addr.version == 6 else []
        deleted = 0
        for flag in ("-s", "-d"):
            try:
                res = self._runner(["conntrack", "-D", *fam, flag, str(addr)], timeout=10)
            except BackendError as exc:
                log.warning("action=conntrack-clear ip=%s via=argv error=%r", addr, str(exc))
                return deleted
            n = parse_deleted(res.stderr)
            # conntrack exits 1 when nothing matched ("0 flow entries have been deleted").
            if res.returncode != 0 and not _DELETED.search(res.stderr):
                log.warning("action=conntrack-clear ip=%s via=argv exit=%d error=%r",
                            addr, res.returncode, res.stderr.strip())
            deleted += n
        log.debug("action=conntrack-clear ip=%s deleted=%d via=argv", addr, deleted)
        return deleted

    def _close_sockets(self) -> None:
        for sock in self._sockets.values():
            try:
                sock.close()
            except OSError as exc:
                log.debug("conntrack socket close: %r", exc)
        self._sockets.clear()

    def close(self, timeout: float = 10.0) -> None:
        """Finish what is queued (up to timeout), stop the worker, close the sockets."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.join(timeout)
        with self._lock:
            self._close_sockets()
        with self._cond:
            self._closing = False
