"""Text made from the one key definition: the annotated example, the README table, `show`.

``examples/scanguard.toml`` and the README's configuration table are copies of
:func:`example` and :func:`readme_table`; ``python -m scanguard_ids.config.render --write``
refreshes both, and a test fails when they drift.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import fields
from pathlib import Path
from typing import Any

from scanguard_ids.config.schema import SECTIONS, Config, info

WIDTH = 96
HEADER = """\
# scanguard-ids configuration. Every key is optional; the values shown are the defaults
# (where an example value is shown instead, the comment gives the default).
# Unknown keys and bad values are rejected with one line naming the key (exit status 2):
# `scanguard config check --config FILE`. SIGHUP reloads every key not marked
# "restart to apply"; the daemon logs the changed keys that need a restart.
"""
README_BEGIN = "<!-- config-table:begin (generated: python -m scanguard_ids.config.render) -->"
README_END = "<!-- config-table:end -->"


def toml_value(value: Any, octal: bool = False) -> str:
    """One value as TOML (the subset our keys use)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return oct(value) if octal else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")  # pragma: no cover


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH - 2, initial_indent="# ", subsequent_indent="# ",
                         break_on_hyphens=False)


def _section_lines(name: str, section: Any, annotate: bool) -> list[str]:
    lines = [f"[{name}]"]
    if annotate:
        lines += _comment(type(section).__doc__ or "")
    for f in fields(section):
        ki = info(f)
        value = getattr(section, f.name)
        shown = value
        doc = ki.doc
        if annotate and ki.example is not None:
            shown = ki.example
            doc += f" Default: {toml_value(value, ki.octal)}."
        if annotate and ki.restart:
            doc += " (restart to apply)"
        if annotate:
            lines += _comment(doc)
        lines.append(f"{f.name} = {toml_value(shown, ki.octal)}")
    return lines


def example() -> str:
    """The annotated default config (`scanguard config example`, examples/scanguard.toml)."""
    cfg = Config()
    out = [HEADER]
    for name in SECTIONS:
        out.append("\n".join(_section_lines(name, getattr(cfg, name), annotate=True)) + "\n")
    return "\n".join(out)


def show(cfg: Config) -> str:
    """The effective config as plain TOML (`scanguard config show`): every key, no comments."""
    return "\n".join(
        "\n".join(_section_lines(name, getattr(cfg, name), annotate=False)) + "\n"
        for name in SECTIONS
    )


def readme_table() -> str:
    """The README's configuration table: one row per key."""
    cfg = Config()
    rows = [README_BEGIN, "", "| key | default | meaning |", "| --- | --- | --- |"]
    for name in SECTIONS:
        section = getattr(cfg, name)
        for f in fields(section):
            ki = info(f)
            default = toml_value(getattr(section, f.name), ki.octal)
            doc = ki.doc.replace("|", "\\|")
            if ki.choices:
                doc += " One of: " + ", ".join(f"`{c}`" for c in ki.choices) + "."
            if ki.restart:
                doc += " *Restart to apply.*"
            rows.append(f"| `{name}.{f.name}` | `{default}` | {doc} |")
    rows += ["", README_END]
    return "\n".join(rows)


def splice_readme(text: str) -> str:
    """``text`` (the README) with its generated table replaced by the current one."""
    begin, end = text.index(README_BEGIN), text.index(README_END) + len(README_END)
    return text[:begin] + readme_table() + text[end:]


def main(argv: list[str]) -> int:
    """Developer tool: rewrite examples/scanguard.toml and the README table in a checkout."""
    root = Path(argv[0]) if argv else Path.cwd()
    (root / "examples" / "scanguard.toml").write_text(example())
    readme = root / "README.md"
    readme.write_text(splice_readme(readme.read_text()))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
