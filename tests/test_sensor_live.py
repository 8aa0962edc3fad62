"""The README's sensor section, live: a real Suricata on its stock config plus our three
additions, a real ``scanguard run`` and a real ``nmap -sS`` scan, in namespaces this test creates.

The "done when" of a real sensor: on a Debian machine with Suricata installed from its stock
config, following README "Running it on a sensor" (and docs/suricata.md) leaves the stock
Suricata alone, the merged config passes ``suricata -T``, the stock outputs keep writing, and the
daemon blocks a scan. What the test does, step by step, is what an admin does to
/etc/suricata/suricata.yaml, done to a COPY in a temp dir (/etc is never written):

0. ``HOME_NET``: the victim's address added to the stock groups;
1. ``rule-files``: one line for the rule pack (as installed: ``PREFIX/rules/scanguard.rules``);
2. ``outputs``: one ``- include:`` line for a copy of examples/suricata-scanguard.yaml, whose
   socket path is moved into the temp dir (the admin's copy keeps /run/scanguard/eve.sock);
3. ``scanguard.toml`` from examples/scanguard.toml with ``[eve] socket`` set (README step 3) and
   ``paths`` pointing at the stock eve.json of this Suricata (the example's default): alerts arrive
   through both outputs and count once.

What differs from a sensor only keeps this Suricata apart from one the host may run: its own log
dir (``-l``), pidfile, ``unix-command.enabled=no`` and, for the stock ``suricata.rules`` that
suricata-update would build, a one-rule stand-in (``default-rule-path``); all on the command line,
so the config file is exactly the merged one. Every process is stopped by its PID.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from blocklab import Lab
from test_daemon_live import (  # noqa: F401 - fixtures
    REPO,
    SCANGUARD,
    SCANNER4,
    VICTIM4,
    Daemon,
    host_untouched,
    lab,
    wait_for,
)

from scanguard_ids.children import stop

STOCK_DIR = Path("/etc/suricata")
STOCK = STOCK_DIR / "suricata.yaml"
EXAMPLE_EVE = REPO / "examples" / "suricata-scanguard.yaml"
EXAMPLE_TOML = REPO / "examples" / "scanguard.toml"
RULES = REPO / "rules" / "scanguard.rules"
INTERFACE = "victim0"  # the victim's end of the veth (scanguard_ids.lab.netns.victim_scanner)
READY_MARK = "Engine started"
SERVICE_PIDFILE = Path("/run/suricata.pid")

pytestmark = [
    pytest.mark.root,
    pytest.mark.suricata,
    pytest.mark.skipif(not STOCK.is_file(), reason="no stock /etc/suricata/suricata.yaml"),
    pytest.mark.skipif(shutil.which("nmap") is None, reason="needs nmap"),
]


def _sub1(pattern: str, repl: str, text: str) -> str:
    out, n = re.subn(pattern, repl, text, count=1, flags=re.M)
    assert n == 1, f"the stock text has no {pattern!r}"
    return out


def merged_config(stock: str, home: str, rules: Path, include: Path) -> str:
    """docs/suricata.md steps 0-2 on the text of the stock config: each adds, none replaces."""
    out = _sub1(r'^(    HOME_NET: "\[[^\]\n]*)\]"$', rf'\g<1>,{home}]"', stock)
    out = _sub1(r"^(rule-files:\n(?:  - .*\n)*)", rf"\g<1>  - {rules}\n", out)
    return _sub1(r"^outputs:\n", f"outputs:\n  - include: {include}\n", out)


def scanguard_toml(example: str, eve_socket: Path, eve_file: Path) -> str:
    """README step 3 on a copy of examples/scanguard.toml: ``[eve] socket``, and ``paths``
    moved to where this Suricata writes its stock eve.json."""
    eve = example[example.index("\n[eve]\n"):]
    eve = eve[:eve.index("\n[", 1)]
    new = _sub1(r'^socket = ""$', f"socket = {orjson.dumps(str(eve_socket)).decode()}", eve)
    new = _sub1(r"^paths = \[.*\]$", f"paths = [{orjson.dumps(str(eve_file)).decode()}]", new)
    return example.replace(eve, new)


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _service_pid() -> int | None:
    """The host's own Suricata (the stock service writes /run/suricata.pid), if it runs."""
    try:
        pid = int(SERVICE_PIDFILE.read_text().split()[0])
        return pid if Path(f"/proc/{pid}").exists() else None
    except (OSError, ValueError, IndexError):
        return None


def _event_types(path: Path) -> set[str]:
    return {orjson.loads(line)["event_type"] for line in path.read_bytes().splitlines() if line}


