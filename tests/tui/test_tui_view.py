"""Golden and behaviour tests for the pure panel functions in scanguard_ids.tui.view."""

from __future__ import annotations

import dataclasses
import io
import time

import pytest
from rich.color import ColorType
from rich.console import Console

from scanguard_ids.model import Decision
from scanguard_ids.snapshot import BlockRow, DecisionRow, PortRow, Snapshot, SourceHealth, WatchRow
from scanguard_ids.timefmt import iso
from scanguard_ids.tui.sample import DEMO_NOW, demo_snapshot
from scanguard_ids.tui.view import (
    activity,
    blocked,
    counters_per_row,
    decisions,
    header,
    header_height,
    layout,
    watching,
)

DEMO = demo_snapshot(DEMO_NOW)
EMPTY = Snapshot(taken=DEMO_NOW, started=DEMO_NOW - 5, backend="dry-run")
SNAPS = {"demo": DEMO, "empty": EMPTY}
PANELS = {
    "header": lambda s: header(s),
    "watching": lambda s: watching(s, 12),
    "blocked": lambda s: blocked(s, 12),
    "activity": lambda s: activity(s),
    "decisions": lambda s: decisions(s, 10),
}


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("panel", sorted(PANELS))
@pytest.mark.parametrize("which", sorted(SNAPS))
def test_panel_golden(panel, which, width, golden, render):
    golden(f"{panel}_{which}_{width}.txt", render(PANELS[panel](SNAPS[which]), width))


LAYOUTS = [(80, 24), (100, 30), (120, 40), (160, 50)]


@pytest.mark.parametrize(("width", "height"), LAYOUTS)
@pytest.mark.parametrize("which", sorted(SNAPS))
def test_layout_golden(which, width, height, golden, render):
    text = render(layout(SNAPS[which], width, height), width, height)
    golden(f"layout_{which}_{width}x{height}.txt", text)


def test_once_layout_keeps_every_panel_golden(golden, render):
    text = render(layout(DEMO, 80, 24, every_panel=True), 80, 24)
    for title in ("scanguard", "activity", "watching", "blocked", "decisions"):
        assert f"─ {title}" in text
    golden("layout_demo_80x24_every_panel.txt", text)


@pytest.mark.parametrize("width", [60, 80, 99, 100, 119, 120, 140, 200])
@pytest.mark.parametrize("height", [12, 20, 24, 29, 30, 40, 60])
def test_layout_fits_the_terminal(width, height, render):
    lines = render(layout(DEMO, width, height), width, height).splitlines()
    assert max(len(line) for line in lines) <= width
    header_h = header_height(
        DEMO,
        per_row=counters_per_row(DEMO, width),
        max_sources=6 if height >= 30 else 2,
        problems_only=height < 30,
    )
    assert len(lines) <= max(height, header_h)
    if height >= 24:  # the header and at least the blocked panel always make it
        assert "─ blocked 1,200" in "\n".join(lines)


def test_80x24_is_readable(render):
    text = render(layout(DEMO, 80, 24), 80, 24)
    lines = text.splitlines()
    assert len(lines) == 24
    for title in ("scanguard · ipset", "activity", "watching 40", "blocked 1,200"):
        assert title in text
    assert "… " not in lines[1] and "…" not in lines[2]  # counters never cropped
    assert "✗ DOWN" in text  # a source that is down is listed even when short of room


def test_wide_terminal_uses_two_columns(render):
    lines = render(layout(DEMO, 120, 40), 120, 40).splitlines()
    side_by_side = [ln for ln in lines if ln.count("╭") == 2]
    assert side_by_side, "expected two panels on one row"
    assert "watching" in side_by_side[0] and "activity" in side_by_side[0]


def _big(n_watch: int, n_block: int) -> Snapshot:
    return demo_snapshot(DEMO_NOW, n_watching=n_watch, n_blocked=n_block)


def test_blocked_truncates_thousands_with_plus_more(render):
    snap = _big(10, 5000)
    lines = render(blocked(snap, 10), 100).splitlines()
    assert len(lines) == 2 + 1 + 10  # borders, column header, 9 rows + "more"
    assert lines[-2].strip("│ ") == "+4,991 more"
    assert "blocked 5,000" in lines[0]


