"""The engine's wiring on a dry-run backend and a pinned clock (pure, no kernel)."""

from __future__ import annotations

import logging
from dataclasses import fields, replace
from pathlib import Path

import orjson
import pytest
from harness import T0, Rig, make_rig, rig_fixture, rst  # noqa: F401 - rig_fixture: `rig`

from scanguard_ids import config
from scanguard_ids.engine import BlockRefused, with_node
from scanguard_ids.eve.source import SourceHealth
from scanguard_ids.journal import Journal
from scanguard_ids.model import Decision
from scanguard_ids.snapshot import DecisionRow, Snapshot

SAMPLE = Path(__file__).parent / "data" / "eve" / "mixed_scan.eve.json"


def test_lines_to_blocks_journal_and_snapshot(rig: Rig) -> None:
    rig.feed(*SAMPLE.read_bytes().splitlines(), b"garbage", b"{}")
    assert rig.blocked() == {"203.0.113.77", "2001:db8:1::77"}
    assert [r["action"] for r in rig.journal()] == ["block", "block"]
    snap = rig.engine.snapshot()
    assert snap.blocked_total == 2 and snap.counters["blocks"] == 2
    assert snap.counters["decode_errors"] >= 1
    assert Snapshot.from_dict(orjson.loads(orjson.dumps(snap.to_dict()))) == snap
    assert sum(p.responses for p in snap.top_ports) == snap.counters["responses"]


def test_threshold_from_the_event_factory(rig: Rig) -> None:
    rig.feed(rst("198.51.100.7", 22), rst("198.51.100.7", 22, T0 + 1))
    assert rig.blocked() == set()  # 2 responses, 1 port
    rig.feed(rst("198.51.100.7", 80, T0 + 2))
    assert rig.blocked() == {"198.51.100.7"}
    (row,) = rig.engine.snapshot().blocked
    assert (row.ports, row.responses, row.ttl) == ((22, 80), 3, 300)


def test_decisions_are_typed_rows_with_the_journal_shape(rig: Rig) -> None:
    rig.feed(rst("198.51.100.7", 22), rst("198.51.100.7", 23), rst("198.51.100.7", 24))
    rig.engine.manual_unblock("198.51.100.7")
    snap = rig.engine.snapshot()
    assert all(isinstance(d, DecisionRow) for d in snap.decisions)
    assert [d.action for d in snap.decisions] == ["block", "unblock"]
    # `scanguard status --json` shows each decision as the journal writes it
    shown = orjson.loads(orjson.dumps(snap.to_dict()))["decisions"]
    # (the journal adds its schema version "v" to each record, and "dry_run" on the dry-run
    # backend the rig uses)
    assert all(rec["dry_run"] is True for rec in rig.journal())
    assert shown == [{k: v for k, v in rec.items() if k not in ("v", "dry_run")}
                     for rec in rig.journal()]
    assert list(shown[0]) == list(Decision(0.0, "block", "x").to_dict())


def test_a_fleet_nodes_decisions_show_its_name_as_the_journal_writes_them(rig: Rig) -> None:
    rig.engine.node = "edge-1"
    rig.feed(rst("198.51.100.7", 22), rst("198.51.100.7", 23), rst("198.51.100.7", 24))
    rig.engine.manual_unblock("198.51.100.7")
    snap = rig.engine.snapshot()
    assert [(d.action, d.node) for d in snap.decisions] == [("block", "edge-1"),
                                                            ("unblock", "edge-1")]
    shown = orjson.loads(orjson.dumps(snap.to_dict()))["decisions"]
    assert shown == [{k: v for k, v in rec.items() if k not in ("v", "dry_run")}
                     for rec in rig.journal()]
    assert [rec["node"] for rec in rig.journal()] == ["edge-1", "edge-1"]


def test_with_node_is_replace_for_every_field() -> None:
    d = Decision(T0, "block", "198.51.100.7", ttl=600, count=5, ports=(22, 80), reason="r",
                 first_seen=T0 - 3, last_seen=T0 - 1, strikes=2, sensors=("s1",), manual=True,
                 kinds=("rst",), hosts=("192.0.2.1",), tier="slow", rule="hosts",
                 detect_only=True, provenance="responses", widens="198.51.100.7")
    defaults = Decision(0.0, "", "")
    # every field but node differs from its default, so a field dropped or shifted shows
    assert [f.name for f in fields(Decision)
            if getattr(d, f.name) == getattr(defaults, f.name)] == ["node"]
    assert with_node(d, "edge-1") == replace(d, node="edge-1")


