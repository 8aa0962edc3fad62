"""A crash (SIGKILL) and lines written while the daemon is down, against the real daemon and the
kernel (docs/security.md "Crashes and rotation"): a backlog after a restart is blocked within a
bound, and a rotation while down loses neither the rest of the old file nor the new one."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rtutil import Daemon, append, journal, kernel_set, spoof_ips, spoofed_lines, wait_for

from scanguard_ids.lab.netns import namespaces

pytestmark = pytest.mark.root


@pytest.fixture
def ns() -> Iterator[str]:
    if os.geteuid() != 0 or not all(shutil.which(x) for x in ("ip", "ipset")):
        pytest.skip("needs root, iproute2 and ipset")
    with namespaces("sgrc") as (n,):
        yield n.name


def daemon(tmp: Path, ns: str, log: str) -> Daemon:
    d = Daemon(["--backend", "ipset", "--eve", str(tmp / "eve.json"),
                "--journal", str(tmp / "j.jsonl"), "--state", str(tmp / "state.json"),
                "--checkpoint", str(tmp / "ckpt.json")], tmp / log, tmp / "ctl.sock",
               prefix=("ip", "netns", "exec", ns))
    d.wait_ready()
    return d


def checkpointed(tmp: Path) -> int:
    """The offset the checkpoint holds for eve.json (-1: none yet)."""
    try:
        doc = json.loads((tmp / "ckpt.json").read_bytes())
    except (OSError, ValueError):
        return -1
    entry = doc.get("files", {}).get(str(tmp / "eve.json"))
    return int(entry["offset"]) if entry else -1


def run_then_crash(tmp: Path, ns: str, before: list[str]) -> None:
    """Start, block ``before``, wait until the checkpoint covers them, SIGKILL."""
    eve = tmp / "eve.json"
    eve.write_bytes(b"")
    d = daemon(tmp, ns, "daemon1.log")
    try:
        append(eve, spoofed_lines(before, time.time()))
        wait_for(lambda: set(before) <= kernel_set(ns), 10, "blocks before the crash")
        wait_for(lambda: checkpointed(tmp) == eve.stat().st_size, 10, "the checkpoint")
    finally:
        d.kill()  # a crash: no shutdown path runs
    assert d.proc.returncode == -9


@pytest.mark.parametrize("n", [100, 450])  # 450: more than the bucket (200 + a 50 reserve)
def test_backlog_written_while_down_is_blocked_after_restart(ns: str, tmp_path: Path,
                                                             n: int) -> None:
    before, backlog = spoof_ips(5), spoof_ips(n, first=5)
    run_then_crash(tmp_path, ns, before)
    append(tmp_path / "eve.json", spoofed_lines(backlog, time.time()))
    t = time.monotonic()
    d = daemon(tmp_path, ns, "daemon2.log")  # the default valve (200 blocks/s)
    try:
        wait_for(lambda: set(backlog) <= kernel_set(ns), 10, "the backlog blocked", step=0.1)
        took = time.monotonic() - t
        c = d.status()["counters"]
        assert c["responses"] == 3 * n and c["blocks"] == n, c  # no line read twice
        assert kernel_set(ns) == set(before) | set(backlog)  # the earlier ones adopted
        if n > 250:  # the rate valve refused some at first: they waited, then were applied
            assert c["deferred"] > 0 and c["retried"] == c["deferred"], c
            assert c.get("pending_dropped", 0) == 0, c
        print(f"{n} backlog scanners blocked {took:.2f} s after the restart began")
    finally:
        assert d.stop() == 0, d.log()
    records = journal(tmp_path / "j.jsonl")
    assert sorted(r["ip"] for r in records if r["action"] == "block") == sorted(before + backlog)
    assert not [r for r in records if r["action"] == "expire"]


def test_rotation_while_down_reads_the_rest_of_the_old_file_and_the_new(
        ns: str, tmp_path: Path) -> None:
    before, rest, new = spoof_ips(5), spoof_ips(10, first=5), spoof_ips(10, first=15)
    eve = tmp_path / "eve.json"
    run_then_crash(tmp_path, ns, before)
    append(eve, spoofed_lines(rest, time.time()))  # after the last checkpoint
    eve.rename(tmp_path / "eve.json.1")  # logrotate's `create` rotation, while down
    eve.write_bytes(spoofed_lines(new, time.time()))
    d = daemon(tmp_path, ns, "daemon2.log")
    try:
        wait_for(lambda: set(rest + new) <= kernel_set(ns), 10, "both files' scanners blocked")
        c = d.status()["counters"]
        assert c["responses"] == 3 * (len(rest) + len(new)), c  # nothing read twice or lost
        assert c["blocks"] == len(rest) + len(new), c
    finally:
        assert d.stop() == 0, d.log()
