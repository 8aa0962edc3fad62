"""The lab's SDN parts that need no switch: flow-table parsing, the daemon's config, Table II."""

from __future__ import annotations

import ipaddress
import struct
import tomllib
from pathlib import Path

import pytest

from scanguard_ids import config
from scanguard_ids.block.sdn import ofp13
from scanguard_ids.lab import flowwatch, protect, report
from scanguard_ids.lab.netns import Netns
from scanguard_ids.lab.report import LabResult, RunResult

_STATS = struct.Struct("!HBxIIHHHH4xQQQ")


def flow(match: bytes, instructions: bytes = b"", table: int = 0) -> bytes:
    """One ofp_flow_stats entry as a switch sends it."""
    length = _STATS.size + len(match) + len(instructions)
    return _STATS.pack(length, table, 1, 0, 20480, 0, 0, 0, 0x5ADC15C0, 0, 0) + match \
        + instructions


def ip(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(addr)


GOTO = struct.pack("!HHB3x", 1, 8, 1)
APPLY_OUTPUT = struct.pack("!HH4x", 4, 24) + struct.pack("!HHIH6x", 0, 16, 2, 0xFFFF)
APPLY_EMPTY = struct.pack("!HH4x", 4, 8)


@pytest.mark.parametrize(("instructions", "forwards"), [
    (b"", False), (APPLY_EMPTY, False), (GOTO, True), (APPLY_OUTPUT, True),
    (APPLY_EMPTY + GOTO, True)])
def test_forwards(instructions: bytes, forwards: bool) -> None:
    assert flowwatch.forwards(instructions) is forwards


def test_drop_sources_keeps_source_drops_only() -> None:
    payload = b"".join([
        flow(ofp13.match_ip(ip("192.0.2.2"), "src")),  # Faucet {allow: 0} / sdn-openflow
        flow(ofp13.match_ip(ip("2001:db8::2"), "src"), APPLY_EMPTY),
        flow(ofp13.match_ip(ip("192.0.2.7"), "dst")),  # outbound rule: not a source block
        flow(ofp13.match_ip(ip("192.0.2.8"), "src"), GOTO),  # forwards: not a block
        flow(ofp13.match_ip(ip("255.255.255.255"), "src")),  # Faucet's empty-ACL placeholder
        flow(ofp13.match_all()),  # table-miss drop
    ])
    assert flowwatch.drop_sources(payload) == {"192.0.2.2", "2001:db8::2"}


def test_drop_sources_refuses_a_bad_length() -> None:
    bad = bytearray(flow(ofp13.match_ip(ip("192.0.2.2"), "src")))
    bad[0:2] = struct.pack("!H", 500)
    with pytest.raises(ofp13.DecodeError):
        flowwatch.drop_sources(bytes(bad))


def test_changes_in_setwatch_format() -> None:
    assert flowwatch.changes(5.0, {"192.0.2.2", "192.0.2.3"}, {"192.0.2.3", "192.0.2.4"}) == [
        {"t": 5.0, "event": "add", "set": "switch", "ip": "192.0.2.4"},
        {"t": 5.0, "event": "del", "set": "switch", "ip": "192.0.2.2"}]


FAUCET_KW = {"acl_file": "/tmp/x/scanguard-acl.yaml", "acl_name": "scanguard",
             "faucet_pid_file": "/tmp/x/faucet/faucet.pid"}
OPENFLOW_KW = {"target": "unix:/tmp/x/ovs/br0.mgmt"}


@pytest.mark.parametrize(("backend", "kw"), [("sdn-faucet", FAUCET_KW),
                                              ("sdn-openflow", OPENFLOW_KW)])
def test_sdn_config_is_a_valid_scanguard_config(backend: str, kw: dict[str, str]) -> None:
    text = protect.sdn_config(backend, kw)
    cfg = config.from_dict(tomllib.loads(text))
    assert cfg.block.backend == backend
    got = cfg.sdn.backend_kwargs(backend)
    for key, value in kw.items():
        assert got[key] == value
    if backend == "sdn-openflow":
        assert got["transport"] == "native"


def test_sdn_config_refuses_unknown_settings() -> None:
    with pytest.raises(protect.procs.LabError):
        protect.sdn_config("sdn-faucet", {"bridge": "br0"})
    with pytest.raises(protect.procs.LabError):
        protect.sdn_config("ipset", {})


def test_scanguard_argv_for_a_switch(tmp_path: Path) -> None:
    ctx = protect.ProtectContext(Netns("sgvtest00"), tmp_path, tmp_path / "eve.json", None,
                                 backend="sdn-faucet", set_name="sglabsw", sdn=FAUCET_KW)
    argv = protect.scanguard_argv(ctx, Path("/x/scanguard"))
    opts = dict(zip(argv[2::2], argv[3::2], strict=False))
    assert opts["--backend"] == "sdn-faucet" and opts["--set-name"] == "sglabsw"
    assert opts["--config"] == str(tmp_path / "scanguard.toml")
    with pytest.raises(protect.procs.LabError):
        protect.scanguard_argv(protect.ProtectContext(Netns("x"), tmp_path, tmp_path, None,
                                                      backend="nftables"))


def run(protection: bool, proto: str, counts: tuple[int, int, int]) -> RunResult:
    return RunResult(protection=protection, proto=proto, n_ports=65_536,
                     counts=dict(zip(report.COLUMNS, counts, strict=True)), nmap_states={},
                     truth_open=100, correct_open=list(range(counts[0])),
                     correct_closed=counts[1], wrong=0, duration=1.0, nmap_argv=["nmap"])


def test_sdn_runs_print_table_ii() -> None:
    r = LabResult(protector="scanguard", backend="sdn-openflow",
                  switch={"backend": "sdn-openflow", "controller": "none",
                          "poll_interval_ms": 2.0})
    r.runs = [run(False, "tcp", (100, 65_436, 0)), run(True, "tcp", (27, 3, 65_506)),
              run(False, "udp", (100, 65_436, 0)), run(True, "udp", (0, 26, 65_510))]
    r.reaction_trigger = report.LatencyStats.of([2.5])
    text = report.summary(r)
    assert text.startswith("TABLE II")
    assert "scanguard sdn-openflow (lab)" in text
    row = next(line for line in text.splitlines() if line.startswith("SDN module activated"))
    assert row.split("(paper)")[1].split() == ["0", "357", "65", "171", "15", "1", "262",
                                               "64", "260"]
    assert "SDN module: open TCP 15%, closed TCP 1.9%, closed UDP 0.5%" in text
    assert "drop flow in the switch" in text and "kernel block" not in text
    assert report.paper_ref(LabResult()).number == "I"
    assert report.to_json(r).count('"backend": "sdn-openflow"') == 2
