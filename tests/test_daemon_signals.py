"""Daemon life cycle with the dry-run backend (no firewall touched): SIGHUP reloads the
config without losing state, a bad config on reload is refused, SIGTERM exits cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
from waiting import wait_for  # tests/waiting.py (tests/ is on sys.path)

SCANGUARD = [sys.executable, "-m", "scanguard_ids.cli"]
SAMPLE = Path(__file__).parent / "data" / "eve" / "mixed_scan.eve.json"


def call(ctl: Path, *args: str) -> dict:
    res = subprocess.run([*SCANGUARD, *args, "--socket", str(ctl), "--json"],
                         capture_output=True, timeout=30, check=False)
    assert res.returncode == 0, res.stderr
    return orjson.loads(res.stdout)




def test_sighup_reload_keeps_state_and_sigterm_exits_0(tmp_path: Path) -> None:
    cfg = tmp_path / "scanguard.toml"
    ctl = tmp_path / "ctl.sock"
    eve = tmp_path / "eve.json"
    eve.write_bytes(b"")
    cfg.write_text(f"""
[detect]
count = 3
[eve]
paths = ["{eve}"]
checkpoint = "{tmp_path / 'ckpt.json'}"
[block]
backend = "dry-run"
[control]
socket = "{ctl}"
[journal]
path = "{tmp_path / 'j.jsonl'}"
state = "{tmp_path / 'state.json'}"
""")
    log = open(tmp_path / "daemon.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([*SCANGUARD, "run", "--config", str(cfg)], stdout=log, stderr=log)
    try:
        wait_for(lambda: ctl.exists(), 20, "control socket")
        eve.write_bytes(SAMPLE.read_bytes())
        wait_for(lambda: call(ctl, "status")["counters"].get("blocks") == 2, 10, "two blocks")
        assert call(ctl, "status")["count"] == 3
        # reload with new thresholds: state (blocks, counters) survives
        cfg.write_text(cfg.read_text().replace("count = 3", "count = 7"))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: call(ctl, "status")["count"] == 7, 10, "reloaded threshold")
        status = call(ctl, "status")
        assert status["counters"]["blocks"] == 2 and status["blocked_total"] == 2
        # a broken config on reload is refused; the daemon keeps running on the old one
        cfg.write_text(cfg.read_text().replace("count = 7", "count = 'x'"))
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert proc.poll() is None
        assert call(ctl, "status")["count"] == 7
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
        log.close()
    assert rc == 0
    text = (tmp_path / "daemon.log").read_text()
    assert "reload refused" in text and "detect.count" in text
    assert not ctl.exists()  # the control socket is removed on exit
    assert (tmp_path / "state.json").exists()  # offender history saved for the next start


def test_no_source_is_a_config_error(tmp_path: Path) -> None:
    res = subprocess.run([*SCANGUARD, "run", "--backend", "dry-run", "--socket",
                          str(tmp_path / "c.sock")], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith("scanguard run: error: --eve:")
