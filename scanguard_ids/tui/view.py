"""Pure render functions of a Snapshot: each returns a rich renderable.

Nothing here reads the clock or does I/O. Times are shown relative to ``snap.taken``,
so one snapshot always draws the same frame (the golden tests rely on it). Colours
are standard named colours and bold only, with no background fills, so the monitor
stays readable on light and dark terminals and without colour at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from scanguard_ids.snapshot import BlockRow, Snapshot, SourceHealth, WatchRow
from scanguard_ids.timefmt import parse_eve_ts
from scanguard_ids.tui.alarms import alarm_banner, banner_height
from scanguard_ids.tui.widgets import (
    Ports,
    Sparkline,
    bar,
    count_bar,
    fmt_bytes,
    fmt_count,
    fmt_countdown,
    fmt_duration,
    fmt_rate,
    fmt_ttl,
)

#: Terminals at least this wide get two columns of panels.
WIDE = 120
#: Terminals at least this tall list every source in the header.
TALL = 30
_KIND_SHORT = MappingProxyType(
    {"tcp-rst": "rst", "icmp-port-unreachable": "icmp", "icmp6-port-unreachable": "icmp6"}
)


# -- helpers ----------------------------------------------------------------------------------


def _ago(taken: float, ts: float) -> str:
    return f"{fmt_duration(taken - ts)} ago"


def _short_path(name: str, limit: int = 48) -> str:
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]


def _kinds(kinds: Iterable[str]) -> str:
    return ",".join(dict.fromkeys(_KIND_SHORT.get(k, k) for k in kinds))


def _table(*columns: tuple[str, str], min_address: int = 0, flex: tuple[str, ...] = ()) -> Table:
    """A borderless table whose rows never wrap: each row is exactly one line.

    ``flex`` columns take the spare width and give way first; "address" keeps
    ``min_address`` cells.
    """
    table = Table(box=None, expand=True, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
    for name, justify in columns:
        table.add_column(
            name,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=True,
            overflow="ellipsis",
            ratio=1 if name in flex else None,
            min_width=min_address if name == "address" else None,
        )
    return table


def _address_width(ips: Iterable[str]) -> int:
    return min(39, max((len(ip) for ip in ips), default=7))


def _with_more(table: Table, more: str) -> RenderableType:
    """The table, then the 'more' line as its own line (so a column cannot crop it)."""
    return Group(table, _line(more, "italic")) if more else table


def _fit(n_rows: int, total: int, max_rows: int | None) -> tuple[int, int]:
    """(rows to show, how many are left out) so that rows + the 'more' line <= max_rows."""
    total = max(total, n_rows)
    shown = n_rows if max_rows is None else min(n_rows, max(0, max_rows))
    if max_rows is not None and total > shown and shown >= max_rows:
        shown = max(0, max_rows - 1)
    return shown, total - shown


def _line(text: str, style: str = "") -> Text:
    """One line that never wraps (the layout counts lines)."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def _panel(body: RenderableType, title: str) -> Panel:
    return Panel(body, title=Text(title, style="bold"), title_align="left", padding=(0, 1))


# -- panels -------------------------------------------------------------------------------


def _counter(snap: Snapshot, key: str) -> int:
    value = snap.counters.get(key, 0)
    return value if isinstance(value, int) else 0


def _header_items(snap: Snapshot) -> dict[str, Text]:
    def c(key: str, warn: str = "") -> Text:
        n = _counter(snap, key)
        return Text(fmt_count(n), style=f"bold {warn}" if n and warn else "bold")

    ok = sum(1 for s in snap.sources if s.ok)
    return {
        "events/s": Text(fmt_rate(snap.events_per_s), style="bold"),
        "responses/s": Text(fmt_rate(snap.responses_per_s), style="bold"),
        "blocked now": Text(fmt_count(max(snap.blocked_total, len(snap.blocked))), style="bold"),
        "sources": Text(
            f"{ok}/{len(snap.sources)}", style="bold" if ok == len(snap.sources) > 0 else "bold red"
        ),
        "events": c("events"),
        "responses": c("responses"),
        "blocks": c("blocks"),
        "unblocks": c("unblocks"),
        "decode errors": c("decode_errors", "yellow"),
        "valve drops": c("valve_drops", "red"),
        "allowlisted": c("allowlisted"),
        "suppressed": c("suppressed"),
    }


