"""`scanguard run`: wires sources -> engine -> backend, control socket, signals, state files.

Threads: one per EVE source (each calls Engine.process directly), the control socket,
and the main thread doing housekeeping once a second (kernel sync, checkpoint,
offender history) or running the TUI, which then hands housekeeping to a thread.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scanguard_ids import config
from scanguard_ids.block import registry
from scanguard_ids.block.base import Backend
from scanguard_ids.clock import Clock, SystemClock
from scanguard_ids.control import ControlServer
from scanguard_ids.detect.allowlist import Allowlist, own_addresses
from scanguard_ids.detect.offenders import Offenders
from scanguard_ids.engine import Engine
from scanguard_ids.errors import ConfigError, ControlError, ScanguardError
from scanguard_ids.eve.checkpoint import Checkpoint
from scanguard_ids.eve.socket import SocketSource
from scanguard_ids.eve.tail import TailSource
from scanguard_ids.journal import Journal, load_json, save_json

log = logging.getLogger(__name__)

HOUSEKEEPING_S = 1.0
STATE_SAVE_S = 10.0


def build_allowlist(cfg: config.Config) -> Allowlist:
    nets = list(cfg.detect.allowlist)
    if cfg.detect.allow_own_addresses:
        nets += own_addresses()
    return Allowlist(nets)


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
        self.sources: list[Any] = []
        self.checkpoint: Checkpoint | None = None
        self.control: ControlServer | None = None

    # -- life cycle ------------------------------------------------------------------
    def start(self) -> Engine:
        cfg = self.cfg
        if not cfg.eve.paths and not cfg.eve.socket:
            raise ConfigError(
                "--eve", "give at least one EVE file (--eve) or socket (--eve-socket)"
            )
        self.backend = registry.create(cfg.block.backend, cfg.block, self.clock,
                                       **cfg.sdn.backend_kwargs(cfg.block.backend))
        self.backend.start()
        log.info(
            "backend ready name=%s detail=%r", self.backend.info.name, self.backend.info.detail
        )
        offenders = Offenders(cfg.detect)
        state = load_json(cfg.journal.state)
        if isinstance(state, dict):
            try:
                offenders.load(state.get("offenders", {}))
            except (TypeError, ValueError, KeyError) as exc:
                log.error("offender history ignored path=%s error=%s", cfg.journal.state, exc)
        engine = Engine(
            cfg,
            self.backend,
            self.clock,
            build_allowlist(cfg),
            Journal(cfg.journal.path),
            offenders,
        )
        engine.adopt()
        self.engine = engine
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
                    max_line_bytes=cfg.eve.max_line_bytes,
                    clock=self.clock,
                )
            )
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
        return engine

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())

    def housekeeping(self) -> None:
        """Runs until stop_event: kernel sync, checkpoint and offender history saves, reloads."""
        assert self.engine is not None
        last_save = self.clock.monotonic()
        while not self.stop_event.wait(HOUSEKEEPING_S):
            try:
                if self.checkpoint is not None:
                    self.checkpoint.save()  # if a reader moved on; fsync here, not in the reader
                self.engine.sync()
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                if self.clock.monotonic() - last_save >= STATE_SAVE_S:
                    self.save_state()
                    last_save = self.clock.monotonic()
            except Exception:  # housekeeping must survive anything and keep going
                log.exception("housekeeping step failed")

    def reload(self) -> None:
        assert self.engine is not None
        try:
            cfg = self.reload_config(self.config_path)
        except ScanguardError as exc:
            log.error("reload refused, keeping the running config: %s", exc)
            return
        # Sources and backend are fixed at start; thresholds, allowlist and valves reload.
        cfg = config.Config(
            detect=cfg.detect,
            eve=self.cfg.eve,
            block=self.cfg.block,
            control=self.cfg.control,
            journal=self.cfg.journal,
        )
        self.cfg = cfg
        self.engine.allowlist = build_allowlist(cfg)
        self.engine.reconfigure(cfg)
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
        if self.checkpoint is not None:
            try:
                self.checkpoint.save(force=True)
            except OSError as exc:
                log.error("checkpoint save failed: %s", exc)
        try:
            with self.engine.lock:
                data = {"offenders": self.engine.offenders.dump()}
            save_json(self.cfg.journal.state, data)
        except OSError as exc:
            log.error("state save failed path=%s error=%s", self.cfg.journal.state, exc)

    def shutdown(self) -> None:
        self.stop_event.set()
        for src in self.sources:
            try:
                src.stop()
            except Exception:
                log.exception("stopping source failed")
        if self.control is not None:
            self.control.stop()
        if self.engine is not None:
            self.save_state()
            self.engine.journal.close()
        if self.backend is not None:
            self.backend.stop()
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
                return [{"ip": b.ip, "expires": b.expires} for b in engine.active.values()]
        if cmd == "block":
            ip = _valid_ip(req.get("ip"))
            ttl = req.get("ttl")
            if ttl is not None and (
                not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 < ttl <= 2_147_483
            ):
                raise ControlError("ttl must be an integer between 1 and 2147483")
            return engine.manual_block(ip, ttl).to_dict()
        if cmd == "unblock":
            return engine.manual_unblock(_valid_ip(req.get("ip"))).to_dict()
        raise ControlError(f"unknown command {cmd!r}")


def _valid_ip(value: Any) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise ControlError(f"not an IP address: {value!r}") from None
