"""The fast-path table in a real kernel (namespaces): who trips the meter and who never does."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from functools import partial

import pytest
from blocklab import need_root, tcp_ok
from nsutil import run_in_netns

from scanguard_ids.block.fastpath import FastPath, FastPathLayout
from scanguard_ids.block.nlnft import SetReader
from scanguard_ids.lab.netns import Pair, victim_scanner

ECHO = 9000
# An echo server: a live peer's connection carries data both ways.
ECHO_SERVER = """
import socket, sys, threading, time
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1]))); s.listen(64); s.settimeout(0.2)
end = time.monotonic() + 60
def echo(c):
    c.settimeout(5)
    try:
        while d := c.recv(65536):
            c.sendall(d)
    except OSError:
        pass
    c.close()
while time.monotonic() < end:
    try:
        c, _ = s.accept()
    except OSError:
        continue
    threading.Thread(target=echo, args=(c,), daemon=True).start()
"""
BASE = FastPathLayout(table="sgfp", burst=4, rate=1)


@pytest.fixture
def pair() -> Iterator[Pair]:
    need_root()
    with victim_scanner("sgf") as p:
        srv = p.victim.popen([sys.executable, "-c", ECHO_SERVER, str(ECHO)])
        try:
            deadline = time.monotonic() + 10
            while not run_in_netns(p.scanner.name, tcp_ok, p.victim4, ECHO):
                assert time.monotonic() < deadline, "echo server never came up"
                time.sleep(0.1)
            # that connect was a probe: start every test from a fresh table
            yield p
        finally:
            srv.kill()
            srv.wait(timeout=10)


def install(p: Pair, layout: FastPathLayout, allow: tuple[str, ...] = ()) -> FastPath:
    fp = FastPath(layout, runner=_ns_runner(p))
    fp.remove()
    fp.install(allow)
    return fp


def _ns_runner(p: Pair):  # type: ignore[no-untyped-def]
    def run(argv, stdin=None, timeout=30.0):  # type: ignore[no-untyped-def]
        return subprocess.run(p.victim.argv(argv), input=stdin, capture_output=True, text=True,
                              timeout=timeout, check=False)
    return run


def probe(dst: str, ports: list[int]) -> None:
    """In the scanner ns: one SYN to each port back to back (non-blocking connects)."""
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    socks = []
    for port in ports:
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setblocking(False)
        with contextlib.suppress(OSError):
            s.connect((dst, port))
        socks.append(s)
    time.sleep(0.2)
    for s in socks:
        s.close()


def talk(dst: str, nbytes: int) -> int:
    """In the scanner ns: send nbytes to the echo server and read them back."""
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    with socket.create_connection((dst, ECHO), timeout=3) as s:
        s.sendall(b"x" * nbytes)
        got = 0
        while got < nbytes:
            d = s.recv(65536)
            if not d:
                break
            got += len(d)
        time.sleep(0.1)
        _ = fam
        return got


def elements(table: str, name: str) -> list[str]:
    r = SetReader(table)
    try:
        return [e.ip for e in r.elements(name)]
    finally:
        r.close()


def members(p: Pair, name: str) -> list[str]:
    return run_in_netns(p.victim.name, elements, BASE.table, name)


@pytest.mark.parametrize("family", [4, 6])
def test_scanner_dropped_after_burst_new_ports(pair: Pair, family: int) -> None:
    dst = pair.victim4 if family == 4 else pair.victim6
    src = pair.scanner4 if family == 4 else pair.scanner6
    install(pair, BASE)
    # burst (4) new pairs, the echo port among them: all pass
    run_in_netns(pair.scanner.name, probe, dst, [ECHO, 1, 2, 3])
    assert members(pair, f"blocked{family}") == []
    assert run_in_netns(pair.scanner.name, tcp_ok, dst, ECHO)  # a repeat: never counts
    run_in_netns(pair.scanner.name, probe, dst, [4])  # the 5th new port trips it
    assert members(pair, f"blocked{family}") == [src]
    assert not run_in_netns(pair.scanner.name, tcp_ok, dst, ECHO)


def test_repeated_syns_to_one_port_never_count(pair: Pair) -> None:
    install(pair, BASE)
    for _ in range(30):
        run_in_netns(pair.scanner.name, probe, pair.victim4, [1, ECHO])
    assert members(pair, "blocked4") == []
    assert run_in_netns(pair.scanner.name, tcp_ok, pair.victim4, ECHO)


def test_allowlisted_source_never_metered_until_the_allowlist_changes(pair: Pair) -> None:
    fp = install(pair, BASE, allow=("192.0.2.0/28", "2001:db8::/64"))
    run_in_netns(pair.scanner.name, probe, pair.victim4, list(range(1, 40)))
    assert members(pair, "blocked4") == []
    fp.set_allowlist(["198.51.100.0/24"])
    run_in_netns(pair.scanner.name, probe, pair.victim4, list(range(100, 140)))
    assert members(pair, "blocked4") == [pair.scanner4]


def test_live_peer_exempt_but_connect_scan_is_not_live(pair: Pair) -> None:
    install(pair, BASE)
    # handshakes without data (a connect scan's): not live
    for _ in range(5):
        run_in_netns(pair.scanner.name, tcp_ok, pair.victim4, ECHO)
    assert members(pair, "live4") == []
    # data both ways: live, then even a burst of new ports is not metered
    assert run_in_netns(pair.scanner.name, talk, pair.victim4, 5000) == 5000
    assert pair.scanner4 in members(pair, "live4")
    run_in_netns(pair.scanner.name, probe, pair.victim4, list(range(1, 40)))
    assert members(pair, "blocked4") == []


def test_connect_scan_is_stopped(pair: Pair) -> None:
    install(pair, BASE)
    for port in range(1, 12):
        run_in_netns(pair.scanner.name, partial(tcp_ok, timeout=0.3), pair.victim4, port)
    assert members(pair, "blocked4") == [pair.scanner4]


def test_detect_only_drops_nothing(pair: Pair) -> None:
    install(pair, replace(BASE, mode="detect"))
    run_in_netns(pair.scanner.name, probe, pair.victim4, list(range(1, 40)))
    assert members(pair, "would_block4") == [pair.scanner4]
    assert members(pair, "blocked4") == []
    assert run_in_netns(pair.scanner.name, tcp_ok, pair.victim4, ECHO)


def test_udp_flows_count(pair: Pair) -> None:
    install(pair, BASE)

    def udp(dst: str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for port in range(2000, 2010):
                s.sendto(b"x", (dst, port))

    run_in_netns(pair.scanner.name, udp, pair.victim4)
    assert members(pair, "blocked4") == [pair.scanner4]


def test_full_seen_set_fails_open_and_is_counted(pair: Pair) -> None:
    fp = install(pair, replace(BASE, burst=50, max_pairs=4))
    run_in_netns(pair.scanner.name, probe, pair.victim4, list(range(1, 13)))
    assert members(pair, "blocked4") == []
    c = fp.counters()
    assert c.seen_full == 8 and c.tripped == 0  # 4 pairs fit, 8 probes passed uncounted
    assert run_in_netns(pair.scanner.name, tcp_ok, pair.victim4, ECHO)


def test_forget_and_remove(pair: Pair) -> None:
    fp = install(pair, BASE)
    run_in_netns(pair.scanner.name, probe, pair.victim4, list(range(1, 10)))
    assert members(pair, "blocked4") == [pair.scanner4]
    fp.forget(pair.scanner4)
    assert members(pair, "blocked4") == []
    assert run_in_netns(pair.scanner.name, tcp_ok, pair.victim4, ECHO)
    fp.remove()
    fp.remove()  # idempotent
    res = pair.victim.run(["nft", "list", "table", "inet", BASE.table], check=False)
    assert res.returncode != 0


def test_packet_path_additions_raise_no_netlink_event(pair: Pair) -> None:
    """Why the daemon polls: `nft monitor` stays silent while the kernel fills the sets."""
    install(pair, BASE)
    mon = pair.victim.popen(["nft", "monitor"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.3)
        run_in_netns(pair.scanner.name, probe, pair.victim4, list(range(1, 10)))
        time.sleep(0.3)
    finally:
        mon.kill()
        out, _ = mon.communicate(timeout=10)
    assert members(pair, "blocked4") == [pair.scanner4]
    assert out == b""
