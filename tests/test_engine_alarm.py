"""The distributed-scan alarm inside the engine: journaled, counted, shown, ended."""

from __future__ import annotations

from pathlib import Path

import orjson
from harness import T0, make_rig, rst
from rich.console import Console

from scanguard_ids import config
from scanguard_ids.snapshot import Snapshot
from scanguard_ids.tui.view import layout


def _scan(n_sources: int) -> list[bytes]:
    # each source probes two different ports of one host once: nobody reaches a block
    return [rst(f"203.0.113.{10 + i}", 20 + (i % 8), T0 + 0.05 * i, local="192.0.2.1")
            for i in range(n_sources)]


def test_alarm_is_journaled_counted_and_shown_then_ends(tmp_path: Path) -> None:
    r = make_rig(tmp_path)
    try:
        r.feed(*_scan(30))
        assert r.blocked() == set()  # an alarm, not a block (shield is off)
        snap = r.engine.snapshot()
        assert snap.counters["alarms"] == 1
        assert len(snap.alarms) == 1 and snap.alarms[0].target.startswith("192.0.2.1")
        assert Snapshot.from_dict(orjson.loads(orjson.dumps(snap.to_dict()))).alarms == snap.alarms
        console = Console(width=120, height=40, color_system=None, record=True)
        console.print(layout(snap, 120, 40))
        assert "DISTRIBUTED SCAN: 1 target" in console.export_text()
        actions = [x["action"] for x in r.journal()]
        assert actions == ["alarm"] and r.journal()[0]["v"] == 1
        # event time moves on past the hold: the alarm ends and says so
        r.clock.t = T0 + 3600
        r.feed(rst("198.51.100.99", 80, T0 + 3600, local="192.0.2.200"))
        r.engine.sync(full=False)
        assert [x["action"] for x in r.journal()] == ["alarm", "alarm-end"]
        assert r.engine.snapshot().alarms == ()
    finally:
        r.engine.journal.close()


def test_shield_blocks_the_sources_while_the_alarm_lasts(tmp_path: Path) -> None:
    r = make_rig(tmp_path, config.from_dict({"alarm": {"shield": True}}))
    try:
        r.feed(*_scan(30))
        assert len(r.blocked()) >= 20
        blocks = [x for x in r.journal() if x["action"] == "block"]
        assert blocks and all(x["reason"].startswith("shield") for x in blocks)
    finally:
        r.engine.journal.close()


def test_alarm_off_costs_nothing(tmp_path: Path) -> None:
    r = make_rig(tmp_path, config.from_dict({"alarm": {"mode": "off"}}))
    try:
        assert r.engine.alarms is None
        r.feed(*_scan(30))
        assert r.engine.snapshot().alarms == () and not r.journal()
    finally:
        r.engine.journal.close()
