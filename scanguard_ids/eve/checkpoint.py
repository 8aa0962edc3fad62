"""Where each tailed file was read up to, persisted atomically so a restart resumes there.

The file is JSON::

    {"version": 1,
     "files": {"/var/log/suricata/eve.json":
               {"dev": 2049, "inode": 131, "offset": 40960,
                "head": "<sha256 hex>", "head_len": 128}}}

``offset`` is always the end of a line already handed to the sink (never the middle of a
line, never bytes still buffered). ``head``/``head_len`` fingerprint the first bytes of
the file so a recycled inode number is not mistaken for the old file.

Writes go to a temporary file in the same directory, are fsync'ed and then renamed over
the old checkpoint (``os.replace``), so a crash leaves either the old or the new state.
The file is 0600 whatever the umask; a symlink at its path is refused, never followed.
The fsyncs happen outside the lock that ``set()`` takes: a reader thread recording its
position never waits for a slow disk (the daemon saves from its housekeeping thread).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scanguard_ids import statefiles

log = logging.getLogger(__name__)

VERSION = 1
#: How many leading bytes of a file fingerprint it.
HEAD_BYTES = 128


def head_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Position:
    """One file's delivered position."""

    dev: int
    inode: int
    offset: int
    head: str = ""  # sha256 of the first head_len bytes ("" = no fingerprint)
    head_len: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Position:
        values = {}
        for key in ("dev", "inode", "offset", "head_len"):
            value = data.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key} must be a non-negative integer, got {value!r}")
            values[key] = value
        head = data.get("head", "")
        if not isinstance(head, str):
            raise ValueError(f"head must be a string, got {head!r}")
        return cls(head=head, **values)


class Checkpoint:
    """In-memory map path -> Position, saved on demand; safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # the positions; never held across I/O
        self._save_lock = threading.Lock()  # one write at a time, in order
        self._files: dict[str, Position] = {}
        self._dirty = False
        self.save_errors = 0

    @classmethod
    def load(cls, path: str | Path) -> Checkpoint:
        """Read a checkpoint; a missing file gives an empty one, a corrupt one is logged and
        ignored (the tail then starts per its from_start policy)."""
        cp = cls(path)
        try:
            raw = statefiles.read_bytes(str(cp.path))
        except FileNotFoundError:
            return cp
        except OSError as exc:
            log.warning("checkpoint_unreadable path=%s error=%s", cp.path, exc.strerror)
            return cp
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("version") != VERSION:
                raise ValueError(f"unsupported version {data.get('version')!r}")
            files = data.get("files", {})
            if not isinstance(files, dict):
                raise ValueError("files must be an object")
            for key, entry in files.items():
                if not isinstance(entry, dict):
                    raise ValueError(f"entry for {key!r} must be an object")
                cp._files[key] = Position.from_dict(entry)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            log.warning("checkpoint_corrupt path=%s error=%s", cp.path, exc)
            cp._files.clear()
        return cp

    def get(self, key: str) -> Position | None:
        with self._lock:
            return self._files.get(key)

    def set(self, key: str, pos: Position) -> None:
        with self._lock:
            if self._files.get(key) != pos:
                self._files[key] = pos
                self._dirty = True

    @property
    def dirty(self) -> bool:
        return self._dirty

    def snapshot(self) -> dict[str, Position]:
        with self._lock:
            return dict(self._files)

    def save(self, *, force: bool = False) -> bool:
        """Write the checkpoint if it changed (or force). Returns False on an I/O error
        (logged and counted; the previous checkpoint file stays intact)."""
        with self._save_lock:
            with self._lock:
                if not (self._dirty or force):
                    return True
                doc = {"version": VERSION, "files": {k: asdict(v) for k, v in self._files.items()}}
                self._dirty = False  # a set() from now on makes it dirty again
            try:
                self._write(json.dumps(doc, sort_keys=True).encode())
            except OSError as exc:
                with self._lock:
                    self._dirty = True
                self.save_errors += 1
                log.warning("checkpoint_save_failed path=%s error=%s", self.path, exc.strerror)
                return False
            return True

    def _write(self, data: bytes) -> None:
        # 0600, O_EXCL tmp, no symlink followed or replaced (statefiles.py)
        tmp = self.path.parent / f".{self.path.name}.tmp.{os.getpid()}"
        statefiles.write_atomic(str(self.path), data, statefiles.STATE_MODE, tmp=str(tmp))
