"""examples/scanguard.service: verify-clean, hardened (exposure <= 4.0), enough capabilities.

No systemd runs as PID 1 here, so the unit is checked offline with ``systemd-analyze``, and its
capability set is exercised directly: each backend's start() + block() runs as root limited to the
unit's CapabilityBoundingSet / AmbientCapabilities (``setpriv``), inside a namespace the test
creates. Without CAP_NET_RAW the ipset backend fails (so the test would catch a unit that lost it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from blocklab import host_firewall, need_root

from scanguard_ids.lab.netns import namespaces

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "examples" / "scanguard.service"
MAX_EXPOSURE = 4.0

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze not installed (Debian: systemd)")


def unit_setting(name: str) -> str:
    values = re.findall(rf"(?m)^{name}=(.*)$", UNIT.read_text())
    assert len(values) == 1, f"{name}= appears {len(values)} times"
    return values[0].strip()


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """A copy whose binary exists (verify checks ExecStart=/ExecStartPre= are executable)."""
    stub = tmp_path / "bin" / "scanguard"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    copy = tmp_path / "scanguard.service"
    copy.write_text(UNIT.read_text().replace("/opt/scanguard/bin/scanguard", str(stub)))
    return copy


@needs_analyze
def test_verify_is_clean(unit: Path) -> None:
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and not res.stderr.strip() and not res.stdout.strip(), (
        res.stdout + res.stderr)


@needs_analyze
def test_security_exposure(unit: Path) -> None:
    res = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                          str(unit)], capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", res.stdout + res.stderr)
    assert m, res.stdout + res.stderr
    assert float(m.group(1)) <= MAX_EXPOSURE, res.stdout


def test_unit_basics() -> None:
    assert unit_setting("Type") == "notify"
    assert unit_setting("RestartPreventExitStatus") == "2"
    assert "config check" in unit_setting("ExecStartPre")
    assert unit_setting("Before") == "suricata.service"


# -- the capability set, with the real backends -------------------------------------------------
CHILD = """
import json, sys
from scanguard_ids.block.ipset import IpsetBackend
from scanguard_ids.block.nftables import NftablesBackend
from scanguard_ids.config import BlockConfig
cfg = BlockConfig(set_name="sgcap")
kind = sys.argv[1]
backend = (NftablesBackend(cfg) if kind == "nftables"
           else IpsetBackend(cfg, iptables=kind.split("-")[1]))
backend.start()
backend.block("203.0.113.7", 60)
backend.block("2001:db8::7", 60)
print(json.dumps(sorted(b.ip for b in backend.list())))
"""
TOOLS = {"ipset-nft": "iptables-nft-restore", "nftables": "nft"}


def _setpriv_caps(setting: str) -> str:
    """`CAP_NET_ADMIN CAP_NET_RAW` -> `-all,+net_admin,+net_raw` (setpriv's syntax)."""
    caps = [c.removeprefix("CAP_").lower() for c in setting.split()]
    return ",".join(["-all", *(f"+{c}" for c in caps)])


def _run_with_caps(kind: str, bounding: str, ambient: str) -> subprocess.CompletedProcess[str]:
    with namespaces("sgcap") as (ns,):
        argv = ns.argv(["setpriv", f"--bounding-set={bounding}", f"--inh-caps={ambient}",
                        f"--ambient-caps={ambient}", sys.executable, "-c", CHILD, kind])
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def root_caps_test() -> None:
    need_root()
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv not installed (Debian: util-linux)")


@pytest.mark.root
@pytest.mark.parametrize("kind", sorted(TOOLS))
def test_backends_work_with_just_the_units_caps(kind: str, root_caps_test: None) -> None:
    if shutil.which(TOOLS[kind]) is None:
        pytest.skip(f"{TOOLS[kind]} not installed")
    bounding = _setpriv_caps(unit_setting("CapabilityBoundingSet"))
    ambient = _setpriv_caps(unit_setting("AmbientCapabilities"))
    before = host_firewall()
    res = _run_with_caps(kind, bounding, ambient)
    assert host_firewall() == before, "the host namespace's firewall changed"
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.splitlines()[-1]) == ["2001:db8::7", "203.0.113.7"]


@pytest.mark.root
def test_ipset_backend_needs_net_raw(root_caps_test: None) -> None:
    """The control: CAP_NET_ADMIN alone does not do for the ipset path (iptables' ipset socket)."""
    if shutil.which("iptables-nft-restore") is None:
        pytest.skip("iptables-nft-restore not installed")
    res = _run_with_caps("ipset-nft", "-all,+net_admin", "-all,+net_admin")
    assert res.returncode != 0, res.stdout
    assert "ipset" in res.stderr, res.stderr


# -- READY=1 for Type=notify ----------------------------------------------------------------------
def test_sdnotify_sends_ready_to_the_notify_socket(tmp_path: Path) -> None:
    import socket

    from scanguard_ids import sdnotify

    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(5)
        assert sdnotify.ready("sources=1", env={"NOTIFY_SOCKET": str(path)})
        assert server.recv(4096) == b"READY=1\nSTATUS=sources=1"
        assert sdnotify.stopping(env={"NOTIFY_SOCKET": str(path)})
        assert server.recv(4096) == b"STOPPING=1"
    assert not sdnotify.ready(env={})  # not under systemd: nothing to do
    assert not sdnotify.ready(env={"NOTIFY_SOCKET": str(tmp_path / "gone")})  # logged, not raised
