"""The scanguard rule pack as data: parse its rules, check them against the SID registry, export.

A pack is a directory: ``scanguard.rules`` (loaded by default), ``scanguard-extended.rules``
(every rule commented out = off by default), ``VERSION``, ``CHANGELOG.md``, ``README.md`` and
``sid-registry.tsv``, the registry of every SID ever used (retired ones included) with its rev
and a hash of its normalised body. ``check_pack`` finds what a release must not have (duplicate
or out-of-block SIDs, a reused SID, a body changed without a rev bump, an unregistered change, no
CHANGELOG entry); ``update_registry`` records intended changes; ``export`` writes the
reproducible release tarball suricata-update takes as a source, with .md5/.sha256 files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import re
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from scanguard_ids import suricata
from scanguard_ids.config import SID_CORE_LAST, SID_FIRST, SID_LAST
from scanguard_ids.errors import ScanguardError

log = logging.getLogger(__name__)

CORE_FILE = "scanguard.rules"
EXTENDED_FILE = "scanguard-extended.rules"
RULE_FILES = (CORE_FILE, EXTENDED_FILE)
REGISTRY_FILE = "sid-registry.tsv"
DOC_FILES = ("VERSION", "CHANGELOG.md", "README.md")
#: SIDs of scanguard-extended.rules; the core pack uses SID_FIRST..EXTENDED_FIRST-1.
EXTENDED_FIRST = SID_CORE_LAST + 1
#: Metadata items left out of a rule's body hash (they change with every edit on their own).
_VOLATILE_METADATA = frozenset({"created_at", "updated_at"})
#: Problems that --update-registry records (an intended change); all others are errors to fix.
RECORDABLE = frozenset({"unregistered", "rev-unrecorded", "missing-from-pack", "registry"})

_ACTIONS = "alert|drop|pass|reject|rejectsrc|rejectdst|rejectboth"
_RULE_RE = re.compile(rf"^(?P<action>{_ACTIONS})\s+(?P<header>[^(]*?)\s*\((?P<body>.*)\)\s*$")
_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
_CHANGELOG_RE = re.compile(r"^##\s+\[?(\d+\.\d+\.\d+)\]?(?:\s+[-\u2013]\s+(\d{4}-\d{2}-\d{2}))?")
_REGISTRY_COLUMNS = ("sid", "rev", "status", "version", "kind", "proto", "hash", "msg")


class RulePackError(ScanguardError):
    """The pack's files are missing or unreadable, or an export cannot be made."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a pack file; ``enabled`` is False for a commented-out rule."""

    sid: int
    rev: int
    msg: str
    kind: str  # metadata scanguard_kind, "" if none
    proto: str
    enabled: bool
    text: str  # the rule without its leading '#'
    file: str
    line: int
    doc: str  # the comment lines right above it
    hash: str  # body_hash(text)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a pack; str() gives 'file:line: sid N: code: message'."""

    code: str
    message: str
    sid: int | None = None
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file or "pack"
        if self.line is not None:
            where += f":{self.line}"
        sid = f" sid {self.sid}:" if self.sid is not None else ""
        return f"{where}:{sid} {self.code}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "sid": self.sid, "file": self.file,
                "line": self.line}


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of the SID registry."""

    sid: int
    rev: int
    status: str  # "active" | "retired"
    version: str  # the pack version that recorded this rev (or the retirement)
    kind: str
    proto: str
    hash: str
    msg: str


@dataclass(frozen=True, slots=True)
class Artifact:
    """A release tarball and its checksum files."""

    path: Path
    md5: str
    sha256: str
    members: tuple[str, ...]

    @property
    def md5_path(self) -> Path:
        return self.path.with_name(self.path.name + ".md5")

    @property
    def sha256_path(self) -> Path:
        return self.path.with_name(self.path.name + ".sha256")


# -- parsing -------------------------------------------------------------------------------


def split_options(body: str) -> list[tuple[str, str]]:
    """(keyword, value) pairs of a rule's option list; ';' and '\\;' in quotes are kept."""
    out: list[tuple[str, str]] = []
    cur: list[str] = []
    quoted = escaped = False
    for ch in body:
        if escaped:
            cur.append(ch)
            escaped = False
            continue
        if ch == "\\":
            cur.append(ch)
            escaped = True
        elif ch == '"':
            cur.append(ch)
            quoted = not quoted
        elif ch == ";" and not quoted:
            key, _, value = "".join(cur).strip().partition(":")
            out.append((key.strip(), value.strip()))
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip() or quoted:
        raise ValueError("unterminated option list")
    return out


