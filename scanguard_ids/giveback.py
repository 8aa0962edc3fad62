"""Giving memory back once a flood has passed (bench/flood.py measures the RSS curve).

Two things keep a process's memory at its peak after the state that needed it is gone:

* a dict (OrderedDict, Counter) never shrinks its table when entries are deleted: one that
  held a million spoofed sources keeps tens of MB of empty slots. :func:`oversized` says when
  a table is far above what it holds (O(1): ``sys.getsizeof`` reports the table), and the
  owner rebuilds it (``type(d)(d)`` keeps the order);
* the allocator keeps freed memory for reuse: glibc's heap is returned to the kernel only by
  :func:`malloc_trim` (pymalloc's own arenas go back once they are empty). Where there is no
  glibc it does nothing and says so.

Pure helpers; the engine's housekeeping (Engine.sync) decides when.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import sys
from collections.abc import Callable, Sized

log = logging.getLogger(__name__)

#: Tables smaller than this are not worth a rebuild.
MIN_TABLE_BYTES = 256 * 1024
#: Rebuilt when the table is this many times what a fresh one for its entries would take.
SLACK = 4
#: A fresh dict's table per entry, rounded up (an OrderedDict ~75 B, a dict ~26-52 B).
_BYTES_PER_ENTRY = 80

#: The collector's first-generation threshold in the daemon (CPython's default: 700). Each
#: event allocates a few container objects and reference counting frees almost all of them
#: (they form no cycles), yet at 700 the collector ran every ~200 events of a spoofed flood:
#: ~9 % of its CPU (bench/flood.py; this setting: ~1.1x its lines/CPU-s).
GC_THRESHOLD0 = 20_000

_trim: Callable[[int], int] | None = None
_trim_missing = False


def oversized(table: Sized) -> bool:
    """True when ``table`` (a dict) holds far fewer entries than its table has room for."""
    size = sys.getsizeof(table)
    return size > MIN_TABLE_BYTES and size > SLACK * (256 + _BYTES_PER_ENTRY * len(table))


def malloc_trim() -> bool:
    """Ask glibc to return free heap memory to the kernel; False where there is no glibc
    (musl, macOS) or nothing was returned."""
    global _trim, _trim_missing
    if _trim is None:
        if _trim_missing:
            return False
        try:
            fn = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _trim_missing = True
            log.debug("malloc_trim not available (no glibc): freed memory stays with the allocator")
            return False
        fn.argtypes = [ctypes.c_size_t]
        fn.restype = ctypes.c_int
        _trim = fn
    return bool(_trim(0))


def tune_gc() -> None:
    """The daemon's garbage-collector settings, once at start-up (``scanguard run``): what
    exists by then (modules, configuration) leaves the collector's lists for good
    (``gc.freeze``), and young objects are collected every :data:`GC_THRESHOLD0` allocations
    instead of 700. Cycles are rare here: this delays their collection, it does not stop it."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD0, older, oldest)

