"""Run the real daemon (or fail2ban-server) inside a network namespace, for benchmarks 2 and 4.

Everything here runs *inside* the namespace the parent made (the parent starts
``ip netns exec NS python -m bench.<module> --child ...``), so the ipset sets, iptables rules and
netlink sockets are the namespace's own. Processes are started with lab.procs.spawn (they die
with us) and stopped by PID.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import HERE, ROOT
from bench.corpus import Addr, Probe, _Ts, alert_line

SET_NAME = "sgbench"
LOCAL = Addr("192.0.2.1", bytes([192, 0, 2, 1]))
F2B_JAIL = "sgbench"


def scanner_addr(i: int) -> Addr:
    """The i-th scanner: 198.18.0.0/15 (RFC 2544), never a real host."""
    n = 0xC6120000 + 0x4000 + i
    p = n.to_bytes(4, "big")
    return Addr(".".join(map(str, p)), p)


def scan_lines(remote: Addr, rng: random.Random, ts: _Ts, t: float | None = None) -> list[bytes]:
    """The three EVE alert lines (TCP RST from three closed ports) that make one block."""
    now = time.time() if t is None else t
    ports = rng.sample(range(1, 1024), 3)
    sport = rng.randint(32768, 60999)
    return [
        alert_line(Probe(now + k * 1e-4, remote, LOCAL, port, sport, False, b""), rng, ts) + b"\n"
        for k, port in enumerate(ports)
    ]


@dataclass(slots=True)
class Workdir:
    path: Path

    @property
    def eve(self) -> str:
        return str(self.path / "eve.json")

    @property
    def eve_sock(self) -> str:
        return str(self.path / "eve.sock")

    @property
    def ctl(self) -> str:
        return str(self.path / "control.sock")


def scanguard_argv(w: Workdir, socket_source: bool = True, conntrack: bool = True) -> list[str]:
    exe = str(Path(sys.executable).with_name("scanguard"))
    conf = w.path / "scanguard.toml"
    conf.write_text(f"[block]\nclear_conntrack = {'true' if conntrack else 'false'}\n")
    argv = [
        exe,
        "run",
        "--config",
        str(conf),
        "--eve",
        w.eve,
        "--backend",
        "ipset",
        "--set-name",
        SET_NAME,
        "--socket",
        w.ctl,
        "--journal",
        str(w.path / "decisions.jsonl"),
        "--state",
        str(w.path / "state.json"),
        "--checkpoint",
        str(w.path / "checkpoint.json"),
    ]
    if socket_source:  # Suricata's eve-log filetype unix_stream (the project's default)
        argv += ["--eve-socket", w.eve_sock, "--eve-socket-type", "unix_stream"]
    return argv


@contextlib.contextmanager
def scanguard_daemon(
    w: Workdir, cpu: int | None, socket_source: bool = True, conntrack: bool = True
) -> Iterator[Any]:
    """Start `scanguard run` (pinned to ``cpu``), wait until its control socket answers."""
    from scanguard_ids.control import call
    from scanguard_ids.errors import ControlError
    from scanguard_ids.lab import procs

    Path(w.eve).touch()
    log = open(w.path / "daemon.log", "wb")  # noqa: SIM115 - closed below
    proc = procs.spawn(
        scanguard_argv(w, socket_source, conntrack), stdout=log, stderr=log, cwd=ROOT
    )
    if cpu is not None:
        os.sched_setaffinity(proc.pid, {cpu})
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"scanguard run exited {proc.returncode}: {_tail(w.path / 'daemon.log')}"
                )
            try:
                call(w.ctl, "list", timeout=2)
                break
            except ControlError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"scanguard run not ready in 30 s: {_tail(w.path / 'daemon.log')}"
                    ) from None
                time.sleep(0.05)
        if socket_source:
            while not os.path.exists(w.eve_sock) and time.monotonic() < deadline:
                time.sleep(0.05)
        yield proc
    finally:
        procs.stop(proc)
        log.close()


def _tail(p: Path, n: int = 400) -> str:
    try:
        return p.read_text(errors="replace")[-n:].replace("\n", " | ")
    except OSError:
        return ""


# -- fail2ban ---------------------------------------------------------------------------------


def fail2ban_conf(w: Workdir) -> Path:
    """A private fail2ban config dir: Debian's, plus our filter and one jail on w.eve."""
    import shutil

    conf = w.path / "fail2ban"
    shutil.copytree("/etc/fail2ban", conf, dirs_exist_ok=True)
    for p in (conf / "jail.d").glob("*"):
        p.unlink()
    shutil.copy(HERE / "fail2ban" / "scanguard-eve.conf", conf / "filter.d" / "scanguard-eve.conf")
    (conf / "fail2ban.local").write_text(
        "[Definition]\nloglevel = INFO\n"
        f"logtarget = {w.path / 'fail2ban.log'}\n"
        f"socket = {w.path / 'f2b.sock'}\npidfile = {w.path / 'f2b.pid'}\ndbfile = :memory:\n"
    )
    (conf / "jail.local").write_text(
        "[DEFAULT]\nignoreself = false\nignoreip =\n\n"
        f"[{F2B_JAIL}]\nenabled = true\nfilter = scanguard-eve\nlogpath = {w.eve}\n"
        "backend = auto\nmaxretry = 3\nfindtime = 60\nbantime = 300\n"
        f"action = iptables-ipset[name={F2B_JAIL}, type=allports]\n"
    )
    return conf


