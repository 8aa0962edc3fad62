"""Small formatters and renderables the monitor panels are built from (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

SPARK = "▁▂▃▄▅▆▇█"
_EIGHTHS = " ▏▎▍▌▋▊▉"


def fmt_duration(seconds: float) -> str:
    """42s, 4m05s, 3h12m, 2d03h. Negative and NaN show as 0s."""
    s = int(seconds) if math.isfinite(seconds) and seconds > 0 else 0
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def fmt_ttl(seconds: float) -> str:
    """A configured duration, short: 45s, 5m, 1h30m, 2d."""
    s = int(seconds) if math.isfinite(seconds) and seconds > 0 else 0
    parts = []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            n, s = divmod(s, size)
            parts.append(f"{n}{unit}")
    return "".join(parts[:2]) or "0s"


def fmt_countdown(seconds: float | None) -> str:
    """Time left, rounded up so a running block never reads 0s."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    return fmt_duration(math.ceil(seconds))


def fmt_bytes(n: int) -> str:
    value = float(max(0, n))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - loop always returns


def fmt_rate(per_s: float) -> str:
    if not math.isfinite(per_s) or per_s <= 0:
        return "0"
    if per_s >= 10_000:
        return f"{per_s / 1000:.1f}k"
    return f"{per_s:.0f}" if per_s >= 100 else f"{per_s:.1f}"


def bar(fraction: float, width: int) -> str:
    """A fixed-width bar: full blocks, one partial eighth block, light shade for the rest."""
    if width <= 0:
        return ""
    f = min(1.0, max(0.0, fraction)) if math.isfinite(fraction) else 0.0
    full, part = divmod(round(f * width * 8), 8)
    text = "█" * full + (_EIGHTHS[part] if part else "")
    return text + "░" * (width - len(text))


def count_bar(have: int, need: int) -> Text:
    """Progress toward one threshold: one cell per unit up to 6, then scaled; then 'x/n'."""
    need = max(1, need)
    done = have >= need
    return Text.assemble(
        (bar(have / need, min(need, 6)), "red" if done else "yellow"),
        f" {have}/{need}",
    )


def compact_ports(ports: Iterable[int], shown: int = 3) -> str:
    """'22,80,443 +5': the lowest few ports, then how many more."""
    uniq = sorted(set(ports))
    text = ",".join(str(p) for p in uniq[:shown])
    return f"{text} +{len(uniq) - shown}" if len(uniq) > shown else text


@dataclass(frozen=True, slots=True)
class Ports:
    """compact_ports() showing as many ports (up to 3) as the column width allows."""

    ports: tuple[int, ...]
    most: int = 3

    def _forms(self) -> list[str]:
        return [compact_ports(self.ports, n) for n in range(self.most, 0, -1)]

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        forms = self._forms()
        return Measurement(min(len(f) for f in forms), max(len(f) for f in forms))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        forms = self._forms()
        text = next((f for f in forms if len(f) <= options.max_width), forms[-1])
        yield Text(text, no_wrap=True, overflow="ellipsis")


def sparkline(values: Sequence[float], width: int) -> str:
    """Right-aligned sparkline of ``values`` (oldest first) in ``width`` cells.

    With more values than cells, each cell shows the max of an even share of them (scan
    bursts are peaks, an average would hide them). Scaled to the max: ▁ is exactly zero, any
    non-zero value is at least ▂, the max is █. Cells without data are blank.
    """
    if width <= 0:
        return ""
    vals = [v if math.isfinite(v) and v > 0 else 0.0 for v in values]
    if len(vals) > width:
        n = len(vals)  # cell i covers values [i*n//width, (i+1)*n//width): all cells used
        vals = [max(vals[i * n // width : (i + 1) * n // width]) for i in range(width)]
    top = max(vals, default=0.0)
    cells = [
        SPARK[0] if v <= 0 or top <= 0 else SPARK[1 + min(6, round(v / top * 6))] for v in vals
    ]
    return "".join(cells).rjust(width)


def fmt_count(n: int) -> str:
    """48,119 up to 99,999; then 161k, 1.61M: header cells stay narrow."""
    if n < 100_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n // 1000}k"
    return f"{n / 1_000_000:.2f}M" if n < 100_000_000 else f"{n // 1_000_000}M"


@dataclass(frozen=True, slots=True)
class Sparkline:
    """A one-line sparkline that takes the width it is given at render time."""

    values: tuple[float, ...]
    style: str = "cyan"

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(sparkline(self.values, options.max_width), style=self.style, no_wrap=True)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, options.max_width)
