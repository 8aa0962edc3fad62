"""The valves under a spoofed flood, against the real daemon and the kernel (docs/security.md
"Valves under attack", "Event time under attack", "Kernel listings"): `scanguard run` with the
ipset backend inside namespaces this test creates; the real scanner's EVE lines come from
`suricata -r`, its traffic is probed from the scanner's namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from blocklab import Lab, listening_lab
from harness import rst
from rtutil import (
    SCANNER4,
    VICTIM4,
    Daemon,
    append,
    call,
    journal,
    kernel_set,
    spoof_ips,
    spoofed_lines,
    suricata_scan,
    wait_for,
)

from scanguard_ids.lab.netns import namespaces

pytestmark = pytest.mark.root

FUTURE = 4_070_908_800.0  # 2099-01-01 00:00 UTC


def need() -> None:
    if os.geteuid() != 0 or not all(shutil.which(x) for x in ("ip", "ipset")):
        pytest.skip("needs root, iproute2 and ipset")


@pytest.fixture
def lab() -> Iterator[Lab]:
    need()
    if shutil.which("suricata") is None:
        pytest.skip("needs suricata")
    with listening_lab("sgrv") as lab:
        yield lab


@pytest.fixture
def bare_ns() -> Iterator[str]:
    """One empty namespace (loopback only): the daemon's kernel sets live there."""
    need()
    with namespaces("sgrv") as (ns,):
        yield ns.name


def start(tmp: Path, ns: str, toml: str = "") -> Daemon:
    (tmp / "eve.json").write_bytes(b"")
    cfg = tmp / "c.toml"
    cfg.write_text(toml)
    d = Daemon(["--config", str(cfg), "--backend", "ipset", "--eve", str(tmp / "eve.json"),
                "--journal", str(tmp / "j.jsonl"), "--state", str(tmp / "state.json"),
                "--checkpoint", str(tmp / "ckpt.json")], tmp / "daemon.log", tmp / "ctl.sock",
               prefix=("ip", "netns", "exec", ns))
    d.wait_ready()
    return d


def counters(d: Daemon) -> dict[str, int]:
    return d.status()["counters"]  # type: ignore[no-any-return]


def test_spoofed_flood_fills_the_set_real_scanner_still_blocked(lab: Lab,
                                                                tmp_path: Path) -> None:
    ns = lab.victim.name
    real = suricata_scan(tmp_path / "suri")
    d = start(tmp_path, ns, "[block]\nmax_set_size = 64\nmax_blocks_per_second = 100000\n")
    try:
        assert lab.reach(SCANNER4) == {"ping": True, "tcp": True}
        spoof = spoof_ips(200)
        append(tmp_path / "eve.json", spoofed_lines(spoof, time.time()))
        wait_for(lambda: counters(d).get("blocks") == 200, 20, "200 spoofed blocks")
        in_kernel = kernel_set(ns)
        assert len(in_kernel) == 63 and in_kernel <= set(spoof)  # 64 less 1 place of headroom
        append(tmp_path / "eve.json", real)
        wait_for(lambda: SCANNER4 in kernel_set(ns), 10, "the real scanner in the set")
        assert lab.reach(SCANNER4) == {"ping": False, "tcp": False}  # dropped in the kernel
        c = counters(d)
        assert c["evicted"] == 200 + 1 - 63 and c.get("valve_drops", 0) == 0, c
        evicts = [r for r in journal(tmp_path / "j.jsonl") if r["action"] == "evict"]
        assert len(evicts) == c["evicted"]
        assert all(r["ip"] in spoof and "set full" in r["reason"] for r in evicts), evicts[:3]
        assert evicts[-1]["reason"].endswith(f"room for {SCANNER4}")
        # headroom: a manual block still lands in a set full of automatic ones
        call(d.ctl, "block", "203.0.113.77")
        after = kernel_set(ns)
        assert "203.0.113.77" in after and SCANNER4 in after and len(after) == 64
        print(f"evicted={c['evicted']} set={len(after)}")
    finally:
        assert d.stop() == 0, d.log()


