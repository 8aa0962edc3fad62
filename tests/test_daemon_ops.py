"""`scanguard run` as an operator runs it: alerts through two outputs, /metrics, a failed
start. In namespaces this test creates, with real Suricata EVE lines and real kernel sets."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from blocklab import Lab
from test_daemon_live import (  # noqa: F401 - fixtures
    SCANGUARD,
    SCANNER4,
    Daemon,
    append,
    host_untouched,
    lab,
    scan_lines,
    wait_for,
)

pytestmark = [pytest.mark.root, pytest.mark.suricata]

SCRAPE = """
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
"""


def _send(sock_path: str, lines: list[bytes]) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sock_path)
        s.sendall(b"".join(ln + b"\n" for ln in lines))


def _metrics(lab: Lab, url: str) -> dict[str, float]:  # noqa: F811
    res = lab.victim.run([sys.executable, "-c", SCRAPE, url], check=False)
    assert res.returncode == 0, res.stderr
    out = {}
    for line in res.stdout.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_alerts_through_file_and_socket_count_once_and_metrics_count_the_block(
    lab: Lab, tmp_path: Path, scan_lines: dict[str, list[bytes]]  # noqa: F811
) -> None:
    eve, sock = tmp_path / "eve.json", str(tmp_path / "eve.sock")
    eve.write_bytes(b"")
    url = "http://127.0.0.1:19477/metrics"
    d = Daemon(lab, tmp_path, "ipset", "--eve", str(eve), "--eve-socket", sock,
               "--metrics", "127.0.0.1:19477").start()
    try:
        first_two, third = scan_lines["tcp4"][:2], scan_lines["tcp4"][2:3]
        # the same two alerts arrive through both outputs: 4 lines, 2 responses, no block
        _send(sock, first_two)
        append(eve, first_two)
        wait_for(lambda: d.call("status")["counters"].get("duplicates") == 2, 10,  # type: ignore[index]
                 "the duplicates to be counted")
        assert SCANNER4 not in d.blocked()
        assert d.call("status")["counters"]["responses"] == 2  # type: ignore[index]
        # the third distinct response (once through each output) blocks
        append(eve, third)
        _send(sock, third)
        wait_for(lambda: SCANNER4 in d.blocked(), 10, "the block on the third response")
        wait_for(lambda: d.call("status")["counters"].get("duplicates") == 3, 10,  # type: ignore[index]
                 "the third duplicate")
        counters = d.call("status")["counters"]  # type: ignore[index]
        assert counters["responses"] == 3 and counters["blocks"] == 1
        m = _metrics(lab, url)
        assert m["scanguard_blocks_total"] == 1
        assert m["scanguard_duplicates_total"] == 3
        assert m["scanguard_alerts_used_total"] == 3
        assert m["scanguard_blocked_addresses"] == 1
        assert m["scanguard_reaction_seconds_count"] == 1
    finally:
        assert d.stop() == 0


def test_failed_start_removes_the_sets_it_made(lab: Lab, tmp_path: Path) -> None:  # noqa: F811
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the control socket's directory should be")
    d = Daemon(lab, tmp_path, "ipset", "--eve", str(tmp_path / "eve.json"))
    d.argv[d.argv.index("--socket") + 1] = str(blocker / "ctl.sock")
    res = lab.victim.run(d.argv, check=False)
    assert res.returncode != 0
    assert "removed the empty sets" in res.stderr, res.stderr
    sets = lab.victim.run(["ipset", "list", "-n"], check=False).stdout.split()
    assert f"{d.set_name}4" not in sets and f"{d.set_name}6" not in sets
    rules = lab.victim.run(["iptables-save"], check=False).stdout
    assert d.set_name not in rules
