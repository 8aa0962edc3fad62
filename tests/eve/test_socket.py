"""SocketSource: unix_dgram and unix_stream EVE sockets bound by scanguard; a real
Suricata writing alerts into them (@pytest.mark.suricata)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scanguard_ids.errors import ScanguardError
from scanguard_ids.eve.socket import SocketSource


def wait_for(pred: Callable[[], bool], timeout: float = 10.0, interval: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return pred()
        time.sleep(interval)


class Collector:
    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.names: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, lines: list[bytes], name: str) -> None:
        with self._lock:
            self.lines.extend(lines)
            self.names.add(name)

    def count(self) -> int:
        with self._lock:
            return len(self.lines)


@pytest.fixture
def sockdir(tmp_path: Path) -> Iterator[Path]:
    # sun_path is limited to 107 bytes: keep socket paths short
    d = Path(f"/tmp/sg-eve-{os.getpid()}-{tmp_path.name[-20:]}")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def started(path: Path, kind: str, sink: Collector, **kw: object) -> SocketSource:
    src = SocketSource(path, sink, kind=kind, **kw)  # type: ignore[arg-type]
    src.start()
    return src


def stopped(src: SocketSource) -> None:
    src.stop()
    src.join(5)
    assert not src.health().running


# -- unix_dgram -----------------------------------------------------------------------


def test_dgram_one_record_per_datagram(sockdir: Path) -> None:
    path = sockdir / "run" / "eve.sock"  # parent directories are created
    got = Collector()
    src = started(path, "unix_dgram", got, name="eve-dgram")
    try:
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
        c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        c.connect(str(path))
        sent = []
        for i in range(300):
            rec = b'{"n":%d}' % i
            sent.append(rec)
            c.send(rec + (b"\n" if i % 2 else b""))  # with or without newline
        c.send(b"")  # empty datagram: ignored
        c.send(b"\x00\xffgarbage\n")
        c.send(b"a\nb\n")  # several lines in one datagram are all kept
        c.close()
        assert wait_for(lambda: got.count() == 303)
        assert got.lines == [*sent, b"\x00\xffgarbage", b"a", b"b"]
        assert got.names == {"eve-dgram"}
        h = src.health()
        assert h.datagrams == 303 and h.exists and h.kind == "unix_dgram"
        assert h.ok and h.detail == "bound" and h.name == str(path)
        assert h.max_dgram_qlen is None or h.max_dgram_qlen > 0
    finally:
        stopped(src)
    assert not path.exists()  # removed at stop


def test_dgram_oversized_datagram_is_counted(sockdir: Path) -> None:
    path = sockdir / "eve.sock"
    got = Collector()
    src = started(path, "unix_dgram", got, max_line_bytes=1024)
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        c.connect(str(path))
        c.send(b"x" * 1024)
        c.send(b"w" * 1024 + b"\n")  # the newline does not count
        c.send(b"v" * 1025)
        c.send(b"y" * 5000)  # arrives truncated (MSG_TRUNC)
        c.send(b"ok\n")
        c.close()
        assert wait_for(lambda: got.count() == 3)
        assert got.lines == [b"x" * 1024, b"w" * 1024, b"ok"]
        assert src.health().oversized == 2
    finally:
        stopped(src)


def test_stale_socket_is_replaced_but_not_a_live_one_or_a_file(sockdir: Path) -> None:
    sockdir.mkdir()
    path = sockdir / "eve.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(path))
    stale.close()  # the file stays: a stale socket
    got = Collector()
    src = started(path, "unix_dgram", got, mode=0o600)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with pytest.raises(ScanguardError, match="in use"):
            SocketSource(path, got, kind="unix_dgram").start()
        with pytest.raises(ScanguardError, match="in use"):
            SocketSource(path, got, kind="unix_stream").start()
        assert src.bound  # the failed attempts left our socket alone
    finally:
        stopped(src)
    regular = sockdir / "eve.json"
    regular.write_bytes(b"keep me")
    with pytest.raises(ScanguardError, match="not a socket"):
        SocketSource(regular, got).start()
    assert regular.read_bytes() == b"keep me"


# -- unix_stream ----------------------------------------------------------------------


def test_stream_several_connections_partial_lines_and_reconnect(sockdir: Path) -> None:
    path = sockdir / "eve.sock"
    got = Collector()
    src = started(path, "unix_stream", got)
    try:
        a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        a.connect(str(path))
        b.connect(str(path))
        a.sendall(b'{"from":"a","n":1}\n{"from":"a",')  # partial lines held per connection
        b.sendall(b'{"from":"b","n":1}\n{"from":')
        assert wait_for(lambda: got.count() == 2)
        b.sendall(b'"b","n":2}\n')
        a.sendall(b'"n":2}\n')
        assert wait_for(lambda: got.count() == 4)
        assert sorted(got.lines) == sorted(
            [
                b'{"from":"a","n":1}',
                b'{"from":"a","n":2}',
                b'{"from":"b","n":1}',
                b'{"from":"b","n":2}',
            ]
        )
        assert wait_for(lambda: src.health().connections == 2)
        assert src.health().detail == "2 clients"
        a.sendall(b"cut-off")
        a.close()  # a connection's unterminated tail is delivered once it closes
        assert wait_for(lambda: got.count() == 5) and got.lines[-1] == b"cut-off"
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # a reconnect
        c.connect(str(path))
        c.sendall(b"".join(b"%d\n" % i for i in range(10_000)))
        c.close()
        b.close()
        assert wait_for(lambda: got.count() == 10_005)
        assert got.lines[5:] == [b"%d" % i for i in range(10_000)]
        h = src.health()
        assert h.connections_total == 3 and h.unterminated == 1
        assert wait_for(lambda: src.health().connections == 0)
    finally:
        stopped(src)
    assert not path.exists()


def test_stream_oversized_line_and_connection_limit(sockdir: Path) -> None:
    path = sockdir / "eve.sock"
    got = Collector()
    src = started(path, "unix_stream", got, max_line_bytes=1024, max_connections=1)
    try:
        a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        a.connect(str(path))
        a.sendall(b"z" * 100_000 + b"\nfine\n")
        assert wait_for(lambda: got.count() == 1) and got.lines == [b"fine"]
        b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        b.connect(str(path))
        assert wait_for(lambda: src.health().rejected == 1)
        assert b.recv(10) == b""  # closed by the source
        b.close()
        a.close()
        assert src.health().oversized == 1
    finally:
        stopped(src)


# -- real Suricata --------------------------------------------------------------------

SURICATA_YAML = """%YAML 1.1
---
default-log-dir: {logdir}
outputs:
  - eve-log:
      enabled: yes
      filetype: {kind}
      filename: {sock}
      types:
        - alert
