"""When did the switch start dropping an address? Poll its flow table over OpenFlow 1.3.

The lab's ``setwatch`` for the sdn-* backends, whose blocks live in the switch, not in
the victim's ipsets. One OpenFlow 1.3 connection to the bridge's management socket
(``unix:.../br0.mgmt``: a service connection beside Faucet's, which it neither
disturbs nor replaces) asks for every flow of every table each ``--interval``
seconds, and one JSON line is printed per change of the set of addresses that a
*drop flow* matches as source, in setwatch's format::

    {"t": 1795638508.0531, "event": "add", "set": "switch", "ip": "192.0.2.2"}

A drop flow matches ``ipv4_src``/``ipv6_src`` exactly and has no instruction that
could forward the packet (no goto-table, no non-empty apply/write-actions): both
Faucet's ACL rule ``{allow: 0}`` and sdn-openflow's flows are such flows. ``t`` is
the wall-clock time the flow-stats reply arrived, so the flow was installed within
[t - interval - reply time, t]; OVS applies a flow to its datapath within about a
millisecond of installing it (docs/sdn.md), so ``t`` is when the switch drops the
scanner, to that resolution. Run anywhere the socket is reachable::

    python -m scanguard_ids.lab.flowwatch --target unix:/tmp/x/ovs/br0.mgmt --interval 0.002
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import struct
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from scanguard_ids.block.sdn import ofp13
from scanguard_ids.block.sdn.ofconn import OfConnection
from scanguard_ids.errors import BackendError
from scanguard_ids.lab import procs
from scanguard_ids.lab.netns import Netns

SET = "switch"
# ofp_flow_stats up to its match: length, table, pad, duration s/ns, priority,
# idle/hard timeouts, flags, pad, cookie, packets, bytes (OpenFlow 1.3.5 §7.3.5.2).
_FLOW_STATS = struct.Struct("!HBxIIHHHH4xQQQ")
_INSTR = struct.Struct("!HH")
GOTO_TABLE, WRITE_ACTIONS, APPLY_ACTIONS = 1, 3, 4
_SOURCE_FIELDS = (ofp13.IPV4_SRC, ofp13.IPV6_SRC)
#: Faucet's placeholder rule of an ACL without blocks and without the final allow
#: (no valid packet has this source): never a block.
PLACEHOLDER = "255.255.255.255"


def forwards(instructions: bytes) -> bool:
    """Whether an instruction list can send the packet on (goto or any action)."""
    pos = 0
    while pos + _INSTR.size <= len(instructions):
        itype, ilen = _INSTR.unpack_from(instructions, pos)
        if ilen < _INSTR.size:
            raise ofp13.DecodeError(f"bad instruction length {ilen}")
        if itype == GOTO_TABLE or (itype in (WRITE_ACTIONS, APPLY_ACTIONS) and ilen > 8):
            return True
        pos += ilen
    return False


def drop_sources(payload: bytes) -> set[str]:
    """Source addresses matched by drop flows in one flow-stats multipart payload."""
    out: set[str] = set()
    pos = 0
    while pos + _FLOW_STATS.size <= len(payload):
        length = _FLOW_STATS.unpack_from(payload, pos)[0]
        if length < _FLOW_STATS.size or pos + length > len(payload):
            raise ofp13.DecodeError(f"bad flow_stats length {length}")
        fields, mlen = ofp13.parse_match(payload, pos + _FLOW_STATS.size)
        instr = payload[pos + _FLOW_STATS.size + mlen:pos + length]
        if not forwards(instr):
            for fid in _SOURCE_FIELDS:
                value = fields.get(fid)
                if value is not None and len(value) in (4, 16):
                    out.add(str(ipaddress.ip_address(value)))
        pos += length
    out.discard(PLACEHOLDER)
    return out


def dropped(conn: OfConnection) -> set[str]:
    """Addresses the switch drops as source now (one flow-stats request, all tables)."""
    reply = conn.transact([ofp13.flow_stats_request(conn.xid(), cookie=0, cookie_mask=0)])
    if reply.errors:
        raise BackendError("flow stats refused: " + "; ".join(e for _, e in reply.errors))
    out: set[str] = set()
    for _xid, body in reply.multipart:
        mp_type, _flags, payload = ofp13.parse_multipart(body)
        if mp_type == ofp13.MP_FLOW:
            out |= drop_sources(payload)
    return out


def dropped_now(target: str, timeout: float = 5.0) -> set[str]:
    """:func:`dropped` over a fresh connection to ``target``."""
    conn = OfConnection(target, timeout)
    try:
        return dropped(conn)
    finally:
        conn.close()


def changes(t: float, before: set[str], after: set[str]) -> list[dict[str, object]]:
    """setwatch-format events for the difference between two polls."""
    return ([{"t": t, "event": "add", "set": SET, "ip": ip} for ip in sorted(after - before)]
            + [{"t": t, "event": "del", "set": SET, "ip": ip} for ip in sorted(before - after)])


def _emit(records: Iterable[dict[str, object]]) -> None:
    for rec in records:
        sys.stdout.write(json.dumps(rec) + "\n")
    sys.stdout.flush()


def watch(target: str, interval: float, max_seconds: float) -> int:
    stop = procs.stop_on_signals()
    conn = OfConnection(target, timeout=2.0)
    known: set[str] = set()
    polls = errors = 0
    deadline = time.monotonic() + max_seconds
    try:
        known = dropped(conn)  # fail loudly before "ready" if the switch is unreachable
        _emit([{"t": time.time(), "event": "ready"},
               *changes(time.time(), set(), known)])
        while not stop.requested and time.monotonic() < deadline:
            time.sleep(interval)
            try:
                now = dropped(conn)
            except (BackendError, ofp13.DecodeError) as exc:
                errors += 1
                sys.stderr.write(f"flowwatch: poll failed: {exc}\n")
                conn.close()  # the next transact reconnects
                if errors > 1000:
                    break
                continue
            polls += 1
            if now != known:
                _emit(changes(time.time(), known, now))
                known = now
    finally:
        conn.close()
    _emit([{"t": time.time(), "event": "exit", "polls": polls, "errors": errors}])
    return 0


@contextlib.contextmanager
def watching(ns: Netns, target: str, out: Path, interval: float = 0.002,
             max_seconds: float = 3600.0) -> Iterator[Path]:
    """This module as a process in ``ns`` writing its events to ``out`` while in the block."""
    err = out.with_suffix(".err")
    with open(out, "wb") as fh, open(err, "wb") as efh:
        argv = [sys.executable, "-m", "scanguard_ids.lab.flowwatch", "--target", target,
                "--interval", str(interval), "--max-seconds", str(max_seconds)]
        proc = procs.spawn(ns.argv(argv), stdout=fh, stderr=efh)
    try:
        deadline = time.monotonic() + 15
        while b'"ready"' not in out.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = err.read_text(errors="replace")[-300:]
                raise procs.LabError(f"flowwatch did not start (exit {proc.poll()}): {tail}")
            time.sleep(0.02)
        yield out
    finally:
        procs.stop(proc, grace=3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="flowwatch")
    p.add_argument("--target", required=True, help="unix:PATH or tcp:HOST:PORT")
    p.add_argument("--interval", type=float, default=0.002)
    p.add_argument("--max-seconds", type=float, default=3600.0)
    a = p.parse_args(argv)
    return watch(a.target, max(a.interval, 0.0005), a.max_seconds)


if __name__ == "__main__":
    sys.exit(main())
