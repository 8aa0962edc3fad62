"""A real redis-server for the fleet tests: started on a free loopback port, no persistence,
stopped by its PID. ``redis_server`` is one per session (tests isolate by key prefix);
``redis_factory`` makes private ones a test may stop and restart (outages)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("redis")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process; stop() and start() again keep the port (and lose the data)."""

    def __init__(self, workdir: Path, port: int | None = None, unixsocket: str = "") -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.unixsocket = unixsocket
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir)]
        if self.unixsocket:
            argv += ["--unixsocket", self.unixsocket, "--unixsocketperm", "777"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited {self.proc.returncode}")
            time.sleep(0.02)
        raise RuntimeError("redis-server did not answer within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    srv = RedisServer(tmp_path_factory.mktemp("redis"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[type[RedisServer]]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    made: list[RedisServer] = []

    def make(**kw: object) -> RedisServer:
        srv = RedisServer(tmp_path, **kw)  # type: ignore[arg-type]
        made.append(srv)
        srv.start()
        return srv

    try:
        yield make  # type: ignore[misc]
    finally:
        for srv in made:
            srv.stop()
