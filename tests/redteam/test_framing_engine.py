"""Framing, pure part: response evidence against a live peer is journaled, not enforced.

The kernel side (the nftables live-peer set) is exercised in test_framing_live.py; here the
live set is a plain LivePeers with its peers given, so the engine's decision logic is pinned;
and LivePeers.refresh() reads a real kernel's live sets in a namespace of its own.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import T0, make_rig, rst  # noqa: E402
from nsutil import need_root_and, run_in_netns  # noqa: E402

from scanguard_ids.block.livepeers import LiveLayout, LivePeers  # noqa: E402
from scanguard_ids.lab.netns import namespaces  # noqa: E402

PEER = "198.51.100.7"
SCANNER = "203.0.113.9"


def _probe3(ip: str, t: float) -> list[bytes]:
    return [rst(ip, 22, t), rst(ip, 23, t + 0.1), rst(ip, 24, t + 0.2)]


def test_a_live_peer_is_not_blocked_and_the_journal_says_suspected_framing(
        tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.engine.livepeers = LivePeers(peers=frozenset({PEER}))
    rig.feed(*_probe3(PEER, T0))
    rig.feed(*_probe3(SCANNER, T0 + 1))
    assert rig.blocked() == {SCANNER}
    recs = rig.journal()
    assert [(r["action"], r["ip"], r["provenance"]) for r in recs] == [
        ("suspected-framing", PEER, "responses"), ("block", SCANNER, "responses")]
    assert rig.engine.counters["suspected_framing"] == 1
    assert rig.engine.snapshot().counters["suspected_framing"] == 1
    # the forged offence is taken back: no strike on record
    assert rig.engine.offenders.strikes(PEER, T0 + 1) == 0
    # more forged probes within the ttl are suppressed, not journaled again
    rig.feed(*_probe3(PEER, T0 + 5))
    assert [r["action"] for r in rig.journal()].count("suspected-framing") == 1


def test_manual_block_of_a_live_peer_is_still_enforced(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.engine.livepeers = LivePeers(peers=frozenset({PEER}))
    d = rig.engine.manual_block(PEER)
    assert d.provenance == "manual" and rig.blocked() == {PEER}
    assert rig.journal()[-1]["provenance"] == "manual"


def test_manual_unblock_forgives_the_strikes(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.feed(*_probe3(SCANNER, T0))
    assert rig.engine.offenders.strikes(SCANNER, T0 + 1) == 1
    rig.engine.manual_unblock(SCANNER)
    assert rig.engine.offenders.strikes(SCANNER, T0 + 1) == 0
    rig.feed(*_probe3(SCANNER, T0 + 2))
    blocks = [r for r in rig.journal() if r["action"] == "block"]
    assert [b["strikes"] for b in blocks] == [1, 1]
    assert blocks[1]["ttl"] == blocks[0]["ttl"]


def test_forgive_takes_back_some_or_all() -> None:
    from scanguard_ids import config
    from scanguard_ids.detect.offenders import Offenders

    off = Offenders(config.Config().detect)
    for i in range(3):
        off.offend(PEER, T0 + i)
    assert off.forgive(PEER, 1) == 1 and off.strikes(PEER, T0 + 3) == 2
    assert off.forgive(PEER) == 2 and off.strikes(PEER, T0 + 3) == 0
    assert off.forgive(PEER) == 0


def test_layout() -> None:
    script = LiveLayout().install()
    assert "ct original bytes > 4096 ct reply bytes > 4096" in script
    assert "update @live4" in script and "update @live6" in script


def _read_live_sets() -> dict[str, object]:
    """In a namespace: install the table, put peers in its live sets, read them back through
    refresh() (netlink set dumps), then read with the table gone."""
    peers = LivePeers(layout=LiveLayout(table="sglp"))
    peers.start()
    out: dict[str, object] = {}
    try:
        out["empty"] = (peers.refresh(0.0), sorted(peers.peers))
        for fam, ip in (("4", "198.51.100.7"), ("4", "192.0.2.9"), ("6", "2001:db8::7")):
            subprocess.run(["nft", "add", "element", "inet", "sglp", f"live{fam}", f"{{ {ip} }}"],
                           check=True, capture_output=True, timeout=10)
        out["filled"] = (peers.refresh(0.0), sorted(peers.peers))
        out["too_soon"] = peers.refresh()  # read less than a second ago
        subprocess.run(["nft", "delete", "table", "inet", "sglp"], check=True,
                       capture_output=True, timeout=10)
        out["gone"] = (peers.refresh(0.0), sorted(peers.peers), peers.errors)
    finally:
        peers.stop()
    return out


def test_refresh_reads_the_kernel_live_sets_by_netlink() -> None:
    need_root_and(("nft",))
    with namespaces("sglp") as (ns,):
        got = run_in_netns(ns.name, _read_live_sets)
    assert got["empty"] == (True, [])
    assert got["filled"] == (True, ["192.0.2.9", "198.51.100.7", "2001:db8::7"])
    assert got["too_soon"] is False
    # the table gone: the read fails, is counted, and the last view is kept
    assert got["gone"] == (False, ["192.0.2.9", "198.51.100.7", "2001:db8::7"], 1)
