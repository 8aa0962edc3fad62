"""The gateway lab's pure parts: scanner command lines and output parsers, the config it
writes for ``scanguard run``, and the report's sweep goal. No root, no namespaces."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from scanguard_ids.config import load
from scanguard_ids.lab import gateway_config, gateway_report, gateway_scan
from scanguard_ids.lab.capture import RST, SYNACK, WirePacket
from scanguard_ids.lab.gateway_scan import Endpoint, Sweep
from scanguard_ids.lab.procs import LabError

MASSCAN = """#masscan
open tcp 80 198.51.100.2 1796482264
closed tcp 80 198.51.100.23 1796482264
closed tcp 80 198.51.100.23 1796482265
# end
"""
ZMAP = """saddr,sport,classification,success,repeat
198.51.100.4,80,rst,0,0
198.51.100.2,80,synack,1,0
"""
NMAP = """<?xml version="1.0"?><nmaprun><host><address addr="198.51.100.2" addrtype="ipv4"/>
<ports><extraports state="closed" count="1"><extrareasons reason="reset" count="1"
proto="tcp" ports="22"/></extraports>
<port protocol="tcp" portid="80"><state state="open" reason="syn-ack"/></port>
<port protocol="tcp" portid="443"><state state="filtered" reason="no-response"/></port>
</ports></host><host><address addr="198.51.100.9" addrtype="ipv4"/><ports>
<port protocol="tcp" portid="80"><state state="closed" reason="reset"/></port></ports></host>
</nmaprun>"""


def test_parse_masscan() -> None:
    assert gateway_scan.parse_masscan(MASSCAN) == {
        Endpoint("198.51.100.2", 80, "tcp", "open"), Endpoint("198.51.100.23", 80, "tcp", "closed")}


def test_parse_zmap() -> None:
    assert gateway_scan.parse_zmap(ZMAP, 80) == {
        Endpoint("198.51.100.4", 80, "tcp", "closed"), Endpoint("198.51.100.2", 80, "tcp", "open")}


def test_parse_nmap_expands_extraports_and_skips_filtered() -> None:
    assert gateway_scan.parse_nmap(NMAP) == {
        Endpoint("198.51.100.2", 22, "tcp", "closed"), Endpoint("198.51.100.2", 80, "tcp", "open"),
        Endpoint("198.51.100.9", 80, "tcp", "closed")}
    assert gateway_scan.parse_nmap(NMAP[:200]) == set()  # cut short by its time bound


@pytest.mark.parametrize("tool,needle", [
    ("masscan", ["--router-mac", "02:00:00:00:00:01", "--adapter-ip", "192.0.2.10"]),
    ("zmap", ["-G", "02:00:00:00:00:01", "-b"]),
    ("nmap", ["-S", "192.0.2.10", "-e", "gs0"]),
])
def test_argv_names_next_hop_and_source(tool: str, needle: list[str], tmp_path: Path) -> None:
    sweep = Sweep("x", tool, "tcp", (80,), "198.51.100.0/26")
    argv = gateway_scan.argv(sweep, "192.0.2.10", "gs0", "02:00:00:00:00:01",
                             tmp_path / "o", tmp_path / "b")
    joined = " ".join(argv)
    assert " ".join(needle) in joined or all(n in argv for n in needle)
    assert argv[-1] == "198.51.100.0/26" or "198.51.100.0/26" in argv


def test_argv_refuses_non_documentation_targets(tmp_path: Path) -> None:
    sweep = Sweep("x", "masscan", "tcp", (80,), "10.0.0.0/8")
    with pytest.raises(ValueError):
        gateway_scan.argv(sweep, "192.0.2.10", "gs0", "m", tmp_path / "o", tmp_path / "b")
    with pytest.raises(LabError):
        gateway_scan.argv(Sweep("x", "zmap", "tcp", (22, 80), "198.51.100.0/26"),
                          "192.0.2.10", "gs0", "m", tmp_path / "o", tmp_path / "b")


def test_slow_scan_uses_scan_delay(tmp_path: Path) -> None:
    sweep = Sweep("s", "nmap", "tcp", (21, 22), "198.51.100.2", scan_delay=3.0)
    argv = gateway_scan.argv(sweep, "192.0.2.10", "gs0", "m", tmp_path / "o", tmp_path / "b")
    assert argv[argv.index("--scan-delay") + 1] == "3s"


def test_config_is_loadable_and_user_keys_win(tmp_path: Path) -> None:
    base = gateway_config.lab_config(tmp_path, tmp_path / "eve.json",
                                     gateway_config.Thresholds(4, 3, 30.0), "ipset", "sggw")
    cfg = gateway_config.merge(base, {"detect": {"window": 10.0}, "block": {"set_name": "x"}})
    text = gateway_config.render(cfg)
    path = tmp_path / "c.toml"
    path.write_text(text)
    loaded = load(path)
    assert (loaded.detect.count, loaded.detect.ports, loaded.detect.window) == (4, 3, 10.0)
    assert loaded.block.set_name == "x" and loaded.eve.paths == (str(tmp_path / "eve.json"),)
    assert tomllib.loads(text)["journal"]["path"] == str(tmp_path / "decisions.jsonl")


def test_unknown_future_keys_pass_through(tmp_path: Path) -> None:
    extra = tmp_path / "extra.toml"
    extra.write_text("[detect]\nsweep_hosts = 5\n")
    cfg = gateway_config.merge(gateway_config.lab_config(
        tmp_path, tmp_path / "e", gateway_config.Thresholds(), "ipset", "s"),
        gateway_config.read_extra(extra))
    assert "sweep_hosts = 5" in gateway_config.render(cfg)


def test_scaled_window() -> None:
    assert gateway_config.Thresholds(window=60.0).scaled(0.05).window == pytest.approx(3.0)


def _pk(ts: float, kind: str) -> WirePacket:
    return WirePacket(ts, kind, "198.51.100.2", "192.0.2.10", 80, 40000, "tcp")


def test_in_flight_counts_closed_answers_between_fifth_and_block() -> None:
    pkts = [_pk(float(i), RST) for i in range(1, 10)] + [_pk(5.5, SYNACK)]
    assert gateway_report.in_flight(pkts, 7.0) == 2  # RSTs at 6 and 7
    assert gateway_report.in_flight(pkts, None) == 0


def test_nftwatch_members() -> None:
    from scanguard_ids.lab.gateway_nftwatch import members

    listing = {"nftables": [{"metainfo": {}}, {"table": {"name": "sggw"}},
                            {"set": {"name": "blocked4", "elem": [
                                {"elem": {"val": "192.0.2.61", "timeout": 300}}, "192.0.2.62",
                                {"elem": {"val": {"prefix": {"addr": "192.0.2.0", "len": 28}}}}]}},
                            {"set": {"name": "blocked6"}}]}
    assert members(listing) == {("blocked4", "192.0.2.61"), ("blocked4", "192.0.2.62"),
                                ("blocked4", "192.0.2.0/28")}
