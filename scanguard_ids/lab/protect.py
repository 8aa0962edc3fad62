"""The protection under test, started in the victim namespace for each protected scan.

A :class:`Protector` is started fresh before each protected scan and stopped after it;
:func:`reset_victim` then empties every ipset and the conntrack table of the victim
namespace (which belongs to the lab alone), so no block or detector state carries
over from one scan to the next (decision: restart + flush, rather than a new scanner
address per scan: the scanner stays 192.0.2.2 in every run, as in the paper).

The real protector is ``scanguard run`` (:func:`scanguard_argv` builds its command
line - the one place to adjust when the CLI changes). Tests can plug in any
command with the same contract via :class:`CommandProtector`.

With an sdn-* backend the blocks live in the lab's switch: the daemon (still in the
victim namespace, where Suricata is) gets the switch's coordinates through a
generated TOML file (``[sdn]`` keys have no CLI flags; :func:`sdn_config`), and
:func:`reset_switch` empties the switch between scans.

With ``ProtectContext.fast_path`` the daemon also runs the kernel fast path
(docs/fast-path.md) in block mode; its burst and rate go in the same generated file
(:func:`fastpath_config`), and :func:`reset_victim` removes its table.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from scanguard_ids.lab import procs
from scanguard_ids.lab.netns import Netns
from scanguard_ids.timefmt import parse_eve_ts

if TYPE_CHECKING:
    from scanguard_ids.lab.sdn.network import SdnSwitch

log = logging.getLogger(__name__)

SCANGUARD_BIN = Path(sys.executable).with_name("scanguard")
SET_NAME = "sglab"
FASTPATH_TABLE = "scanguard_fp"  # FastPathLayout's table name
BACKENDS = ("ipset", "sdn-faucet", "sdn-openflow")
#: SdnSwitch.backend_kwargs() keys -> the [sdn] config keys that carry them.
SDN_KEYS = {"acl_file": "faucet_acl_file", "acl_name": "faucet_acl_name",
            "faucet_pid_file": "faucet_pid_file", "target": "openflow_target"}


@dataclass(frozen=True, slots=True)
class FastPathArgs:
    """The ``[fastpath]`` keys a fast-path lab run passes to ``scanguard run``."""

    burst: int = 8
    rate: int = 2


@dataclass(slots=True)
class ProtectContext:
    """What a protector needs to know about the lab for one protected scan."""

    victim: Netns
    workdir: Path  # per scan, empty, removed with the lab's work dir
    eve_file: Path  # Suricata's eve.json (always written)
    eve_socket: Path | None  # unix_stream path Suricata writes to, when transport is socket
    ttl: int = 300
    policy: str = "paper"  # scanguard's repeat-offender policy: paper | default
    backend: str = "ipset"  # one of BACKENDS
    set_name: str = SET_NAME
    sdn: dict[str, Any] = field(default_factory=dict)  # SdnSwitch.backend_kwargs()
    fast_path: FastPathArgs | None = None  # also run the kernel fast path (mode block)

    @property
    def config_path(self) -> Path:
        return self.workdir / "scanguard.toml"


class Protector(Protocol):
    name: str

    def start(self, ctx: ProtectContext) -> None:
        """Start protecting; return once it would act on the next EVE line."""
        ...

    def stop(self) -> None:
        """Stop; blocks may stay in the kernel (reset_victim clears them)."""
        ...

    def decisions(self) -> list[dict[str, object]]:
        """Block decisions of the last run, each with a float ``ts`` (epoch seconds)."""
        ...


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a TOML basic string


def sdn_config(backend: str, switch_kwargs: Mapping[str, Any]) -> str:
    """The TOML config that points ``scanguard run --backend <sdn-*>`` at the lab's switch."""
    if not backend.startswith("sdn-"):
        raise procs.LabError(f"sdn_config: {backend!r} is not an sdn backend")
    lines = ["# written by scanguard lab: the lab switch's coordinates", "[block]",
             f"backend = {_toml_str(backend)}", "", "[sdn]"]
    for key, value in sorted(switch_kwargs.items()):
        if key not in SDN_KEYS:
            raise procs.LabError(f"sdn_config: no [sdn] key for switch setting {key!r}")
        lines.append(f"{SDN_KEYS[key]} = {_toml_str(str(value))}")
    if backend == "sdn-openflow":
        lines.append('openflow_transport = "native"')
    return "\n".join(lines) + "\n"


