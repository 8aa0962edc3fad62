"""Suricata 7 writing EVE to Redis itself (`eve-log: filetype: redis, mode: rpush`) into the
test's redis-server, read back by the Redis list source into an engine: the scanner is
blocked from what Suricata pushed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import redis
from harness import make_rig
from pcaps import Capture, tcp_closed

from scanguard_ids import suricata
from scanguard_ids.fleet.evelist import RedisListSource

pytestmark = [pytest.mark.suricata]

REPO = Path(__file__).resolve().parents[2]
SCANNER, VICTIM = "203.0.113.9", "192.0.2.1"


def redis_output(port: int, key: str) -> str:
    return f"""      filetype: redis
      redis:
        server: 127.0.0.1
        port: {port}
        mode: rpush
        key: {key}
"""


def test_suricata_pushes_alerts_to_redis_and_the_source_pops_them(
        tmp_path: Path, redis_server) -> None:  # type: ignore[no-untyped-def]
    exe = suricata.find_suricata()
    build = subprocess.run([exe, "--build-info"], capture_output=True, text=True, check=False)
    if "hiredis support:                         yes" not in build.stdout:
        pytest.skip("this Suricata is built without hiredis")
    key = f"suricata-{time.monotonic_ns()}"
    cap = Capture(start=int(time.time()))
    for i, port in enumerate((21, 23, 25)):
        tcp_closed(cap, 0.01 * i, SCANNER, VICTIM, port)
    pcap = cap.write(tmp_path / "scan.pcap")
    conf = suricata.write_config(tmp_path / "conf", REPO / "rules" / "scanguard.rules",
                                 [f"{VICTIM}/32"], tmp_path / "out")
    text = conf.read_text()
    assert "      filetype: regular\n      filename: eve.json\n" in text
    conf.write_text(text.replace("      filetype: regular\n      filename: eve.json\n",
                                 redis_output(redis_server.port, key)))
    (tmp_path / "out").mkdir()
    res = subprocess.run([exe, "-c", str(conf), "-S", str(REPO / "rules" / "scanguard.rules"),
                          "-l", str(tmp_path / "out"), "-r", str(pcap), "-k", "none",
                          "--runmode", "single"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    r = redis.Redis.from_url(redis_server.url)
    assert r.llen(key) >= 3  # Suricata pushed one element per alert

    # the engine's clock at the capture time: events ahead of the clock are set aside
    rig = make_rig(tmp_path / "rig", t0=float(cap.start), kernel_stand_in=True)
    src = RedisListSource(redis_server.url, key, rig.engine.process)
    src.start()
    try:
        deadline = time.monotonic() + 10
        while SCANNER not in rig.blocked() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        src.stop()
    assert SCANNER in rig.blocked()
    assert r.llen(key) == 0 and src.health().ok and src.health().lines >= 3
    rig.engine.journal.close()
