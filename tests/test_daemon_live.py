"""`scanguard run` end to end, inside namespaces this test creates: real Suricata EVE lines
in, real kernel sets out, checked from the scanner's side of a veth."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from blocklab import Lab, host_firewall, listening_lab, need_root
from pcaps import Capture, tcp_closed, udp_closed
from waiting import wait_for  # tests/waiting.py (tests/ is on sys.path)

from scanguard_ids import suricata

pytestmark = [pytest.mark.root, pytest.mark.suricata]

REPO = Path(__file__).resolve().parent.parent
SCANGUARD = [sys.executable, "-m", "scanguard_ids.cli"]
VICTIM4, SCANNER4, VICTIM6, SCANNER6 = "192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"
TTL = 8  # long enough for four 1 s probe time-outs under load, short enough to wait out




@pytest.fixture(scope="module")
def scan_lines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    """Real Suricata EVE alerts for a TCP scan from SCANNER4 and a UDP scan from SCANNER6,
    timestamped now (the daemon works on the events' own clock)."""
    root = tmp_path_factory.mktemp("live")
    out = {}
    for name, remote, local, probe in (
        ("tcp4", SCANNER4, VICTIM4, tcp_closed),
        ("udp6", SCANNER6, VICTIM6, udp_closed),
    ):
        cap = Capture(start=int(time.time()))
        for i, port in enumerate((21, 23, 25, 110, 111)):
            probe(cap, 0.01 * i, remote, local, port)
        pcap = cap.write(root / f"{name}.pcap")
        eve = suricata.run_pcap(
            pcap,
            REPO / "rules" / "scanguard.rules",
            [f"{VICTIM4}/32", f"{VICTIM6}/128"],
            root / name,
            timeout=60,
        )
        lines = [ln for ln in eve.read_bytes().splitlines() if b'"event_type":"alert"' in ln]
        assert len(lines) == 5, lines
        out[name] = lines
    return out


@pytest.fixture
def lab() -> Iterator[Lab]:
    with listening_lab("sgd") as lab:
        yield lab


@pytest.fixture(scope="module", autouse=True)
def host_untouched() -> Iterator[None]:
    need_root()
    before = host_firewall()
    yield
    assert host_firewall() == before, "the host namespace's firewall changed"


class Daemon:
    """`scanguard run` started inside the victim namespace, stopped by PID."""

    def __init__(self, lab: Lab, tmp: Path, backend: str, *extra: str) -> None:
        self.lab, self.tmp = lab, tmp
        self.eve = tmp / "eve.json"
        self.ctl = str(tmp / "ctl.sock")
        self.set_name = f"sgt{os.getpid() % 10000}"
        self.argv = [
            *SCANGUARD,
            "run",
            "--backend",
            backend,
            "--set-name",
            self.set_name,
            "--socket",
            self.ctl,
            "--journal",
            str(tmp / "journal.jsonl"),
            "--state",
            str(tmp / "state.json"),
            "--checkpoint",
            str(tmp / "ckpt.json"),
            "--ttl",
            str(TTL),
            *extra,
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        self.log = open(self.tmp / "daemon.log", "ab")  # noqa: SIM115
        self.proc = self.lab.victim.popen(
            self.argv, stdout=self.log, stderr=self.log, cwd=str(REPO)
        )
        wait_for(lambda: self.try_call("status"), 20, "the daemon's control socket")
        return self

    def call(self, *args: str) -> object:
        res = self.lab.victim.run([*SCANGUARD, *args, "--socket", self.ctl, "--json"], check=False)
        assert res.returncode == 0, res.stderr
        return orjson.loads(res.stdout)

    def try_call(self, *args: str) -> object | None:
        res = self.lab.victim.run([*SCANGUARD, *args, "--socket", self.ctl, "--json"], check=False)
        return orjson.loads(res.stdout) if res.returncode == 0 else None

    def blocked(self) -> set[str]:
        return {row["ip"] for row in self.call("list")}  # type: ignore[attr-defined]

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=20)
        self.log.close()
        return rc

    def journal(self) -> list[dict]:
        path = self.tmp / "journal.jsonl"
        return [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []


def append(path: Path, lines: list[bytes]) -> None:
    with open(path, "ab") as fh:
        fh.write(b"".join(ln + b"\n" for ln in lines))


@pytest.mark.parametrize("backend", ["ipset", "nftables"])
def test_scanner_blocked_both_families_then_expires(
    lab: Lab, tmp_path: Path, backend: str, scan_lines: dict[str, list[bytes]]
) -> None:
    d = Daemon(lab, tmp_path, backend, "--eve", str(tmp_path / "eve.json"))
    (tmp_path / "eve.json").write_bytes(b"")
    d.start()
    try:
        assert lab.reach(SCANNER4) == {"ping": True, "tcp": True}
        append(d.eve, scan_lines["tcp4"] + scan_lines["udp6"])
        wait_for(lambda: {SCANNER4, SCANNER6} <= d.blocked(), 10, "both scanners blocked")
        # the monitor, attached through the control socket, shows both as blocked (first:
        # the probes below take seconds on a loaded machine, and the blocks last TTL s)
        top = lab.victim.run([*SCANGUARD, "top", "--once", "--socket", d.ctl], check=False)
        assert top.returncode == 0, top.stderr
        blocked_panel = top.stdout[top.stdout.index("─ blocked 2 ") :]
        assert SCANNER4 in blocked_panel and SCANNER6 in blocked_panel
        assert lab.reach(SCANNER4) == {"ping": False, "tcp": False}
        assert lab.reach(SCANNER6) == {"ping": False, "tcp": False}
        status = d.call("status")
        assert status["counters"]["blocks"] == 2  # type: ignore[index]
        assert status["counters"]["responses"] == 10  # type: ignore[index]
        # the kernel expires the block after its TTL; the daemon notices and journals it
        wait_for(lambda: lab.reach(SCANNER4)["tcp"], TTL + 6, "block expiry", step=0.5)
        wait_for(lambda: not d.blocked(), 5, "the daemon to see the expiry")
        actions = [(r["action"], r["ip"]) for r in d.journal()]
        assert ("block", SCANNER4) in actions and ("expire", SCANNER4) in actions
    finally:
        assert d.stop() == 0


def test_manual_block_unblock_restart_adopts_and_resumes(
    lab: Lab, tmp_path: Path, scan_lines: dict[str, list[bytes]]
) -> None:
    eve = tmp_path / "eve.json"
    eve.write_bytes(b"")
    d = Daemon(lab, tmp_path, "ipset", "--eve", str(eve)).start()
    try:
        res = lab.victim.run([*SCANGUARD, "block", "127.0.0.1", "--socket", d.ctl], check=False)
        assert res.returncode == 1 and "allowlisted" in res.stderr
        d.call("block", SCANNER4, "--ttl", "60")
        assert lab.reach(SCANNER4)["tcp"] is False
        d.call("unblock", SCANNER4)
        assert lab.reach(SCANNER4)["tcp"] is True
        d.call("block", SCANNER4, "--ttl", "60")
        # garbage and an oversized line are counted, never fatal
        append(eve, [b"\x00\xffgarbage", b"{not json", b'{"event_type":"alert"' + b"x" * 2_000_000])
        wait_for(lambda: d.call("status")["counters"]["decode_errors"] >= 2, 5, "decode errors")  # type: ignore[index]
    finally:
        assert d.stop() == 0
    # while it is down: the kernel keeps the block, and new lines are written
    assert lab.reach(SCANNER4)["tcp"] is False
    append(eve, scan_lines["udp6"])
    d2 = Daemon(lab, tmp_path, "ipset", "--eve", str(eve)).start()
    try:
        assert SCANNER4 in d2.blocked()  # adopted from the kernel, not re-blocked
        wait_for(lambda: SCANNER6 in d2.blocked(), 10, "lines written while down to be read")
        status = d2.call("status")
        assert status["counters"]["blocks"] == 1  # type: ignore[index]  # only SCANNER6
        assert status["counters"]["responses"] == 5  # type: ignore[index]  # no line read twice
    finally:
        assert d2.stop() == 0


def test_socket_source_and_missing_file_appearing_later(
    lab: Lab, tmp_path: Path, scan_lines: dict[str, list[bytes]]
) -> None:
    sock = str(tmp_path / "eve.sock")
    late = tmp_path / "later" / "eve.json"
    d = Daemon(lab, tmp_path, "ipset", "--eve-socket", sock, "--eve", str(late)).start()
    try:
        # the socket lives in the victim namespace's filesystem view, which is shared
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock)
        s.sendall(b"".join(ln + b"\n" for ln in scan_lines["tcp4"]))
        s.close()
        wait_for(lambda: SCANNER4 in d.blocked(), 10, "block via the socket source")
        late.parent.mkdir()
        append(late, scan_lines["udp6"])
        wait_for(lambda: SCANNER6 in d.blocked(), 10, "block via a file that appeared later")
    finally:
        assert d.stop() == 0
