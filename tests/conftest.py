"""Shared fixtures: the rule pack, and Suricata runs of the scenario pcaps (each at most once).

Tests marked ``suricata`` are skipped when no suricata binary is found ($SURICATA or PATH).
This directory is on sys.path under pytest (rootdir conftest, no __init__.py), so tests import
the scenario builders as ``from pcaps import SCENARIOS``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _root_logger_restored() -> object:
    """A test that runs ``cli.main`` in-process sets the root logger up (level INFO, a stderr
    handler); put it back, or every later test logs for real: that I/O once widened a race in
    a test's writer thread enough to fail it (tests/eve/test_tail.py, rename under a writer)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _load_fast_build(path: str) -> None:
    """scripts/sanitize.sh: use this build of the C EVE reader (ASan/UBSan) instead of the
    installed one; it must be in place before anything imports scanguard_ids.eve.decode."""
    spec = importlib.util.spec_from_file_location("scanguard_ids.eve._fast", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["scanguard_ids.eve._fast"] = module


if os.environ.get("SCANGUARD_FAST_SO"):
    _load_fast_build(os.environ["SCANGUARD_FAST_SO"])

from scanguard_ids import suricata  # noqa: E402 - after the optional C reader swap

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules" / "scanguard.rules"


def _suricata_binary() -> str | None:
    try:
        return suricata.find_suricata()
    except suricata.SuricataError:
        return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _suricata_binary() is not None:
        return
    skip = pytest.mark.skip(reason="suricata binary not found (install it or set $SURICATA)")
    for item in items:
        if item.get_closest_marker("suricata") is not None:
            item.add_marker(skip)


@dataclass(slots=True)
class SuricataRunner:
    """Builds scenario pcaps and replays them through Suricata, once per session each."""

    root: Path
    rules: Path = RULES
    pcaps: dict[str, Path] = field(default_factory=dict)
    eves: dict[str, Path] = field(default_factory=dict)

    def pcap(self, name: str) -> Path:
        from pcaps import SCENARIOS

        if name not in self.pcaps:
            self.pcaps[name] = SCENARIOS[name].build(self.root / "pcap")
        return self.pcaps[name]

    def eve(self, name: str) -> Path:
        """eve.json of scenario `name` run with the pack and the scenarios' HOME_NET."""
        from pcaps import HOME_NET

        if name not in self.eves:
            self.eves[name] = suricata.run_pcap(self.pcap(name), self.rules, HOME_NET,
                                                self.root / "eve" / name, timeout=60)
        return self.eves[name]


@pytest.fixture(scope="session")
def rules_path() -> Path:
    return RULES


@pytest.fixture(scope="session")
def suricata_runner(tmp_path_factory: pytest.TempPathFactory) -> SuricataRunner:
    """Session-wide: ``suricata_runner.eve("syn_scan_v4")`` -> Path of that run's eve.json."""
    if _suricata_binary() is None:
        pytest.skip("suricata binary not found")
    return SuricataRunner(tmp_path_factory.mktemp("suricata"))