#: Header counters in reading order: grouped by meaning for 4 a row, and for 6 a row.
_ORDER_4 = (
    "events/s", "responses/s", "blocked now", "sources",
    "events", "responses", "blocks", "unblocks",
    "decode errors", "valve drops", "allowlisted", "suppressed",
)  # fmt: skip
_ORDER_6 = (
    "events/s", "responses/s", "blocked now", "decode errors", "valve drops", "sources",
    "events", "responses", "blocks", "unblocks", "allowlisted", "suppressed",
)  # fmt: skip
_GAP = 2


def _counter_rows(per_row: int) -> list[tuple[str, ...]]:
    order = _ORDER_6 if per_row == 6 else _ORDER_4
    return [order[i : i + per_row] for i in range(0, len(order), per_row)]


def _widths(rows: Sequence[Sequence[str]], items: dict[str, Text]) -> list[int]:
    """Per grid column: widest label + 1 + widest value."""
    cols = range(len(rows[0]))
    return [
        max(len(r[c]) for r in rows if c < len(r)) + 1
        + max(len(items[r[c]]) for r in rows if c < len(r))
        for c in cols
    ]  # fmt: skip


def counters_per_row(snap: Snapshot, width: int) -> int:
    """The most counters a row (6, 4, 3, 2 or 1) that fit a header panel ``width`` wide."""
    items = _header_items(snap)
    inner = width - 4  # borders and padding
    for per_row in (6, 4, 3, 2):
        widths = _widths(_counter_rows(per_row), items)
        if sum(widths) + _GAP * (len(widths) - 1) <= inner:
            return per_row
    return 1


def _source_line(src: SourceHealth, name_width: int) -> Text:
    mark = ("✓ ok  ", "green") if src.ok else ("✗ DOWN", "bold red")
    kind = "file" if src.kind == "file" else "socket"
    text = Text.assemble(
        mark,
        f" {kind:<6} ",
        _short_path(src.name, name_width).ljust(name_width),
        f"  {fmt_rate(src.lines_per_s):>5} lines/s",
        no_wrap=True,
        overflow="ellipsis",
    )
    if src.kind == "file":
        text.append(
            f"  lag {fmt_bytes(src.lag_bytes)}", style="yellow" if src.lag_bytes > 1_048_576 else ""
        )
    if src.detail:
        text.append(f"  {src.detail}", style="" if src.ok else "red")
    return text


def _pair(label: str, value: Text, width: int) -> Text:
    """'label      value' padded to width, the value right-aligned."""
    return Text.assemble(label, " " * max(1, width - len(label) - len(value)), value)


def header(
    snap: Snapshot,
    *,
    per_row: int = 4,
    max_sources: int | None = None,
    problems_only: bool = False,
) -> Panel:
    """Backend, uptime, thresholds (title); rates and counters; one line per source.

    ``per_row`` counters a row (see counters_per_row(); 12 counters, missing keys are 0).
    Sources that are down come first. ``problems_only`` lists only those (the counters
    already say "sources ok n/m"); ``max_sources`` caps the list with a "+N more" line.
    """
    title = (
        f"scanguard · {snap.backend} · up {fmt_duration(snap.taken - snap.started)} · "
        f"block at ≥{snap.count} responses on ≥{snap.ports} ports in {snap.window:g}s"
    )
    if snap.policy != "default":
        title += f" · policy {snap.policy}"
    items = _header_items(snap)
    rows = _counter_rows(per_row)
    grid = Table.grid(padding=(0, _GAP, 0, 0), expand=per_row == 6)
    widths = _widths(rows, items)
    for _ in widths:
        grid.add_column(no_wrap=True, overflow="ellipsis")
    for row in rows:
        grid.add_row(*(_pair(key, items[key], w) for key, w in zip(row, widths, strict=False)))
    srcs = sorted(snap.sources, key=lambda s: s.ok)  # stable: down first, else given order
    if problems_only:
        srcs = [s for s in srcs if not s.ok]
    shown, more = _fit(len(srcs), len(srcs), max_sources)
    parts: list[RenderableType] = [grid]
    name_width = min(40, max((len(src.name) for src in srcs[:shown]), default=0))
    parts += [_source_line(src, name_width) for src in srcs[:shown]]
    if more:
        parts.append(_line(f"+{more} more sources", "italic"))
    return _panel(Group(*parts), title)