def test_watching_truncates_thousands_with_and_n_more(render):
    snap = _big(3000, 10)
    lines = render(watching(snap, 10), 100).splitlines()
    assert len(lines) == 13
    assert lines[-2].strip("│ ") == "... and 2,991 more"


def test_truncation_counts_rows_the_daemon_left_out(render):
    snap = dataclasses.replace(_big(5, 50), blocked_total=5000, watching_total=900)
    assert "+4,950 more" in render(blocked(snap), 100)  # no max_rows: all 50 rows + more
    assert "... and 895 more" in render(watching(snap, 100), 100)
    assert "more" not in render(blocked(dataclasses.replace(snap, blocked_total=50), 60), 100)


def test_tiny_budget_still_says_how_many(render):
    text = render(blocked(DEMO, 1), 80)
    assert "+1,200 more" in text and "192.0.2" not in text


def test_watching_sorted_by_closeness(render):
    def row(ip, resp, ports, last=0.0):
        return WatchRow(ip, resp, ports, 3, 2, 30.0, DEMO_NOW - 60, DEMO_NOW - last)

    rows = (
        row("192.0.2.1", 1, 1),
        row("192.0.2.2", 2, 2),  # one response short
        row("192.0.2.3", 5, 1),  # one port short, more progress
        row("192.0.2.4", 2, 1),
    )
    snap = dataclasses.replace(EMPTY, watching=rows, watching_total=4)
    text = render(watching(snap), 100)
    # 2/3 responses on 2/2 ports: any response blocks it; 5/3 on 1/2 needs a new port
    order = ["192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.1"]
    assert sorted(order, key=text.index) == order
    assert "██░ 2/3" in text and "█████ 5/3" not in text and "███ 5/3" in text


def test_blocked_newest_first_and_ttl_bar(render):
    rows = (
        BlockRow("192.0.2.1", 30.0, 300, (22, 80), since=DEMO_NOW - 270),
        BlockRow("192.0.2.2", 150.0, 300, (22,), since=DEMO_NOW - 150),
        BlockRow("192.0.2.3", 3000.0, 3600, (22,), strikes=3),  # since derived: 600 s ago
        BlockRow("192.0.2.4", None, 300, manual=True, since=DEMO_NOW - 10),
        BlockRow("192.0.2.5", None, 0, since=DEMO_NOW - 400),
    )
    snap = dataclasses.replace(EMPTY, blocked=rows, blocked_total=5)
    lines = render(blocked(snap), 100).splitlines()
    body = [ln for ln in lines if "192.0.2." in ln]
    assert [ln.split()[1] for ln in body] == [f"192.0.2.{i}" for i in (4, 2, 1, 5, 3)]
    assert "unknown of 5m" in body[0] and "manual" in body[0]
    assert "█████░░░░░ 2m30s" in body[1]
    assert "█░░░░░░░░░ 30s" in body[2]
    assert "no timeout" in body[3]
    assert "50m00s" in body[4]


def test_blocked_ports_compact(render):
    row = BlockRow("192.0.2.9", 10.0, 300, (8080, 22, 443, 80, 21, 23, 25, 53))
    snap = dataclasses.replace(EMPTY, blocked=(row,), blocked_total=1)
    assert "21,22,23 +5" in render(blocked(snap), 100)


def test_header_missing_counters_render_as_zero(render):
    snap = dataclasses.replace(DEMO, counters={"events": 7})
    text = render(header(snap), 100)
    for label in ("responses", "blocks", "unblocks", "decode errors", "valve drops",
                  "allowlisted", "suppressed"):  # fmt: skip
        assert f"{label} " in text
    assert "events " in text and " 7 " in text


