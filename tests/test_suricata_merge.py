"""examples/suricata-scanguard.yaml merges into Debian's stock suricata.yaml (docs/suricata.md).

Real ``suricata -T`` and ``--dump-config`` on a COPY of /etc/suricata/suricata.yaml in a temp dir,
edited the way docs/suricata.md tells an admin to: one ``- include:`` line under ``outputs:`` and
one line under ``rule-files:``. Asserts that every stock setting is still there (the stock outputs
only move down one index), and that our output and rule file are added. /etc is never written.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "suricata-scanguard.yaml"
RULES = REPO / "rules" / "scanguard.rules"
STOCK = Path("/etc/suricata/suricata.yaml")

pytestmark = [
    pytest.mark.suricata,
    pytest.mark.skipif(not STOCK.is_file(), reason="no stock /etc/suricata/suricata.yaml"),
]


def _merge(stock: str, include: Path, rules: Path) -> str:
    """The two one-line edits of docs/suricata.md, done on the text of a copy."""
    out, n1 = re.subn(r"(?m)^outputs:\n", f"outputs:\n  - include: {include}\n", stock, count=1)
    out, n2 = re.subn(r"(?m)^(rule-files:\n(?:  - .*\n)*)", rf"\g<1>  - {rules}\n", out, count=1)
    assert n1 == n2 == 1, "stock config lost its top-level outputs:/rule-files:"
    return out


def _suricata(*args: str, cwd: Path) -> str:
    res = subprocess.run(["suricata", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout + res.stderr


def _dump(cfg: Path, tmp: Path) -> dict[str, str]:
    text = _suricata("--dump-config", "-c", str(cfg), cwd=tmp)
    return dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line)


def _shift_outputs(key: str) -> str:
    m = re.match(r"outputs\.(\d+)(.*)", key)
    return f"outputs.{int(m.group(1)) + 1}{m.group(2)}" if m else key


@pytest.fixture
def configs(tmp_path: Path) -> tuple[Path, Path]:
    stock = tmp_path / "stock.yaml"
    shutil.copy(STOCK, stock)
    include = tmp_path / "scanguard-eve.yaml"
    shutil.copy(EXAMPLE, include)
    rules = tmp_path / "scanguard.rules"
    shutil.copy(RULES, rules)
    merged = tmp_path / "suricata.yaml"
    merged.write_text(_merge(stock.read_text(), include, rules))
    return stock, merged


def test_stock_settings_all_kept_and_ours_added(configs: tuple[Path, Path], tmp_path: Path) -> None:
    stock, merged = configs
    before, after = _dump(stock, tmp_path), _dump(merged, tmp_path)
    assert len(before) > 200 and "outputs.0" in before  # a real stock config was read
    lost = {k: v for k, v in before.items() if after.get(_shift_outputs(k)) != v}
    assert not lost, f"stock settings lost or changed by the merge: {lost}"

    outputs = {k.split(".")[1]: v for k, v in after.items() if re.fullmatch(r"outputs\.\d+", k)}
    assert outputs["0"] == "eve-log"
    assert after["outputs.0.eve-log.filetype"] == "unix_stream"
    assert after["outputs.0.eve-log.filename"] == "/run/scanguard/eve.sock"
    for field in ("payload", "packet", "metadata"):
        assert after[f"outputs.0.eve-log.types.0.alert.{field}"] == "yes"
    names = list(outputs.values())
    for stock_output in ("fast", "eve-log", "stats"):
        assert stock_output in names[1:], stock_output
    # The stock eve-log (now outputs.2) keeps its file and its event types.
    stock_eve = next(int(i) for i, n in outputs.items() if n == "eve-log" and i != "0")
    assert after[f"outputs.{stock_eve}.eve-log.filename"] == "eve.json"
    types = {v for k, v in after.items()
             if re.fullmatch(rf"outputs\.{stock_eve}\.eve-log\.types\.\d+", k)}
    assert {"alert", "flow", "dns", "tls", "http", "stats"} <= types, types

    rule_files = [v for k, v in sorted(after.items()) if re.fullmatch(r"rule-files\.\d+", k)]
    assert rule_files == ["suricata.rules", str(tmp_path / "scanguard.rules")]


def test_suricata_accepts_the_merged_config(configs: tuple[Path, Path], tmp_path: Path) -> None:
    _, merged = configs
    rule_dir = tmp_path / "rules"  # stands in for /var/lib/suricata/rules (suricata-update's)
    rule_dir.mkdir()
    (rule_dir / "suricata.rules").write_text(
        'alert icmp any any -> any any (msg:"stock stand-in"; itype:8; sid:1000001; rev:1;)\n')
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    out = _suricata("-T", "-v", "-c", str(merged), "-l", str(log_dir),
                    "--set", f"default-rule-path={rule_dir}", cwd=tmp_path)
    ours = sum(1 for line in RULES.read_text().splitlines() if re.match(r"(alert|drop) ", line))
    m = re.search(r"(\d+) rule files processed\. (\d+) rules successfully loaded", out)
    assert m, out
    assert (int(m.group(1)), int(m.group(2))) == (2, 1 + ours), out


def test_top_level_include_would_replace_outputs(tmp_path: Path) -> None:
    """Why the example is an outputs item: a top-level include of outputs: drops the stock ones."""
    top = tmp_path / "top.yaml"
    top.write_text("%YAML 1.1\n---\noutputs:\n  - eve-log:\n      filename: x.json\n")
    cfg = tmp_path / "suricata.yaml"
    cfg.write_text(STOCK.read_text() + f"\ninclude: {top}\n")
    after = _dump(cfg, tmp_path)
    names = [v for k, v in after.items() if re.fullmatch(r"outputs\.\d+", k)]
    assert names == ["eve-log"], names