def header_height(
    snap: Snapshot, *, per_row: int = 4, max_sources: int | None = None, problems_only: bool = False
) -> int:
    """Lines header() draws with these options (borders included)."""
    n = sum(1 for s in snap.sources if not s.ok) if problems_only else len(snap.sources)
    shown, more = _fit(n, n, max_sources)
    return 2 + len(_counter_rows(per_row)) + shown + (1 if more else 0)


def _closeness(row: WatchRow) -> tuple[int, float, float, str]:
    """Fewest missing responses+ports first, then most progress, then most recent."""
    missing = max(0, row.count_needed - row.responses) + max(0, row.ports_needed - row.ports)
    progress = min(1.0, row.responses / max(1, row.count_needed)) + min(
        1.0, row.ports / max(1, row.ports_needed)
    )
    return (missing, -progress, -row.last_seen, row.ip)


def watching(snap: Snapshot, max_rows: int | None = None) -> Panel:
    """Addresses on their way to a block, closest first.

    ``max_rows`` bounds the body lines below the column header, "... and N more" included.
    """
    total = max(snap.watching_total, len(snap.watching))
    if total == 0:
        return _panel(_line("no address is on its way to a block"), "watching 0")
    rows = sorted(snap.watching, key=_closeness)
    shown, more = _fit(len(rows), total, max_rows)
    table = _table(
        ("address", "left"),
        ("responses", "left"),
        ("ports", "left"),
        ("window", "right"),
        ("last", "right"),
        ("via", "left"),
        min_address=_address_width(r.ip for r in rows[:shown]),
        flex=("via",),
    )
    for r in rows[:shown]:
        table.add_row(
            Text(r.ip, style="bold"),
            count_bar(r.responses, r.count_needed),
            count_bar(r.ports, r.ports_needed),
            Text(fmt_countdown(max(0.0, r.window_left)), style="cyan"),
            _ago(snap.taken, r.last_seen),
            _kinds(r.kinds),
        )
    return _panel(
        _with_more(table, f"... and {more:,} more" if more else ""), f"watching {total:,}"
    )


def _block_since(snap: Snapshot, row: BlockRow) -> float:
    """When the block started; derived from ttl - remaining when the daemon did not know."""
    if row.since:
        return row.since
    if row.ttl and row.remaining is not None:
        return snap.taken - (row.ttl - row.remaining)
    return 0.0


def blocked(snap: Snapshot, max_rows: int | None = None) -> Panel:
    """Active blocks, newest first, with a shrinking TTL bar.

    Newest first, not by remaining time: escalated repeat offenders (long TTLs) would
    otherwise sit at the top for hours, and a live monitor is watched for what just
    happened; blocks about to expire fall off the bottom into "+N more".
    """
    total = max(snap.blocked_total, len(snap.blocked))
    if total == 0:
        return _panel(_line("nothing is blocked"), "blocked 0")
    rows = sorted(
        snap.blocked,
        key=lambda r: (-_block_since(snap, r), -(r.remaining or 0.0), r.ip),
    )
    shown, more = _fit(len(rows), total, max_rows)
    table = _table(
        ("address", "left"),
        ("ports", "left"),
        ("resp", "right"),
        ("strikes", "right"),
        ("ttl left", "left"),
        ("by", "left"),
        min_address=_address_width(r.ip for r in rows[:shown]),
        flex=("ports",),
    )
    for r in rows[:shown]:
        if r.ttl <= 0:
            ttl = Text("no timeout")
        elif r.remaining is None:
            ttl = Text(f"unknown of {fmt_ttl(r.ttl)}")
        else:
            ttl = Text.assemble(
                (bar(r.remaining / r.ttl, 10), "cyan"), f" {fmt_countdown(r.remaining)}"
            )
        table.add_row(
            Text(r.ip, style="bold"),
            Ports(r.ports),
            f"{r.responses:,}",
            Text(str(r.strikes), style="bold magenta" if r.strikes > 1 else ""),
            ttl,
            Text("manual", style="magenta") if r.manual else "auto",
        )
    return _panel(_with_more(table, f"+{more:,} more" if more else ""), f"blocked {total:,}")