def test_rate_valve_strikes_only_for_applied_blocks(bare_ns: str, tmp_path: Path) -> None:
    d = start(tmp_path, bare_ns, "[block]\nmax_blocks_per_second = 1\n")
    try:
        spoof = spoof_ips(50)
        append(tmp_path / "eve.json", spoofed_lines(spoof, time.time()))
        wait_for(lambda: counters(d).get("responses") == 150, 10, "the burst read")
        time.sleep(2.5)  # a few more tokens: deferred decisions are applied one a second
        c = counters(d)
    finally:
        assert d.stop() == 0, d.log()
    blocked = {r["ip"] for r in journal(tmp_path / "j.jsonl") if r["action"] == "block"}
    assert 1 <= len(blocked) < 10, blocked  # the valve held
    state = orjson.loads((tmp_path / "state.json").read_bytes())
    struck = {row[0]: row[1] for row in state["offenders"]["offenders"]}
    assert struck == dict.fromkeys(blocked, 1)  # no strike for the 40-odd refused ones
    assert c.get("deferred", 0) >= 40, c  # they wait for tokens instead
    assert blocked <= kernel_set(bare_ns)  # the kernel keeps them (they expire on their own)


def test_one_line_dated_2099_does_not_blind_the_daemon(lab: Lab, tmp_path: Path) -> None:
    ns = lab.victim.name
    real = suricata_scan(tmp_path / "suri")
    d = start(tmp_path, ns)
    try:
        append(tmp_path / "eve.json", rst("198.51.100.9", 21, FUTURE, VICTIM4) + b"\n")
        wait_for(lambda: counters(d).get("future") == 1, 10, "the 2099 line set aside")
        append(tmp_path / "eve.json", real)
        wait_for(lambda: SCANNER4 in kernel_set(ns), 10, "the real scanner in the set")
        assert lab.reach(SCANNER4) == {"ping": False, "tcp": False}
        c = counters(d)
        assert c["future"] == 1 and c["responses"] == 5 and c["blocks"] == 1, c
        assert c.get("too_late", 0) == 0, c
    finally:
        assert d.stop() == 0, d.log()


def test_no_expire_journaled_for_a_block_still_in_the_kernel(bare_ns: str,
                                                             tmp_path: Path) -> None:
    """sync() lists the kernel outside the lock; blocks landing meanwhile must not be taken
    for expired. 20 000 adopted IPv6 entries make each listing last long enough to race, and
    300 blocks stream in for ~16 s: over the listing at the first housekeeping and the next
    one (FULL_SYNC_S = 15 s above 64 blocks)."""
    prefill = "".join(f"add scanguard6 2001:db8:ffff::{i:x} timeout 600\n"
                      for i in range(1, 20_001))
    subprocess.run(["ip", "netns", "exec", bare_ns, "ipset", "restore"], check=True, timeout=30,
                   input="create scanguard6 hash:ip family inet6 timeout 300 maxelem 65536\n"
                         + prefill, text=True)
    d = start(tmp_path, bare_ns, "[block]\nmax_blocks_per_second = 100000\n")
    eve = tmp_path / "eve.json"
    try:
        spoof = spoof_ips(300)
        t = time.monotonic()
        for i in range(100):  # 3 scanners every ~0.16 s
            append(eve, spoofed_lines(spoof[i * 3:(i + 1) * 3], time.time()))
            time.sleep(max(0.0, t + 0.165 * (i + 1) - time.monotonic()))
        wait_for(lambda: counters(d).get("blocks") == 300, 20, "300 blocks")
        time.sleep(1.5)  # one more housekeeping pass after the last block
        in_kernel = kernel_set(bare_ns)
        assert in_kernel == set(spoof)
        records = journal(tmp_path / "j.jsonl")
        expired = [r["ip"] for r in records if r["action"] == "expire"]
        assert [ip for ip in expired if ip in in_kernel] == []
        assert expired == []  # ttl 300 s and 600 s: nothing really expired
        assert {r["ip"] for r in records if r["action"] == "block"} == in_kernel
        assert len(call(d.ctl, "list")) == 20_300
    finally:
        assert d.stop() == 0, d.log()
