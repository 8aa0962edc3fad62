"""`scanguard run`: wires sources -> engine -> backend, control socket, signals, state files.

Threads: one per EVE source (each calls Engine.process directly), the control socket,
and the main thread doing housekeeping once a second (kernel sync, checkpoint,
offender history) or running the TUI, which then hands housekeeping to a thread.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from scanguard_ids import config, sdnotify
from scanguard_ids.block import livepeers, registry
from scanguard_ids.block.base import Backend
from scanguard_ids.block.fastpath import FastPath, FastPathLayout
from scanguard_ids.clock import Clock, SystemClock
from scanguard_ids.control import ControlServer
from scanguard_ids.detect.allowlist import Allowlist, OwnAddressWatch, own_addresses
from scanguard_ids.detect.offenders import Offenders
from scanguard_ids.engine import Engine
from scanguard_ids.errors import ConfigError, ControlError, ScanguardError
from scanguard_ids.eve import socket as eve_socket
from scanguard_ids.eve.checkpoint import Checkpoint
from scanguard_ids.eve.socket import SocketSource
from scanguard_ids.eve.source import Source
from scanguard_ids.eve.tail import TailSource
from scanguard_ids.journal import Journal, load_json, save_json
from scanguard_ids.model import parse_target

if TYPE_CHECKING:
    from scanguard_ids.fleet.node import FleetNode
    from scanguard_ids.metrics import Metrics
    from scanguard_ids.sinks.crowdsec import CrowdsecSink

log = logging.getLogger(__name__)

HOUSEKEEPING_S = 1.0
STATE_SAVE_S = 10.0
#: after a strike (a block applied), the offender history is saved within this long: a crash
#: loses at most this much, and a flood still costs one fsync per STRIKE_SAVE_S, not per block
STRIKE_SAVE_S = 1.0


def allow_nets(cfg: config.Config, own: Iterable[str] | None = None) -> list[str]:
    """The configured networks, plus this host's addresses (``own``, else read now)."""
    nets = [str(n) for n in cfg.detect.allowlist]
    if cfg.detect.allow_own_addresses:
        nets += [str(n) for n in (own_addresses() if own is None else own)]
    return nets


def build_allowlist(cfg: config.Config, own: Iterable[str] | None = None) -> Allowlist:
    return Allowlist(allow_nets(cfg, own))


def eve_socket_gid() -> int | None:
    """Group of the EVE socket and of its directory: the suricata user's, when we are root."""
    ids = eve_socket.suricata_ids() if os.geteuid() == 0 else None
    return ids[1] if ids is not None else None


#: Files the daemon writes on the host: in a dry run only when given on purpose.
STATE_KEYS = (("journal", "path"), ("journal", "state"), ("eve", "checkpoint"))


def dry_run_config(cfg: config.Config, config_path: str | None) -> config.Config:
    """A dry run writes none of the production files unless told to: a state path still at its
    default and not set in the config file is emptied (off). A path given on the command line
    differs from the default and is kept; one given there *equal* to the default cannot be told
    apart and is dropped too (docs/security.md)."""
    if cfg.block.backend != "dry-run":
        return cfg
    given = config.file_keys(config_path)
    defaults = config.Config()
    off = []
    for section, key in STATE_KEYS:
        value = getattr(getattr(cfg, section), key)
        if value and value == getattr(getattr(defaults, section), key) \
                and f"{section}.{key}" not in given:
            off.append(f"{section}.{key}")
            cfg = replace(cfg, **{section: replace(getattr(cfg, section), **{key: ""})})
    if off:
        log.info("dry run: not writing the production files keys=%s (set them to keep them)",
                 ",".join(off))
    return cfg