@pytest.fixture
def sensor_files(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """The admin's files, as copies: merged suricata.yaml, include, rules, scanguard.toml."""
    files = {name: tmp_path / name for name in (
        "suricata.yaml", "scanguard-eve.yaml", "scanguard.rules", "scanguard.toml", "log",
        "rules", "eve.sock")}
    files["log"].mkdir()
    files["rules"].mkdir()  # stands in for /var/lib/suricata/rules (suricata-update's)
    (files["rules"] / "suricata.rules").write_text(
        'alert icmp any any -> any any (msg:"stock stand-in"; itype:8; sid:1000001; rev:1;)\n')
    shutil.copy(RULES, files["scanguard.rules"])
    example = EXAMPLE_EVE.read_text()
    assert example.count("filename: /run/scanguard/eve.sock\n") == 1
    files["scanguard-eve.yaml"].write_text(
        example.replace("/run/scanguard/eve.sock", str(files["eve.sock"])))
    files["suricata.yaml"].write_text(merged_config(
        STOCK.read_text(), f"{VICTIM4}/32", files["scanguard.rules"], files["scanguard-eve.yaml"]))
    files["scanguard.toml"].write_text(scanguard_toml(
        EXAMPLE_TOML.read_text(), files["eve.sock"], files["log"] / "eve.json"))
    yield files


def test_readme_sensor_steps_block_a_live_nmap_scan(
    lab: Lab, tmp_path: Path, sensor_files: dict[str, Path]  # noqa: F811
) -> None:
    f = sensor_files
    etc_before, service_before = _tree_digest(STOCK_DIR), _service_pid()
    isolate = ["-l", str(f["log"]), "--pidfile", str(tmp_path / "suricata.pid"),
               "--set", "unix-command.enabled=no", "--set", f"default-rule-path={f['rules']}"]
    suricata_argv = ["suricata", "-c", str(f["suricata.yaml"]), *isolate]

    # "Check before each reload or restart" (docs/suricata.md), then the unit's ExecStartPre.
    test = subprocess.run([*suricata_argv, "-T"], capture_output=True, text=True, timeout=120,
                          check=False, cwd=tmp_path)
    assert test.returncode == 0, test.stdout + test.stderr
    check = lab.victim.run([*SCANGUARD, "config", "check", "--config", str(f["scanguard.toml"])],
                           check=False)
    assert check.returncode == 0, check.stdout + check.stderr

    # scanguard before Suricata (the unit's Before=suricata.service): the socket is there when
    # Suricata opens its outputs. The config file's ttl (300) rules, not the harness's short one.
    d = Daemon(lab, tmp_path, "auto", "--config", str(f["scanguard.toml"]), "--ttl", "300")
    suri: subprocess.Popen[bytes] | None = None
    nmap: subprocess.Popen[bytes] | None = None
    suri_log = tmp_path / "suricata.out"
    try:
        d.start()
        with open(suri_log, "ab") as out:
            suri = lab.victim.popen([*suricata_argv, f"--af-packet={INTERFACE}"],
                                    stdout=out, stderr=subprocess.STDOUT, cwd=str(tmp_path))

        def ready() -> bool:
            assert suri is not None and suri.poll() is None, suri_log.read_text(errors="replace")
            log = f["log"] / "suricata.log"
            return log.exists() and READY_MARK in log.read_text(errors="replace")

        wait_for(ready, 60, "suricata's capture threads", step=0.2)
        assert lab.reach(SCANNER4) == {"ping": True, "tcp": True}

        nmap = lab.scanner.popen(
            ["nmap", "-n", "-Pn", "-sS", "-p", "1-200", "--max-retries", "1",
             "--host-timeout", "40s", VICTIM4],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: SCANNER4 in d.blocked(), 30, "the scanner to be blocked", step=0.2)
        assert lab.reach(SCANNER4) == {"ping": False, "tcp": False}
        nmap.wait(timeout=60)

        status = d.call("status")
        counters = status["counters"]  # type: ignore[index]
        assert counters["blocks"] == 1
        # both outputs delivered alerts (socket: ours; file: the stock eve.json), counted once
        assert counters.get("duplicates", 0) >= 1, counters
        assert counters["responses"] >= 3, counters
        journal = [r for r in d.journal() if r["action"] == "block"]
        assert [r["ip"] for r in journal] == [SCANNER4]
    finally:
        stop(nmap, grace=5)
        rc_suricata = stop(suri, grace=20)
        rc_daemon = d.stop()
    assert rc_suricata == 0, suri_log.read_text(errors="replace")[-3000:]
    assert rc_daemon == 0

    # The stock outputs kept writing: fast.log and eve.json (its own types) hold our alerts.
    fast = (f["log"] / "fast.log").read_text()
    assert "scanguard" in fast.lower() and SCANNER4 in fast, fast[-2000:]
    types = _event_types(f["log"] / "eve.json")
    assert {"alert", "flow"} <= types, types
    assert (f["log"] / "stats.log").exists()
    # Nothing of the host's Suricata was touched: its config tree, and its service if it runs.
    assert _tree_digest(STOCK_DIR) == etc_before
    assert _service_pid() == service_before, "the host's suricata service changed"
