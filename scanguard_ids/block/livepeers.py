"""Live peers: remotes with a real, lasting, two-way connection to us, as the kernel sees them.

A response-based blocker can be framed: whoever spoofs a peer's address draws our RSTs and
port-unreachables to that address, and three of them block it (and cut its connections).
A spoofer cannot complete a TCP handshake, let alone carry data both ways for seconds, so
an address that does is not blocked on response evidence alone (the engine journals
"suspected-framing" instead; docs/security.md).

The kernel keeps the set, so the check costs nothing on the packet path we do not already
pay and microseconds in the daemon: a small nftables table ``inet scanguard_live`` whose
input and forward chains add the remote address of every conntrack flow that is

- established, with more than ``min_bytes`` counted in *each* direction (a connect scan or a
  banner grab moves a few hundred bytes: SYN, SYN-ACK, ACK, a banner, FIN/RST), and
- has done so for ``min_age`` seconds: the first qualifying packet puts the address in
  ``young`` (timeout ``min_age``, never refreshed) and in ``cand``; a qualifying packet of
  an address in ``cand`` but no longer in ``young`` puts it in ``live`` (timeout ``hold``,
  refreshed by every qualifying packet).

nft 1.0.6 has no conntrack age expression (``ct expiration`` is the time *left*), hence the
two-stage sets. The daemon reads ``live4``/``live6`` into a frozenset at most once a second
(:meth:`LivePeers.refresh`, off the engine's lock) by netlink set dumps (block/nlnft.py: tens
of microseconds, where forking ``nft -j list table`` each second cost ~6 ms of CPU, most of the
idle daemon's); membership is a set lookup.

Pure reading/installing; no decisions are made here. The table lives in the namespace the
daemon runs in and is removed on a clean stop; left behind it only marks addresses.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field

from scanguard_ids.block.common import Runner, check_result, run_argv
from scanguard_ids.block.nlnft import SetReader
from scanguard_ids.errors import BackendError
from scanguard_ids.model import parse_ip

log = logging.getLogger(__name__)

TABLE = "scanguard_live"
MIN_BYTES = 4096  # per direction: above a handshake + banner grab (a few hundred bytes)
MIN_AGE = 2  # seconds the flow must keep qualifying
HOLD = 30  # seconds an address stays live after its last qualifying packet
REFRESH_S = 1.0


@dataclass(frozen=True, slots=True)
class LiveLayout:
    """The nft script of the table; thresholds fixed at install."""

    table: str = TABLE
    min_bytes: int = MIN_BYTES
    min_age: int = MIN_AGE
    hold: int = HOLD

    def install(self) -> str:
        t, b = self.table, self.min_bytes
        qual = (f"ct state established ct original bytes > {b} ct reply bytes > {b}")
        sets = []
        for fam, typ in (("4", "ipv4_addr"), ("6", "ipv6_addr")):
            for name, timeout in (("young", self.min_age), ("cand", self.hold),
                                  ("live", self.hold)):
                sets.append(f"  set {name}{fam} {{ type {typ}; flags timeout, dynamic; "
                            f"timeout {timeout}s; size 65536; }}")
        rules = []
        for fam, sel in (("4", "ip saddr"), ("6", "ip6 saddr")):
            rules += [
                f"    {qual} {sel} != @young{fam} {sel} @cand{fam} "
                f"update @live{fam} {{ {sel} }}",
                f"    {qual} {sel} != @cand{fam} add @young{fam} {{ {sel} }}",
                f"    {qual} update @cand{fam} {{ {sel} }}",
            ]
        body = "\n".join(rules)
        chains = "\n".join(
            f"  chain {hook} {{\n    type filter hook {hook} priority -5; policy accept;\n"
            f"{body}\n  }}" for hook in ("input", "forward"))
        # "add table" + "delete table" + full definition: idempotent, replaces an old layout
        return (f"add table inet {t}\ndelete table inet {t}\n"
                f"table inet {t} {{\n" + "\n".join(sets) + f"\n{chains}\n}}\n")


@dataclass(slots=True)
class LivePeers:
    """The kernel's live-peer set, installed by :meth:`start` and read into memory."""

    layout: LiveLayout = field(default_factory=LiveLayout)
    runner: Runner = run_argv
    peers: frozenset[str] = frozenset()
    read_at: float = float("-inf")  # monotonic time of the last successful read
    errors: int = 0
    started: bool = False
    reader: SetReader | None = None  # the netlink socket of refresh(), opened on first use

    @staticmethod
    def available() -> bool:
        return shutil.which("nft") is not None

    def start(self) -> None:
        check_result(self.runner(["nft", "-f", "-"], stdin=self.layout.install()),
                     f"installing nft table inet {self.layout.table}")
        self.started = True
        log.info("action=install live-peers table=inet:%s min_bytes=%d min_age=%ds hold=%ds",
                 self.layout.table, self.layout.min_bytes, self.layout.min_age,
                 self.layout.hold)

    def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        res = self.runner(["nft", "delete", "table", "inet", self.layout.table])
        if res.returncode != 0:
            log.warning("live-peers remove failed: %s", res.stderr.strip())

    def refresh(self, min_interval: float = REFRESH_S) -> bool:
        """Read live4/live6 into :attr:`peers` unless read less than ``min_interval`` ago.

        Never raises: a failed read keeps the last view (counted in :attr:`errors`)."""
        now = time.monotonic()
        if not self.started or now - self.read_at < min_interval:
            return False
        try:
            if self.reader is None:
                self.reader = SetReader(self.layout.table)
            peers = [str(parse_ip(e.ip)) for name in ("live4", "live6")
                     for e in self.reader.elements(name)]
        except OSError as exc:  # NetlinkError included; a timeout leaves the socket unsure
            self.errors += 1
            log.warning("live-peers read failed: %s", exc)
            if self.reader is not None:
                self.reader.close()
                self.reader = None
            return False
        self.peers = frozenset(peers)
        self.read_at = now
        return True

    def __contains__(self, ip: object) -> bool:
        return ip in self.peers


def start_for(dry_run: bool) -> LivePeers | None:
    """The daemon's live-peer set, or None where it cannot be had: a dry run writes nothing
    to the kernel (so it cannot tell framing apart), no nft, or nft refused (not root).
    Never raises: without it the daemon blocks as before and says so in its log."""
    if dry_run:
        log.info("live-peers off: dry run writes nothing to the kernel")
        return None
    if not LivePeers.available():
        log.warning("live-peers off: nft not found; a spoofer can frame live peers")
        return None
    peers = LivePeers()
    try:
        peers.start()
    except BackendError as exc:
        log.warning("live-peers off: %s; a spoofer can frame live peers", exc)
        return None
    peers.refresh(0.0)
    return peers
