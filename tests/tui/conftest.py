"""Golden-text helpers for the monitor tests.

SCANGUARD_UPDATE_GOLDEN=1 pytest tests/tui  rewrites tests/data/tui/*.txt from the
current rendering; review the diff before committing it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console, RenderableType

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "data" / "tui"


def render_text(renderable: RenderableType, width: int, height: int = 25) -> str:
    console = Console(
        width=width,
        height=height,
        color_system=None,
        force_terminal=False,
        record=True,
        file=io.StringIO(),
    )
    console.print(renderable)
    return console.export_text()


@pytest.fixture
def golden() -> Callable[[str, str], None]:
    def check(name: str, text: str) -> None:
        path = GOLDEN_DIR / name
        if os.environ.get("SCANGUARD_UPDATE_GOLDEN") == "1":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"missing {path}; run with SCANGUARD_UPDATE_GOLDEN=1"
        expected = path.read_text(encoding="utf-8")
        assert text == expected, f"{name} differs; SCANGUARD_UPDATE_GOLDEN=1 rewrites it"

    return check


@pytest.fixture
def render() -> Callable[..., str]:
    return render_text
