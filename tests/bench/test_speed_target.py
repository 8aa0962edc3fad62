"""Absolute throughput targets of the reference day are judged scaled by this run's yardstick."""

from __future__ import annotations

from bench.common import REFERENCE_NAIVE_ALERTS, Context, machine_factor, speed_target


def test_without_a_yardstick_the_absolute_target_is_judged() -> None:
    ctx = Context(quick=True)
    assert machine_factor(ctx) is None
    text, met = speed_target(ctx, 99_999.0, 100_000.0, "lines/s")
    assert met is False and text == ">= 100,000 lines/s"
    assert speed_target(ctx, 100_000.0, 100_000.0, "lines/s")[1] is True


def test_a_slower_machine_scales_the_target_down_and_says_so() -> None:
    ctx = Context(yardstick=REFERENCE_NAIVE_ALERTS / 4)
    assert machine_factor(ctx) == 0.25
    text, met = speed_target(ctx, 25_000.0, 100_000.0, "lines/s")
    assert met is True
    assert "100,000 lines/s on the 2026-11-26 machine" in text and ">= 25,000 here (x0.25)" in text
    assert speed_target(ctx, 24_999.0, 100_000.0, "lines/s")[1] is False


def test_a_faster_machine_scales_the_target_up() -> None:
    ctx = Context(yardstick=REFERENCE_NAIVE_ALERTS * 2)
    assert speed_target(ctx, 150_000.0, 100_000.0, "lines/s")[1] is False
    assert speed_target(ctx, None, 100_000.0, "lines/s")[1] is None