logging:
  default-log-level: notice
  outputs:
    - console:
        enabled: yes
"""
N_RST = 200


def _rst_pcap(path: Path, n: int) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    pkts = []
    for i in range(n):
        p = (
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:fe")
            / IP(src="192.0.2.1", dst="198.51.100.7")
            / TCP(sport=1000 + i, dport=40000, flags="R", seq=1)
        )
        p.time = 1_700_000_000 + i / 1000
        pkts.append(p)
    wrpcap(str(path), pkts)


@pytest.mark.suricata
@pytest.mark.parametrize("kind", ["unix_dgram", "unix_stream"])
def test_real_suricata_delivers_every_alert(tmp_path: Path, sockdir: Path, kind: str) -> None:
    exe = os.environ.get("SURICATA") or shutil.which("suricata")
    if exe is None:
        pytest.skip("suricata not installed")
    pcap = tmp_path / "rst.pcap"
    _rst_pcap(pcap, N_RST)
    rules = tmp_path / "test.rules"
    rules.write_text('alert tcp any any -> any any (msg:"rst"; flags:R; sid:1; rev:1;)\n')
    logdir = tmp_path / "log"
    logdir.mkdir()
    sock = sockdir / "eve.sock"
    conf = tmp_path / "suricata.yaml"
    conf.write_text(SURICATA_YAML.format(logdir=logdir, kind=kind, sock=sock))
    got = Collector()
    src = started(sock, kind, got)  # bound before Suricata starts: it connects at start-up
    try:
        argv = [exe, "-c", str(conf), "-S", str(rules), "-r", str(pcap), "-k", "none"]
        argv += ["-l", str(logdir)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "dropped" not in proc.stdout + proc.stderr
        assert wait_for(lambda: got.count() >= N_RST, timeout=10)
        time.sleep(0.05)
    finally:
        stopped(src)
    assert got.count() == N_RST
    assert all(line.startswith(b'{"timestamp":') and line.endswith(b"}") for line in got.lines)
    assert all(b'"signature_id":1,' in line for line in got.lines)
    if kind == "unix_stream":
        assert src.health().connections_total == 1 and src.health().unterminated == 0


def test_unbindable_path_is_a_scanguard_error(sockdir: Path) -> None:
    path = sockdir / ("x" * 120) / "eve.sock"  # longer than sun_path allows
    with pytest.raises(ScanguardError, match="cannot bind"):
        SocketSource(path, Collector()).start()