def activity(snap: Snapshot, max_ports: int = 5) -> Panel:
    """Responses/s over the history as a sparkline, then the most probed local ports."""
    hist = snap.history
    if hist:
        label = Text.assemble(
            f"responses/s over {fmt_duration(len(hist))}   max ",
            (fmt_rate(max(hist)), "bold"),
            "   now ",
            (fmt_rate(hist[-1]), "bold"),
            no_wrap=True,
            overflow="ellipsis",
        )
    else:
        label = _line("responses/s: no history yet")
    parts: list[RenderableType] = [label, Sparkline(tuple(hist))]
    ports = sorted(snap.top_ports, key=lambda p: (-p.responses, p.port, p.proto))[:max_ports]
    if ports:
        top = max(1, ports[0].responses)
        table = _table(
            ("port", "right"), ("proto", "left"), ("responses", "right"), ("", "left"), flex=("",)
        )
        for p in ports:
            table.add_row(
                Text(str(p.port), style="bold"),
                p.proto,
                f"{p.responses:,}",
                Text(bar(p.responses / top, 12), style="magenta"),
            )
        parts.append(table)
    return _panel(Group(*parts), "activity")


def _decision_ts(value: str) -> float | None:
    try:
        return parse_eve_ts(value)
    except ValueError:
        return None


def decisions(snap: Snapshot, max_rows: int | None = None) -> Panel:
    """The latest decisions, newest first, with their evidence."""
    if not snap.decisions:
        return _panel(_line("no decisions yet"), "decisions")
    latest = list(reversed(snap.decisions))
    shown = len(latest) if max_rows is None else max(0, min(len(latest), max_rows))
    table = _table(
        ("ago", "right"),
        ("action", "left"),
        ("address", "left"),
        ("ttl", "right"),
        ("count", "right"),
        ("ports", "left"),
        ("reason", "left"),
        min_address=_address_width(d.ip for d in latest[:shown]),
        flex=("ports", "reason"),
    )
    for d in latest[:shown]:
        ts = _decision_ts(d.ts)
        style = {"block": "bold red", "unblock": "green"}.get(d.action, "bold")
        table.add_row(
            fmt_duration(snap.taken - ts) if ts is not None else d.ts,
            Text(d.action + (" (manual)" if d.manual else ""), style=style),
            Text(d.ip, style="bold"),
            fmt_ttl(d.ttl) if d.ttl else "",
            str(d.count or ""),
            Ports(d.ports),
            d.reason,
        )
    return _panel(table, f"decisions (latest {shown} of {len(latest)})")


# -- layout -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Slot:
    """One panel competing for lines: gets min_h or is dropped, then grows toward want."""

    name: str
    min_h: int
    want: int
    build: Callable[[int], RenderableType]
    weight: int = 1
    h: int = 0


def _table_slot(
    name: str, n_rows: int, total: int, min_rows: int, build: Callable[[int], RenderableType]
) -> _Slot:
    """A bordered table: 2 border lines + column header + rows (+ the 'more' line)."""
    total = max(total, n_rows)
    if total == 0:  # border + the "nothing here" line
        return _Slot(name, 3, 3, build)
    want = 3 + n_rows + (1 if total > n_rows else 0)
    return _Slot(name, min(want, 3 + min_rows), want, lambda h: build(h - 3))


