"""What every EVE source is to its owner: start, stop, and a typed report on itself.

The daemon and the engine hold ``list[Source]``; a source builds its own
:class:`SourceHealth` (fail2ban's ``Jail.status()`` from its filter, typed), so nothing
upstream decodes untyped dicts. The first seven fields are what the monitor and
``scanguard status`` show; the rest are the source's own counters, zero where they do not
apply to its kind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceHealth:
    name: str  # path or socket path
    kind: str  # "file" | "unix_dgram" | "unix_stream"
    ok: bool  # there (file exists / socket bound) and its reader thread runs
    lines: int = 0
    lines_per_s: float = 0.0
    lag_bytes: int = 0  # file sources: bytes written but not yet read
    detail: str = ""  # e.g. "waiting for file", "2 clients"
    exists: bool = True  # the file is there / our socket is bound at the path
    running: bool = True  # the reader thread is alive
    bytes: int = 0
    oversized: int = 0
    unterminated: int = 0
    sink_errors: int = 0
    last_read: float | None = None  # wall-clock time of the last read with data
    # file sources
    watch: str = ""  # the Watcher backend in use: "inotify", "watchdog", "poll"
    inode: int = 0
    offset: int = 0
    rotations: int = 0
    truncations: int = 0
    reopen_errors: int = 0
    # socket sources
    datagrams: int = 0
    connections: int = 0  # open now (unix_stream)
    connections_total: int = 0
    rejected: int = 0  # connections over max_connections
    read_errors: int = 0
    peers_refused: int = 0  # unix_stream peers of a uid not in eve.socket_uids
    max_dgram_qlen: int | None = None  # net.unix.max_dgram_qlen when bound (unix_dgram)


class Source(Protocol):
    """An EVE source: hands batches of lines to its sink from its own thread."""

    def start(self) -> None:
        """Open or bind, then read in a thread; raises ScanguardError if it cannot."""

    def stop(self) -> None:
        """Ask the thread to finish (does not wait)."""

    def health(self) -> SourceHealth:
        """A report on itself; cheap, callable from any thread."""


def health_of(src: Source) -> SourceHealth:
    """``src.health()``, or a DOWN record saying why it failed: a broken source must not
    break the snapshot that reports on all of them."""
    try:
        return src.health()
    except Exception as exc:  # any failure of one source's report
        log.error("source health failed source=%s error=%s", src, exc)
        return SourceHealth(name=str(src), kind="?", ok=False, detail=str(exc))
