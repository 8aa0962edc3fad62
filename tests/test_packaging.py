"""Installing on a sensor: `pip install` needs no compiler, and scripts/install-sensor.sh only
writes where it is told (a prefix and an /etc stand-in here; it is run with --no-apt).
The sdist is a release tarball that install-sensor.sh runs from; it ships no tests (MANIFEST.in).

The install test is slow (a fresh virtualenv and a real pip install; PyPI or $PIP_FIND_LINKS for
the dependencies); the sdist test builds offline in seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYTHON = shutil.which("python3") or "python3"


def _sdist(tmp_path: Path) -> Path:
    """`setup.py sdist` of a copy of the checkout (the checkout gets no egg-info)."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "out", "*.egg-info", "__pycache__", "*.so",
        ".pytest_cache", ".mypy_cache", ".ruff_cache"))
    res = subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path)],
                         cwd=src, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    (tarball,) = tmp_path.glob("scanguard-ids-*.tar.gz")
    return tarball


def test_sdist_is_a_release_tarball_without_tests(tmp_path: Path) -> None:
    tarball = _sdist(tmp_path)
    top = tarball.name.removesuffix(".tar.gz")
    with tarfile.open(tarball) as tar:
        members = {m.name.removeprefix(f"{top}/"): m for m in tar.getmembers() if m.name != top}

        def text(name: str) -> str:
            fh = tar.extractfile(f"{top}/{name}")
            assert fh is not None, name
            return fh.read().decode()

        assert text("LICENSE") == (REPO / "LICENSE").read_text()
        assert re.search(r"(?m)^License: MIT$", text("PKG-INFO"))
        # Tests are not shipped (they need root, namespaces, Suricata: run them from a checkout),
        # nor benchmarks, CI, build products.
        stray = [n for n in members if n.split("/")[0] in {"tests", "bench", ".ci", ".git"}
                 or n.endswith((".so", ".pyc"))]
        assert not stray, stray
        # The whole package, the C reader's source and stub.
        package = {str(p.relative_to(REPO)) for p in (REPO / "scanguard_ids").rglob("*.py")
                   if "__pycache__" not in p.parts}
        assert package - set(members) == set()
        assert {"scanguard_ids/eve/_fast.c", "scanguard_ids/eve/_fast.pyi", "setup.py",
                "pyproject.toml", "README.md"} <= set(members)
        # Every file install-sensor.sh reads from its source tree, with the checkout's content.
        script = text("scripts/install-sensor.sh")
        assert members["scripts/install-sensor.sh"].mode & 0o111
        needed = set()
        for ref in re.findall(r'"\$SRC"?/([^" ]+)', script):
            found = [p for p in REPO.glob(ref) if p.is_file()] if "*" in ref else [REPO / ref]
            assert found, ref
            needed |= {str(p.relative_to(REPO)) for p in found}
        assert {"rules/scanguard.rules", "examples/scanguard.service"} <= needed
        for name in sorted(needed | {f"scanguard_ids/rules/{p.name}"
                                     for p in (REPO / "rules").iterdir()}):
            assert name in members, name
            assert text(name) == (REPO / name).read_text(), name


@pytest.mark.slow
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
