from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SG = [sys.executable, "-m", "scanguard_ids.cli"]


def sg(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SG, *args], capture_output=True, text=True, timeout=60, **kw)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["replay", "--count", "x", "f"], "--count"),
        (["replay", "--count", "0", "/dev/null"], "--count"),
        (["replay", "--policy", "nope", "f"], "--policy"),
        (["replay"], "EVE_FILE"),
        (["replay", "/nonexistent/eve.json"], "EVE_FILE"),
        (["block", "not-an-ip"], "not an IP"),
        (["block", "192.0.2.9", "--ttl", "-5"], "--ttl"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], needle: str) -> None:
    res = sg(*args)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert needle in lines[0]


def test_bad_config_file_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[detect]\ncount = 'three'\n")
    res = sg("replay", "--config", str(cfg), "/dev/null")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "scanguard replay: error: detect.count: expected an integer, got 'three'"
    ]


def test_status_without_daemon_fails_clearly(tmp_path: Path) -> None:
    res = sg("status", "--socket", str(tmp_path / "none.sock"))
    assert res.returncode == 1
    assert "no daemon listening" in res.stderr
