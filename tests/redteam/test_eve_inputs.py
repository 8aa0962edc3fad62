"""Odd EVE inputs: a directory, a FIFO, an unreadable file, oversized lines, a foreign peer."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from rtutil import ENV, SAMPLE, Daemon, wait_for


def _source(status: dict, path: Path) -> dict:
    (src,) = [s for s in status["sources"] if s["name"] == str(path)]
    return src


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_directory_or_fifo_is_refused_truthfully_and_sigterm_works(tmp_path: Path,
                                                                   kind: str) -> None:
    eve = tmp_path / "eve"
    if kind == "directory":
        eve.mkdir()
    else:
        os.mkfifo(eve)
    d = Daemon(["--backend", "dry-run", "--eve", str(eve), "--journal", str(tmp_path / "j"),
                "--state", str(tmp_path / "s"), "--checkpoint", str(tmp_path / "c")],
               tmp_path / "daemon.log", tmp_path / "ctl.sock")
    try:
        d.wait_ready()
        src = _source(d.status(), eve)
        assert src["ok"] is False
        assert f"a {kind.replace('fifo', 'FIFO')}" in src["detail"], src
    finally:
        t = time.monotonic()
        assert d.stop(timeout=10) == 0, d.log()
        assert time.monotonic() - t < 10
    log = d.log()
    assert log.count("eve_open_failed") == 1 and "Traceback" not in log, log


def test_unreadable_file_is_not_ok(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (setpriv to an unprivileged user)")
    eve = tmp_path / "eve.json"
    eve.write_bytes(b"{}\n")
    eve.chmod(0)
    tmp_path.chmod(0o755)
    probe = (
        "import time\nfrom scanguard_ids.eve.tail import TailSource\n"
        f"t = TailSource({str(eve)!r}, lambda l, n: None, poll_interval=0.1)\n"
        "t.start(); time.sleep(0.3); h = t.health(); t.stop(); t.join(2)\n"
        "print(h.ok, h.detail)\n"
    )
    res = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                          sys.executable, "-c", probe], capture_output=True, timeout=30,
                         env=ENV, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().strip() == "False cannot read: Permission denied"


def test_oversized_lines_are_counted_in_status(tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    eve.write_bytes(b"")
    cfg = tmp_path / "c.toml"
    cfg.write_text("[eve]\nmax_line_bytes = 4096\n")
    d = Daemon(["--config", str(cfg), "--backend", "dry-run", "--eve", str(eve),
                "--journal", str(tmp_path / "j"), "--state", str(tmp_path / "s"),
                "--checkpoint", str(tmp_path / "c")], tmp_path / "daemon.log",
               tmp_path / "ctl.sock")
    try:
        d.wait_ready()
        with eve.open("ab") as fh:
            fh.write(b'{"x": "' + b"a" * 10000 + b'"}\n')
            fh.write(b'{"y": "' + b"b" * 10000 + b'"}\n')
            fh.write(SAMPLE.read_bytes())
        wait_for(lambda: d.status()["counters"].get("blocks") == 2, 15, "blocks after junk")
        status = d.status()
        assert _source(status, eve)["oversized"] == 2
        assert status["counters"]["decode_errors"] >= 2
    finally:
        assert d.stop() == 0, d.log()


def test_foreign_uid_on_the_eve_socket_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (setpriv to an unprivileged user)")
    # make the path reachable by anyone, so that only the peer-credential check stands
    # (pytest's tmp_path sits under a root-only directory: use one of our own in /tmp)
    sock_dir = Path(tempfile.mkdtemp(prefix="sg-redteam-"))
    sock_dir.chmod(0o777)
    eve_sock = sock_dir / "eve.sock"
    cfg = tmp_path / "c.toml"
    cfg.write_text("[eve]\nsocket_mode = 0o666\nsocket_uids = [0]\n")
    d = Daemon(["--config", str(cfg), "--backend", "dry-run", "--eve-socket", str(eve_sock),
                "--eve-socket-type", "unix_stream", "--journal", str(tmp_path / "j"),
                "--state", str(tmp_path / "s")], tmp_path / "daemon.log", tmp_path / "ctl.sock")
    send = ("import socket, sys\ns = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
            f"s.connect({str(eve_sock)!r}); s.sendall(sys.stdin.buffer.read()); s.close()\n")
    try:
        d.wait_ready()
        for _ in range(3):
            subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                            sys.executable, "-c", send], input=SAMPLE.read_bytes(), timeout=30,
                           check=False, capture_output=True)
        wait_for(lambda: _source(d.status(), eve_sock)["peers_refused"] == 3, 10, "refusals")
        status = d.status()
        assert status["counters"].get("blocks", 0) == 0
        assert status["counters"].get("events", 0) == 0 and _source(status, eve_sock)["lines"] == 0
        # root (an allowed uid) gets through
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(eve_sock))
            s.sendall(SAMPLE.read_bytes())
        wait_for(lambda: d.status()["counters"].get("blocks") == 2, 15, "blocks from root")
    finally:
        rc = d.stop()
        shutil.rmtree(sock_dir, ignore_errors=True)
    assert rc == 0, d.log()
    assert d.log().count("eve_socket_peer_refused") == 1  # once per uid
