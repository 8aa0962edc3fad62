"""`scanguard top`: the live monitor, attached read-only to a running daemon."""

from __future__ import annotations

import argparse

from scanguard_ids import control
from scanguard_ids.commands.common import add_socket, control_path
from scanguard_ids.snapshot import Snapshot


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("top", help="live monitor of a running daemon", description=__doc__)
    add_socket(p)
    p.add_argument("--once", action="store_true", help="render one frame to stdout and exit")
    p.add_argument("--refresh", type=float, default=1.0, help="seconds between frames")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scanguard_ids.tui.app import render_once, run_live

    path = control_path(args)

    def get() -> Snapshot:
        return Snapshot.from_dict(control.call(path, "snapshot", timeout=2.0))

    if args.once:
        from rich.console import Console

        render_once(get(), Console())
        return 0
    return run_live(get, refresh=args.refresh)
