"""The generated Suricata configuration: latency settings present, and Suricata accepts it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from scanguard_ids.lab import sensor


def test_yaml_has_the_low_latency_settings() -> None:
    text = sensor.suricata_yaml("sv0", ["192.0.2.1", "2001:db8::1"], "/tmp/log", "/r/x.rules")
    for needle in ("runmode: workers", "tpacket-v3: no", "use-mmap: yes", "checksum-checks: no",
                   "interface: sv0", 'HOME_NET: "[192.0.2.1,2001:db8::1]"', "payload: yes",
                   "packet: yes", "filename: eve.json", '- "/r/x.rules"'):
        assert needle in text
    assert "unix_stream" not in text


def test_yaml_with_socket_and_tuning() -> None:
    tuning = sensor.Tuning(runmode="autofp", tpacket_v3=True, block_timeout_ms=1)
    text = sensor.suricata_yaml("sv0", ["192.0.2.1"], "/tmp/log", "/r/x.rules",
                                eve_socket="/tmp/sg/eve.sock", tuning=tuning)
    assert text.count("- eve-log:") == 2
    assert 'filetype: unix_stream\n      filename: "/tmp/sg/eve.sock"' in text
    assert "runmode: autofp" in text and "tpacket-v3: yes" in text and "block-timeout: 1" in text
    assert "tpacket=v3 block-timeout=1ms" in tuning.describe()


def test_rules_file_falls_back_when_pack_missing(tmp_path: Path) -> None:
    path, real = sensor.rules_file(tmp_path, tmp_path / "missing.rules")
    assert not real and path.read_text() == sensor.FALLBACK_RULES
    pack = tmp_path / "pack.rules"
    pack.write_text("# empty\n")
    assert sensor.rules_file(tmp_path, pack) == (pack, True)


@pytest.mark.suricata
@pytest.mark.parametrize("use_pack", [True, False])
def test_suricata_accepts_generated_config(tmp_path: Path, use_pack: bool) -> None:
    binary = shutil.which("suricata")
    if binary is None:
        pytest.skip("suricata not installed")
    rules, _ = sensor.rules_file(tmp_path, None if use_pack else tmp_path / "missing.rules")
    (tmp_path / "log").mkdir()
    cfg = tmp_path / "suricata.yaml"
    cfg.write_text(sensor.suricata_yaml("lo", ["192.0.2.1", "2001:db8::1"], str(tmp_path / "log"),
                                        str(rules), eve_socket=str(tmp_path / "eve.sock")))
    res = subprocess.run([binary, "-T", "-c", str(cfg), "-l", str(tmp_path / "log")],
                         capture_output=True, text=True, timeout=120)
    log = (tmp_path / "log" / "suricata.log").read_text(errors="replace")
    assert res.returncode == 0, res.stderr + log
    assert "rules failed" not in log or ", 0 rules failed" in log
