"""Append-only JSON-lines journal of decisions (for SIEMs) and the offender-history file.

A failing journal never stops detection or blocking: errors are logged and counted.
Both are opened without following symlinks and created with fixed modes (statefiles.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any

import orjson

from scanguard_ids import statefiles
from scanguard_ids.model import Decision

if TYPE_CHECKING:
    from scanguard_ids.detect.distributed import Alarm

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
        fd = statefiles.open_append(self.path, statefiles.JOURNAL_MODE)
        self._fh = os.fdopen(fd, "ab", buffering=0)
        self._ino = os.fstat(fd).st_ino

    def _rotated(self) -> bool:
        try:
            return os.lstat(self.path).st_ino != self._ino
        except FileNotFoundError:
            return True

    def write(self, decision: Decision | Alarm, **extra: object) -> None:
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
        return orjson.loads(statefiles.read_bytes(path))
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        log.error("state file unreadable path=%s error=%s: starting without it", path, exc)
        return None


def save_json(path: str, data: Any) -> None:
    """Write a JSON state file atomically (tmp + rename), mode 0600, never through a symlink."""
    if not path:
        return
    statefiles.write_atomic(path, orjson.dumps(data), statefiles.STATE_MODE)
