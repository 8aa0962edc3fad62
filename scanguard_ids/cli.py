"""`scanguard` entry point: parse arguments, dispatch to scanguard_ids.commands.*, exit codes.

Exit status: 0 success, 1 runtime failure, 2 bad argument or config (one line naming the key).
"""


from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from scanguard_ids import __version__, logfmt
from scanguard_ids.errors import ConfigError, ScanguardError

DESCRIPTION = """\
Port-scan defence for hosts and networks that run Suricata. A scanned host gives the scan
away in what it sends back (TCP RSTs, ICMP port unreachables); scanguard reads those alerts
from Suricata's EVE output and blocks the scanner in the kernel (ipset or nftables), with
timeouts the kernel expires by itself."""
EPILOG = """\
Start with `scanguard config example > scanguard.toml`, then `scanguard run --config
scanguard.toml`. `scanguard COMMAND --help` describes each command. Exit status: 0 ok,
1 runtime failure, 2 bad argument or config (one line naming the key)."""

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
    "completion": "completion",
}


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument on one line and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_logging_options(p: argparse.ArgumentParser, top: bool) -> None:
    """-v/-q/--log-format/--syslog, accepted before and after the subcommand.

    On subcommands the defaults are SUPPRESS, so an option given before the subcommand is not
    reset by the subcommand's parser.
    """
    dflt = (lambda v: v) if top else (lambda _v: argparse.SUPPRESS)
    g = p.add_argument_group("logging")
    g.add_argument("-v", "--verbose", action="count", default=dflt(0),
                   help="more logging (-vv: debug)")
    g.add_argument("-q", "--quiet", action="store_true", default=dflt(False),
                   help="warnings and errors only")
    g.add_argument("--log-format", choices=("auto", "text", "json"), default=dflt("auto"),
                   help="auto: journal-style lines under systemd, timestamped text elsewhere; "
                        "json: one object per line (default: auto)")
    g.add_argument("--syslog", action="store_true", default=dflt(False),
                   help="also log to the local syslog (/dev/log)")


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                out.append(child)
                out.extend(_all_parsers(child))
    return out


def build_parser() -> Parser:
    parser = Parser(prog="scanguard", description=DESCRIPTION, epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=version_text())
    add_logging_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    seen: set[str] = set()
    for name, module in COMMANDS.items():
        mod = importlib.import_module(f"scanguard_ids.commands.{module}")
        if module in seen and not hasattr(mod, f"add_{name}"):
            continue
        add = getattr(mod, f"add_{name}", None) or mod.add_parser
        add(sub)
        seen.add(module)
    for child in _all_parsers(parser):
        add_logging_options(child, top=False)
    return parser


def version_text() -> str:
    """``scanguard --version``: the package, the EVE reader in use and the rule pack."""
    from scanguard_ids.eve.decode import Decoder
    from scanguard_ids.rulepack import find_pack

    decoder = Decoder(frozenset())
    reader = decoder.reader
    try:
        pack = find_pack().version()
    except ScanguardError as exc:
        pack = f"unknown ({exc})"
    return f"scanguard-ids {__version__} (eve reader: {reader}, rule pack: {pack})"


def setup_logging(verbose: int, quiet: bool, fmt: str = "auto", syslog: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logfmt.setup(level, fmt, syslog)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    setup_logging(args.verbose, args.quiet, args.log_format, args.syslog)
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