def fastpath_config(fp: FastPathArgs) -> str:
    """The ``[fastpath]`` section of a fast-path lab run (mode block)."""
    return (f'[fastpath]\nmode = "block"\nburst = {int(fp.burst)}\nrate = {int(fp.rate)}\n')


def lab_config(ctx: ProtectContext) -> str | None:
    """The TOML file ``scanguard run --config`` gets, or None when the flags say it all."""
    parts = []
    if ctx.backend.startswith("sdn-"):
        parts.append(sdn_config(ctx.backend, ctx.sdn))
    if ctx.fast_path is not None:
        parts.append(fastpath_config(ctx.fast_path))
    return "\n".join(parts) if parts else None


def scanguard_argv(ctx: ProtectContext, binary: Path = SCANGUARD_BIN) -> list[str]:
    """``scanguard run`` for the lab: paper thresholds, ctx's backend, state in ctx.workdir.

    For an sdn-* backend or a fast-path run ``--config ctx.config_path`` is added: write
    it first (:func:`lab_config`; :func:`scanguard_protector` does).
    """
    if ctx.backend not in BACKENDS:
        raise procs.LabError(f"backend {ctx.backend!r}: one of {', '.join(BACKENDS)}")
    argv = [str(binary), "run",
            "--backend", ctx.backend, "--set-name", ctx.set_name,
            "--count", "3", "--ports", "2", "--ttl", str(ctx.ttl), "--policy", ctx.policy,
            "--socket", str(ctx.workdir / "control.sock"),
            "--journal", str(ctx.workdir / "decisions.jsonl"),
            "--state", str(ctx.workdir / "offenders.json"),
            "--checkpoint", str(ctx.workdir / "checkpoint.json")]
    if ctx.eve_socket is not None:
        argv += ["--eve-socket", str(ctx.eve_socket), "--eve-socket-type", "unix_stream"]
    else:
        argv += ["--eve", str(ctx.eve_file)]
    if ctx.backend.startswith("sdn-") or ctx.fast_path is not None:
        argv += ["--config", str(ctx.config_path)]
    return argv


def _scanguard_command(ctx: ProtectContext, binary: Path) -> list[str]:
    text = lab_config(ctx)
    if text is not None:
        ctx.config_path.write_text(text)
    return scanguard_argv(ctx, binary)


def read_journal(path: Path) -> list[dict[str, object]]:
    """Block decisions of a JSON-lines journal, ``ts`` converted to epoch seconds."""
    out: list[dict[str, object]] = []
    if not path.exists():
        return out
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict) or rec.get("action", "block") != "block":
            continue
        ts = rec.get("ts")
        if isinstance(ts, str):
            try:
                rec["ts"] = parse_eve_ts(ts)
            except ValueError:
                continue
        if isinstance(rec.get("ts"), int | float):
            out.append(rec)
    return out