@dataclass
class Daemon:
    cfg: config.Config
    config_path: str | None = None
    clock: Clock = SystemClock()  # noqa: RUF009 - stateless
    reload_config: Callable[[str | None], config.Config] = config.load

    def __post_init__(self) -> None:
        self.stop_event = threading.Event()
        self._reload = threading.Event()
        self.engine: Engine | None = None
        self.backend: Backend | None = None
        self.sources: list[Source] = []
        self.checkpoint: Checkpoint | None = None
        self.control: ControlServer | None = None
        self.metrics: Metrics | None = None
        self.crowdsec: CrowdsecSink | None = None
        self.own_watch: OwnAddressWatch | None = None
        self.fastpath: FastPath | None = None
        self.fleet: FleetNode | None = None

    # -- life cycle ------------------------------------------------------------------
    def start(self) -> Engine:
        cfg = self.cfg = dry_run_config(self.cfg, self.config_path)
        if not cfg.eve.paths and not cfg.eve.socket and not cfg.eve.redis:
            raise ConfigError(
                "--eve", "give at least one EVE file (--eve), socket (--eve-socket) or Redis "
                "list (--eve-redis)"
            )
        self.backend = registry.create(cfg.block.backend, cfg.block, self.clock,
                                       **cfg.sdn.backend_kwargs(cfg.block.backend))
        self.backend.start()
        log.info(
            "backend ready name=%s detail=%r", self.backend.info.name, self.backend.info.detail
        )
        try:
            return self._start_rest(cfg)
        except BaseException:
            self._undo_failed_start()
            raise

    def _undo_failed_start(self) -> None:
        """A start that failed after the sets were made: stop what started, and remove the
        sets and rules when they hold no block (we just made them, or they were idle)."""
        for src in self.sources:
            try:
                src.stop()
            except Exception:  # noqa: BLE001 - cleanup of a failed start goes on
                log.exception("stopping source failed")
        self.sources.clear()
        if self.own_watch is not None:
            self.own_watch.stop()
        if self.fleet is not None:
            self.fleet.stop()
            self.fleet = None
        if self.control is not None:
            self.control.stop()
            self.control = None
        if self.fastpath is not None:
            try:
                self.fastpath.remove()
            except ScanguardError as exc:
                log.error("start failed and removing the fast path failed: %s", exc)
            self.fastpath = None
        backend, self.backend = self.backend, None
        if backend is None:
            return
        try:
            if not backend.list():
                backend.remove()
                log.info("start failed: removed the empty sets and rules backend=%s",
                         backend.info.name)
            else:
                backend.stop()
        except ScanguardError as exc:
            log.error("start failed and cleanup failed backend=%s error=%s",
                      backend.info.name, exc)

    def _start_rest(self, cfg: config.Config) -> Engine:
        assert self.backend is not None
        offenders = Offenders(cfg.detect)
        state = load_json(cfg.journal.state)
        if isinstance(state, dict):
            try:
                offenders.load(state.get("offenders", {}))
            except (TypeError, ValueError, KeyError) as exc:
                log.error("offender history ignored path=%s error=%s", cfg.journal.state, exc)
        own = own_addresses() if cfg.detect.allow_own_addresses else []
        engine = Engine(
            cfg,
            self.backend,
            self.clock,
            build_allowlist(cfg, own),
            Journal(cfg.journal.path),
            offenders,
        )
        engine.adopt()
        engine.livepeers = livepeers.start_for(engine.dry_run)  # docs/security.md: framing
        self.engine = engine
        # Follow address changes: an address that becomes ours is allowlisted (and unblocked)
        # at once, and blocks of our own addresses adopted from the kernel are lifted now.
        self.own_watch = OwnAddressWatch(self._own_addresses_changed, own)
        if cfg.detect.allow_own_addresses:
            self.own_watch.start()
        engine.update_allowlist(engine.allowlist, "became a local address")
        if cfg.fastpath.mode != "off":
            self.fastpath = FastPath(FastPathLayout.from_config(cfg.fastpath))
            self.fastpath.install(allow_nets(cfg, self.own_watch.known or None))
            self.fastpath.poll()  # what the kernel held before start was adopted above
        if cfg.fleet.url:  # before the sources: their first events are shared too
            from scanguard_ids.fleet.node import connect

            self.fleet = connect(engine, cfg.fleet, self.clock, publish=not engine.dry_run)
        self.checkpoint = Checkpoint.load(cfg.eve.checkpoint) if cfg.eve.checkpoint else None
        for path in cfg.eve.paths:
            self.sources.append(
                TailSource(
                    path,
                    engine.process,
                    from_start=cfg.eve.from_start,
                    max_line_bytes=cfg.eve.max_line_bytes,
                    checkpoint=self.checkpoint,
                    checkpoint_interval=None,  # saved by housekeeping(), off the reader
                    poll_interval=cfg.eve.poll_interval,
                    watch=cfg.eve.watch,
                    clock=self.clock,
                )
            )
        if cfg.eve.socket:
            self.sources.append(
                SocketSource(
                    cfg.eve.socket,
                    engine.process,
                    kind=cfg.eve.socket_type,
                    mode=cfg.eve.socket_mode,
                    gid=eve_socket_gid(),
                    allowed_uids=cfg.eve.socket_uids or eve_socket.default_uids(),
                    max_line_bytes=cfg.eve.max_line_bytes,
                    clock=self.clock,
                )
            )
        if cfg.eve.redis:
            from scanguard_ids.fleet.evelist import RedisListSource

            self.sources.append(RedisListSource(cfg.eve.redis, cfg.eve.redis_key, engine.process,
                                                max_line_bytes=cfg.eve.max_line_bytes,
                                                clock=self.clock))
        engine.sources = self.sources
        for src in self.sources:
            src.start()
        if cfg.control.socket:
            self.control = ControlServer(cfg.control.socket, self.handle, cfg.control.mode)
            self.control.start()
        log.info(
            "scanguard running sources=%d count=%d ports=%d window=%s ttl=%d policy=%s "
            "eve_reader=%s",
            len(self.sources),
            cfg.detect.count,
            cfg.detect.ports,
            cfg.detect.window,
            cfg.detect.ttl,
            cfg.detect.policy,
            engine.decoder.reader,
        )
        if cfg.metrics.listen:
            from scanguard_ids.metrics import Metrics

            self.metrics = Metrics(lambda: engine.snapshot(watch_limit=0, block_limit=0),
                                   self.clock)
            engine.sinks.append(self.metrics)
            self.metrics.serve(cfg.metrics.listen)
        if (cfg.crowdsec.credentials or cfg.crowdsec.url) and self.backend.info.name != "dry-run":
            from scanguard_ids.sinks.crowdsec import CrowdsecSink, load_credentials

            c = cfg.crowdsec
            self.crowdsec = CrowdsecSink(c, load_credentials(c.credentials, c.url, c.login,
                                                             c.password), self.clock)
            engine.sinks.append(self.crowdsec)
            self.crowdsec.start()
        sdnotify.ready(f"scanguard running: {len(self.sources)} EVE source(s)")
        return engine

    def _own_addresses_changed(self, own: frozenset[str]) -> None:
        engine = self.engine
        if engine is None or not self.cfg.detect.allow_own_addresses:
            return
        lifted = engine.update_allowlist(build_allowlist(self.cfg, own), "became a local address")
        if self.fastpath is not None:  # the kernel meter never counts our own addresses either
            try:
                self.fastpath.set_allowlist(allow_nets(self.cfg, own))
            except ScanguardError as exc:
                log.error("fast path allowlist update failed: %s", exc)
        if lifted:
            log.warning("unblocked addresses that became local ips=%s", ",".join(lifted))

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())

    def housekeeping(self) -> None:
        """Runs until stop_event: kernel sync, checkpoint and offender history saves (which
        also prune forgotten offenders), reloads."""
        assert self.engine is not None
        last_save = self.clock.monotonic()
        saved_blocks = self.engine.counters["blocks"]
        while not self.stop_event.wait(min(HOUSEKEEPING_S, STRIKE_SAVE_S)):
            try:
                if self.own_watch is not None and self.cfg.detect.allow_own_addresses:
                    self.own_watch.poll()  # only when the netlink subscription is not running
                since = self.clock.monotonic() - last_save
                blocks = self.engine.counters["blocks"]
                if since >= STATE_SAVE_S or (blocks != saved_blocks and since >= STRIKE_SAVE_S):
                    # strikes first: the checkpoint below must not get ahead of them
                    saved_blocks = blocks
                    self.save_state()
                    last_save = self.clock.monotonic()
                if self.checkpoint is not None and blocks == saved_blocks:
                    self.checkpoint.save()  # if a reader moved on; fsync here, not in the reader
                self.engine.sync()
                self.adopt_fast_path()
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
            except Exception:  # housekeeping must survive anything and keep going
                log.exception("housekeeping step failed")

    def adopt_fast_path(self) -> None:
        """New entries of the fast path's blocked (would_block) sets become decisions."""
        if self.fastpath is None or self.engine is None:
            return
        fp = self.fastpath.layout
        reason = f"fast path: over {fp.burst} new ports, then {fp.rate} new ports/s"
        for ip in self.fastpath.poll():
            d = self.engine.adopt_fast_path(ip, reason, block=fp.mode == "block")
            if d is not None:
                log.info("action=fast-path ip=%s mode=%s ttl=%d", ip, fp.mode, d.ttl)

    def reload(self) -> None:
        assert self.engine is not None
        try:
            cfg = dry_run_config(self.reload_config(self.config_path), self.config_path)
        except ScanguardError as exc:
            log.error("reload refused, keeping the running config: %s", exc)
            return
        # Sources, backend and files are fixed at start (keys marked restart); the rest reloads.
        later = config.restart_keys(self.cfg, cfg)
        if later:
            log.warning("reload: restart to apply keys=%s", ",".join(later))
        cfg = config.reloadable(self.cfg, cfg)
        self.cfg = cfg
        watch = self.own_watch
        if cfg.detect.allow_own_addresses and watch is not None and not watch.subscribed:
            watch.start()
        own = watch.known if watch is not None and watch.known else None
        if self.fastpath is not None:
            self.fastpath.set_allowlist(allow_nets(cfg, own))
        self.engine.reconfigure(cfg)
        self.engine.update_allowlist(build_allowlist(cfg, own), "allowlisted by a config reload")
        log.info(
            "config reloaded count=%d ports=%d window=%s ttl=%d policy=%s",
            cfg.detect.count,
            cfg.detect.ports,
            cfg.detect.window,
            cfg.detect.ttl,
            cfg.detect.policy,
        )

    def save_state(self) -> None:
        assert self.engine is not None
        # offender history first: a checkpoint must never be ahead of the strikes it implies
        try:
            with self.engine.lock:
                # Forget offenders past strike_memory. Offences are in event time: take the
                # earlier of the newest event and the wall clock, so neither a replay of old
                # files nor one event stamped in the future forgets history too early.
                self.engine.offenders.prune(min(self.engine.detector.newest, self.clock.now()))
                data = {"offenders": self.engine.offenders.dump()}
            save_json(self.cfg.journal.state, data)
        except OSError as exc:
            self.engine.counters["state_errors"] += 1
            log.error("state save failed path=%s error=%s", self.cfg.journal.state, exc)
        if self.checkpoint is not None:
            try:
                if not self.checkpoint.save(force=True):
                    self.engine.counters["state_errors"] += 1
            except OSError as exc:
                log.error("checkpoint save failed: %s", exc)

    def shutdown(self) -> None:
        self.stop_event.set()
        sdnotify.stopping()
        if self.own_watch is not None:
            self.own_watch.stop()
        if self.metrics is not None:
            self.metrics.stop()
        for src in self.sources:
            try:
                src.stop()
            except Exception:
                log.exception("stopping source failed")
        if self.control is not None:
            self.control.stop()
        if self.fleet is not None:
            self.fleet.stop()  # after the sources: their last decisions are published
        if self.engine is not None:
            self.save_state()
            self.engine.journal.close()
            if self.engine.livepeers is not None:
                self.engine.livepeers.stop()
        if self.crowdsec is not None:
            self.crowdsec.stop(flush=2.0)
        if self.backend is not None:
            self.backend.stop()
        if self.fastpath is not None:
            self.fastpath.close()
        log.info("scanguard stopped; blocks stay in the kernel until their timeouts")

    # -- control socket -------------------------------------------------------------
    def handle(self, req: dict[str, Any]) -> Any:
        engine = self.engine
        assert engine is not None
        cmd = req["cmd"]
        if cmd in ("status", "snapshot"):
            limit = int(req.get("limit", 200))
            return engine.snapshot(watch_limit=limit, block_limit=limit).to_dict()
        if cmd == "list":
            with engine.lock:
                return [{"ip": b.ip, "expires": b.expires,
                         "by": _by(ev := engine.evidence.get(b.ip)),
                         "node": ev.node if ev else ""}
                        for b in engine.active.values()]
        if cmd == "block":
            ip = _valid_ip(req.get("ip"))
            ttl = req.get("ttl")
            if ttl is not None and (
                not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 < ttl <= config.MAX_TTL
            ):
                raise ControlError(f"ttl must be an integer between 1 and {config.MAX_TTL}")
            return engine.manual_block(ip, ttl).to_dict()
        if cmd == "unblock":
            ip = _valid_ip(req.get("ip"))
            if self.fastpath is not None and "/" not in ip:
                self.fastpath.forget(ip)
            return engine.manual_unblock(ip).to_dict()
        raise ControlError(f"unknown command {cmd!r}")


def _by(ev: Any) -> str:
    """Who made a block, for `list`: "fast-path" or "scanguard"."""
    return "fast-path" if ev is not None and ev.reason.startswith("fast path") else "scanguard"


def _valid_ip(value: Any) -> str:
    try:
        return str(parse_target(value))
    except ValueError as exc:
        raise ControlError(str(exc)) from None
