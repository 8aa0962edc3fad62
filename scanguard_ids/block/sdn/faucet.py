"""The ``sdn-faucet`` backend: blocks as drop rules in an ACL file Faucet includes.

``block``/``unblock`` change the wanted state in memory and return at once; a worker
thread turns changes into one file write + one Faucet reload per batch: it waits
``batch_window`` seconds (0.15 by default) after the first change of a batch, so a
burst of scanners costs one reload, not one each, and leaves at least
``min_reload_interval`` (0.5 s) between reloads, as Faucet needs about that long to
apply one (far longer with big ACLs: it rebuilds every port's ACL flows). The same
thread removes rules whose expiry has come (Faucet rules have no timeout). The file
(see :mod:`acl`) holds each block's expiry, so after a restart start() adopts the
blocks still due and drops the expired ones - nothing is orphaned or lost while the
daemon is away; what expired meanwhile stays in the switch until start() runs.

The rule set is capped at ``max_blocks`` addresses (each is 1 or 2 ACL rules, and
Faucet installs each rule on every port that lists the ACL): a block beyond the cap
fails with BackendError, like a full ipset. The default, 250, keeps a reload near a
second or two: Faucet rebuilds the whole ACL on each change (median block -> drop
0.5 s with an empty ACL, 0.6 s at 100 blocks, 1.8 s at 250, ~10 s at 1000 on a
2-core host; see docs/sdn.md). A failed write or reload is logged and
retried (``retry_delay``, doubling to 30 s) with the latest state.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scanguard_ids.block.base import BackendInfo
from scanguard_ids.block.common import Runner, check_ttl, normalize_ip, run_argv
from scanguard_ids.block.sdn.acl import AclLayout
from scanguard_ids.block.sdn.reload import DEFAULT_COMMAND, Reloader, make_reloader
from scanguard_ids.clock import Clock, SystemClock
from scanguard_ids.config import BlockConfig
from scanguard_ids.errors import BackendError
from scanguard_ids.model import Block

log = logging.getLogger(__name__)

DEFAULT_ACL_FILE = "/etc/faucet/scanguard-acl.yaml"
MAX_IDLE = 1.0  # the worker looks at expiry at least this often (seconds)
MAX_RETRY = 30.0


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename (readers see old or new, never half)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass(slots=True)
class ApplyStats:
    writes: int = 0
    reloads: int = 0
    errors: int = 0
    last_error: str = ""
    last_apply: float = 0.0  # epoch of the last successful reload request
    last_batch: int = 0  # changes coalesced into it


class FaucetBackend:
    def __init__(self, cfg: BlockConfig | None = None, clock: Clock | None = None, *,
                 acl_file: str = DEFAULT_ACL_FILE, acl_name: str = "scanguard",
                 faucet_pid: int | None = None, faucet_pid_file: str | None = None,
                 reload_command: Sequence[str] | None = DEFAULT_COMMAND,
                 reloader: Reloader | None = None, max_blocks: int = 250,
                 batch_window: float = 0.15, min_reload_interval: float = 0.5,
                 terminal_allow: bool = True,
                 background: bool = True, retry_delay: float = 1.0,
                 runner: Runner = run_argv) -> None:
        self.cfg = cfg or BlockConfig()
        self.clock: Clock = clock or SystemClock()
        self.path = Path(acl_file)
        self.layout = AclLayout(acl_name, self.cfg.block_outbound, terminal_allow)
        self.reloader: Reloader = reloader or make_reloader(faucet_pid, faucet_pid_file,
                                                            reload_command, runner)
        if max_blocks < 1:
            raise BackendError(f"max_blocks must be >= 1, got {max_blocks}")
        self.max_blocks = max_blocks
        self.batch_window = batch_window
        self.min_reload_interval = min_reload_interval
        self.background = background
        self.retry_delay = retry_delay
        self.stats = ApplyStats()
        self._blocks: dict[str, float] = {}
        self._cond = threading.Condition()
        self._apply_lock = threading.Lock()
        self._dirty_since: float | None = None  # monotonic time of the batch's first change
        self._pending = 0
        self._retry_at = 0.0
        self._last_reload = float("-inf")  # monotonic
        self._backoff = retry_delay
        self._on_disk: str | None = None
        self._loaded: str | None = None  # content Faucet was last asked to load
        self._started = False
        self._stopping = False
        self._worker: threading.Thread | None = None
        self.info = BackendInfo("sdn-faucet", f"Faucet ACL {acl_name!r} in {acl_file}, "
                                f"reload: {self.reloader.description}")

    # -- setup -------------------------------------------------------------------
    def start(self) -> None:
        """Adopt the blocks in the ACL file (dropping expired ones), apply, start the worker."""
        if self._started:
            return
        if not self.path.parent.is_dir():
            raise BackendError(f"ACL file {self.path}: directory {self.path.parent} missing")
        adopted = 0
        found, self._on_disk = self._read_file()
        now = self.clock.now()
        with self._cond:
            for ip, exp in found.items():
                if exp > now:
                    self._blocks.setdefault(ip, exp)
                    adopted += 1
        self._apply(force_reload=True, strict=True)
        self._started = True
        self._stopping = False
        if self.background:
            self._worker = threading.Thread(target=self._run, name="sdn-faucet", daemon=True)
            self._worker.start()
        log.info("action=install backend=sdn-faucet acl_file=%s acl=%s adopted=%d "
                 "max_blocks=%d batch_ms=%d reload=%r", self.path, self.layout.name, adopted,
                 self.max_blocks, round(self.batch_window * 1000), self.reloader.description)

    def _read_file(self) -> tuple[dict[str, float], str | None]:
        """Blocks in the ACL file and its text ({} and None when there is no file yet)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}, None
        except OSError as exc:
            raise BackendError(f"reading ACL file {self.path}: {exc}") from None
        try:
            return self.layout.parse(text), text
        except BackendError as exc:
            raise BackendError(f"ACL file {self.path}: {exc}; remove it or point "
                               "acl_file elsewhere") from None

    # -- per block -----------------------------------------------------------------
    def _changed(self) -> None:
        if self._dirty_since is None:
            self._dirty_since = self.clock.monotonic()
        self._pending += 1
        self._cond.notify_all()

    def block(self, ip: str, ttl: int) -> None:
        addr = str(normalize_ip(ip))
        ttl = check_ttl(ttl)
        now = self.clock.now()
        with self._cond:
            self._expire(now)
            if addr not in self._blocks and len(self._blocks) >= self.max_blocks:
                raise BackendError(f"block {addr}: Faucet ACL {self.layout.name!r} is full "
                                   f"(max_blocks {self.max_blocks})")
            self._blocks[addr] = now + ttl
            self._changed()
        log.debug("action=block ip=%s ttl=%d backend=sdn-faucet acl=%s", addr, ttl,
                  self.layout.name)
        if not self.background:
            self.flush()

    def unblock(self, ip: str) -> None:
        addr = str(normalize_ip(ip))
        with self._cond:
            if self._blocks.pop(addr, None) is not None:
                self._changed()
        log.debug("action=unblock ip=%s backend=sdn-faucet acl=%s", addr, self.layout.name)
        if not self.background:
            self.flush()

    # -- applying ------------------------------------------------------------------
    def _expire(self, now: float) -> int:
        gone = [ip for ip, exp in self._blocks.items() if exp <= now]
        for ip in gone:
            del self._blocks[ip]
            log.info("action=expire ip=%s backend=sdn-faucet", ip)
        if gone:
            self._changed()
        return len(gone)

    def flush(self) -> bool:
        """Apply the current state now (expired rules removed); True if Faucet was asked."""
        return self._apply(force_reload=False, strict=True)

    def _apply(self, force_reload: bool, strict: bool) -> bool:
        with self._apply_lock:
            with self._cond:
                self._expire(self.clock.now())
                snapshot = dict(self._blocks)
                batch, self._pending = self._pending, 0
                self._dirty_since = None
            text = self.layout.render(snapshot)
            try:
                if text != self._on_disk:
                    write_atomic(self.path, text)
                    self._on_disk = text
                    self.stats.writes += 1
                if text == self._loaded and not force_reload:
                    return False
                self.reloader.reload()
            except (OSError, BackendError) as exc:
                with self._cond:
                    self._pending += batch
                    if self._dirty_since is None:
                        self._dirty_since = self.clock.monotonic()
                    self._retry_at = self.clock.monotonic() + self._backoff
                    self._backoff = min(self._backoff * 2, MAX_RETRY)
                self.stats.errors += 1
                self.stats.last_error = str(exc)
                log.error("action=apply-failed backend=sdn-faucet acl_file=%s blocks=%d "
                          "error=%s", self.path, len(snapshot), exc)
                if strict:
                    raise BackendError(f"applying Faucet ACL {self.path}: {exc}") from None
                return False
            self._loaded = text
            self._last_reload = self.clock.monotonic()
            self._backoff = self.retry_delay
            self.stats.reloads += 1
            self.stats.last_apply = self.clock.now()
            self.stats.last_batch = batch
            log.info("action=apply backend=sdn-faucet acl=%s blocks=%d batch=%d reload=%r",
                     self.layout.name, len(snapshot), batch, self.reloader.description)
            return True

    def _wait_time(self) -> float:
        """Seconds the worker may sleep: until the batch is due or the next expiry."""
        mono, now = self.clock.monotonic(), self.clock.now()
        wait = MAX_IDLE
        if self._dirty_since is not None:
            due = max(self._dirty_since + self.batch_window, self._retry_at,
                      self._last_reload + self.min_reload_interval)
            wait = min(wait, due - mono)
        if self._blocks:
            wait = min(wait, min(self._blocks.values()) - now)
        return max(0.0, wait)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                wait = self._wait_time()
                if wait > 0:
                    self._cond.wait(wait)
                    if self._stopping:
                        return
                self._expire(self.clock.now())
                due = self._dirty_since is not None and self._wait_time() <= 0
            if due:
                self._apply(force_reload=False, strict=False)

    # -- state ---------------------------------------------------------------------
    def list(self) -> list[Block]:
        """The wanted state (applied within batch_window); read from the file before start()."""
        now = self.clock.now()
        if not self._started:
            found, _ = self._read_file()
            return [Block(ip, exp) for ip, exp in sorted(found.items()) if exp > now]
        with self._cond:
            return [Block(ip, exp) for ip, exp in sorted(self._blocks.items()) if exp > now]

    def show(self) -> str:
        blocks = self.list()
        v6 = sum(1 for b in blocks if ":" in b.ip)
        s = self.stats
        with self._cond:
            pending = self._pending
        err = f"; last error: {s.last_error}" if s.errors else ""
        return (f"sdn-faucet: ACL {self.layout.name!r} in {self.path}\n"
                f"{len(blocks)} blocked addresses ({len(blocks) - v6} IPv4, {v6} IPv6; max "
                f"{self.max_blocks}); {pending} changes pending\n"
                f"reload: {self.reloader.description}; {s.writes} writes, {s.reloads} reloads, "
                f"{s.errors} errors{err}\n")

    def stop(self) -> None:
        """Stop the worker, then write what is pending (errors are logged, not raised)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None
        if self._started:
            self._apply(force_reload=False, strict=False)
        self._started = False

    def remove(self) -> None:
        """Empty the ACL (the file stays: faucet.yaml includes it) and apply that."""
        with self._cond:
            self._blocks.clear()
            self._changed()
        self.stop()
        self._apply(force_reload=False, strict=True)
        log.info("action=remove backend=sdn-faucet acl_file=%s", self.path)
