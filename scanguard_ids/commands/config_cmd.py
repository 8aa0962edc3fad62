"""`scanguard config example|check|show`: annotated defaults, a check, the effective config."""

from __future__ import annotations

import argparse
import sys

from scanguard_ids.commands.run import add_options, effective_config
from scanguard_ids.config import load, render


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("config", help="print, check or show the configuration",
                       description=__doc__)
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True,
                             parser_class=type(p))
    e = verbs.add_parser("example", help="print the annotated default config (every key)")
    e.set_defaults(func=cmd_example)
    c = verbs.add_parser("check", help="validate a config file: exit 0, or 2 naming the key")
    c.add_argument("--config", metavar="FILE", required=True, help="TOML config to check")
    c.set_defaults(func=cmd_check)
    s = verbs.add_parser("show", help="print the effective config: defaults, file, options")
    add_options(s)
    s.set_defaults(func=cmd_show)


def cmd_example(args: argparse.Namespace) -> int:
    sys.stdout.write(render.example())
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    load(args.config)  # a ConfigError becomes one line and exit 2 in cli.main
    print(f"{args.config}: ok")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    sys.stdout.write(render.show(effective_config(args)))
    return 0
