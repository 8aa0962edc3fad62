"""The daemon's housekeeping keeps the offender history bounded by strike_memory (no kernel)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from harness import T0, make_rig, rst

from scanguard_ids import config
from scanguard_ids.daemon import STATE_SAVE_S, Daemon
from scanguard_ids.journal import load_json

OLD, RECENT = "198.51.100.1", "198.51.100.2"


def _daemon(tmp_path: Path, wall: float = T0) -> Daemon:
    cfg = config.Config().replace("journal", path=str(tmp_path / "journal.jsonl"),
                                  state=str(tmp_path / "state.json"))
    rig = make_rig(tmp_path, cfg, t0=wall)
    daemon = Daemon(cfg, clock=rig.clock)
    daemon.engine = rig.engine
    memory = cfg.detect.strike_memory
    rig.engine.offenders.offend(OLD, T0 - memory - 60)  # forgotten at T0
    rig.engine.offenders.offend(RECENT, T0 - 60)
    return daemon


def _saved(tmp_path: Path) -> set[str]:
    state = load_json(str(tmp_path / "state.json"))
    assert isinstance(state, dict)
    return {row[0] for row in state["offenders"]["offenders"]}


def test_housekeeping_prunes_forgotten_offenders(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path)
    engine = daemon.engine
    assert engine is not None
    engine.process([rst("203.0.113.5", 22, T0)], "test")  # the event clock reaches T0
    worker = threading.Thread(target=daemon.housekeeping, daemon=True)
    worker.start()
    try:
        daemon.clock.advance(STATE_SAVE_S)  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while OLD in engine.offenders and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        daemon.stop_event.set()
        worker.join(5)
    assert OLD not in engine.offenders and RECENT in engine.offenders
    assert _saved(tmp_path) == {RECENT}


def test_prune_follows_event_time_not_the_wall_clock(tmp_path: Path) -> None:
    # Replaying old files: the wall clock is 10 days on, the events are at T0.
    daemon = _daemon(tmp_path, wall=T0 + 10 * 86_400)
    engine = daemon.engine
    assert engine is not None
    daemon.save_state()  # no event yet: nothing to measure time by, nothing pruned
    assert OLD in engine.offenders and RECENT in engine.offenders
    engine.process([rst("203.0.113.5", 22, T0)], "test")
    daemon.save_state()
    assert OLD not in engine.offenders and RECENT in engine.offenders
    assert _saved(tmp_path) == {RECENT}
