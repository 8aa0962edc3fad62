"""The CLI as a user meets it: help everywhere, real defaults in help, logging options anywhere."""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys

import orjson
import pytest

from scanguard_ids import config, logfmt
from scanguard_ids.cli import _all_parsers, build_parser

SG = [sys.executable, "-m", "scanguard_ids.cli"]


def _sg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SG, *args], capture_output=True, text=True, timeout=60, check=False)


def test_every_command_and_argument_has_help() -> None:
    parser = build_parser()
    missing = []
    for p in [parser, *_all_parsers(parser)]:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{p.prog} {a.dest}" for a in action._choices_actions if not a.help]
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{p.prog} {action.option_strings or action.dest}")
    assert missing == []


def test_defaults_in_help_are_the_real_defaults() -> None:
    text = _sg("run", "--help").stdout
    flat = " ".join(text.split())
    d, e, b = config.DetectConfig(), config.EveConfig(), config.BlockConfig()
    for phrase in (f"responses needed (default {d.count})",
                   f"distinct local ports needed (default {d.ports})",
                   f"(default {d.window:g})", f"(default {d.ttl})",
                   f"(default {e.socket_type})", f"(default {b.set_name})"):
        assert phrase in flat, phrase
    for m in re.finditer(r"\(default ([^)]+)\)", flat):
        assert "unix_dgram" not in m.group(1)


@pytest.mark.parametrize("argv", [["-v", "config", "example"], ["config", "example", "-v"],
                                  ["config", "-q", "example"], ["config", "example", "--quiet"]])
def test_logging_options_before_or_after_the_subcommand(argv: list[str]) -> None:
    r = _sg(*argv)
    assert r.returncode == 0, r.stderr


def test_option_before_subcommand_is_not_reset_by_it() -> None:
    args = build_parser().parse_args(["-vv", "config", "example"])
    assert args.verbose == 2 and args.log_format == "auto"
    args = build_parser().parse_args(["config", "example", "--log-format", "json"])
    assert args.log_format == "json" and args.verbose == 0


def test_version_names_reader_and_rule_pack() -> None:
    out = _sg("--version").stdout
    pattern = r"scanguard-ids \S+ \(eve reader: (c|msgspec|python), rule pack: \d+\.\d+\.\d+\)"
    assert re.match(pattern, out), out


def test_completion_scripts() -> None:
    for shell in ("bash", "zsh"):
        r = _sg("completion", shell)
        assert r.returncode == 0 and "scanguard" in r.stdout and "replay" in r.stdout, r.stderr
    assert _sg("completion", "fish").returncode == 2


def test_json_log_lines() -> None:
    rec = logging.LogRecord("scanguard_ids.engine", logging.INFO, __file__, 1,
                            "action=block ip=%s", ("192.0.2.9",), None)
    out = orjson.loads(logfmt.JsonFormatter().format(rec))
    assert out["level"] == "info" and out["logger"] == "scanguard_ids.engine"
    assert out["msg"] == "action=block ip=192.0.2.9" and out["ts"].endswith("Z")


def test_journal_style_lines_have_no_timestamp() -> None:
    rec = logging.LogRecord("scanguard_ids.daemon", logging.WARNING, __file__, 1, "x=1", (), None)
    assert logfmt.JournalFormatter("%(message)s").format(rec) == "<4>scanguard_ids.daemon: x=1"


def test_under_journald_needs_the_matching_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    assert not logfmt.under_journald()
    monkeypatch.delenv("JOURNAL_STREAM")
    assert not logfmt.under_journald()


def test_json_format_through_the_cli(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.toml"
    path.write_text("[detect]\ncount = 3\n")
    r = _sg("--log-format", "json", "-v", "-v", "config", "check", "--config", str(path))
    assert r.returncode == 0
    for line in r.stderr.splitlines():
        orjson.loads(line)