def test_header_sources_health(render):
    srcs = (
        SourceHealth("/var/log/suricata/eve.json", "file", True, 10, 12.5, 3 * 1024 * 1024),
        SourceHealth("/run/scanguard/eve.sock", "unix_dgram", False, detail="bind failed"),
    )
    snap = dataclasses.replace(EMPTY, sources=srcs)
    text = render(header(snap), 100)
    assert "✓ ok   file   /var/log/suricata/eve.json" in text and "lag 3.0 MiB" in text
    assert "12.5 lines/s" in text
    assert "✗ DOWN socket /run/scanguard/eve.sock" in text and "bind failed" in text
    assert text.index("✗ DOWN") < text.index("✓ ok")  # problems first
    only = render(header(snap, problems_only=True), 100)
    assert "✗ DOWN" in only and "✓ ok" not in only
    capped = render(header(dataclasses.replace(EMPTY, sources=srcs * 3), max_sources=2), 100)
    assert "+5 more sources" in capped


def test_activity_sparkline_and_top_ports(render):
    snap = dataclasses.replace(
        EMPTY,
        history=(0.0, 1.0, 2.0, 4.0, 8.0),
        top_ports=(PortRow(80, "tcp", 5), PortRow(22, "tcp", 50), PortRow(53, "udp", 10)),
    )
    text = render(activity(snap), 50)
    assert " ▁▃▄▅█ │" in text  # right-aligned, zero is ▁, the max is █
    assert text.index("  22 tcp") < text.index("  53 udp") < text.index("  80 tcp")
    assert "max 8.0" in text and "now 8.0" in text


def test_decisions_newest_first_relative_to_snapshot(render):
    decs = tuple(
        DecisionRow.of(Decision(DEMO_NOW - age, action, "192.0.2.7", ttl=ttl, count=4,
                                ports=(22, 80, 443, 8080), reason=reason))
        for age, action, ttl, reason in ((90, "block", 300, "4 responses"), (5, "unblock", 0,
                                                                            "manual"))
    )  # fmt: skip
    snap = dataclasses.replace(EMPTY, decisions=decs)
    lines = [ln for ln in render(decisions(snap), 100).splitlines() if "192.0.2.7" in ln]
    assert "5s unblock" in lines[0] and "manual" in lines[0]
    assert "1m30s block" in lines[1] and "5m" in lines[1] and "22,80,443 +1" in lines[1]
    assert "latest 1 of 2" in render(decisions(snap, 1), 100)


def test_decision_with_odd_timestamp_does_not_crash(render):
    odd = (DecisionRow("yesterday", "block", "192.0.2.9"),
           DecisionRow(iso(DEMO_NOW - 2.0), "expire", "192.0.2.1"))
    snap = dataclasses.replace(EMPTY, decisions=odd)
    text = render(decisions(snap), 100)
    assert "yesterday" in text and "2s" in text


def test_view_never_reads_the_clock(monkeypatch, render):
    def boom() -> float:
        raise AssertionError("view read the clock")

    expected = render(layout(DEMO, 120, 40), 120, 40)
    monkeypatch.setattr(time, "time", boom)
    monkeypatch.setattr(time, "monotonic", boom)
    assert render(layout(DEMO, 120, 40), 120, 40) == expected


@pytest.mark.parametrize("width", [80, 120])
def test_colours_survive_light_backgrounds(width):
    console = Console(width=width, height=40, color_system="truecolor", file=io.StringIO())
    allowed = {"red", "green", "yellow", "cyan", "magenta"}
    for snap in (DEMO, EMPTY):
        for seg in console.render(layout(snap, width, 40)):
            style = seg.style
            if style is None:
                continue
            assert style.bgcolor is None, f"background fill on {seg.text!r}"
            if style.color is not None:
                assert style.color.type is ColorType.STANDARD, seg
                assert style.color.name in allowed, f"{style.color.name} on {seg.text!r}"


@pytest.mark.parametrize("per_row", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("max_sources", [None, 0, 1, 2, 6])
@pytest.mark.parametrize("problems_only", [False, True])
def test_header_height_is_what_header_draws(per_row, max_sources, problems_only, render):
    srcs = DEMO.sources * 3  # 9 sources, 3 down
    snap = dataclasses.replace(DEMO, sources=srcs)
    opts = {"per_row": per_row, "max_sources": max_sources, "problems_only": problems_only}
    drawn = render(header(snap, **opts), 200).splitlines()
    assert len(drawn) == header_height(snap, **opts)
