"""Faucet for tests and the lab: one controller process in a namespace, files in a temp dir.

``faucet`` (PyPI ``faucet``) parses its options and execs ``osken-manager`` from PATH
in the same process, so the PID we start is the one that takes SIGHUP for a config
reload; it also writes it to ``faucet.pid`` (os-ken's ``--pid-file``). The controller
listens on 127.0.0.1 of the namespace it runs in (the switch's namespace in the lab),
its Prometheus exporter likewise; the event socket is off. Logs go to the work dir.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from scanguard_ids.lab import procs
from scanguard_ids.lab.netns import Netns
from scanguard_ids.lab.procs import LabError

log = logging.getLogger(__name__)

LISTEN_HOST = "127.0.0.1"


def _bin_dirs() -> list[str]:
    """Our interpreter's bin dir (a venv with ``pip install faucet``) first, then PATH."""
    return [str(Path(sys.executable).parent), *os.environ.get("PATH", "").split(os.pathsep)]


def find(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join(_bin_dirs()))


def missing() -> str | None:
    """Why Faucet cannot be started here (None: it can)."""
    for name in ("faucet", "osken-manager"):
        if find(name) is None:
            return f"{name} not found (pip install faucet)"
    return None


class FaucetController:
    def __init__(self, ns: Netns, workdir: Path, config: Path, port: int = 6653,
                 prometheus_port: int = 9302, start_timeout: float = 30.0) -> None:
        self.ns = ns
        self.dir = Path(workdir)
        self.config = Path(config)
        self.port = port
        self.prometheus_port = prometheus_port
        self.start_timeout = start_timeout
        self.pid_file = self.dir / "faucet.pid"
        self.log_file = self.dir / "faucet.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def controller(self) -> str:
        """The switch's controller target (inside the namespace)."""
        return f"tcp:{LISTEN_HOST}:{self.port}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise LabError("Faucet is not running")
        return self.proc.pid

    def start(self) -> None:
        why = missing()
        if why:
            raise LabError(f"cannot start Faucet: {why}")
        self.dir.mkdir(parents=True, exist_ok=True)
        faucet = find("faucet")
        assert faucet is not None
        env = {**os.environ, "PATH": os.pathsep.join(_bin_dirs()),
               "FAUCET_CONFIG": str(self.config), "FAUCET_LOG": str(self.log_file),
               "FAUCET_EXCEPTION_LOG": str(self.dir / "faucet_exception.log"),
               "FAUCET_PROMETHEUS_ADDR": LISTEN_HOST,
               "FAUCET_PROMETHEUS_PORT": str(self.prometheus_port),
               "FAUCET_EVENT_SOCK": "0", "FAUCET_CONFIG_STAT_RELOAD": "0"}
        self.proc = procs.spawn_logged(self.ns.argv([
            faucet, f"--ryu-ofp-listen-host={LISTEN_HOST}",
            f"--ryu-ofp-tcp-listen-port={self.port}", f"--ryu-pid-file={self.pid_file}"]),
            self.dir / "faucet.out", env)
        procs.wait_for("faucet pid file", self.pid_file.exists, self.start_timeout, self.proc)
        log.info("action=faucet-start ns=%s pid=%d config=%s", self.ns.name, self.proc.pid,
                 self.config)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc, grace=5.0)
            log.info("action=faucet-stop pid=%d", self.proc.pid)
        self.proc = None