def test_bad_lines_are_one_figure(rig: Rig) -> None:
    rig.feed(b"garbage", b"{}", b"\x00\xff", b"x" * (config.EveConfig().max_line_bytes + 1))
    s = rig.engine.decoder.stats
    assert rig.engine.snapshot().counters["decode_errors"] == (
        s.bad_json + s.oversized + s.binary + s.missing_fields
    ) >= 2


def test_expiry_is_noticed_and_journalled(rig: Rig) -> None:
    rig.feed(*SAMPLE.read_bytes().splitlines())
    rig.clock.advance(301)
    rig.engine.sync()
    assert rig.engine.active == {}
    assert [r["action"] for r in rig.journal()].count("expire") == 2
    # between full kernel reads, the engine's own timeouts tell what ended
    rig.engine.manual_block("198.51.100.9", ttl=10)
    rig.clock.advance(11)
    rig.engine.sync(full=False)
    assert "198.51.100.9" not in rig.engine.active


def test_manual_block_refuses_allowlisted_and_unblock_releases(rig: Rig) -> None:
    with pytest.raises(BlockRefused, match="allowlisted"):
        rig.engine.manual_block("127.0.0.1")
    d = rig.engine.manual_block("198.51.100.9", ttl=60)
    assert d.manual and d.ttl == 60
    assert rig.blocked() == {"198.51.100.9"}
    rig.engine.manual_unblock("198.51.100.9")
    assert rig.blocked() == set()
    assert [r["action"] for r in rig.journal()] == ["block", "unblock"]


def test_safety_valve_counts_refusals(tmp_path: Path) -> None:
    # A full set evicts automatic blocks (tests/test_valves.py), never manual ones: a set
    # full of manual blocks still refuses, and counts it.
    rig = make_rig(tmp_path, config.Config().replace("block", max_set_size=1))
    rig.engine.manual_block("198.51.100.9")
    rig.feed(*SAMPLE.read_bytes().splitlines())
    assert rig.blocked() == {"198.51.100.9"}
    assert rig.engine.counters["valve_drops"] >= 1


def test_a_failing_journal_never_stops_blocking(rig: Rig, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    rig.engine.journal = Journal(str(tmp_path / "file" / "journal.jsonl"))  # parent is a file
    rig.feed(*SAMPLE.read_bytes().splitlines())
    assert len(rig.blocked()) == 2
    assert rig.engine.journal.errors >= 1


def test_each_block_is_logged_once(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    rig.feed(rst("198.51.100.7", 22), rst("198.51.100.7", 23), rst("198.51.100.7", 24))
    rig.engine.manual_unblock("198.51.100.7")
    lines = [r.getMessage() for r in caplog.records]
    blocks = [m for m in lines if m.startswith("action=block ")]
    assert len(blocks) == 1 and "ports=22,23,24" in blocks[0]  # the engine's, with evidence
    assert len([m for m in lines if m.startswith("action=unblock ")]) == 1


class _Source:
    def __init__(self, health: SourceHealth | Exception) -> None:
        self._health = health

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def health(self) -> SourceHealth:
        if isinstance(self._health, Exception):
            raise self._health
        return self._health

    def __str__(self) -> str:
        return "broken-source"


def test_sources_report_their_own_health(rig: Rig) -> None:
    up = SourceHealth("/var/log/suricata/eve.json", "file", True, 10, 2.5, detail="watch=poll")
    rig.engine.sources = [_Source(up), _Source(RuntimeError("boom")),
                          _Source(SourceHealth("/run/eve.sock", "unix_dgram", True, 1, 1.0))]
    snap = rig.engine.snapshot()
    assert snap.sources[0] == up and snap.events_per_s == 3.5
    assert snap.sources[1] == SourceHealth("broken-source", "?", False, detail="boom")


@pytest.mark.parametrize("mode", ["block", "detect"])
def test_sweep_blocks_or_is_only_journaled_in_detect_mode(tmp_path: Path, mode: str) -> None:
    cfg = config.from_dict({"detect": {"sweep": mode}})
    r = make_rig(tmp_path, cfg)
    try:
        # one port across six hosts: a horizontal sweep
        r.feed(*(rst("203.0.113.50", 22, T0 + i * 0.1, local=f"192.0.2.{10 + i}")
                 for i in range(6)))
        records = r.journal()
        if mode == "block":
            assert r.blocked() == {"203.0.113.50"}
            assert [x["action"] for x in records] == ["block"]
            assert records[0]["rule"] == "hosts" and len(records[0]["hosts"]) >= 3
        else:
            assert r.blocked() == set()
            assert [x["action"] for x in records] == ["would-block"]
            assert records[0]["detect_only"] is True
            assert r.engine.snapshot().counters["would_block"] == 1
    finally:
        r.engine.journal.close()
