"""The runner's pure parts and the protector command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanguard_ids.lab import ports, protect, runner
from scanguard_ids.lab.netns import Netns


def test_numeric_ranking_is_one_to_n_then_zero() -> None:
    ranked = runner.full_ranking("tcp")
    assert len(ranked) == len(set(ranked)) == 65_536
    assert runner.scan_ports(ranked, 3) == [1, 2, 3]
    assert ranked[-1] == 0
    assert ports.to_ranges(runner.scan_ports(ranked, 65_536)) == "0-65535"


@pytest.mark.skipif(not ports.NMAP_SERVICES.exists(), reason="nmap-services not installed")
@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_frequency_ranking_starts_with_the_open_ports(proto: str) -> None:
    ranked = runner.full_ranking(proto, "frequency")
    assert len(ranked) == len(set(ranked)) == 65_536
    assert ranked[:100] == ports.top_ports(proto, 100)
    assert ranked[-1] == 0


def test_unknown_order_is_refused() -> None:
    with pytest.raises(runner.procs.LabError):
        runner.full_ranking("tcp", "random")


def ctx(tmp_path: Path, socket: bool) -> protect.ProtectContext:
    return protect.ProtectContext(Netns("sgvtest00"), tmp_path, tmp_path / "eve.json",
                                  tmp_path / "eve.sock" if socket else None, ttl=300)


@pytest.mark.parametrize("socket", [False, True])
def test_scanguard_argv(tmp_path: Path, socket: bool) -> None:
    argv = protect.scanguard_argv(ctx(tmp_path, socket), Path("/x/scanguard"))
    assert argv[:2] == ["/x/scanguard", "run"]
    opts = dict(zip(argv[2::2], argv[3::2], strict=False))
    assert opts["--backend"] == "ipset" and opts["--policy"] == "paper"
    assert (opts["--count"], opts["--ports"], opts["--ttl"]) == ("3", "2", "300")
    assert opts["--journal"] == str(tmp_path / "decisions.jsonl")
    if socket:
        assert opts["--eve-socket"] == str(tmp_path / "eve.sock")
        assert opts["--eve-socket-type"] == "unix_stream" and "--eve" not in opts
    else:
        assert opts["--eve"] == str(tmp_path / "eve.json") and "--eve-socket" not in opts


def test_read_journal_keeps_blocks_with_times(tmp_path: Path) -> None:
    j = tmp_path / "decisions.jsonl"
    j.write_text("\n".join([
        json.dumps({"ts": "2026-11-25T20:33:13.949344+0000", "action": "block", "ip": "192.0.2.2"}),
        json.dumps({"ts": "2026-11-25T20:34:00.000000+0000", "action": "unblock", "ip": "x"}),
        json.dumps({"ts": "not a time", "action": "block", "ip": "192.0.2.3"}),
        "garbage",
        json.dumps({"ts": 12.5, "ip": "192.0.2.4"}),
    ]) + "\n")
    got = protect.read_journal(j)
    assert [(d["ip"], d["ts"]) for d in got] == [
        ("192.0.2.2", pytest.approx(1795638793.949344)), ("192.0.2.4", 12.5)]
    assert protect.read_journal(tmp_path / "missing.jsonl") == []
