"""run_live in a real terminal (tmux): draws, quits on 'q' with exit 0, restores the screen."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")

SCRIPT = """\
import sys
from scanguard_ids.tui.app import run_live
from scanguard_ids.tui.sample import DEMO_NOW, demo_snapshot

print("BEFORE-MONITOR", flush=True)
snap = demo_snapshot(DEMO_NOW)
rc = run_live(lambda: snap, refresh=0.2)
print(f"AFTER-MONITOR rc={rc}", flush=True)
sys.exit(rc)
"""


def _wait(what: Callable[[], str], cond: Callable[[str], bool], timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    text = what()
    while not cond(text) and time.monotonic() < deadline:
        time.sleep(0.1)
        text = what()
    return text


def test_live_monitor_in_tmux(tmp_path: Path) -> None:
    script = tmp_path / "monitor.py"
    script.write_text(SCRIPT, encoding="utf-8")
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g remain-on-exit on\n", encoding="utf-8")
    # a private server on its own socket (like -L, but the socket file goes with tmp_path)
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock"), "-f", str(conf)]
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "TERM": "xterm-256color"}
    env.pop("TMUX", None)

    def run(*args: str) -> str:
        done = subprocess.run([*tmux, *args], env=env, capture_output=True, text=True, timeout=10)
        return done.stdout

    def screen() -> str:
        return run("capture-pane", "-p", "-t", "mon")

    # the shell reports python's real exit status (tmux's #{pane_dead_status} is not
    # always filled in); only quoted fixed paths go into the command line
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}; echo EXIT=$?"
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", "100", "-y", "30", "-s", "mon", "-c", str(root),
         "sh", "-c", command],
        env=env, check=True, timeout=10,
    )  # fmt: skip
    try:
        drawn = _wait(screen, lambda s: "blocked 1,200" in s)
        assert "scanguard · ipset" in drawn, drawn
        assert "BEFORE-MONITOR" not in drawn  # alternate screen
        lines = drawn.splitlines()
        assert len(lines) <= 30 and max(len(line) for line in lines) <= 100

        run("send-keys", "-t", "mon", "q")
        # tmux's "Pane is dead" notice may scroll the restored screen: read the history too
        after = _wait(lambda: run("capture-pane", "-p", "-S", "-", "-t", "mon"),
                      lambda s: "EXIT=" in s)  # fmt: skip
        assert "EXIT=0" in after, after
        assert 0 <= after.find("BEFORE-MONITOR") < after.find("AFTER-MONITOR rc=0"), after
        assert run("display-message", "-p", "-t", "mon", "#{alternate_on}").strip() == "0"
        assert "blocked 1,200" not in after  # the monitor drew on the alternate screen only
    finally:
        subprocess.run([*tmux, "kill-server"], env=env, capture_output=True, timeout=10)
