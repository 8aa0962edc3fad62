"""Append-only JSON-lines journal of decisions (for SIEMs) and the offender-history file.

A failing journal never stops detection or blocking: errors are logged and counted.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import orjson

from scanguard_ids.model import Decision

log = logging.getLogger(__name__)

#: Version of the journal's record layout (docs/journal.md), written in every record as "v".
#: Adding a field or an action keeps it; renaming or removing one bumps it.
SCHEMA_VERSION = 1


class Journal:
    def __init__(self, path: str) -> None:
        self.path = path
        self.errors = 0
        self.written = 0
        self._fh: Any = None
        self._ino: int | None = None

    def _open(self) -> None:
        if not self.path:
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab", buffering=0)  # noqa: SIM115 - long-lived handle
        self._ino = os.fstat(self._fh.fileno()).st_ino

    def _rotated(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self._ino
        except FileNotFoundError:
            return True

    def write(self, decision: Decision, **extra: object) -> None:
        if not self.path:
            return
        record = {"v": SCHEMA_VERSION, **decision.to_dict()}
        record.update(extra)
        try:
            if self._fh is None or self._rotated():  # logrotate `create` or removed
                self.close()
                self._open()
            self._fh.write(orjson.dumps(record) + b"\n")
            self.written += 1
        except (OSError, ValueError) as exc:
            self.errors += 1
            log.error("journal write failed path=%s error=%s", self.path, exc)
            self.close()

    def close(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None


def load_json(path: str) -> Any:
    """Read a JSON state file; a missing or corrupt file gives None (logged)."""
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            return orjson.loads(fh.read())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        log.error("state file unreadable path=%s error=%s: starting without it", path, exc)
        return None


def save_json(path: str, data: Any) -> None:
    """Write a JSON state file atomically (tmp + rename)."""
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(orjson.dumps(data))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
