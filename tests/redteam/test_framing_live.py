"""Framing, for real: spoofed probes with a live peer's address must not cut the peer.

victim (192.0.2.1: Suricata with the rule pack, `scanguard run --backend ipset`, an echo
server on PORT) <-veth-> scanner namespace holding the peer 192.0.2.2 and a fresh scanner
address 192.0.2.3. The peer keeps a TCP connection carrying data both ways; raw SYNs forged
with the peer's address draw the victim's RSTs to three closed ports; the daemon must
journal "suspected-framing", leave the peer unblocked and its connection open. A real
`nmap -sT` from 192.0.2.3 (which completes a handshake on the open PORT) is blocked; an
operator's unblock forgives its strike, so a second scan is strike 1 again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from rtutil import Daemon, call, wait_for

from scanguard_ids.lab.netns import victim_scanner
from scanguard_ids.lab.sensor import run_suricata

pytestmark = pytest.mark.root

PORT = 5000
PEER = "192.0.2.2"
FRESH = "192.0.2.3"
VICTIM = "192.0.2.1"

ECHO = r"""
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8); s.settimeout(1.0)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try:
        c, _ = s.accept()
    except OSError:
        continue
    c.settimeout(1.0)
    try:
        while time.monotonic() < end:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
    except OSError:
        pass
    c.close()
"""

# Keeps exchanging 500 B each way every 0.1 s; prints one line a second ("ok N" with the
# bytes echoed so far); any error ends it with "dead ...".
PEER_CLIENT = r"""
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
end = time.monotonic() + float(sys.argv[3]); got = 0; last = 0.0
try:
    while time.monotonic() < end:
        c.sendall(b"x" * 500)
        n = 0
        while n < 500:
            d = c.recv(65536)
            if not d:
                raise ConnectionError("closed by the victim")
            n += len(d)
        got += n
        if time.monotonic() - last >= 0.5:
            print("ok", got, flush=True); last = time.monotonic()
        time.sleep(0.1)
except OSError as exc:
    print("dead", repr(exc), flush=True); sys.exit(1)
"""

# Raw SYNs with a forged source address (IPPROTO_RAW: we write the IP header ourselves).
SPOOF = r"""
import random, socket, struct, sys
src, dst, ports = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3].split(",")]
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
S, D = socket.inet_aton(src), socket.inet_aton(dst)
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for port in ports:
    tcp = struct.pack("!HHIIBBHHH", random.randint(40000, 60000), port,
                      random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    c = csum(S + D + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0, 64,
                     6, 0, S, D)
    sock.sendto(ip + tcp, (dst, 0))
"""


def _need() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    for tool in ("ip", "ipset", "nft", "suricata", "nmap"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")


def _ipset_has(ns: str, set_name: str, ip: str) -> bool:
    res = subprocess.run(["ip", "netns", "exec", ns, "ipset", "list", f"{set_name}4"],
                         capture_output=True, text=True, timeout=10, check=False)
    return ip in res.stdout


def _live(ns: str) -> str:
    res = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "set", "inet",
                          "scanguard_live", "live4"], capture_output=True, text=True,
                         timeout=10, check=False)
    return res.stdout


def _journal(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []


def _nmap(ns: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, "nmap", "-sT", "-n", "-Pn", "-S", FRESH,
                    "-e", "scan0", "--max-retries", "0", "-p", f"1-10,{PORT}", VICTIM],
                   capture_output=True, timeout=60, check=True)


def test_spoofed_probes_do_not_cut_a_live_peer_but_a_connect_scan_is_blocked(
        tmp_path: Path) -> None:
    _need()
    t_start = time.monotonic()
    set_name = f"sgfr{os.getpid() % 10000}"
    with victim_scanner("sgfr") as pair:
        v, s = pair.victim, pair.scanner
        s.run(["ip", "addr", "add", f"{FRESH}/24", "dev", "scan0"])
        echo = v.popen([sys.executable, "-c", ECHO, str(PORT), "90"])
        peer: subprocess.Popen[bytes] | None = None
        d: Daemon | None = None
        try:
            with run_suricata(v, "victim0", [f"{VICTIM}/32", "2001:db8::1/128"]) as sensor:
                journal = tmp_path / "journal.jsonl"
                ctl = tmp_path / "ctl.sock"
                d = Daemon(["--backend", "ipset", "--set-name", set_name,
                            "--eve", str(sensor.eve_path), "--journal", str(journal),
                            "--state", str(tmp_path / "state.json"),
                            "--checkpoint", str(tmp_path / "ckpt.json")],
                           tmp_path / "daemon.log", ctl, prefix=("ip", "netns", "exec", v.name))
                d.wait_ready()
                peer = s.popen([sys.executable, "-c", PEER_CLIENT, VICTIM, str(PORT), "60"],
                               stdout=subprocess.PIPE)
                # The kernel promotes the peer once it carried > 4 KiB each way for 2 s.
                wait_for(lambda: PEER in _live(v.name), 20, "the peer in the live set")
                time.sleep(1.5)  # the daemon reads the set once a second
                s.run([sys.executable, "-c", SPOOF, PEER, VICTIM, "1,2,3"])
                recs = wait_for(lambda: [r for r in _journal(journal) if r["ip"] == PEER],
                                20, "a decision about the framed peer")
                assert [r["action"] for r in recs] == ["suspected-framing"], recs
                assert recs[0]["provenance"] == "responses"
                time.sleep(1.0)  # a block would have landed by now (~30 ms)
                assert not _ipset_has(v.name, set_name, PEER)
                assert PEER not in {b["ip"] for b in call(ctl, "list")}
                assert d.status()["counters"]["suspected_framing"] == 1
                assert peer.poll() is None, "the peer's connection was cut"

                # A connect scan from a fresh address completes a handshake on PORT: not live.
                _nmap(s.name)
                wait_for(lambda: _ipset_has(v.name, set_name, FRESH), 20, "the scanner blocked")
                blocks = [r for r in _journal(journal) if r["ip"] == FRESH]
                assert blocks[0]["action"] == "block" and blocks[0]["strikes"] == 1
                assert blocks[0]["provenance"] == "responses"
                assert FRESH not in _live(v.name)

                # An operator's unblock forgives: the next scan is strike 1 again.
                call(ctl, "unblock", FRESH)
                wait_for(lambda: not _ipset_has(v.name, set_name, FRESH), 5, "the unblock")
                _nmap(s.name)
                wait_for(lambda: _ipset_has(v.name, set_name, FRESH), 20, "the scanner again")
                again = [r for r in _journal(journal) if r["ip"] == FRESH]
                assert [r["action"] for r in again] == ["block", "unblock", "block"]
                assert again[2]["strikes"] == 1
                assert peer.poll() is None, "the peer's connection was cut"
        finally:
            if d is not None:
                rc = d.stop()
                assert rc == 0, d.log()
            for proc in (peer, echo):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
        # the live-peer table goes with the daemon
        assert "scanguard_live" not in v.run(["nft", "list", "tables"]).stdout
    print(f"framing test took {time.monotonic() - t_start:.1f}s")
