"""The Live wiring: poller thread, non-blocking render, disconnects, --once and SVG export."""

from __future__ import annotations

import io
import threading
import time

import pytest
from rich.console import Console

from scanguard_ids.errors import ControlError
from scanguard_ids.tui.app import Latest, export_svg, fetch_once, frame, render_once, run_live
from scanguard_ids.tui.sample import DEMO_NOW, demo_snapshot

DEMO = demo_snapshot(DEMO_NOW)


def test_fetch_once_keeps_last_snapshot_on_failure():
    latest = Latest()
    assert fetch_once(lambda: DEMO, latest)
    assert latest.read() == (DEMO, None)

    def refused():
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    assert not fetch_once(refused, latest)
    snap, error = latest.read()
    assert snap is DEMO and "ConnectionRefusedError" in error and latest.failures == 1
    assert not fetch_once(lambda: None, latest)
    assert latest.read()[1] == "no snapshot" and latest.failures == 2
    assert fetch_once(lambda: DEMO, latest) and latest.read()[1] is None and latest.failures == 0


def test_frame_states(render):
    assert "connecting…" in render(frame(None, None, 80, 24), 80, 24)
    lost = render(frame(None, "ControlError: gone", 80, 24), 80, 24)
    assert "disconnected — retrying" in lost and "ControlError: gone" in lost
    stale = render(frame(DEMO, "ControlError: gone", 80, 24), 80, 24).splitlines()
    assert stale[0].startswith("disconnected — retrying")
    assert "scanguard · ipset" in stale[1] and len(stale) <= 24
    live = render(frame(DEMO, None, 100, 30), 100, 30)
    assert "disconnected" not in live and "watching 40" in live


def _terminal_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, height=30, color_system=None)
    return console, out


def test_run_live_polls_in_background_and_shows_disconnects():
    console, out = _terminal_console()
    stop = threading.Event()
    calls: list[float] = []

    def getter():
        calls.append(time.monotonic())
        if len(calls) == 2:
            raise ControlError("daemon restarting")
        if len(calls) == 3:
            # The daemon stays away until the disconnect has been drawn: on a loaded machine
            # the render thread may otherwise only wake after the next good snapshot.
            deadline = time.monotonic() + 10
            while "daemon restarting" not in out.getvalue() and time.monotonic() < deadline:
                time.sleep(0.01)
        if len(calls) >= 4:
            stop.set()
        return DEMO

    started = time.monotonic()
    assert run_live(getter, refresh=0.05, console=console, stop=stop) == 0
    assert time.monotonic() - started < 15  # never hangs (the wait above is bounded by 10 s)
    text = out.getvalue()
    assert "scanguard · ipset" in text
    assert "disconnected — retrying" in text and "daemon restarting" in text
    assert text.index("\x1b[?1049h") < text.rindex("\x1b[?1049l")  # alt screen left again


def test_render_never_waits_for_a_stuck_getter():
    console, out = _terminal_console()
    stop = threading.Event()
    release = threading.Event()

    def stuck():
        release.wait(10)  # a socket that never answers
        return DEMO

    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    try:
        assert run_live(stuck, refresh=0.1, console=console, stop=stop) == 0
    finally:
        release.set()
    assert time.monotonic() - started < 3
    assert "connecting…" in out.getvalue()


def test_run_live_returns_zero_on_ctrl_c(monkeypatch):
    console, _ = _terminal_console()
    import scanguard_ids.tui.app as app

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(app, "_loop", interrupted)
    assert run_live(lambda: DEMO, refresh=0.05, console=console) == 0


def test_render_once_not_a_tty_prints_every_panel(monkeypatch):
    monkeypatch.delenv("LINES", raising=False)
    monkeypatch.setenv("COLUMNS", "100")
    out = io.StringIO()
    console = Console(file=out)  # not a terminal: no colour codes, width from COLUMNS
    render_once(DEMO, console)
    text = out.getvalue()
    assert "\x1b[" not in text
    lines = text.splitlines()
    assert max(len(line) for line in lines) == 100
    for title in ("scanguard · ipset", "activity", "watching 40", "blocked 1,200", "decisions"):
        assert title in text


@pytest.mark.parametrize(("height", "lines"), [(24, 30), (60, 60)])
def test_render_once_height(height, lines):
    """At 24 lines every panel is kept anyway (30 lines); a tall terminal is filled."""
    out = io.StringIO()
    render_once(DEMO, Console(file=out, width=80), height=height)
    assert len(out.getvalue().splitlines()) == lines
    assert "─ decisions" in out.getvalue()


def test_export_svg(tmp_path):
    path = tmp_path / "monitor.svg"
    export_svg(DEMO, path, width=100, height=30)
    svg = path.read_text(encoding="utf-8")
    assert svg.startswith("<svg") and "scanguard" in svg and "blocked" in svg


def test_run_live_without_a_terminal_prints_one_frame():
    out = io.StringIO()
    assert run_live(lambda: DEMO, console=Console(file=out, width=100)) == 0
    assert "\x1b[" not in out.getvalue() and "─ decisions" in out.getvalue()

    def refused():
        raise ConnectionRefusedError("no daemon")

    out = io.StringIO()
    assert run_live(refused, console=Console(file=out, width=100)) == 1
    assert "no snapshot (ConnectionRefusedError: no daemon)" in out.getvalue()
