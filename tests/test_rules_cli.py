"""`scanguard rules ...`, and the exported pack going through the real suricata-update."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import orjson
import pytest
from pcaps import HOME_NET

from scanguard_ids import rulepack, suricata
from scanguard_ids.cli import main

CORE_SIDS = {9400000, 9400001, 9400002, 9400003}
EXT_SIDS = {9400050, 9400051}


def sg(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["-q", "rules", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    return Path(shutil.copytree(rulepack.find_pack().root, tmp_path / "rules"))


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = sg(capsys, "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["SID", "REV", "KIND", "STATE", "MSG"]
    rows = [line.split(None, 4) for line in lines[1:]]
    assert [int(r[0]) for r in rows] == sorted(CORE_SIDS | EXT_SIDS)
    assert rows[0][:4] == ["9400000", "1", "tcp-rst", "on"]
    assert rows[0][4].startswith("SCANGUARD closed TCP port")
    assert {r[3] for r in rows if int(r[0]) in EXT_SIDS} == {"off"}
    code, out, _ = sg(capsys, "list", "--json")
    data = orjson.loads(out)
    assert code == 0 and {d["sid"] for d in data} == CORE_SIDS | EXT_SIDS
    assert {d["kind"] for d in data if d["enabled"]} == {
        "tcp-rst", "icmp-port-unreachable", "icmp6-port-unreachable", "helper"}


def test_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = sg(capsys, "show", "9400000")
    assert code == 0
    assert "alert tcp $HOME_NET any -> $EXTERNAL_NET any (" in out and "sid:9400000; rev:1;)" in out
    assert "Linux's answer to a SYN/FIN/NULL/Xmas probe" in out  # the comment above the rule
    assert "False-positive guards:" in out and "backscatter" in out  # the README row
    code, out, _ = sg(capsys, "show", "9400050", "--json")
    doc = orjson.loads(out)
    assert code == 0 and doc["enabled"] is False and doc["kind"] == "half-open"
    assert doc["rule"].startswith("alert tcp $EXTERNAL_NET") and doc["false_positive_guards"]
    code, _, err = sg(capsys, "show", "9400099")
    assert code == 1 and "no rule with SID 9400099" in err


def test_path(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = sg(capsys, "path")
    path = Path(out.strip())
    assert code == 0 and path.name == "scanguard.rules" and path.is_file()
    assert path == rulepack.find_pack().path(rulepack.CORE_FILE)
    _, out, _ = sg(capsys, "path", "--dir")
    assert Path(out.strip()) == path.parent


def test_packaged_rules_resolve_through_the_package() -> None:
    """scanguard_ids/rules -> ../rules: what a wheel ships (package-data) is the source pack."""
    import scanguard_ids

    shipped = Path(scanguard_ids.__file__).parent / "rules"
    assert (shipped / rulepack.CORE_FILE).is_file()
    assert shipped.resolve() == rulepack.find_pack().root


def test_check_static_only(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = sg(capsys, "check", "--no-suricata")
    assert code == 0 and out.strip().endswith("static checks: ok")


def test_export(capsys: pytest.CaptureFixture[str], pack: Path, tmp_path: Path) -> None:
    code, out, _ = sg(capsys, "export", "--pack", str(pack), "--out", str(tmp_path / "out"))
    art, md5, sha = (Path(p) for p in out.split())
    assert code == 0 and art.name == "scanguard-rules-1.0.0.tar.gz"
    assert (md5.name, sha.name) == (art.name + ".md5", art.name + ".sha256")
    res = subprocess.run(["sha256sum", "-c", sha.name], cwd=art.parent, capture_output=True,
                         text=True, timeout=30, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    (pack / "CHANGELOG.md").write_text("# nothing\n")
    code, _, err = sg(capsys, "export", "--pack", str(pack), "--out", str(tmp_path / "bad"))
    assert code == 1 and "changelog" in err and not (tmp_path / "bad").exists()


# -- with the real suricata ------------------------------------------------------------------


@pytest.mark.suricata
def test_check_the_pack(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = sg(capsys, "check", "--home-net", "192.0.2.1,2001:db8::1")
    assert code == 0, out + err
    assert out.strip() == "6 rules in 2 file(s), suricata -T and static checks: ok"


@pytest.mark.suricata
def test_check_reports_a_broken_rule_with_sid_and_line(capsys: pytest.CaptureFixture[str],
                                                       pack: Path) -> None:
    core = pack / rulepack.CORE_FILE
    core.write_text(core.read_text().replace("flow:to_client,not_established; target",
                                             "flow:to_cliant; target", 1))
    code, out, _ = sg(capsys, "check", "--pack", str(pack))
    lines = out.splitlines()
    assert code == 1
    assert [line.split(": ", 3)[:3] for line in lines[:2]] == [
        [f"{core}:7", "sid 9400000", "rev-not-bumped"], [f"{core}:7", "sid 9400000", "suricata"]]
    assert "to_cliant" in lines[1]
    assert lines[-1].endswith("2 problem(s)")
    code, out, _ = sg(capsys, "check", "--pack", str(pack), "--json")
    report = orjson.loads(out)
    assert code == 1 and not report["ok"]
    assert {(p["code"], p["sid"], p["line"]) for p in report["problems"]} == {
        ("rev-not-bumped", 9400000, 7), ("suricata", 9400000, 7)}


@pytest.mark.suricata
def test_check_a_loose_rule_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    loose = tmp_path / "local.rules"
    loose.write_text("\n".join([
        "# my local rules",
        'alert tcp any any -> any any (msg:"ok"; flags:S; sid:9400090; rev:1;)',
        'alert tcp $HOME_NET any -> $NOPE_NET any (msg:"x"; sid:9400091; rev:1;)',
    ]) + "\n")
    code, out, err = sg(capsys, "check", "--rules", str(loose))
    assert code == 1
    assert f"{loose}:3: sid 9400091: suricata:" in out and "NOPE_NET" in out
    assert "registry checks skipped" in err


@pytest.mark.suricata
def test_update_registry_records_an_intended_change(capsys: pytest.CaptureFixture[str],
                                                    pack: Path) -> None:
    core = pack / rulepack.CORE_FILE
    core.write_text(core.read_text().replace("port answered a remote probe with RST",
                                             "port answered a remote probe with a RST").replace(
        "sid:9400000; rev:1;", "sid:9400000; rev:2;"))
    code, out, err = sg(capsys, "check", "--pack", str(pack))
    assert code == 1 and "rev-unrecorded" in out and "--update-registry" in err
    code, out, _ = sg(capsys, "check", "--pack", str(pack), "--update-registry")
    assert code == 0, out
    assert out.splitlines()[0].startswith("recorded: 9400000 rev 2 active")
    assert rulepack.read_registry(pack / rulepack.REGISTRY_FILE)[9400000].rev == 2


# -- suricata-update: the exported artifact as a source, and the rule file as --local ---------


@pytest.fixture
def suricata_update() -> str:
    exe = shutil.which("suricata-update")
    if exe is None:
        pytest.skip("suricata-update not installed")
    return exe


class Updater:
    """suricata-update confined to one temp dir: no /etc, no /var/lib, no ET Open, no network."""

    def __init__(self, exe: str, work: Path) -> None:
        self.exe, self.work = exe, work
        self.out = work / "out"
        empty = work / "empty"
        empty.mkdir(parents=True)
        self.none = work / "none.conf"
        self.none.write_text("")
        # dist-rule-directory: Suricata's own event rules are not merged in.
        (work / "update.yaml").write_text(f"dist-rule-directory: {empty}\nsources: []\n")
        self.conf = suricata.write_config(work / "conf", self.out / "suricata.rules", HOME_NET,
                                          work / "log")

    def run(self, *args: str, enable: Path | None = None) -> str:
        argv = [self.exe, "-D", str(self.work / "data"), "-c", str(self.work / "update.yaml"),
                "--suricata", suricata.find_suricata(), "--suricata-conf", str(self.conf),
                *args]
        if args and args[0] not in ("add-source", "list-sources"):
            none = str(self.none)
            argv += ["--output", str(self.out), "--no-test", "--no-reload", "--disable-conf",
                     none, "--enable-conf", str(enable or none), "--modify-conf", none,
                     "--drop-conf", none]
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                             stdin=subprocess.DEVNULL, env=env)
        log = res.stdout + res.stderr
        assert res.returncode == 0, log
        assert "emergingthreats" not in log, "tried ET Open"
        return log

    def merged(self) -> dict[int, bool]:
        """SID -> enabled of the merged output, which must pass suricata -T."""
        path = self.out / "suricata.rules"
        check = suricata.test_rules(path, HOME_NET)
        assert check.ok, check.errors
        rules, problems = rulepack.parse_text(path.read_text(), str(path))
        assert not problems
        return {r.sid: r.enabled for r in rules}


@pytest.mark.suricata
def test_suricata_update_takes_the_artifact_as_a_source(suricata_update: str,
                                                        tmp_path: Path) -> None:
    art = rulepack.export(rulepack.find_pack(), tmp_path / "dist")
    with tarfile.open(art.path) as tar:
        assert "rules/scanguard.rules" in tar.getnames()
    up = Updater(suricata_update, tmp_path / "su")
    up.run("add-source", "scanguard", art.path.as_uri())
    log = up.run("--now")
    assert f"Fetching {art.path.as_uri()}" in log
    merged = up.merged()
    assert merged == {**dict.fromkeys(CORE_SIDS, True), **dict.fromkeys(EXT_SIDS, False)}
    # A re-run fetches <url>.md5 and, as it matches, keeps the cached copy.
    log = up.run("--now")
    assert f"Checking {art.path.as_uri()}.md5" in log
    assert "Remote checksum has not changed" in log
    log = up.run("--offline")
    assert "Using latest cached version" in log and up.merged() == merged
    # The operator switches the extended rule on; suricata-update adds its flowbit helper.
    enable = tmp_path / "enable.conf"
    enable.write_text("9400050\n")
    log = up.run("--offline", enable=enable)
    assert "Enabled 1 rules for flowbit dependencies" in log
    assert up.merged() == dict.fromkeys(CORE_SIDS | EXT_SIDS, True)


@pytest.mark.suricata
def test_suricata_update_takes_the_rule_file_as_local(suricata_update: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = sg(capsys, "path")
    # Another source (here a one-rule file) stands in for the operator's ET Open: with no
    # source at all, suricata-update would add ET Open and go to the network.
    other = tmp_path / "other.rules"
    other.write_text('alert tcp any any -> any 23 (msg:"other vendor"; flags:S; '
                     "sid:2100001; rev:1;)\n")
    up = Updater(suricata_update, tmp_path / "su")
    log = up.run("--url", other.as_uri(), "--local", out.strip())
    assert f"Loading local file {out.strip()}" in log
    assert up.merged() == {**dict.fromkeys(CORE_SIDS, True), 2100001: True}
