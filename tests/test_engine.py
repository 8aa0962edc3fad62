"""The engine's wiring on a dry-run backend and a pinned clock (pure, no kernel)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from scanguard_ids import config
from scanguard_ids.block.dryrun import DryRunBackend
from scanguard_ids.clock import FixedClock
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.engine import BlockRefused, Engine
from scanguard_ids.journal import Journal
from scanguard_ids.snapshot import Snapshot

SAMPLE = Path(__file__).parent / "data" / "eve" / "mixed_scan.eve.json"


def make(tmp_path: Path, **block: object) -> tuple[Engine, FixedClock]:
    cfg = config.Config()
    if block:
        cfg = cfg.replace("block", **block)
    clock = FixedClock(1_768_489_200.0)  # the sample's capture time, 2026-01-15 15:00 UTC
    backend = DryRunBackend(cfg.block, clock)
    engine = Engine(cfg, backend, clock, Allowlist(cfg.detect.allowlist),
                    Journal(str(tmp_path / "j.jsonl")))
    return engine, clock


def journal(tmp_path: Path) -> list[dict]:
    return [orjson.loads(x) for x in (tmp_path / "j.jsonl").read_bytes().splitlines()]


def test_lines_to_blocks_journal_and_snapshot(tmp_path: Path) -> None:
    engine, clock = make(tmp_path)
    engine.process(SAMPLE.read_bytes().splitlines() + [b"garbage", b"{}"], "test")
    blocked = {b.ip for b in engine.backend.list()}
    assert blocked == {"203.0.113.77", "2001:db8:1::77"}
    assert [r["action"] for r in journal(tmp_path)] == ["block", "block"]
    snap = engine.snapshot()
    assert snap.blocked_total == 2 and snap.counters["blocks"] == 2
    assert snap.counters["decode_errors"] >= 1
    assert Snapshot.from_dict(orjson.loads(orjson.dumps(snap.to_dict()))) == snap
    assert sum(p.responses for p in snap.top_ports) == snap.counters["responses"]


def test_expiry_is_noticed_and_journalled(tmp_path: Path) -> None:
    engine, clock = make(tmp_path)
    engine.process(SAMPLE.read_bytes().splitlines(), "test")
    clock.advance(301)
    engine.sync()
    assert engine.active == {}
    assert [r["action"] for r in journal(tmp_path)].count("expire") == 2
    # between full kernel reads, the engine's own timeouts tell what ended
    engine.manual_block("198.51.100.9", ttl=10)
    clock.advance(11)
    engine.sync(full=False)
    assert "198.51.100.9" not in engine.active


def test_manual_block_refuses_allowlisted_and_unblock_releases(tmp_path: Path) -> None:
    engine, _ = make(tmp_path)
    with pytest.raises(BlockRefused, match="allowlisted"):
        engine.manual_block("127.0.0.1")
    d = engine.manual_block("198.51.100.9", ttl=60)
    assert d.manual and d.ttl == 60
    assert "198.51.100.9" in {b.ip for b in engine.backend.list()}
    engine.manual_unblock("198.51.100.9")
    assert engine.backend.list() == []
    assert [r["action"] for r in journal(tmp_path)] == ["block", "unblock"]


def test_safety_valve_counts_refusals(tmp_path: Path) -> None:
    engine, _ = make(tmp_path, max_set_size=1)
    engine.process(SAMPLE.read_bytes().splitlines(), "test")
    assert len(engine.backend.list()) == 1
    assert engine.counters["valve_drops"] >= 1


def test_a_failing_journal_never_stops_blocking(tmp_path: Path) -> None:
    engine, _ = make(tmp_path)
    (tmp_path / "file").write_text("")
    engine.journal = Journal(str(tmp_path / "file" / "journal.jsonl"))  # parent is a file
    engine.process(SAMPLE.read_bytes().splitlines(), "test")
    assert len(engine.backend.list()) == 2
    assert engine.journal.errors >= 1
