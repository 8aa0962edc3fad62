"""State files are never written through a symlink, and get fixed modes whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import orjson
import pytest
from rtutil import SAMPLE, Daemon, wait_for

from scanguard_ids import statefiles
from scanguard_ids.eve.checkpoint import Checkpoint, Position
from scanguard_ids.journal import Journal, load_json, save_json
from scanguard_ids.model import Decision


def mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file an attacker wants us to overwrite (think /etc/shadow)."""
    v = tmp_path / "victim"
    v.write_bytes(b"precious\n")
    return v


def test_symlinked_journal_is_refused_and_counted(tmp_path: Path, victim: Path) -> None:
    link = tmp_path / "decisions.jsonl"
    link.symlink_to(victim)
    j = Journal(str(link))
    j.write(Decision(1.0, "block", "192.0.2.1", ttl=60))
    j.close()
    assert victim.read_bytes() == b"precious\n"
    assert (j.errors, j.written) == (1, 0)


def test_symlinked_state_and_checkpoint_are_refused(tmp_path: Path, victim: Path) -> None:
    state = tmp_path / "offenders.json"
    state.symlink_to(victim)
    with pytest.raises(statefiles.UnsafePath):
        save_json(str(state), {"offenders": {}})
    assert load_json(str(state)) is None  # not read through the link either
    # a planted tmp symlink is unlinked (never followed), then the file is written
    real = tmp_path / "real.json"
    (tmp_path / "real.json.tmp").symlink_to(victim)
    save_json(str(real), {"a": 1})
    assert orjson.loads(real.read_bytes()) == {"a": 1}
    assert victim.read_bytes() == b"precious\n"
    ck_path = tmp_path / "checkpoint.json"
    ck_path.symlink_to(victim)
    cp = Checkpoint(ck_path)
    cp.set("/x", Position(1, 2, 3))
    assert cp.save() is False and cp.save_errors == 1
    assert victim.read_bytes() == b"precious\n"


def test_modes_do_not_depend_on_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        d = tmp_path / "new" / "state"
        Journal(str(d / "j.jsonl")).write(Decision(1.0, "block", "192.0.2.1", ttl=60))
        save_json(str(d / "s.json"), {})
        Checkpoint(d / "c.json").save(force=True)
    finally:
        os.umask(old)
    assert mode(d) == mode(d.parent) == statefiles.DIR_MODE
    assert mode(d / "j.jsonl") == statefiles.JOURNAL_MODE == 0o640
    assert mode(d / "s.json") == mode(d / "c.json") == statefiles.STATE_MODE == 0o600


def test_daemon_under_umask_000(tmp_path: Path) -> None:
    """The whole daemon with umask 000: every file and directory it creates is closed."""
    eve = tmp_path / "eve.json"
    eve.write_bytes(b"")
    state = tmp_path / "var" / "lib"
    ctl = tmp_path / "run" / "scanguard" / "ctl.sock"
    d = Daemon(["--backend", "dry-run", "--eve", str(eve), "--journal", str(state / "j.jsonl"),
                "--state", str(state / "o.json"), "--checkpoint", str(state / "c.json")],
               tmp_path / "daemon.log", ctl, umask=0)
    try:
        d.wait_ready()
        eve.write_bytes(SAMPLE.read_bytes())
        wait_for(lambda: d.status()["counters"].get("blocks") == 2, 15, "two blocks")
        assert mode(ctl) == 0o600 and mode(ctl.parent) == 0o700
    finally:
        assert d.stop() == 0, d.log()
    assert mode(state) == 0o750 and mode(state.parent) == 0o750
    assert mode(state / "j.jsonl") == 0o640
    assert mode(state / "o.json") == mode(state / "c.json") == 0o600
    assert not [p for p in state.iterdir() if "tmp" in p.name]


def test_daemon_counts_a_symlinked_journal(tmp_path: Path, victim: Path) -> None:
    eve = tmp_path / "eve.json"
    eve.write_bytes(b"")
    (tmp_path / "j.jsonl").symlink_to(victim)
    (tmp_path / "o.json").symlink_to(victim)
    d = Daemon(["--backend", "dry-run", "--eve", str(eve), "--journal", str(tmp_path / "j.jsonl"),
                "--state", str(tmp_path / "o.json"), "--checkpoint", str(tmp_path / "c.json")],
               tmp_path / "daemon.log", tmp_path / "ctl.sock")
    try:
        d.wait_ready()
        eve.write_bytes(SAMPLE.read_bytes())
        wait_for(lambda: d.status()["counters"].get("blocks") == 2, 15, "two blocks")
        assert d.status()["counters"]["journal_errors"] == 2
    finally:
        assert d.stop() == 0, d.log()
    assert victim.read_bytes() == b"precious\n"
    log = d.log()
    assert "is a symlink" in log and "state save failed" in log
