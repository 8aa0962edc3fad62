"""`scanguard config example|check|show` through the real entry point."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from scanguard_ids import config
from scanguard_ids.config import render

SG = [sys.executable, "-m", "scanguard_ids.cli"]


def _sg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SG, *args], capture_output=True, text=True, timeout=60, check=False)


def test_example_then_check_round_trip(tmp_path: Path) -> None:
    r = _sg("config", "example")
    assert r.returncode == 0, r.stderr
    assert r.stdout == render.example()
    path = tmp_path / "scanguard.toml"
    path.write_text(r.stdout)
    c = _sg("config", "check", "--config", str(path))
    assert c.returncode == 0 and "ok" in c.stdout, c.stderr
    loaded = config.load(path)
    assert loaded.detect == config.Config().detect
    assert loaded.block == config.Config().block


def test_check_names_the_key_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[detect]\nwindow = inf\n")
    r = _sg("config", "check", "--config", str(path))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "scanguard config: error: detect.window: must be a finite number, got inf"
    ]


def test_show_applies_file_then_options(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[detect]\ncount = 4\nttl = 600\n[eve]\nsocket = "/run/x.sock"\n')
    r = _sg("config", "show", "--config", str(path), "--ttl", "900", "--eve", "/var/log/e.json")
    assert r.returncode == 0, r.stderr
    shown = tomllib.loads(r.stdout)
    assert shown["detect"]["count"] == 4 and shown["detect"]["ttl"] == 900
    assert shown["eve"]["paths"] == ["/var/log/e.json"] and shown["eve"]["socket"] == "/run/x.sock"
    # what `show` prints is itself a valid config equal to the effective one
    assert config.from_dict(shown) == config.from_dict(
        {"detect": {"count": 4, "ttl": 900},
         "eve": {"socket": "/run/x.sock", "paths": ["/var/log/e.json"]}})


def test_bad_option_exits_2_naming_it() -> None:
    r = _sg("config", "show", "--count", "0")
    assert r.returncode == 2 and "--count" in r.stderr
