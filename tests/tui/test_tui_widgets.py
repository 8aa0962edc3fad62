"""The small formatters and renderables the monitor panels use."""

from __future__ import annotations

import pytest

from scanguard_ids.tui.widgets import (
    SPARK,
    bar,
    compact_ports,
    count_bar,
    fmt_bytes,
    fmt_count,
    fmt_countdown,
    fmt_duration,
    fmt_rate,
    fmt_ttl,
    sparkline,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "0s"), (float("nan"), "0s"), (0, "0s"), (59.9, "59s"), (60, "1m00s"),
     (3599, "59m59s"), (3600, "1h00m"), (11_525, "3h12m"), (86_400 * 2 + 3 * 3600, "2d03h")],
)  # fmt: skip
def test_fmt_duration(seconds, text):
    assert fmt_duration(seconds) == text


def test_countdown_rounds_up_and_ttl_is_short():
    assert fmt_countdown(0.2) == "1s"
    assert fmt_countdown(None) == "?"
    assert fmt_countdown(299.5) == "5m00s"
    assert [fmt_ttl(t) for t in (45, 300, 5400, 86_400, 90_061)] == [
        "45s",
        "5m",
        "1h30m",
        "1d",
        "1d1h",
    ]


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0"), (48_119, "48,119"), (99_999, "99,999"), (161_327, "161k"), (1_611_327, "1.61M"),
     (250_000_000, "250M")],
)  # fmt: skip
def test_fmt_count(n, text):
    assert fmt_count(n) == text


def test_fmt_rate_and_bytes():
    assert [fmt_rate(v) for v in (0, -1, 0.66, 12.34, 853.4, 12_345)] == [
        "0", "0", "0.7", "12.3", "853", "12.3k"
    ]  # fmt: skip
    assert [fmt_bytes(n) for n in (0, 1023, 1536, 3 << 20, 5 << 30)] == [
        "0 B", "1023 B", "1.5 KiB", "3.0 MiB", "5.0 GiB"
    ]  # fmt: skip


def test_bar_is_fixed_width_and_clamped():
    assert bar(0, 4) == "░░░░"
    assert bar(1, 4) == "████"
    assert bar(2, 4) == "████"
    assert bar(-1, 4) == "░░░░"
    assert bar(0.5, 5) == "██▌░░"
    assert bar(float("nan"), 3) == "░░░"
    assert bar(0.5, 0) == ""
    assert all(len(bar(i / 37, 10)) == 10 for i in range(38))


def test_count_bar_one_cell_per_unit():
    assert count_bar(2, 3).plain == "██░ 2/3"
    assert count_bar(5, 3).plain == "███ 5/3"
    assert count_bar(1, 2).plain == "█░ 1/2"
    assert count_bar(3, 12).plain == "█▌░░░░ 3/12"  # scaled beyond 6
    assert count_bar(1, 0).plain == "█ 1/1"


def test_compact_ports():
    assert compact_ports((443, 22, 80, 8080, 21, 25, 53, 110)) == "21,22,25 +5"
    assert compact_ports((22, 80, 443)) == "22,80,443"
    assert compact_ports((22, 22, 80)) == "22,80"
    assert compact_ports(()) == ""
    assert compact_ports((22, 80, 443, 993), shown=1) == "22 +3"


def test_sparkline_scales_to_max_and_keeps_peaks():
    assert sparkline([], 5) == "     "
    assert sparkline([0, 0, 0], 3) == "▁▁▁"
    line = sparkline([0, 1, 2, 4, 8], 8)
    assert line == "   ▁▃▄▅█"
    assert set(sparkline([v % 50 for v in range(300)], 40)) <= set(SPARK)
    # 300 values into 30 cells: bucket maxima, so a one-second burst survives
    burst = [1.0] * 300
    burst[137] = 100.0
    line = sparkline(burst, 30)
    assert len(line) == 30 and line.count("█") == 1 and line.count("▂") == 29
    assert sparkline([float("nan"), float("inf"), -3, 2], 4) == "▁▁▁█"