def _slots(snap: Snapshot, min_rows: int) -> dict[str, _Slot]:
    n_ports = min(len(snap.top_ports), 8)
    n_dec = len(snap.decisions)
    slots = {
        "blocked": _table_slot(
            "blocked",
            len(snap.blocked),
            snap.blocked_total,
            min_rows,
            lambda rows: blocked(snap, rows),
        ),
        "watching": _table_slot(
            "watching",
            len(snap.watching),
            snap.watching_total,
            min_rows,
            lambda rows: watching(snap, rows),
        ),
        "activity": _Slot(
            "activity",
            4,
            4 + (1 + n_ports if n_ports else 0),
            lambda h: activity(snap, max_ports=max(0, h - 5)),
        ),
        "decisions": _table_slot(
            "decisions", n_dec, n_dec, min_rows + 2, lambda rows: decisions(snap, rows)
        ),
    }
    for name, weight in (("blocked", 3), ("watching", 3), ("decisions", 2)):
        slots[name].weight = weight
    return slots


def _allocate(slots: Sequence[_Slot], height: int, keep_all: bool) -> list[_Slot]:
    """Give each slot (in priority order) its minimum if it fits, then water-fill the rest."""
    kept: list[_Slot] = []
    left = height
    for slot in slots:
        if slot.min_h <= left or keep_all:
            slot.h = slot.min_h
            left -= slot.min_h
            kept.append(slot)
    while left > 0:
        hungry = [s for s in kept if s.h < s.want]
        if not hungry:
            break
        min(hungry, key=lambda s: ((s.h - s.min_h) / s.weight, -s.weight)).h += 1
        left -= 1
    return kept


def _column(slots: Sequence[_Slot], order: Sequence[str]) -> Group:
    by_name = {s.name: s for s in slots}
    return Group(*(by_name[n].build(by_name[n].h) for n in order if n in by_name))


def layout(snap: Snapshot, width: int, height: int, *, every_panel: bool = False) -> RenderableType:
    """All panels composed for a width x height terminal.

    Row budgets come from ``height``: each panel first gets its minimum, in priority
    order blocked, watching, activity, decisions (a panel whose minimum no longer fits
    is left out); spare lines then go to the tables, blocked and watching first.
    Narrow (< WIDE columns): one column, header / activity / watching / blocked /
    decisions. Wide: header on top, watching + blocked on the left, activity +
    decisions on the right. Below TALL lines the header lists only sources that are
    down. ``every_panel`` keeps every panel even past ``height`` (for --once).
    """
    wide = width >= WIDE
    tall = height >= TALL
    hdr_opts: dict[str, Any] = {
        "per_row": counters_per_row(snap, width),
        "max_sources": 6 if tall else 2,
        "problems_only": not tall,
    }
    top: RenderableType = header(snap, **hdr_opts)
    body_h = max(0, height - header_height(snap, **hdr_opts))
    if snap.alarms:  # a distributed scan is on: its banner goes right under the header
        banner = alarm_banner(snap.alarms, snap.taken)
        top = Group(top, banner)
        body_h = max(0, body_h - banner_height(snap.alarms))
    min_rows = 3 if height >= 20 else 1
    slots = _slots(snap, min_rows)
    if not wide:
        kept = _allocate(
            [slots[n] for n in ("blocked", "watching", "activity", "decisions")],
            body_h,
            every_panel,
        )
        return Group(top, _column(kept, ("activity", "watching", "blocked", "decisions")))
    left = _allocate([slots["blocked"], slots["watching"]], body_h, every_panel)
    right = _allocate([slots["activity"], slots["decisions"]], body_h, every_panel)
    grid = Table.grid(expand=True)
    grid.add_column(ratio=11)  # address tables need the room
    grid.add_column(ratio=9)
    grid.add_row(_column(left, ("watching", "blocked")), _column(right, ("activity", "decisions")))
    return Group(top, grid)
