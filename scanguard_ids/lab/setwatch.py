"""When did an address enter (or leave) a kernel ipset? Poll every set over netlink.

ipset sends no netlink events on add/del, so this process lists every set of its
namespace every ``--interval`` seconds (one netlink dump, microseconds for small sets)
and prints one JSON line per change::

    {"t": 1795638508.0531, "event": "add", "set": "scanguard4", "ip": "192.0.2.2"}

``t`` is the wall-clock time of the first listing that showed the change, so the true
time lies in [t - interval, t]. Run inside the victim namespace::

    python -m scanguard_ids.lab.setwatch --interval 0.001 --max-seconds 600

``--nft-table scanguard_fp`` also polls that nftables table's ``blocked4``/``blocked6`` sets
(the kernel fast path's own drops, before the daemon adopts them into the ipset) over
netlink (block/nlnft.py); their events name the set ``<table>:blocked4``. A table not
there (yet) is an empty set.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from scanguard_ids.lab import procs
from scanguard_ids.lab.netns import Netns


def members(msgs: Iterable[Any]) -> set[tuple[str, str]]:
    """(set name, address) pairs of an ipset list dump (hash:ip / hash:net sets)."""
    out: set[tuple[str, str]] = set()
    for msg in msgs:
        name = msg.get_attr("IPSET_ATTR_SETNAME")
        adt = msg.get_attr("IPSET_ATTR_ADT")
        if not name or not adt:
            continue
        for data in adt.get_attrs("IPSET_ATTR_DATA"):
            ipf = data.get_attr("IPSET_ATTR_IP_FROM")
            if ipf is None:
                continue
            ip = ipf.get_attr("IPSET_ATTR_IPADDR_IPV4") or ipf.get_attr("IPSET_ATTR_IPADDR_IPV6")
            if ip:
                cidr = data.get_attr("IPSET_ATTR_CIDR")
                out.add((name, f"{ip}/{cidr}" if cidr else str(ip)))
    return out


NFT_SETS = ("blocked4", "blocked6")


def nft_members(reader: Any, sets: Iterable[str] = NFT_SETS) -> set[tuple[str, str]]:
    """(``table:set``, address) pairs of the fast path's sets; an absent table or set
    (ENOENT: not installed yet, or removed) contributes nothing."""
    import errno

    from scanguard_ids.block.nlnft import NetlinkError

    out: set[tuple[str, str]] = set()
    for name in sets:
        try:
            out.update((f"{reader.table}:{name}", e.ip) for e in reader.elements(name))
        except NetlinkError as exc:
            if exc.errno != errno.ENOENT:
                raise
    return out


def watch(interval: float, max_seconds: float, nft_table: str | None = None) -> int:
    from pyroute2.ipset import IPSet

    from scanguard_ids.block.nlnft import SetReader

    reader = SetReader(nft_table) if nft_table else None
    stop = procs.stop_on_signals()
    known: set[tuple[str, str]] = set()
    polls = 0
    deadline = time.monotonic() + max_seconds
    with IPSet() as ips:
        sys.stdout.write(json.dumps({"t": time.time(), "event": "ready"}) + "\n")
        sys.stdout.flush()
        while not stop.requested and time.monotonic() < deadline:
            try:
                now_members = members(list(ips.list()))
                if reader is not None:
                    now_members |= nft_members(reader)
            except Exception as exc:  # noqa: BLE001 - a set destroyed mid-dump; retry
                sys.stderr.write(f"setwatch: list failed: {exc!r}\n")
                now_members = known
            polls += 1
            emit_changes(known, now_members, time.time())
            known = now_members
            time.sleep(interval)
    if reader is not None:
        reader.close()
    sys.stdout.write(json.dumps({"t": time.time(), "event": "exit", "polls": polls}) + "\n")
    return 0


def emit_changes(known: set[tuple[str, str]] | frozenset[tuple[str, str]],
                 now: set[tuple[str, str]] | frozenset[tuple[str, str]], t: float) -> None:
    """One JSON line per (set, address) added or removed between two polls, at time ``t``."""
    for name, ip in sorted(now - known):
        sys.stdout.write(json.dumps({"t": t, "event": "add", "set": name, "ip": ip}) + "\n")
    for name, ip in sorted(known - now):
        sys.stdout.write(json.dumps({"t": t, "event": "del", "set": name, "ip": ip}) + "\n")
    if now != known:
        sys.stdout.flush()


@contextlib.contextmanager
def watching(ns: Netns, out: Path, interval: float = 0.002,
             max_seconds: float = 3600.0, nft_table: str | None = None) -> Iterator[Path]:
    """This module as a process in ``ns`` writing its events to ``out`` while in the block."""
    with open(out, "wb") as fh:
        argv = [sys.executable, "-m", "scanguard_ids.lab.setwatch",
                "--interval", str(interval), "--max-seconds", str(max_seconds)]
        if nft_table:
            argv += ["--nft-table", nft_table]
        proc = procs.spawn(ns.argv(argv), stdout=fh, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while b'"ready"' not in out.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise procs.LabError(f"setwatch did not start (exit {proc.poll()})")
            time.sleep(0.02)
        yield out
    finally:
        procs.stop(proc, grace=3)


def read_events(path: Path) -> list[dict[str, object]]:
    """The JSON lines of a setwatch output file (junk lines skipped)."""
    out: list[dict[str, object]] = []
    if not path.exists():
        return out
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            if isinstance(rec, dict):
                out.append(rec)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="setwatch")
    p.add_argument("--interval", type=float, default=0.001)
    p.add_argument("--max-seconds", type=float, default=3600.0)
    p.add_argument("--nft-table", help="also poll this inet table's blocked4/blocked6 sets")
    a = p.parse_args(argv)
    return watch(max(a.interval, 0.0005), a.max_seconds, a.nft_table)


if __name__ == "__main__":
    sys.exit(main())
