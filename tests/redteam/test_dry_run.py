"""A dry run writes nothing of production's and hands nothing to sinks outside the host."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from rtutil import ENV, REPO, SAMPLE

from scanguard_ids import config
from scanguard_ids.block.dryrun import DryRunBackend
from scanguard_ids.clock import FixedClock
from scanguard_ids.daemon import dry_run_config
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.engine import Engine
from scanguard_ids.journal import Journal
from scanguard_ids.model import Decision


def test_default_paths_are_off_explicit_ones_kept(tmp_path: Path) -> None:
    cfg = config.Config(block=config.BlockConfig(backend="dry-run"))
    off = dry_run_config(cfg, None)
    assert (off.journal.path, off.journal.state, off.eve.checkpoint) == ("", "", "")
    # a config file key set (even to the default value) is kept
    f = tmp_path / "c.toml"
    f.write_text(f'[journal]\npath = "{config.JournalConfig().path}"\n')
    kept = dry_run_config(cfg, str(f))
    assert kept.journal.path == config.JournalConfig().path and kept.journal.state == ""
    # a path given on the command line (not the default) is kept
    cli = config.Config(block=config.BlockConfig(backend="dry-run"),
                        journal=config.JournalConfig(path=str(tmp_path / "j")))
    assert dry_run_config(cli, None).journal.path == str(tmp_path / "j")
    real = config.Config(block=config.BlockConfig(backend="ipset"))
    assert dry_run_config(real, None) is real


class Sink:
    def __init__(self, external: bool) -> None:
        self.external = external
        self.got: list[Decision] = []

    def on_decision(self, d: Decision) -> None:
        self.got.append(d)


def test_external_sinks_skipped_and_records_marked(tmp_path: Path) -> None:
    clock = FixedClock(1000.0)
    cfg = config.Config(block=config.BlockConfig(backend="dry-run"))
    journal = Journal(str(tmp_path / "j.jsonl"))
    engine = Engine(cfg, DryRunBackend(cfg.block, clock), clock, Allowlist(), journal)
    local, remote = Sink(external=False), Sink(external=True)
    engine.sinks += [local, remote]
    engine.manual_block("192.0.2.9", 60)
    journal.close()
    assert len(local.got) == 1 and remote.got == []
    (rec,) = [orjson.loads(x) for x in (tmp_path / "j.jsonl").read_bytes().splitlines()]
    assert rec["dry_run"] is True and rec["action"] == "block"


DRIVER = r"""
import os, signal, subprocess, sys, time, json
eve, ctl = sys.argv[1], sys.argv[2]
p = subprocess.Popen([sys.executable, "-m", "scanguard_ids.cli", "run", "--backend", "dry-run",
                      "--eve", eve, "--socket", ctl])
try:
    for _ in range(400):
        if os.path.exists(ctl): break
        time.sleep(0.05)
    open(eve, "ab").write(open(sys.argv[3], "rb").read())
    for _ in range(200):
        r = subprocess.run([sys.executable, "-m", "scanguard_ids.cli", "status", "--socket", ctl,
                            "--json"], capture_output=True)
        if r.returncode == 0 and json.loads(r.stdout)["counters"].get("blocks") == 2: break
        time.sleep(0.1)
    else:
        raise SystemExit("no blocks")
finally:
    p.send_signal(signal.SIGTERM)
    rc = p.wait(20)
print(json.dumps({"rc": rc, "created": sorted(os.listdir("/var/lib"))}))
"""


@pytest.mark.root
def test_dry_run_with_real_defaults_creates_nothing(tmp_path: Path) -> None:
    """Real defaults (/var/lib/scanguard/...), seen through a private mount namespace whose
    /var/lib is an empty tmpfs: after a dry run with blocks, it is still empty."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare")
    eve = tmp_path / "eve.json"
    eve.write_bytes(b"")
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    res = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         'mount -t tmpfs tmpfs /var/lib && exec "$0" "$@"', sys.executable, str(script),
         str(eve), str(tmp_path / "ctl.sock"), str(SAMPLE)],
        capture_output=True, timeout=90, check=False, env=ENV, cwd=REPO)
    assert res.returncode == 0, res.stderr.decode()[-3000:]
    out = orjson.loads(res.stdout.splitlines()[-1])
    assert out == {"rc": 0, "created": []}, res.stderr.decode()[-3000:]
    assert b"dry run: not writing the production files" in res.stderr
