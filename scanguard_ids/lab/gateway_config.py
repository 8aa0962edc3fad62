"""The config file the gateway lab writes for ``scanguard run`` on its router.

The lab's own keys (where EVE is, which backend and set, where the journal goes, the
thresholds of ``--count/--ports/--window``) come first; a user file given with
``scanguard lab --topology gateway --scanguard-config FILE`` is merged over them key by
key, so keys the lab does not know (say, a sweep or slow tier's thresholds that land in
detect/ later) reach the daemon unchanged: the lab needs no edit when they exist, and
``scanguard run`` names any key it does not know yet when it refuses the file.

Pure: :func:`lab_config` and :func:`merge` build dicts, :func:`render` writes TOML.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanguard_ids.config.render import toml_value
from scanguard_ids.errors import ConfigError

Table = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The vertical rule's keys the lab passes through (``[detect]``)."""

    count: int = 3
    ports: int = 2
    window: float = 60.0
    ttl: int = 300
    slow_window: float = 7_200.0  # detect.slow_window (the slow tier)

    def scaled(self, factor: float) -> Thresholds:
        """The same rules on a time base ``factor`` times as fast (the slow scan's windows)."""
        return Thresholds(self.count, self.ports, self.window * factor, self.ttl,
                          self.slow_window * factor)


def lab_config(workdir: Path, eve_file: Path, thresholds: Thresholds, backend: str,
               set_name: str) -> Table:
    """The lab's own keys for one protected run whose files live in ``workdir``."""
    return {
        "detect": {"count": thresholds.count, "ports": thresholds.ports,
                   "window": float(thresholds.window), "ttl": thresholds.ttl,
                   "slow_window": float(thresholds.slow_window), "policy": "paper"},
        "eve": {"paths": [str(eve_file)], "checkpoint": "", "watch": "inotify"},
        "block": {"backend": backend, "set_name": set_name},
        "control": {"socket": str(workdir / "control.sock")},
        "journal": {"path": str(workdir / "decisions.jsonl"),
                    "state": str(workdir / "offenders.json")},
    }


def merge(base: Table, extra: Table) -> Table:
    """``extra`` over ``base``, tables merged recursively, anything else replaced."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_extra(path: Path | None) -> Table:
    """The user's ``--scanguard-config`` file (empty without one)."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError("--scanguard-config", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--scanguard-config", f"{path} is not valid TOML: {exc}") from None


def render(table: Table) -> str:
    """Sections of scalars and lists as TOML (what the daemon's config uses)."""
    lines = ["# written by scanguard lab --topology gateway"]
    for section, body in table.items():
        if not isinstance(body, dict):
            raise ConfigError(str(section), "top-level keys must be [sections]")
        lines += ["", f"[{section}]"]
        for k, v in body.items():
            if isinstance(v, dict):
                raise ConfigError(f"{section}.{k}", "nested tables are not supported")
            lines.append(f"{k} = {toml_value(v)}")
    return "\n".join(lines) + "\n"


def detect_keys(table: Table) -> Table:
    """The ``[detect]`` keys in force (for the report)."""
    body = table.get("detect", {})
    return dict(body) if isinstance(body, dict) else {}
