"""Two real `scanguard run` daemons, each in its own network namespace with the ipset backend,
on one redis-server reached through a unix socket (a path works across namespaces). Real
Suricata EVE lines: two reach A through Suricata's Redis list output format (RPUSH, read with
--eve-redis), one reaches B through its EVE file; the block lands in both kernel sets."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
from blocklab import host_firewall, need_root
from pcaps import Capture, tcp_closed
from waiting import wait_for  # tests/waiting.py (tests/ is on sys.path)

from scanguard_ids import suricata
from scanguard_ids.lab.netns import Netns, namespaces

pytestmark = [pytest.mark.root, pytest.mark.suricata]

REPO = Path(__file__).resolve().parents[2]
SCANGUARD = [sys.executable, "-m", "scanguard_ids.cli"]
SCANNER, VICTIM, MANUAL = "203.0.113.9", "192.0.2.1", "203.0.113.50"




@pytest.fixture(scope="module")
def alerts(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Suricata's alerts for three probes of closed TCP ports, stamped now."""
    root = tmp_path_factory.mktemp("fleet-eve")
    cap = Capture(start=int(time.time()))
    for i, port in enumerate((21, 23, 25)):
        tcp_closed(cap, 0.01 * i, SCANNER, VICTIM, port)
    eve = suricata.run_pcap(cap.write(root / "scan.pcap"), REPO / "rules" / "scanguard.rules",
                            [f"{VICTIM}/32"], root / "out", timeout=60)
    lines = [ln for ln in eve.read_bytes().splitlines() if b'"event_type":"alert"' in ln]
    assert len(lines) == 3, lines
    return lines


class Daemon:
    def __init__(self, ns: Netns, tmp: Path, name: str, url: str, *source: str) -> None:
        tmp.mkdir()
        self.ns, self.tmp, self.name = ns, tmp, name
        self.ctl = str(tmp / "ctl.sock")
        self.set_name = f"sgf{name}"
        argv = [*SCANGUARD, "run", "--backend", "ipset", "--set-name", self.set_name,
                "--socket", self.ctl, "--journal", str(tmp / "journal.jsonl"),
                "--state", str(tmp / "state.json"), "--checkpoint", str(tmp / "ckpt.json"),
                "--ttl", "60", "--fleet", url, "--node", name, *source]
        self.log = open(tmp / "daemon.log", "ab")  # noqa: SIM115
        self.proc = ns.popen(argv, stdout=self.log, stderr=self.log, cwd=str(REPO))

    def call(self, *args: str) -> object | None:
        res = subprocess.run([*SCANGUARD, *args, "--socket", self.ctl, "--json"],
                             capture_output=True, check=False, cwd=str(REPO))
        return orjson.loads(res.stdout) if res.returncode == 0 else None

    def fleet_ready(self) -> bool:
        snap = self.call("status")
        return bool(snap and snap["fleet"] and snap["fleet"]["connected"])  # type: ignore[index]

    def kernel(self) -> str:
        return self.ns.run(["ipset", "list", f"{self.set_name}4"], check=False).stdout

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=20)
        finally:
            self.log.close()


@pytest.fixture
def unix_redis(tmp_path: Path, redis_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    sock = tmp_path / "redis.sock"
    redis_factory(unixsocket=str(sock))
    yield f"unix://{sock}"


def test_two_daemons_share_evidence_and_blocks(tmp_path: Path, unix_redis: str,
                                               alerts: list[bytes]) -> None:
    need_root()
    before = host_firewall()
    eve_b = tmp_path / "eve-b.json"
    eve_b.write_bytes(b"")
    with namespaces("sgfa", "sgfb") as (ns_a, ns_b):
        a = Daemon(ns_a, tmp_path / "a", "A", unix_redis, "--eve-redis", unix_redis,
                   "--eve-redis-key", "suricata-a")
        b = Daemon(ns_b, tmp_path / "b", "B", unix_redis, "--eve", str(eve_b))
        try:
            wait_for(lambda: a.fleet_ready() and b.fleet_ready(), 30, "both daemons on redis")
            r = redis.Redis.from_url(unix_redis)
            r.rpush("suricata-a", *alerts[:2])  # what Suricata's `filetype: redis` pushes
            with open(eve_b, "ab") as fh:
                fh.write(alerts[2] + b"\n")
            wait_for(lambda: SCANNER in a.kernel() and SCANNER in b.kernel(), 15,
                     "2 responses at A + 1 at B to block at both")
            assert r.llen("suricata-a") == 0
            rows = {row["ip"]: row for row in a.call("list")}  # type: ignore[union-attr]
            assert rows[SCANNER]["node"] in ("A", "B")
            # a manual block at A lands in B's kernel set
            t0 = time.monotonic()
            a.call("block", MANUAL, "--ttl", "60")
            wait_for(lambda: MANUAL in b.kernel(), 10, "A's manual block in B's set")
            took = time.monotonic() - t0
            rows = {row["ip"]: row for row in b.call("list")}  # type: ignore[union-attr]
            assert rows[MANUAL]["node"] == "A"
            snap = b.call("status")
            assert snap["fleet"]["node"] == "B"  # type: ignore[index]
            assert snap["counters"]["fleet_decisions_in"] >= 1  # type: ignore[index]
            assert snap["counters"]["fleet_events_in"] == 2  # type: ignore[index]
            print(f"manual block at A -> B's kernel set, incl. 2 CLI calls: {took * 1e3:.0f} ms")
            # an unblock converges too
            b.call("unblock", MANUAL)
            wait_for(lambda: MANUAL not in a.kernel(), 10, "B's unblock at A")
        finally:
            rc_a, rc_b = a.stop(), b.stop()
        assert (rc_a, rc_b) == (0, 0), ((tmp_path / "a" / "daemon.log").read_text()
                                        + (tmp_path / "b" / "daemon.log").read_text())
    assert host_firewall() == before
