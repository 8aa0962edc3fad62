"""One test rig for the engine (mitmproxy's taddons.context): engine, pinned clock, dry-run
backend and journal, plus one EVE event factory.

A test module imports ``rig_fixture`` (it registers the fixture ``rig``), then takes a
``rig`` argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from scanguard_ids import config
from scanguard_ids.block.dryrun import DryRunBackend
from scanguard_ids.clock import FixedClock
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.engine import Engine
from scanguard_ids.journal import Journal
from scanguard_ids.timefmt import iso

T0 = 1_768_489_200.0  # 2026-01-15 15:00 UTC, the capture time of tests/data/eve/mixed_scan
LOCAL = "192.0.2.10"  # the protected host
RST_SID = config.SID_FIRST  # the core pack's "closed TCP port answered with RST"


@dataclass(slots=True)
class Rig:
    engine: Engine
    clock: FixedClock
    backend: DryRunBackend
    journal_path: Path

    def feed(self, *lines: bytes, source: str = "test") -> None:
        self.engine.process(list(lines), source)

    def journal(self) -> list[dict[str, Any]]:
        """The journal's records so far, oldest first."""
        if not self.journal_path.exists():
            return []
        return [orjson.loads(x) for x in self.journal_path.read_bytes().splitlines()]

    def blocked(self) -> set[str]:
        """What the backend holds now."""
        return {b.ip for b in self.backend.list()}


def make_rig(path: Path, cfg: config.Config | None = None, t0: float = T0, *,
             kernel_stand_in: bool = False) -> Rig:
    """``kernel_stand_in``: the dry-run backend stands in for a kernel (fleet nodes), so the
    engine is not in dry-run mode and hands decisions to external sinks."""
    cfg = cfg or config.Config()
    clock = FixedClock(t0)
    backend = DryRunBackend(cfg.block, clock)
    journal_path = path / "journal.jsonl"
    engine = Engine(cfg, backend, clock, Allowlist(cfg.detect.allowlist),
                    Journal(str(journal_path)))
    if kernel_stand_in:
        engine.dry_run = False
    return Rig(engine, clock, backend, journal_path)


@pytest.fixture(name="rig")
def rig_fixture(tmp_path: Path) -> Iterator[Rig]:
    r = make_rig(tmp_path)
    try:
        yield r
    finally:
        r.engine.journal.close()


def rst(remote: str, port: int, ts: float = T0, local: str = LOCAL) -> bytes:
    """One EVE alert line: ``local`` answered a probe of ``remote`` to ``port`` with a RST."""
    return orjson.dumps({
        "timestamp": iso(ts),
        "event_type": "alert",
        "src_ip": local,
        "src_port": port,
        "dest_ip": remote,
        "dest_port": 40_000,
        "proto": "TCP",
        "alert": {"action": "allowed", "gid": 1, "signature_id": RST_SID, "rev": 1},
        "direction": "to_client",
    })
