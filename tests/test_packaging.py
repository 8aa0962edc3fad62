"""Installing on a sensor: `pip install` needs no compiler, and scripts/install-sensor.sh only
writes where it is told (a prefix and an /etc stand-in here; it is run with --no-apt).

Slow (a fresh virtualenv and a real pip install; PyPI or $PIP_FIND_LINKS for the dependencies).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYTHON = shutil.which("python3") or "python3"

pytestmark = pytest.mark.slow


def test_install_sensor_without_a_compiler(tmp_path: Path) -> None:
    prefix, etc = tmp_path / "opt" / "scanguard", tmp_path / "etc"
    env = {**os.environ, "CC": "/bin/false", "SCANGUARD_ETC": str(etc), "PYTHON": PYTHON}
    env.pop("PYTHONPATH", None)
    res = subprocess.run(["bash", str(REPO / "scripts" / "install-sensor.sh"), "--prefix",
                          str(prefix), "--backend", "nftables", "--no-apt"],
                         capture_output=True, text=True, timeout=540, env=env)
    assert res.returncode == 0, res.stderr
    assert "C EVE reader not built" in res.stderr  # CC=/bin/false really was the compiler

    # A fresh venv (no system site-packages) got the package, without python-iptables.
    assert "include-system-site-packages = false" in (prefix / "pyvenv.cfg").read_text()
    py = prefix / "bin" / "python"
    probe = subprocess.run(
        [str(py), "-c", "import importlib.util as u, scanguard_ids.block.iptables as t;"
                        "print(u.find_spec('iptc') is None, t.__file__)"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    no_iptc, where = probe.stdout.split()
    assert no_iptc == "True" and where.startswith(str(prefix)), probe.stdout
    out = subprocess.run([str(prefix / "bin" / "scanguard"), "--version"], capture_output=True,
                         text=True, timeout=60, env=env)
    assert out.returncode == 0 and "scanguard-ids" in out.stdout
    licenses = list(prefix.glob("lib/python3*/site-packages/scanguard_ids-*.dist-info/*/LICENSE"))
    assert licenses and "MIT License" in licenses[0].read_text()

    # Its files, with the prefix and the chosen backend filled in; nothing else under etc.
    unit = (etc / "systemd" / "system" / "scanguard.service").read_text()
    assert f"ExecStart={prefix}/bin/scanguard run" in unit
    assert f"ExecStartPre={prefix}/bin/scanguard config check" in unit
    assert 'backend = "nftables"' in (etc / "scanguard" / "scanguard.toml").read_text()
    assert (etc / "logrotate.d" / "scanguard").read_text() == (
        REPO / "examples" / "scanguard.logrotate").read_text()
    assert (prefix / "rules" / "scanguard.rules").read_text() == (
        REPO / "rules" / "scanguard.rules").read_text()
    written = sorted(str(p.relative_to(etc)) for p in etc.rglob("*") if p.is_file())
    assert written == ["logrotate.d/scanguard", "scanguard/scanguard.toml",
                       "systemd/system/scanguard.service"]

    # Run again after an admin edited the config: it is kept, the new one goes next to it.
    cfg = etc / "scanguard" / "scanguard.toml"
    cfg.write_text("[detect]\ncount = 5\n")
    again = subprocess.run(["bash", str(REPO / "scripts" / "install-sensor.sh"), "--prefix",
                            str(prefix), "--backend", "nftables", "--no-apt"],
                           capture_output=True, text=True, timeout=540, env=env)
    assert again.returncode == 0, again.stderr
    assert cfg.read_text() == "[detect]\ncount = 5\n"
    assert (etc / "scanguard" / "scanguard.toml.dist").is_file()
