"""`scanguard rules list|show|check|export|path`: the Suricata rule pack shipped with scanguard.

check validates the pack with the real `suricata -T` and the SID registry (exit 1 on a problem);
export writes the release tarball suricata-update takes as a source (see rules/README.md).
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

import orjson

from scanguard_ids import rulepack
from scanguard_ids.errors import ConfigError
from scanguard_ids.suricata import CHECK_HOME_NET, SuricataError, address_group


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "rules", help="list, check and export the Suricata rule pack", description=__doc__
    )
    p.set_defaults(func=lambda _a: _usage(p))
    rs = p.add_subparsers(dest="rules_command", metavar="ACTION", parser_class=type(p))

    lst = rs.add_parser("list", help="SID, rev, kind, state and msg of every rule")
    lst.add_argument("--json", action="store_true", help="one JSON array")
    _add_pack(lst)
    lst.set_defaults(func=run_list)

    show = rs.add_parser("show", help="a rule's text and what it detects")
    show.add_argument("sid", type=int, metavar="SID", help="the rule's SID, e.g. 9400000")
    show.add_argument("--json", action="store_true", help="one JSON object")
    _add_pack(show)
    show.set_defaults(func=run_show)

    chk = rs.add_parser("check", help="suricata -T plus the SID-registry and release checks")
    chk.add_argument(
        "--rules",
        metavar="FILE",
        action="append",
        help="check this rule file instead of the pack's (repeatable); registry "
        "checks use a sid-registry.tsv beside it, if any",
    )
    chk.add_argument(
        "--home-net",
        metavar="CIDR,...",
        help="HOME_NET for the check (default: Suricata's stock private ranges)",
    )
    chk.add_argument(
        "--suricata", metavar="PATH", help="suricata binary (default: $SURICATA or PATH)"
    )
    chk.add_argument("--no-suricata", action="store_true", help="static checks only")
    chk.add_argument(
        "--update-registry",
        action="store_true",
        help="record new SIDs, rev bumps and retirements in sid-registry.tsv",
    )
    chk.add_argument("--json", action="store_true", help="problems as one JSON object")
    _add_pack(chk)
    chk.set_defaults(func=run_check)

    exp = rs.add_parser("export", help="write scanguard-rules-<version>.tar.gz + .md5/.sha256")
    exp.add_argument("--out", metavar="DIR", default=".", help="output directory (default .)")
    _add_pack(exp)
    exp.set_defaults(func=run_export)

    path = rs.add_parser("path", help="where the shipped rule file is")
    path.add_argument("--dir", action="store_true", help="print the pack directory instead")
    _add_pack(path)
    path.set_defaults(func=run_path)


def _add_pack(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pack",
        metavar="DIR",
        help="rule-pack directory (default: the one shipped "
        "with scanguard, see `scanguard rules path`)",
    )


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def _pack(args: argparse.Namespace) -> rulepack.Pack:
    if args.pack:
        root = Path(args.pack)
        if not (root / rulepack.CORE_FILE).is_file():
            raise ConfigError("--pack", f"no {rulepack.CORE_FILE} in {root}")
        return rulepack.Pack(root.resolve())
    return rulepack.find_pack()


def _json(obj: object) -> None:
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")


def _rule_dict(rule: rulepack.Rule) -> dict[str, object]:
    return {
        "sid": rule.sid,
        "rev": rule.rev,
        "kind": rule.kind,
        "enabled": rule.enabled,
        "msg": rule.msg,
        "file": rule.file,
        "line": rule.line,
    }


def run_list(args: argparse.Namespace) -> int:
    rules, _problems = rulepack.load_rules(_pack(args).rule_files)
    rules.sort(key=lambda r: r.sid)
    if args.json:
        _json([_rule_dict(r) for r in rules])
        return 0
    width = max([len(r.kind) for r in rules] + [4])
    print(f"{'SID':<8} {'REV':>3}  {'KIND':<{width}}  {'STATE':<5}  MSG")
    for r in rules:
        print(
            f"{r.sid:<8} {r.rev:>3}  {r.kind:<{width}}  {'on' if r.enabled else 'off':<5}  {r.msg}"
        )
    return 0


def readme_rows(text: str) -> dict[int, dict[str, str]]:
    """SID -> {column header: cell} of the README tables whose first column is a SID."""
    rows: dict[int, dict[str, str]] = {}
    header: list[str] = []
    for line in text.splitlines():
        if not line.startswith("|"):
            header = []
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not header:
            header = [c.lower() for c in cells]
        elif cells[0].isdigit():
            rows[int(cells[0])] = dict(zip(header, cells, strict=False))
    return rows


def run_show(args: argparse.Namespace) -> int:
    pack = _pack(args)
    rules, _problems = rulepack.load_rules(pack.rule_files)
    rule = next((r for r in rules if r.sid == args.sid), None)
    if rule is None:
        print(f"scanguard rules show: no rule with SID {args.sid} in {pack.root}", file=sys.stderr)
        return 1
    readme = pack.path("README.md")
    row = (
        readme_rows(readme.read_text(encoding="utf-8")).get(rule.sid, {})
        if readme.is_file()
        else {}
    )
    fires = row.get("fires on", "")
    guards = row.get("false-positive guards", "")
    if args.json:
        _json(
            {
                **_rule_dict(rule),
                "rule": rule.text,
                "doc": rule.doc,
                "fires_on": fires,
                "false_positive_guards": guards,
            }
        )
        return 0
    state = "enabled" if rule.enabled else "OFF (commented out; see the file's header)"
    print(f"SID {rule.sid} rev {rule.rev}  kind {rule.kind or '-'}  {state}")
    print(f"{rule.file}:{rule.line}")
    print()
    print(rule.text)
    if rule.doc:
        print(f"\nAbout:\n{rule.doc}")
    for title, text in (("Fires on", fires), ("False-positive guards", guards)):
        if text:
            print(f"\n{title}:")
            print(textwrap.fill(re.sub(r"`([^`]*)`", r"\1", text), width=100))
    return 0


def _home_net(args: argparse.Namespace) -> tuple[str, ...]:
    if not args.home_net:
        return CHECK_HOME_NET
    nets = tuple(n.strip() for n in args.home_net.split(",") if n.strip())
    try:
        address_group(nets)
    except SuricataError as exc:
        raise ConfigError("--home-net", str(exc)) from None
    return nets


def run_check(args: argparse.Namespace) -> int:
    home_net = _home_net(args)
    if args.rules:
        files = [Path(f) for f in args.rules]
        for f in files:
            if not f.is_file():
                raise ConfigError("--rules", f"no such file: {f}")
        if args.update_registry:
            raise ConfigError("--update-registry", "updates the whole pack: drop --rules")
        pack = rulepack.Pack(files[0].resolve().parent)
    else:
        pack = _pack(args)
        files = pack.rule_files
    rules, problems = rulepack.check_pack(pack, files if args.rules else None)
    warnings: tuple[str, ...] = ()
    if not args.no_suricata:
        found, warnings = rulepack.suricata_problems(files, home_net, binary=args.suricata)
        problems += found
    recorded: list[str] = []
    if args.update_registry:
        blocking = [p for p in problems if p.code not in rulepack.RECORDABLE]
        if not blocking:
            recorded = _update_registry(pack, rules)
            rules, static = rulepack.check_pack(pack)
            problems = static + [p for p in problems if p.code == "suricata"]
    notes = [p for p in problems if p.code == "note"]
    problems = [p for p in problems if p.code != "note"]
    problems.sort(key=lambda p: (p.file or "", p.line or 0, p.sid or 0))
    if args.json:
        _json(
            {
                "ok": not problems,
                "rules": len(rules),
                "files": [str(f) for f in files],
                "problems": [p.to_dict() for p in problems],
                "warnings": list(warnings),
                "notes": [p.message for p in notes],
                "recorded": recorded,
            }
        )
        return 1 if problems else 0
    for line in recorded:
        print(f"recorded: {line}")
    for p in notes:
        print(f"note: {p.message}", file=sys.stderr)
    for w in warnings:
        print(f"suricata warning: {w}", file=sys.stderr)
    for p in problems:
        print(p)
    if any(p.code in rulepack.RECORDABLE for p in problems):
        print(
            "hint: an intended change? record it: scanguard rules check --update-registry",
            file=sys.stderr,
        )
    checked = "suricata -T and static checks" if not args.no_suricata else "static checks"
    status = "ok" if not problems else f"{len(problems)} problem(s)"
    print(f"{len(rules)} rules in {len(files)} file(s), {checked}: {status}")
    return 1 if problems else 0


def _update_registry(pack: rulepack.Pack, rules: list[rulepack.Rule]) -> list[str]:
    path = pack.registry_path
    old = rulepack.read_registry(path) if path.is_file() else {}
    new = rulepack.update_registry(rules, old, pack.version())
    changed = [
        f"{e.sid} rev {e.rev} {e.status} ({e.msg})"
        for sid, e in sorted(new.items())
        if old.get(sid) != e
    ]
    if changed or not path.is_file():
        path.write_text(rulepack.format_registry(new), encoding="utf-8")
    return changed


def run_export(args: argparse.Namespace) -> int:
    pack = _pack(args)
    _rules, problems = rulepack.check_pack(pack)
    problems = [p for p in problems if p.code != "note"]
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        print(
            "scanguard rules export: the pack has problems; fix them (scanguard rules check)",
            file=sys.stderr,
        )
        return 1
    art = rulepack.export(pack, args.out)
    print(art.path)
    print(art.md5_path)
    print(art.sha256_path)
    return 0


def run_path(args: argparse.Namespace) -> int:
    pack = _pack(args)
    print(pack.root if args.dir else pack.path(rulepack.CORE_FILE))
    return 0
