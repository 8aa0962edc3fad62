"""`scanguard lab --fast-path`: the rows and the protector's config (pure), and small end
to end: the same TCP SYN scan of 2 000 ports with the response-only daemon and with its
kernel fast path (block mode, burst 8, rate 2) - real namespaces, listeners, Suricata,
nmap and ``scanguard run``; ~50 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from nsutil import need_root_and

from scanguard_ids.config import load as load_config
from scanguard_ids.lab import protect, report, runner
from scanguard_ids.lab.report import LabResult, RunResult, summary, table_i

TOOLS = ("nmap", "suricata", "tcpdump", "ipset", "iptables", "ethtool", "nft")


def _run(fast: bool, counts: tuple[int, int, int], n_open: int) -> RunResult:
    return RunResult(protection=True, proto="tcp", n_ports=65_536,
                     counts=dict(zip(report.COLUMNS, counts, strict=True)), nmap_states={},
                     truth_open=100, correct_open=list(range(n_open)),
                     correct_closed=counts[1], wrong=0, duration=130.0, nmap_argv=[],
                     fast_path=fast, fp_blocked=["192.0.2.2"] if fast else [],
                     fp_adopted=["192.0.2.2"] if fast else [],
                     fp_journaled=["192.0.2.2"] if fast else [])


def test_fast_path_rows_beside_the_response_only_rows() -> None:
    res = LabResult(protector="scanguard", fast_path={"mode": "block", "burst": 8, "rate": 2})
    res.runs = [_run(False, (27, 30, 65_479), 27), _run(True, (8, 0, 65_528), 8)]
    rows = {line[:36].strip(): line[36:].split() for line in table_i(res).splitlines()[3:8]}
    assert rows["scanguard (lab)"][-4:] == ["27", "30", "65", "479"]
    assert rows["scanguard + fast path b8/r2 (lab)"][-4:] == ["8", "0", "65", "528"]
    assert res.run(True, "tcp").correct_closed == 30  # type: ignore[union-attr]
    assert report.figure_series(res)["open_tcp"][True] == [(65_536, 27)]
    assert report.fast_path_series(res)["open_tcp"] == [(65_536, 8)]
    text = summary(res)
    assert "TCP + fast path: open 8/100" in text
    assert "kernel blocked 1 source(s)" in text and "journaled 1/1" in text


def test_no_fast_path_row_without_fast_path_runs() -> None:
    res = LabResult(protector="scanguard")
    res.runs = [_run(False, (27, 30, 65_479), 27)]
    assert "fast path" not in summary(res)


def test_protector_config_carries_the_fast_path(tmp_path: Path) -> None:
    ctx = protect.ProtectContext(victim=None, workdir=tmp_path,  # type: ignore[arg-type]
                                 eve_file=tmp_path / "eve.json", eve_socket=None,
                                 fast_path=protect.FastPathArgs(burst=6, rate=3))
    argv = protect.scanguard_argv(ctx)
    assert argv[argv.index("--config") + 1] == str(ctx.config_path)
    text = protect.lab_config(ctx)
    assert text is not None
    ctx.config_path.write_text(text)
    cfg = load_config(ctx.config_path)
    assert (cfg.fastpath.mode, cfg.fastpath.burst, cfg.fastpath.rate) == ("block", 6, 3)
    plain = protect.ProtectContext(victim=None, workdir=tmp_path,  # type: ignore[arg-type]
                                   eve_file=tmp_path / "eve.json", eve_socket=None)
    assert protect.lab_config(plain) is None and "--config" not in protect.scanguard_argv(plain)


def test_fast_path_blocked_reads_only_the_fast_path_sets() -> None:
    events: list[dict[str, object]] = [
        {"t": 1.0, "event": "add", "set": "scanguard_fp:blocked4", "ip": "192.0.2.2"},
        {"t": 1.5, "event": "add", "set": "sglab4", "ip": "192.0.2.2"},
        {"t": 1.6, "event": "add", "set": "sglab4", "ip": "192.0.2.8"},
    ]
    assert runner.fast_path_blocked(events) == {"192.0.2.2"}


def _need_root_and_tools() -> None:
    need_root_and(TOOLS, scanguard=True)


@pytest.mark.root
@pytest.mark.suricata
@pytest.mark.slow
def test_fast_path_rows_learn_far_fewer_open_ports(tmp_path: Path) -> None:
    _need_root_and_tools()
    opts = runner.LabOptions(sizes=(2_000,), protos=("tcp",), unprotected=False,
                             delay_ms=5.0, eve_transport="socket", policy="default",
                             fast_path=protect.FastPathArgs(burst=8, rate=2),
                             sensor_probes=5, settle=0.2, outdir=tmp_path, prefix="lf",
                             scan_timeout=120)
    res = runner.run_lab(opts)
    print(summary(res))
    assert "+ fast path b8/r2 (lab)" in table_i(res)
    slow = res.run(True, "tcp")
    fast = res.run(True, "tcp", fast_path=True)
    assert slow is not None and fast is not None and fast.fast_path and not slow.fast_path
    assert fast.n_ports == slow.n_ports == 2_000
    assert slow.truth_open > 30  # most of the 100 popular TCP ports are below 2 000
    assert len(fast.correct_open) <= 8, fast.correct_open
    assert len(fast.correct_open) * 2 < len(slow.correct_open), (fast.correct_open,
                                                                 slow.correct_open)
    # The kernel blocked the scanner itself; the daemon adopted and journaled it.
    scanner = "192.0.2.2"
    assert scanner in fast.fp_blocked
    assert fast.fp_journaled == fast.fp_blocked
    assert scanner in fast.fp_adopted
    assert fast.leaks is not None and fast.leaks.after_block == []
    assert fast.reaction is not None and fast.reaction.blocked is not None
    assert slow.fp_blocked == []  # the response-only run had no fast path
