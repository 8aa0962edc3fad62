"""`scanguard` entry point: parse arguments, dispatch to scanguard_ids.commands.*, exit codes.

Exit status: 0 success, 1 runtime failure, 2 bad argument or config (one line naming the key).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from scanguard_ids import __version__
from scanguard_ids.errors import ConfigError, ScanguardError

#: subcommand -> module under scanguard_ids.commands (imported lazily)
COMMANDS = {
    "run": "run",
    "replay": "replay",
    "status": "control_cmds",
    "list": "control_cmds",
    "block": "control_cmds",
    "unblock": "control_cmds",
    "top": "top",
    "firewall": "firewall",
    "rules": "rules",
    "lab": "lab",
    "config": "config_cmd",
}


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument on one line and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> Parser:
    parser = Parser(prog="scanguard", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"scanguard-ids {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    seen: set[str] = set()
    for name, module in COMMANDS.items():
        mod = importlib.import_module(f"scanguard_ids.commands.{module}")
        if module in seen and not hasattr(mod, f"add_{name}"):
            continue
        add = getattr(mod, f"add_{name}", None) or mod.add_parser
        add(sub)
        seen.add(module)
    return parser


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"scanguard {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ScanguardError as exc:
        print(f"scanguard {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
