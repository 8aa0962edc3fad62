"""`scanguard lab` (being built)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("lab", help="(not yet available)")
    p.set_defaults(func=lambda _a: 1)
