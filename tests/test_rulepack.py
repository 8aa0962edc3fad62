"""The rule pack as data: parsing, SID registry guard, release checks, export, extended rules."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tarfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from pcaps import HOME_NET, SCENARIOS
from pcaps_extended import EXTENDED, HALF_OPEN_SID

from scanguard_ids import rulepack, suricata
from scanguard_ids.config import SID_FIRST, SID_LAST

REPO = Path(__file__).resolve().parent.parent
CORE = rulepack.CORE_FILE
EXT = rulepack.EXTENDED_FILE


@pytest.fixture
def pack(tmp_path: Path) -> rulepack.Pack:
    """A writable copy of the real pack."""
    return rulepack.Pack(Path(shutil.copytree(rulepack.find_pack().root, tmp_path / "rules")))


def edit(pack: rulepack.Pack, name: str, old: str, new: str, count: int = 1) -> None:
    path = pack.path(name)
    text = path.read_text()
    assert text.count(old) >= count, old
    path.write_text(text.replace(old, new, count))


def codes(pack: rulepack.Pack) -> Counter[str]:
    _rules, problems = rulepack.check_pack(pack)
    return Counter(p.code for p in problems)


def record(pack: rulepack.Pack) -> None:
    rules, _ = rulepack.load_rules(pack.rule_files)
    new = rulepack.update_registry(rules, rulepack.read_registry(pack.registry_path),
                                   pack.version())
    pack.registry_path.write_text(rulepack.format_registry(new))


# -- parsing -------------------------------------------------------------------------------


def test_split_options_keeps_escaped_and_quoted_semicolons() -> None:
    opts = rulepack.split_options(r'msg:"a\;b; c"; content:"|3b|"; nocase; sid:9400001; rev:2;')
    assert opts == [("msg", r'"a\;b; c"'), ("content", '"|3b|"'), ("nocase", ""),
                    ("sid", "9400001"), ("rev", "2")]
    with pytest.raises(ValueError):
        rulepack.split_options('msg:"open; sid:1;')


def test_parse_text_rules_comments_and_garbage() -> None:
    text = "\n".join([
        "# header prose, not a rule",
        "",
        "# Detects a thing.",
        "# Second line of its doc.",
        'alert tcp any any -> any any (msg:"one"; metadata:scanguard_kind tcp-rst; sid:9400010; '
        "rev:3;)",
        '#   alert udp any any -> any any (msg:"two"; sid:9400011; rev:1;)',
        "this is no rule",
        'alert tcp any any -> any any (msg:"no rev"; sid:9400012;)',
    ])
    rules, problems = rulepack.parse_text(text, "x.rules")
    one, two = rules
    assert (one.sid, one.rev, one.msg, one.kind, one.proto, one.enabled, one.line) == (
        9400010, 3, "one", "tcp-rst", "tcp", True, 5)
    assert one.doc == "Detects a thing.\nSecond line of its doc."
    assert (two.sid, two.enabled, two.line, two.doc) == (9400011, False, 6, "")
    assert two.text.startswith("alert udp")
    assert [(p.code, p.line, p.sid) for p in problems] == [("parse", 7, None),
                                                           ("parse", 8, 9400012)]


def _hash(rule: str) -> str:
    rules, problems = rulepack.parse_text(rule, "h.rules")
    assert not problems
    return rules[0].hash


BASE = ('alert tcp $HOME_NET any -> $EXTERNAL_NET any (msg:"m"; flags:RA,CE; '
        "metadata:scanguard_kind tcp-rst, created_at 2026_11_25, updated_at 2026_11_25; "
        "sid:9400000; rev:1;)")


@pytest.mark.parametrize(("variant", "same"), [
    (BASE.replace("rev:1", "rev:7"), True),
    (BASE.replace("updated_at 2026_11_25", "updated_at 2027_01_02"), True),
    (BASE.replace("created_at 2026_11_25, ", ""), True),
    (BASE.replace("$HOME_NET any ->", "$HOME_NET   any  ->"), True),
    ("# " + BASE, True),
    (BASE.replace('msg:"m"', 'msg:"n"'), False),
    (BASE.replace("flags:RA,CE", "flags:R,CE"), False),
    (BASE.replace("scanguard_kind tcp-rst", "scanguard_kind helper"), False),
    (BASE.replace("alert tcp", "drop tcp"), False),
])
def test_body_hash_ignores_only_rev_sid_and_dates(variant: str, same: bool) -> None:
    assert (_hash(variant) == _hash(BASE)) is same


# -- the real pack -------------------------------------------------------------------------


def test_the_pack_passes_every_static_check() -> None:
    """The release guard: duplicate / out-of-block / reused SIDs, rev bumps, registry, CHANGELOG."""
    pack = rulepack.find_pack()
    assert pack.root == (REPO / "rules").resolve()
    rules, problems = rulepack.check_pack(pack)
    assert problems == []
    assert {r.sid for r in rules} <= set(range(SID_FIRST, SID_LAST + 1))
    registry = rulepack.read_registry(pack.registry_path)
    assert {r.sid for r in rules} <= set(registry)
    assert pack.registry_path.read_text() == rulepack.format_registry(registry), "hand-edited?"


def test_extended_rules_are_off_and_in_their_block() -> None:
    pack = rulepack.find_pack()
    rules, _ = rulepack.load_rules(pack.rule_files)
    by_file = {name: [r for r in rules if Path(r.file).name == name] for name in (CORE, EXT)}
    assert all(r.enabled and r.sid < rulepack.EXTENDED_FIRST for r in by_file[CORE])
    assert by_file[EXT] and all(not r.enabled and r.sid >= rulepack.EXTENDED_FIRST
                                for r in by_file[EXT])
    assert {r.kind for r in by_file[EXT]} == {"half-open", "helper"}
    assert HALF_OPEN_SID in {r.sid for r in by_file[EXT]}


# -- each thing the guard must catch ---------------------------------------------------------


DUP = ('alert tcp $HOME_NET any -> $EXTERNAL_NET any (msg:"dup"; flags:R; metadata:scanguard_kind '
       "tcp-rst; sid:{sid}; rev:1;)\n")


@pytest.mark.parametrize(("file", "sid", "code"), [
    (CORE, 9400000, "duplicate-sid"),
    (CORE, 9400100, "sid-range"),
    (CORE, 9399999, "sid-range"),
    (CORE, 9400050, "sid-range"),  # extended SIDs stay out of the core file
    (EXT, 9400010, "sid-range"),  # and core SIDs out of the extended file
])
def test_guard_catches_bad_sids(pack: rulepack.Pack, file: str, sid: int, code: str) -> None:
    with pack.path(file).open("a") as fh:
        fh.write(DUP.format(sid=sid))
    assert code in codes(pack)


def test_guard_catches_changed_body_without_rev_bump(pack: rulepack.Pack) -> None:
    edit(pack, CORE, "flags:RA,CE;", "flags:RA;")
    _rules, problems = rulepack.check_pack(pack)
    assert [(p.code, p.sid, Path(p.file or "").name, p.line) for p in problems] == [
        ("rev-not-bumped", 9400000, CORE, 7)]
    with pytest.raises(rulepack.RulePackError, match="rev-not-bumped"):
        record(pack)
    edit(pack, CORE, "sid:9400000; rev:1;", "sid:9400000; rev:2;")
    assert codes(pack) == {"rev-unrecorded": 1}
    record(pack)  # 1.0.0's CHANGELOG section already names 9400000
    assert codes(pack) == {}
    assert rulepack.read_registry(pack.registry_path)[9400000].rev == 2


def test_guard_catches_a_sid_reused_for_another_rule(pack: rulepack.Pack) -> None:
    edit(pack, CORE, "scanguard_kind tcp-rst", "scanguard_kind icmp-port-unreachable")
    edit(pack, CORE, "sid:9400000; rev:1;", "sid:9400000; rev:2;")
    assert codes(pack) == {"sid-reused": 1}


def test_guard_catches_rev_going_back(pack: rulepack.Pack) -> None:
    registry = rulepack.read_registry(pack.registry_path)
    registry[9400001] = replace(registry[9400001], rev=5)
    pack.registry_path.write_text(rulepack.format_registry(registry))
    assert codes(pack) == {"rev-decreased": 1}


def test_retired_sids_stay_retired(pack: rulepack.Pack) -> None:
    core = pack.path(CORE)
    helper = next(line for line in core.read_text().splitlines() if "sid:9400003;" in line)
    core.write_text(core.read_text().replace(helper + "\n", ""))
    assert codes(pack) == {"missing-from-pack": 1}
    record(pack)
    assert rulepack.read_registry(pack.registry_path)[9400003].status == "retired"
    assert codes(pack) == {}
    with core.open("a") as fh:  # the SID comes back, even with a new rev: refused
        fh.write(helper.replace("rev:1;", "rev:2;") + "\n")
    assert codes(pack) == {"retired-sid-reused": 1}


def test_new_sid_needs_registry_and_changelog(pack: rulepack.Pack) -> None:
    with pack.path(CORE).open("a") as fh:
        fh.write(DUP.format(sid=9400004).replace('"dup"', '"new"'))
    assert codes(pack) == {"unregistered": 1}
    record(pack)
    _rules, problems = rulepack.check_pack(pack)
    assert [(p.code, p.sid) for p in problems] == [("changelog", 9400004)]
    edit(pack, "CHANGELOG.md", "First release.", "First release.\n\n- Added 9400004 rev 1.")
    assert codes(pack) == {}


@pytest.mark.parametrize(("version", "changelog", "needle"), [
    ("1.1.0", None, "no '## 1.1.0"),
    ("1.0", None, "not a version"),
    ("1.0.0", "## 1.0.0\n- 9400000 9400001 9400002 9400003 9400050 9400051\n", "no date"),
    ("1.0.0", "## 1.1.0 - 2027-01-01\n\n## 1.0.0 - 2026-11-25\n9400000 9400001 9400002 9400003 "
              "9400050 9400051\n", "newest entry is 1.1.0"),
])
def test_guard_catches_version_without_changelog_entry(pack: rulepack.Pack, version: str,
                                                       changelog: str | None, needle: str) -> None:
    pack.path("VERSION").write_text(version + "\n")
    if changelog is not None:
        pack.path("CHANGELOG.md").write_text(changelog)
    _rules, problems = rulepack.check_pack(pack)
    assert problems and all(p.code in ("changelog", "version") for p in problems)
    assert any(needle in p.message for p in problems), problems


def test_missing_registry_is_an_error_for_a_pack(pack: rulepack.Pack) -> None:
    pack.registry_path.unlink()
    assert codes(pack) == {"registry": 1}
    rules, problems = rulepack.check_pack(pack, [pack.path(CORE)])
    assert [p.code for p in problems] == ["note"]


def test_registry_rejects_malformed_rows(tmp_path: Path) -> None:
    bad = tmp_path / "r.tsv"
    bad.write_text("sid\trev\n9400000\t1\n")
    with pytest.raises(rulepack.RulePackError, match="columns"):
        rulepack.read_registry(bad)


# -- export --------------------------------------------------------------------------------


def test_export_is_reproducible_and_suricata_update_shaped(pack: rulepack.Pack,
                                                           tmp_path: Path) -> None:
    a = rulepack.export(pack, tmp_path / "a")
    pack.path(CORE).touch()  # file times on disk do not matter
    b = rulepack.export(pack, tmp_path / "b")
    assert a.path.name == "scanguard-rules-1.0.0.tar.gz"
    assert a.path.read_bytes() == b.path.read_bytes()
    data = a.path.read_bytes()
    assert a.md5_path.read_text() == hashlib.md5(data).hexdigest() + "\n"  # bare digest
    assert a.sha256_path.read_text() == f"{hashlib.sha256(data).hexdigest()}  {a.path.name}\n"
    assert data[4:8] == b"\0\0\0\0"  # gzip header mtime 0
    with tarfile.open(a.path) as tar:
        infos = tar.getmembers()
        assert [i.name for i in infos] == sorted(f"rules/{n}" for n in (
            CORE, EXT, "VERSION", "CHANGELOG.md", "README.md"))
        assert {(i.uid, i.gid, i.uname, i.gname, i.mode, i.mtime) for i in infos} == {
            (0, 0, "", "", 0o644, 1_795_564_800)}  # 2026-11-25T00:00Z, the CHANGELOG date
        for info in infos:
            member = tar.extractfile(info)
            assert member is not None
            assert member.read() == pack.path(info.name.removeprefix("rules/")).read_bytes()
    edit(pack, "README.md", "scanguard", "ScanGuard")
    assert rulepack.export(pack, tmp_path / "c").sha256 != a.sha256
    assert gzip.decompress(data)  # a plain gzip stream


# -- Suricata ------------------------------------------------------------------------------


@pytest.mark.suricata
def test_suricata_errors_point_at_the_original_file_and_line(pack: rulepack.Pack) -> None:
    assert rulepack.suricata_problems(pack.rule_files) == ([], ())
    edit(pack, EXT, "flowbits:isset,scanguard.synack;", "flowbitz:isset,scanguard.synack;")
    edit(pack, CORE, "flow:to_client,not_established; target", "flow:to_cliant; target")
    problems, _warnings = rulepack.suricata_problems(pack.rule_files)
    assert [(p.code, p.sid, Path(p.file or "").name, p.line) for p in problems] == [
        ("suricata", 9400000, CORE, 7), ("suricata", HALF_OPEN_SID, EXT, 19)]
    assert "flowbitz" in problems[1].message


def _sid_sources(eve: Path) -> Counter[tuple[int, str]]:
    out: Counter[tuple[int, str]] = Counter()
    for line in eve.read_bytes().splitlines():
        event = orjson.loads(line)
        if event["event_type"] == "alert":
            out[(event["alert"]["signature_id"], suricata_ip(event["alert"]["source"]["ip"]))] += 1
    return out


def suricata_ip(ip: str) -> str:
    import ipaddress

    return str(ipaddress.ip_address(ip))


@pytest.fixture(scope="module")
def enabled_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Core + extended rules, the extended ones uncommented, as one rule file."""
    path = tmp_path_factory.mktemp("enabled") / "all.rules"
    rulepack.write_enabled(rulepack.find_pack().rule_files, path)
    return path


@pytest.mark.suricata
@pytest.mark.parametrize("name", list(EXTENDED))
def test_extended_half_open_rule(name: str, enabled_pack: Path, tmp_path: Path) -> None:
    scenario = EXTENDED[name]
    eve = suricata.run_pcap(scenario.build(tmp_path), enabled_pack, HOME_NET, tmp_path / "log",
                            timeout=60)
    got = {ip: n for (sid, ip), n in _sid_sources(eve).items() if sid == HALF_OPEN_SID}
    assert got == {suricata_ip(ip): n for ip, n in scenario.expect.items()}


@pytest.mark.suricata
@pytest.mark.parametrize("name", ["syn_scan_v4", "own_aborted", "backscatter", "server_abort"])
def test_extended_rules_leave_core_scenarios_alone(name: str, enabled_pack: Path,
                                                  tmp_path: Path) -> None:
    eve = suricata.run_pcap(SCENARIOS[name].build(tmp_path), enabled_pack, HOME_NET,
                            tmp_path / "log", timeout=60)
    assert not [k for k in _sid_sources(eve) if k[0] >= rulepack.EXTENDED_FIRST]
