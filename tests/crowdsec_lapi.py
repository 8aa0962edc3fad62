"""A real CrowdSec Local API for the tests: Debian's `crowdsec -no-cs` on 127.0.0.1 with its own
config, sqlite database and data dirs under a temp dir; never the system's own service.

``Lapi(root).start()`` writes the config (JSON, which CrowdSec's YAML reader takes), starts the
LAPI on a free port, adds a machine (credentials file like `cscli machines add -f`) and a bouncer
key; ``stop()`` ends the process by PID. ``wrap`` runs every command through a prefix (e.g.
``ip netns exec NS``) so the LAPI can live inside a test's namespace; ``host`` is the address it
listens on there (another namespace's bouncer can reach it on a veth address).

Tests import it as ``from crowdsec_lapi import Lapi`` (tests/ is on sys.path).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

CROWDSEC = shutil.which("crowdsec") or "/usr/bin/crowdsec"
CSCLI = shutil.which("cscli") or "/usr/bin/cscli"
MACHINE, PASSWORD = "scanguard", "scanguard-test-password-0123456789"


def need_crowdsec() -> None:
    if not (os.access(CROWDSEC, os.X_OK) and os.access(CSCLI, os.X_OK)):
        pytest.skip("crowdsec not installed (scripts/setup.sh installs Debian's crowdsec)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lapi:
    def __init__(self, root: Path, port: int | None = None,
                 wrap: Callable[[Sequence[str]], list[str]] = list, ns: str = "",
                 host: str = "127.0.0.1") -> None:
        self.root = root
        self.host = host
        self.port = port or free_port()
        self.wrap = wrap
        self.ns = ns
        self.url = f"http://{host}:{self.port}"
        self.config = root / "config.yaml"
        self.creds = root / "scanguard-creds.yaml"
        self.proc: subprocess.Popen[bytes] | None = None
        self.bouncer_key = ""
        self._write_config()

    def _write_config(self) -> None:
        r = self.root
        for d in ("data", "hub", "notifications", "plugins", "logs"):
            (r / d).mkdir(parents=True, exist_ok=True)
        (r / "hub" / ".index.json").write_text("{}")
        (r / "simulation.yaml").write_text("simulation: false\n")
        (r / "profiles.yaml").write_text(Path("/etc/crowdsec/profiles.yaml").read_text()
                                         if Path("/etc/crowdsec/profiles.yaml").exists() else
                                         "name: default\nfilters:\n - true\non_success: break\n")
        (r / "local_api_credentials.yaml").write_text(
            f"url: {self.url}\nlogin: cscli-test\npassword: cscli-test-password-0123456789\n")
        cfg: dict[str, Any] = {
            "common": {"daemonize": False, "log_media": "file", "log_level": "info",
                       "log_dir": str(r / "logs"), "working_dir": "."},
            "config_paths": {"config_dir": str(r), "data_dir": str(r / "data"),
                             "simulation_path": str(r / "simulation.yaml"),
                             "hub_dir": str(r / "hub"),
                             "index_path": str(r / "hub" / ".index.json"),
                             "notification_dir": str(r / "notifications"),
                             "plugin_dir": str(r / "plugins")},
            "cscli": {"output": "json"},
            "db_config": {"type": "sqlite", "db_path": str(r / "data" / "crowdsec.db"),
                          "log_level": "info", "use_wal": True,
                          "flush": {"max_items": 5000, "max_age": "7d"}},
            "api": {"client": {"insecure_skip_verify": False,
                               "credentials_path": str(r / "local_api_credentials.yaml")},
                    "server": {"log_level": "info", "listen_uri": f"{self.host}:{self.port}",
                               "profiles_path": str(r / "profiles.yaml"),
                               "trusted_ips": sorted({"127.0.0.1", "::1", self.host})}},
            "prometheus": {"enabled": False, "level": "full", "listen_addr": "127.0.0.1",
                           "listen_port": free_port()},
        }
        self.config.write_text(json.dumps(cfg, indent=1) + "\n")

    # -- commands ------------------------------------------------------------------
    def cscli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(self.wrap([CSCLI, "-c", str(self.config), *args]), text=True,
                             capture_output=True, timeout=60)
        if check and res.returncode != 0:
            raise AssertionError(f"cscli {' '.join(args)}: {res.stderr}")
        return res

    def start(self) -> Lapi:
        need_crowdsec()
        fresh = self.proc is None and not self.bouncer_key
        self._log = open(self.root / "logs" / "stdout.log", "ab")  # noqa: SIM115
        self._listened = self._listening()  # a restart appends to the same logs
        self.proc = subprocess.Popen(self.wrap([CROWDSEC, "-no-cs", "-c", str(self.config)]),
                                     stdout=self._log, stderr=self._log)
        self.wait_ready()
        if fresh:
            self.cscli("machines", "add", "cscli-test", "--password",
                       "cscli-test-password-0123456789", "--force")
            self.cscli("machines", "add", MACHINE, "--password", PASSWORD, "-f",
                       str(self.creds), "--url", self.url, "--force")
            self.bouncer_key = self.cscli("bouncers", "add", "test-bouncer", "-o",
                                          "raw").stdout.strip()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"crowdsec exited rc={self.proc.returncode}: {self.logs()}")
            if self.wrap is not list:  # in a namespace the test process cannot reach: its log
                if self._listening() > self._listened:
                    time.sleep(0.3)
                    return
                time.sleep(0.1)
                continue
            try:
                self.request("GET", "/v1/decisions/stream?startup=true", key="x")
            except urllib.error.HTTPError:
                return  # 403 without a valid key: it answers
            except OSError:
                time.sleep(0.1)
                continue
            return
        raise AssertionError(f"the LAPI did not answer in {timeout}s: {self.logs()}")

    def request(self, method: str, path: str, key: str | None = None) -> Any:
        """A bouncer's request (X-Api-Key), from inside ``ns`` when the LAPI lives there."""
        if self.ns:
            from nsutil import run_in_netns

            return run_in_netns(self.ns, _http, self.url + path, method,
                                key or self.bouncer_key, timeout=10)
        return _http(self.url + path, method, key or self.bouncer_key)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        self._log.close()

    def _listening(self) -> int:
        return sum(f.read_text(errors="replace").count("Local API listening")
                   for f in (self.root / "logs").glob("*.log"))

    def logs(self) -> str:
        out = []
        for f in sorted((self.root / "logs").glob("*.log")):
            out.append(f.read_text(errors="replace")[-3000:])
        return "\n".join(out)

    # -- what the LAPI holds ---------------------------------------------------------
    def decisions(self) -> list[dict[str, Any]]:
        """`cscli decisions list -a -o json`, flattened to the decisions."""
        res = self.cscli("decisions", "list", "-a", "-o", "json")
        alerts = json.loads(res.stdout or "null") or []
        return [d | {"alert": a} for a in alerts for d in a.get("decisions") or []]


def _http(url: str, method: str, key: str) -> Any:
    req = urllib.request.Request(url, method=method, headers={"X-Api-Key": key})
    with urllib.request.urlopen(req, timeout=5) as resp:
        body = resp.read()
    return json.loads(body) if body.strip() else None
