"""An address that becomes ours after start is unblocked at once and cannot be blocked again."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import orjson
import pytest
from rtutil import Daemon, call, wait_for

pytestmark = pytest.mark.root

ADDR = "192.0.2.77"


def in_set(ns: str) -> bool:
    res = subprocess.run(["ip", "netns", "exec", ns, "ipset", "list", "scanguard4"],
                         capture_output=True, text=True, timeout=10, check=False)
    return ADDR in res.stdout


def test_address_added_after_start_is_unblocked_and_protected(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("ipset") is None:
        pytest.skip("needs root, iproute2 and ipset")
    ns = f"sg-rt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    d = None
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, timeout=10)
        eve = tmp_path / "eve.json"
        eve.write_bytes(b"")
        journal = tmp_path / "j.jsonl"
        ctl = tmp_path / "ctl.sock"
        d = Daemon(["--backend", "ipset", "--eve", str(eve), "--journal", str(journal),
                    "--state", str(tmp_path / "s"), "--checkpoint", str(tmp_path / "c")],
                   tmp_path / "daemon.log", ctl, prefix=("ip", "netns", "exec", ns))
        d.wait_ready()
        call(ctl, "block", ADDR)
        assert in_set(ns)
        subprocess.run(["ip", "-n", ns, "addr", "add", f"{ADDR}/32", "dev", "lo"], check=True,
                       timeout=10)
        t = time.monotonic()
        wait_for(lambda: not in_set(ns), 2.0, "unblock of the new local address")
        took = time.monotonic() - t
        wait_for(lambda: call(ctl, "list") == [], 2.0, "daemon's view")
        refused = call(ctl, "block", ADDR, check=False)
        assert refused.returncode != 0 and b"allowlisted" in refused.stderr
        assert not in_set(ns)
        records = [orjson.loads(x) for x in journal.read_bytes().splitlines()]
        assert [(r["action"], r["reason"]) for r in records] == [
            ("block", "manual block"), ("unblock", "became a local address")]
        print(f"unblocked {took * 1000:.0f} ms after `ip addr add`")
    finally:
        if d is not None:
            assert d.stop() == 0, d.log()
        subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)
