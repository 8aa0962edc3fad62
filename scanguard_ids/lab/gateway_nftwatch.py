"""When did an address enter (or leave) an nftables set? :mod:`setwatch` for nftables.

The same JSON lines as setwatch (``{"t": ..., "event": "add", "set": "blocked4", "ip":
"192.0.2.2"}``), so :func:`scanguard_ids.lab.analysis.block_intervals` reads both. Each
poll runs ``nft -j list table inet <table>`` (a few ms per listing, so ``t`` is exact to
the interval plus one listing, coarser than setwatch's netlink dump). Run inside the
router namespace::

    python -m scanguard_ids.lab.gateway_nftwatch --table sggw --interval 0.002
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scanguard_ids.lab import procs
from scanguard_ids.lab.netns import Netns
from scanguard_ids.lab.setwatch import emit_changes


def members(listing: dict[str, Any]) -> set[tuple[str, str]]:
    """(set name, address) pairs of ``nft -j list table`` output (pure)."""
    out: set[tuple[str, str]] = set()
    for item in listing.get("nftables", []):
        body = item.get("set") if isinstance(item, dict) else None
        if not isinstance(body, dict):
            continue
        for elem in body.get("elem", []):
            val = elem.get("elem", {}).get("val") if isinstance(elem, dict) else elem
            if isinstance(val, dict) and "prefix" in val:
                val = f"{val['prefix'].get('addr')}/{val['prefix'].get('len')}"
            if isinstance(val, str):
                out.add((str(body.get("name", "")), val))
    return out


def _list(table: str) -> set[tuple[str, str]] | None:
    res = subprocess.run(["nft", "-j", "list", "table", "inet", table], capture_output=True,
                         text=True, timeout=5, check=False)
    if res.returncode != 0:
        return None  # the table is not there (yet)
    try:
        return members(json.loads(res.stdout))
    except ValueError:
        return None


def watch(table: str, interval: float, max_seconds: float) -> int:
    stop = False

    def _stop(_s: int, _f: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    known: set[tuple[str, str]] = set()
    polls = 0
    deadline = time.monotonic() + max_seconds
    sys.stdout.write(json.dumps({"t": time.time(), "event": "ready"}) + "\n")
    sys.stdout.flush()
    while not stop and time.monotonic() < deadline:
        now = _list(table)
        polls += 1
        if now is not None:
            emit_changes(known, now, time.time())
            known = now
        time.sleep(interval)
    sys.stdout.write(json.dumps({"t": time.time(), "event": "exit", "polls": polls}) + "\n")
    return 0


@contextlib.contextmanager
def watching(ns: Netns, table: str, out: Path, interval: float = 0.002,
             max_seconds: float = 3600.0) -> Iterator[Path]:
    """This module as a process in ``ns`` writing its events to ``out`` while in the block."""
    with open(out, "wb") as fh:
        argv = [sys.executable, "-m", "scanguard_ids.lab.gateway_nftwatch", "--table", table,
                "--interval", str(interval), "--max-seconds", str(max_seconds)]
        proc = procs.spawn(ns.argv(argv), stdout=fh, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while b'"ready"' not in out.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise procs.LabError(f"nftwatch did not start (exit {proc.poll()})")
            time.sleep(0.02)
        yield out
    finally:
        procs.stop(proc, grace=3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gateway_nftwatch")
    p.add_argument("--table", required=True)
    p.add_argument("--interval", type=float, default=0.002)
    p.add_argument("--max-seconds", type=float, default=3600.0)
    a = p.parse_args(argv)
    return watch(a.table, max(a.interval, 0.0005), a.max_seconds)


if __name__ == "__main__":
    sys.exit(main())
