"""The distributed-scan banner: a pure render function of the running alarms.

Like :mod:`scanguard_ids.tui.view`: no clock, no I/O; times are shown relative to
``taken`` (the snapshot's time), so the same input always draws the same frame. With no
alarm the banner draws nothing, so a layout can always include it.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from scanguard_ids.detect.distributed import Alarm
from scanguard_ids.tui.widgets import compact_ports, fmt_duration

#: Sources named per alarm before "+N".
SOURCES_SHOWN = 2


def _sources(a: Alarm) -> str:
    named = ", ".join(a.sources[:SOURCES_SHOWN])
    more = a.distinct_sources - min(len(a.sources), SOURCES_SHOWN)
    return f"{named} +{more}" if more > 0 else named


def alarm_banner(alarms: Sequence[Alarm], taken: float, limit: int = 3) -> RenderableType:
    """Running distributed-scan alarms (``DistributedDetector.active()``), newest first.

    One row each: target, distinct sources, ports, responses, age, time left, whether the
    shield blocks the sources, and the first sources; at most ``limit`` rows, then "+N more".
    """
    if not alarms:
        return Group()
    table = Table(box=None, expand=True, pad_edge=False, padding=(0, 1, 0, 0),
                  header_style="bold")
    for name, justify, ratio in (("target", "left", None), ("sources", "right", None),
                                 ("ports", "left", None), ("resp", "right", None),
                                 ("since", "right", None), ("left", "right", None),
                                 ("mode", "left", None), ("first sources", "left", 1)):
        table.add_column(name, justify=justify, no_wrap=True,  # type: ignore[arg-type]
                         overflow="ellipsis", ratio=ratio)
    for a in alarms[:limit]:
        table.add_row(
            Text(a.target, style="bold"),
            str(a.distinct_sources),
            compact_ports(a.ports) if a.ports else "-",
            str(a.responses),
            fmt_duration(taken - a.since),
            fmt_duration(a.until - taken),
            Text("shield", style="bold red") if not a.detect_only else "alarm",
            _sources(a),
        )
    body: RenderableType = table
    if len(alarms) > limit:
        body = Group(table, Text(f"+{len(alarms) - limit} more", style="dim"))
    n = len(alarms)
    title = Text(f"DISTRIBUTED SCAN: {n} target{'s' if n != 1 else ''}", style="bold red")
    return Panel(body, title=title, title_align="left", border_style="red", padding=(0, 1))


def banner_height(alarms: Sequence[Alarm], limit: int = 3) -> int:
    """Lines :func:`alarm_banner` draws (borders and header row included); 0 with no alarm."""
    if not alarms:
        return 0
    return 2 + 1 + min(len(alarms), limit) + (1 if len(alarms) > limit else 0)