@dataclass(slots=True)
class CommandProtector:
    """Runs ``argv_for(ctx)`` in the victim namespace.

    Ready when ``ready_marker`` appears in its stderr (saved to ``protector.log`` in the
    scan's work dir); its decisions come from the JSON-lines file ``journal_for(ctx)``.
    """

    name: str
    argv_for: Callable[[ProtectContext], Sequence[str]]
    journal_for: Callable[[ProtectContext], Path]
    ready_marker: str
    ready_timeout: float = 30.0
    _proc: subprocess.Popen[bytes] | None = None
    _ctx: ProtectContext | None = None
    _log: Path | None = None
    notes: list[str] = field(default_factory=list)

    def start(self, ctx: ProtectContext) -> None:
        self._ctx = ctx
        self._log = ctx.workdir / "protector.log"
        with open(self._log, "wb") as out:
            self._proc = procs.spawn(ctx.victim.argv(list(self.argv_for(ctx))),
                                     stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise procs.LabError(f"protector {self.name} exited {self._proc.returncode}: "
                                     f"{self.log_tail()}")
            if self.ready_marker in self._log.read_text(errors="replace"):
                log.info("protector ready name=%s pid=%d", self.name, self._proc.pid)
                return
            time.sleep(0.02)
        raise procs.LabError(f"protector {self.name} not ready in {self.ready_timeout}s: "
                             f"{self.log_tail()}")

    def stop(self) -> None:
        code = procs.stop(self._proc, grace=10)
        if code not in (None, 0, -15):
            self.notes.append(f"{self.name} exited {code}: {self.log_tail(5)}")
            log.warning("protector exit name=%s code=%s", self.name, code)

    def decisions(self) -> list[dict[str, object]]:
        return read_journal(self.journal_for(self._ctx)) if self._ctx else []

    def log_tail(self, lines: int = 15) -> str:
        if self._log is None or not self._log.exists():
            return ""
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])


def scanguard_protector(binary: Path = SCANGUARD_BIN) -> CommandProtector:
    """The real daemon as the lab's protector."""
    return CommandProtector(
        name="scanguard",
        argv_for=lambda ctx: _scanguard_command(ctx, binary),
        journal_for=lambda ctx: ctx.workdir / "decisions.jsonl",
        ready_marker="scanguard running",
    )


def reset_victim(victim: Netns) -> None:
    """Empty every ipset and the conntrack table of the (lab-owned) victim namespace and
    remove the fast path's table (the daemon leaves it to the kernel's timeouts on exit,
    and the next daemon would adopt its blocks)."""
    with contextlib.suppress(procs.LabError):
        procs.run(victim.argv(["ipset", "flush"]), timeout=10, check=False)
        procs.run(victim.argv(["nft", "delete", "table", "inet", FASTPATH_TABLE]),
                  timeout=10, check=False)
        procs.run(victim.argv(["conntrack", "-F"]), timeout=10, check=False)


def reset_switch(switch: SdnSwitch, timeout: float = 15.0) -> float:
    """Remove every scanguard block from the lab's switch; wait until no drop flow is left.

    Faucet: an empty ACL file + a reload (the daemon leaves its blocks in the file on
    exit, and the next daemon would adopt them); standalone OVS: delete the flows
    with scanguard's cookie. Returns the seconds it took; LabError if drop flows for
    some source address are still there after ``timeout``.
    """
    from scanguard_ids.block.sdn.faucet import FaucetBackend
    from scanguard_ids.block.sdn.openflow import OpenFlowBackend
    from scanguard_ids.errors import BackendError
    from scanguard_ids.lab import flowwatch

    kw = switch.backend_kwargs()
    start = time.monotonic()
    deadline = start + timeout
    left: set[str] = set()
    for _attempt in (1, 2):  # a reload Faucet had not finished may swallow one SIGHUP
        try:
            if switch.backend() == "sdn-faucet":
                FaucetBackend(**kw, background=False).remove()
            else:
                OpenFlowBackend(**kw).remove()
        except BackendError as exc:
            raise procs.LabError(f"clearing the switch's blocks: {exc}") from None
        until = min(deadline, time.monotonic() + timeout / 2)
        while time.monotonic() < until:
            left = flowwatch.dropped_now(switch.bridge.target)
            if not left:
                took = time.monotonic() - start
                log.info("switch reset backend=%s seconds=%.2f", switch.backend(), took)
                return took
            time.sleep(0.05)
    raise procs.LabError(f"switch still drops {sorted(left)} {timeout:g}s after the reset")
