"""Golden text of the distributed-scan banner (scanguard_ids.tui.alarms) at 100 columns."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from scanguard_ids.detect.distributed import Alarm
from scanguard_ids.tui.alarms import alarm_banner

T = 1_780_000_000.0


def alarm(target: str, n: int, ports: tuple[int, ...], since: float, shield: bool = False
          ) -> Alarm:
    sources = tuple(sorted(f"203.0.113.{10 + i}" for i in range(min(n, 32))))
    return Alarm("alarm", since, target, sources, n, n + 13, ports, 10.0, since - 3.5, T - 1,
                 since, since + 60, not shield)


ONE = [alarm("192.0.2.20", 40, (21, 23, 25, 53, 67, 110), T - 12)]
MANY = [
    alarm("192.0.2.20", 40, (21, 23, 25, 53, 67, 110), T - 12, shield=True),
    alarm("[2001:db8::1]:443/tcp", 3, (443,), T - 30),
    alarm("192.0.2.30", 22, (), T - 45),
    alarm("192.0.2.31", 25, (1, 2, 3, 4, 5), T - 50),
]

GOLDEN = {
    "empty": "",
    "one": """\
╭─ DISTRIBUTED SCAN: 1 target ─────────────────────────────────────────────────────────────────────╮
│ target     sources ports       resp since left mode  first sources                               │
│ 192.0.2.20      40 21,23,25 +3   53   12s  48s alarm 203.0.113.10, 203.0.113.11 +38              │
╰──────────────────────────────────────────────────────────────────────────────────────────────────╯
""",
    "many": """\
╭─ DISTRIBUTED SCAN: 4 targets ────────────────────────────────────────────────────────────────────╮
│ target                sources ports       resp since left mode   first sources                   │
│ 192.0.2.20                 40 21,23,25 +3   53   12s  48s shield 203.0.113.10, 203.0.113.11 +38  │
│ [2001:db8::1]:443/tcp       3 443           16   30s  30s alarm  203.0.113.10, 203.0.113.11 +1   │
│ 192.0.2.30                 22 -             35   45s  15s alarm  203.0.113.10, 203.0.113.11 +20  │
│ +1 more                                                                                          │
╰──────────────────────────────────────────────────────────────────────────────────────────────────╯
""",
}


def render(alarms: list[Alarm]) -> str:
    console = Console(width=100, color_system=None, record=True, file=io.StringIO())
    console.print(alarm_banner(alarms, T))
    return console.export_text()


@pytest.mark.parametrize(("name", "alarms"), [("empty", []), ("one", ONE), ("many", MANY)])
def test_banner_golden(name: str, alarms: list[Alarm]) -> None:
    assert render(alarms) == GOLDEN[name]


def test_banner_is_pure_and_lines_never_exceed_the_width() -> None:
    assert render(MANY) == render(MANY)
    assert all(len(line) <= 100 for line in render(MANY).splitlines())