@contextlib.contextmanager
def fail2ban_server(w: Workdir, cpu: int | None) -> Iterator[Any]:
    from scanguard_ids.lab import procs

    Path(w.eve).touch()
    conf = fail2ban_conf(w)
    log = open(w.path / "f2b.out", "wb")  # noqa: SIM115 - closed below
    proc = procs.spawn(
        ["/usr/bin/fail2ban-server", "-f", "-x", "-c", str(conf)], stdout=log, stderr=log
    )
    if cpu is not None:
        os.sched_setaffinity(proc.pid, {cpu})
    try:
        deadline = time.monotonic() + 30
        while "Jail '" + F2B_JAIL + "' started" not in _tail(w.path / "fail2ban.log", 100_000):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"fail2ban-server did not start: {_tail(w.path / 'f2b.out')} "
                    f"{_tail(w.path / 'fail2ban.log')}"
                )
            time.sleep(0.1)
        yield proc
    finally:
        procs.stop(proc, grace=10)
        log.close()


def fail2ban_backend(w: Workdir) -> str:
    """The log backend fail2ban picked for the jail ("polling" without python3-pyinotify)."""
    import re

    m = re.search(r"Initiated '(\w+)' backend", _tail(w.path / "fail2ban.log", 100_000))
    return m.group(1) if m else "auto"


# -- membership polling ----------------------------------------------------------------------------


class SetProbe:
    """Is an IPv4 address in a kernel ipset (this namespace)? One raw netlink IPSET_CMD_TEST.

    pyroute2's IPSet.test() costs ~0.2 ms a call (it runs an asyncio loop per request), which
    would blur sub-millisecond latencies; this hand-built request costs ~10 us. Its answers are
    checked against pyroute2 before use (``verify``).
    """

    _NFNL_SUBSYS_IPSET = 6
    _IPSET_CMD_TEST = 11
    _IPSET_ERR_EXIST = 4103  # TEST: "element is not in the set"
    _PROTOCOL = 6

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
        self.sock.bind((0, 0))
        self.seq = 0

    @staticmethod
    def _attr(kind: int, payload: bytes) -> bytes:
        import struct

        head = struct.pack("=HH", 4 + len(payload), kind)
        return head + payload + b"\0" * (-len(payload) % 4)

    def has(self, set_name: str, ip: str) -> bool:
        import struct

        self.seq += 1
        a = self._attr
        body = (
            struct.pack("=BBH", socket.AF_INET, 0, 0)
            + a(1, bytes([self._PROTOCOL]))
            + a(2, set_name.encode() + b"\0")
            + a(7 | 0x8000, a(1 | 0x8000, a(1 | 0x4000, socket.inet_aton(ip))))
        )
        kind = (self._NFNL_SUBSYS_IPSET << 8) | self._IPSET_CMD_TEST
        msg = struct.pack("=IHHII", 16 + len(body), kind, 0x1 | 0x4, self.seq, 0) + body
        self.sock.send(msg)
        while True:
            data = self.sock.recv(65536)
            _ln, mtype, _fl, seq, _pid = struct.unpack_from("=IHHII", data)
            if seq != self.seq or mtype != 2:  # not our NLMSG_ERROR (ack)
                continue
            err = -struct.unpack_from("=i", data, 16)[0]
            if err == 0:
                return True
            if err in (self._IPSET_ERR_EXIST, errno.ENOENT):  # not in it / no such set yet
                return False
            raise OSError(err, f"ipset test {set_name} {ip}: error {err}")

    def verify(self, set_name: str, present: str, absent: str) -> None:
        """Check the raw answers against pyroute2's for one present and one absent address."""
        from pyroute2.ipset import IPSet

        with IPSet() as ref:
            for ip, want in ((present, True), (absent, False)):
                if bool(ref.test(set_name, ip)) != want or self.has(set_name, ip) != want:
                    raise RuntimeError(f"set probe disagrees with pyroute2 on {ip} in {set_name}")

    def close(self) -> None:
        self.sock.close()


def measure(
    write_scanner: Any,
    n: int,
    spacing: float,
    set_name: str,
    probe: SetProbe,
    timeout: float = 10.0,
    first: int = 0,
) -> tuple[list[float], int]:
    """Write n scanners ``spacing`` s apart; latency: deciding line's write -> set membership.

    ``write_scanner(i) -> (ip, write_last)``: writes the first two lines of scanner i and returns a
    callable that writes the third. Returns (latencies in seconds, scanners never seen in the set).
    """
    lat: list[float] = []
    pending: dict[str, float] = {}
    i = 0
    start = time.perf_counter()
    next_at = start
    hard_stop = start + n * spacing + timeout
    while (i < n or pending) and time.perf_counter() < hard_stop:
        now = time.perf_counter()
        if i < n and now >= next_at:
            ip, write_last = write_scanner(first + i)
            t0 = time.perf_counter()
            write_last()
            pending[ip] = t0
            i += 1
            next_at += spacing
        for ip in list(pending):
            if probe.has(set_name, ip):
                lat.append(time.perf_counter() - pending.pop(ip))
    return lat, len(pending) + (n - i)


def file_writer(path: str, rng: random.Random, ts: _Ts) -> Any:
    fh = open(path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the measurement

    def write_scanner(i: int) -> tuple[str, Any]:
        remote = scanner_addr(i)
        lines = scan_lines(remote, rng, ts)
        fh.write(lines[0] + lines[1])
        return remote.text, lambda: fh.write(lines[2])

    return write_scanner


def socket_writer(path: str, rng: random.Random, ts: _Ts) -> Any:
    """Writes like Suricata's eve-log ``filetype: unix_stream``: one connection, lines."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)

    def write_scanner(i: int) -> tuple[str, Any]:
        remote = scanner_addr(i)
        lines = scan_lines(remote, rng, ts)
        s.sendall(lines[0] + lines[1])
        return remote.text, lambda: s.sendall(lines[2])

    return write_scanner
