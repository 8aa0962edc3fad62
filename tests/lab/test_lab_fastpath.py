"""`scanguard lab --fast-path`, small: the same TCP SYN scan of 2 000 ports with the
response-only daemon and with its kernel fast path (block mode, burst 8, rate 2).

Real namespaces, listeners, Suricata, nmap and ``scanguard run``; ~60 s.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from scanguard_ids.lab import protect, runner
from scanguard_ids.lab.report import summary, table_i

pytestmark = [pytest.mark.root, pytest.mark.suricata, pytest.mark.slow]

TOOLS = ("nmap", "suricata", "tcpdump", "ipset", "iptables", "ethtool", "nft")


@pytest.fixture(autouse=True)
def _need_root_and_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)}")
    if not protect.SCANGUARD_BIN.exists():
        pytest.skip("scanguard console script not installed")


def test_fast_path_rows_learn_far_fewer_open_ports(tmp_path: Path) -> None:
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