def _metadata(options: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    items = []
    for key, value in options:
        if key == "metadata":
            for item in value.split(","):
                name, _, val = item.strip().partition(" ")
                items.append((name, val.strip()))
    return items


def body_hash(header: str, options: Sequence[tuple[str, str]]) -> str:
    """sha256 of the rule without sid, rev and the created_at/updated_at metadata."""
    parts = [" ".join(header.split())]
    for key, value in options:
        if key in ("sid", "rev"):
            continue
        if key == "metadata":
            value = ", ".join(f"{n} {v}".strip() for n, v in _metadata([(key, value)])
                              if n not in _VOLATILE_METADATA)
        parts.append(f"{key}:{value}" if value else key)
    return hashlib.sha256("; ".join(parts).encode()).hexdigest()


def _rule_candidate(line: str) -> tuple[str, bool] | None:
    """(text, enabled) if the line is a rule or a commented-out rule, else None."""
    stripped = line.strip()
    enabled = not stripped.startswith("#")
    text = stripped.lstrip("#").strip()
    if _RULE_RE.match(text) is None:
        return None
    return text, enabled


def parse_text(text: str, file: str) -> tuple[list[Rule], list[Problem]]:
    """Rules (enabled and commented-out) of one rule file, and lines that are no valid rule."""
    rules: list[Rule] = []
    problems: list[Problem] = []
    doc: list[str] = []
    for n, raw in enumerate(text.splitlines(), 1):
        cand = _rule_candidate(raw)
        if cand is None:
            stripped = raw.strip()
            if stripped.startswith("#"):
                doc.append(stripped.lstrip("#").strip())
            elif stripped:
                problems.append(Problem("parse", "not a rule (one rule per line)", None, file, n))
                doc = []
            else:
                doc = []
            continue
        rule_text, enabled = cand
        match = _RULE_RE.match(rule_text)
        assert match is not None
        try:
            opts = split_options(match["body"])
        except ValueError as exc:
            problems.append(Problem("parse", str(exc), suricata.sid_of(rule_text), file, n))
            doc = []
            continue
        values = dict(opts)
        try:
            sid = int(values["sid"])
            rev = int(values["rev"])
        except (KeyError, ValueError):
            problems.append(Problem("parse", "needs an integer sid and rev",
                                    suricata.sid_of(rule_text), file, n))
            doc = []
            continue
        kind = next((v for k, v in _metadata(opts) if k == "scanguard_kind"), "")
        header = match["header"]
        rules.append(Rule(sid=sid, rev=rev, msg=values.get("msg", "").strip('"'), kind=kind,
                          proto=(header.split() or [""])[0], enabled=enabled, text=rule_text,
                          file=file, line=n, doc="\n".join(doc),
                          hash=body_hash(f"{match['action']} {header}", opts)))
        doc = []
    return rules, problems


def load_rules(paths: Iterable[str | Path]) -> tuple[list[Rule], list[Problem]]:
    rules: list[Rule] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise RulePackError(f"cannot read rule file {path}: {exc.strerror}") from None
        got, bad = parse_text(text, str(path))
        rules += got
        problems += bad
    return rules, problems


# -- the pack on disk ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pack:
    """A rule-pack directory."""

    root: Path

    def path(self, name: str) -> Path:
        return self.root / name

    @property
    def rule_files(self) -> list[Path]:
        return [self.root / n for n in RULE_FILES if (self.root / n).is_file()]

    @property
    def registry_path(self) -> Path:
        return self.root / REGISTRY_FILE

    def read(self, name: str) -> str:
        try:
            return (self.root / name).read_text(encoding="utf-8")
        except OSError as exc:
            raise RulePackError(f"cannot read {self.root / name}: {exc.strerror}") from None

    def version(self) -> str:
        version = self.read("VERSION").strip()
        if not _VERSION_RE.match(version):
            raise RulePackError(f"{self.root / 'VERSION'}: not a version N.N.N: {version!r}")
        return version


def find_pack() -> Pack:
    """The pack shipped in the package (scanguard_ids/rules), else the source tree's rules/."""
    shipped = Path(str(resources.files("scanguard_ids") / "rules"))
    source = Path(__file__).resolve().parent.parent / "rules"
    for root in (shipped, source):
        if (root / CORE_FILE).is_file():
            return Pack(root.resolve())
    raise RulePackError(f"rule pack not found (looked in {shipped} and {source})")


def changelog_entries(text: str) -> list[tuple[str, str | None]]:
    """(version, date) of each '## <version> - <date>' heading, in file order."""
    return [(m[1], m[2]) for m in map(_CHANGELOG_RE.match, text.splitlines()) if m]


def changelog_section(text: str, version: str) -> str:
    """The body of the CHANGELOG section of one version ('' if none)."""
    out: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("## "):
            m = _CHANGELOG_RE.match(line)
            inside = m is not None and m[1] == version
            continue
        if inside:
            out.append(line)
    return "\n".join(out)


# -- the registry --------------------------------------------------------------------------


def read_registry(path: str | Path) -> dict[int, Entry]:
    """sid -> Entry of a registry file (tab-separated, '#' comments)."""
    entries: dict[int, Entry] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RulePackError(f"cannot read SID registry {path}: {exc.strerror}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if len(cells) != len(_REGISTRY_COLUMNS) or cells[0] == "sid":
            if cells[0] == "sid":
                continue
            raise RulePackError(f"{path}:{n}: expected {len(_REGISTRY_COLUMNS)} tab-separated "
                                f"columns {_REGISTRY_COLUMNS}")
        try:
            entry = Entry(int(cells[0]), int(cells[1]), *cells[2:])
        except ValueError:
            raise RulePackError(f"{path}:{n}: sid and rev must be integers") from None
        if entry.status not in ("active", "retired"):
            raise RulePackError(f"{path}:{n}: status must be active or retired")
        if entry.sid in entries:
            raise RulePackError(f"{path}:{n}: SID {entry.sid} listed twice")
        entries[entry.sid] = entry
    return entries


def format_registry(entries: dict[int, Entry]) -> str:
    head = ("# scanguard SID registry: every SID the pack ever used, retired ones included.\n"
            "# hash = sha256 of the rule without sid, rev, created_at, updated_at.\n"
            "# Maintained by `scanguard rules check --update-registry` (see README.md).\n")
    rows = ["\t".join(_REGISTRY_COLUMNS)]
    for e in sorted(entries.values(), key=lambda e: e.sid):
        rows.append("\t".join(str(v) for v in (e.sid, e.rev, e.status, e.version, e.kind,
                                                e.proto, e.hash, e.msg)))
    return head + "\n".join(rows) + "\n"


def sid_block(file: str | Path) -> tuple[int, int]:
    """The SIDs a rule file may use: core, extended, or (any other file) the whole block."""
    name = Path(file).name
    if name == CORE_FILE:
        return SID_FIRST, EXTENDED_FIRST - 1
    if name == EXTENDED_FILE:
        return EXTENDED_FIRST, SID_LAST
    return SID_FIRST, SID_LAST


def _block_problems(rule: Rule) -> list[Problem]:
    lo, hi = sid_block(rule.file)
    if lo <= rule.sid <= hi:
        return []
    return [Problem("sid-range", f"SID outside {lo}-{hi}", rule.sid, rule.file, rule.line)]


def check_rules(rules: Sequence[Rule], registry: dict[int, Entry] | None, *,
                complete: bool = True) -> list[Problem]:
    """Duplicate / out-of-block SIDs, and (with a registry) reuse, rev bumps, unrecorded changes.

    complete=False: ``rules`` is part of the pack only, so a registry SID missing from it is fine.
    """
    problems: list[Problem] = []
    seen: dict[int, Rule] = {}
    for rule in rules:
        problems += _block_problems(rule)
        if rule.sid in seen:
            first = seen[rule.sid]
            problems.append(Problem("duplicate-sid", f"also at {first.file}:{first.line}",
                                    rule.sid, rule.file, rule.line))
            continue
        seen[rule.sid] = rule
        if rule.rev < 1:
            problems.append(Problem("rev", "rev must be >= 1", rule.sid, rule.file, rule.line))
        if registry is None:
            continue
        problems += _registry_problems(rule, registry.get(rule.sid))
    if registry is not None and complete:
        for sid, entry in sorted(registry.items()):
            if entry.status == "active" and sid not in seen:
                problems.append(Problem("missing-from-pack", "registered as active but no rule "
                                        "has it: record its retirement", sid))
    return problems


def _registry_problems(rule: Rule, entry: Entry | None) -> list[Problem]:
    def p(code: str, message: str) -> list[Problem]:
        return [Problem(code, message, rule.sid, rule.file, rule.line)]

    if entry is None:
        return p("unregistered", "new SID, not in the registry yet")
    if entry.status == "retired":
        return p("retired-sid-reused", f"SID retired in {entry.version} ({entry.msg!r}): "
                                       "never reuse a SID, take a new one")
    if (entry.kind, entry.proto) != (rule.kind, rule.proto):
        return p("sid-reused", f"registered for a different rule (kind {entry.kind!r}, proto "
                               f"{entry.proto!r}; now {rule.kind!r}, {rule.proto!r}): "
                               "take a new SID")
    if rule.rev < entry.rev:
        return p("rev-decreased", f"rev {rule.rev} is below the registered rev {entry.rev}")
    if rule.hash != entry.hash and rule.rev == entry.rev:
        return p("rev-not-bumped", f"rule body changed since rev {entry.rev} was registered: "
                                   f"bump rev to {entry.rev + 1} (and updated_at)")
    if rule.rev > entry.rev:
        return p("rev-unrecorded", f"rev {rule.rev} not recorded (registry has rev {entry.rev})")
    return []


def release_problems(pack: Pack, registry: dict[int, Entry] | None) -> list[Problem]:
    """VERSION is valid and the newest CHANGELOG entry; the entry names SIDs it changed."""
    try:
        version = pack.version()
    except RulePackError as exc:
        return [Problem("version", str(exc), file=str(pack.path("VERSION")))]
    try:
        text = pack.read("CHANGELOG.md")
    except RulePackError as exc:
        return [Problem("changelog", str(exc))]
    file = str(pack.path("CHANGELOG.md"))
    entries = changelog_entries(text)
    found = dict(entries)
    if version not in found:
        return [Problem("changelog", f"no '## {version} - YYYY-MM-DD' entry for VERSION {version}",
                        file=file)]
    problems = []
    if entries[0][0] != version:
        problems.append(Problem("changelog", f"newest entry is {entries[0][0]}, VERSION is "
                                             f"{version}", file=file))
    if found[version] is None:
        problems.append(Problem("changelog", f"entry {version} has no date (## {version} - "
                                             "YYYY-MM-DD)", file=file))
    section = changelog_section(text, version)
    for entry in (registry or {}).values():
        if entry.version == version and not re.search(rf"\b{entry.sid}\b", section):
            problems.append(Problem("changelog", f"the {version} entry does not mention SID "
                                                 f"{entry.sid} (rev {entry.rev}, {entry.status})",
                                    entry.sid, file))
    return problems


def check_pack(pack: Pack, files: Sequence[str | Path] | None = None,
               ) -> tuple[list[Rule], list[Problem]]:
    """Every static check of a pack (no Suricata). files: check only these rule files.

    Problems with code "note" are information, not errors.
    """
    rules, problems = load_rules(files or pack.rule_files)
    registry = read_registry(pack.registry_path) if pack.registry_path.is_file() else None
    if registry is None:  # an error for the pack; for loose files only a note
        problems.append(Problem("registry" if files is None else "note",
                                f"no {REGISTRY_FILE} in {pack.root}: registry checks skipped"))
    problems += check_rules(rules, registry, complete=files is None)
    if files is None:
        problems += release_problems(pack, registry)
    return rules, problems


def update_registry(rules: Sequence[Rule], registry: dict[int, Entry], version: str,
                    ) -> dict[int, Entry]:
    """The registry with the pack's intended changes recorded (new SIDs, rev bumps, retirements).

    Raises RulePackError when the pack has a change that must be fixed instead (a reused SID, a
    body changed without a rev bump, a duplicate or out-of-block SID).
    """
    hard = [p for p in check_rules(rules, registry) if p.code not in RECORDABLE]
    if hard:
        raise RulePackError("registry not updated; fix first:\n" + "\n".join(map(str, hard)))
    new = dict(registry)
    present = {r.sid for r in rules}
    for rule in rules:
        old = registry.get(rule.sid)
        if old is None or old.rev != rule.rev or old.hash != rule.hash:
            new[rule.sid] = Entry(rule.sid, rule.rev, "active", version, rule.kind, rule.proto,
                                  rule.hash, rule.msg)
    for sid, entry in registry.items():
        if entry.status == "active" and sid not in present:
            new[sid] = replace(entry, status="retired", version=version)
    return new


# -- suricata -T on pack files --------------------------------------------------------------


def write_enabled(files: Sequence[str | Path], dest: str | Path) -> list[tuple[str, int]]:
    """Concatenate rule files into dest with commented-out rules enabled.

    Returns the (file, line) each line of dest came from.
    """
    combined: list[str] = []
    origin: list[tuple[str, int]] = []
    for path in files:
        for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            cand = _rule_candidate(line)
            combined.append(cand[0] if cand else line)
            origin.append((str(path), n))
    Path(dest).write_text("\n".join(combined) + "\n", encoding="utf-8")
    return origin


def suricata_problems(files: Sequence[str | Path],
                      home_net: Sequence[str] = suricata.CHECK_HOME_NET, *,
                      binary: str | None = None, timeout: float = 60.0,
                      ) -> tuple[list[Problem], tuple[str, ...]]:
    """``suricata -T`` on the files together, commented-out rules enabled; errors keep file:line.

    Returns (problems, Suricata's warnings).
    """
    with tempfile.TemporaryDirectory(prefix="sg-rules-") as tmp:
        merged = Path(tmp) / "pack.rules"
        origin = write_enabled(files, merged)
        result = suricata.test_rules(merged, home_net, binary=binary, timeout=timeout)
    problems = []
    for err in result.errors:
        where: tuple[str | None, int | None] = (None, None)
        if err.line is not None and 0 < err.line <= len(origin):
            where = origin[err.line - 1]
        problems.append(Problem("suricata", err.message, err.sid, *where))
    return problems, result.warnings


# -- export -------------------------------------------------------------------------------


def _release_time(pack: Pack, version: str) -> int:
    date = dict(changelog_entries(pack.read("CHANGELOG.md"))).get(version)
    if not date:
        raise RulePackError(f"CHANGELOG.md has no dated entry for {version}")
    return int(datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())


def tarball_bytes(pack: Pack) -> tuple[bytes, tuple[str, ...]]:
    """The release tarball (gzip) of a pack, byte-for-byte reproducible, and its member names.

    Members are rules/<file>, sorted, mode 0644, owner 0:0 without names, mtime = the CHANGELOG
    date of VERSION; the gzip header carries no name and mtime 0.
    """
    version = pack.version()
    mtime = _release_time(pack, version)
    names = sorted(n for n in (*RULE_FILES, *DOC_FILES) if pack.path(n).is_file())
    members = tuple(f"rules/{n}" for n in names)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, member in zip(names, members, strict=True):
            data = pack.path(name).read_bytes()
            info = tarfile.TarInfo(member)
            info.size, info.mtime, info.mode = len(data), mtime, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue(), members


def export(pack: Pack, out_dir: str | Path) -> Artifact:
    """Write scanguard-rules-<version>.tar.gz and its .md5 / .sha256 into out_dir.

    The .md5 holds the bare hex digest: suricata-update fetches <url>.md5 and compares it,
    stripped, with the md5 of its cached copy to skip an unchanged download. The .sha256 is in
    ``sha256sum -c`` format.
    """
    version = pack.version()
    data, members = tarball_bytes(pack)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"scanguard-rules-{version}.tar.gz"
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    sha256 = hashlib.sha256(data).hexdigest()
    art = Artifact(path, md5, sha256, members)
    path.write_bytes(data)
    art.md5_path.write_text(md5 + "\n")
    art.sha256_path.write_text(f"{sha256}  {path.name}\n")
    log.info("rules_export path=%s version=%s sha256=%s", path, version, sha256)
    return art
