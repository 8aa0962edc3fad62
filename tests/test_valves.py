"""The valves under attack (docs/security.md "Valves under attack"), on the dry-run backend
with a pinned clock: a full set evicts, a short rate defers, strikes only for applied
blocks, kernel listings never race blocks, one spelling per address, time outliers."""

from __future__ import annotations

from pathlib import Path

from harness import T0, make_rig, rst

from scanguard_ids import config
from scanguard_ids.block.dryrun import DryRunBackend
from scanguard_ids.model import Block


def scan(ip: str, ts: float, ports: int = 3) -> list[bytes]:
    return [rst(ip, 1000 + p, ts + p * 0.01) for p in range(ports)]


def spoofed(n: int, ts: float, base: int = 0) -> list[bytes]:
    """n spoofed sources, each drawing just enough responses to be blocked. The IPv6 ones
    each in a /64 of their own: addresses of one /64 are one group (detect.prefix6), and
    their interleaved responses make one prefix block, not n."""
    lines: list[bytes] = []
    for i in range(base, base + n):
        lines += scan(f"198.51.{100 + (i >> 8) % 2}.{i % 256}" if i < 512
                      else f"2001:db8:{i:x}::1", ts, ports=3)
    return lines


def test_a_full_set_evicts_the_weakest_and_journals_it(tmp_path: Path) -> None:
    cfg = config.Config().replace("block", max_set_size=16, max_blocks_per_second=10_000)
    rig = make_rig(tmp_path, cfg)
    rig.engine.manual_block("192.0.2.200")  # manual blocks are never evicted
    rig.feed(*spoofed(40, T0))
    assert len(rig.blocked()) == 15  # 1 place of 16 is kept for manual blocks
    scanner = "203.0.113.66"
    rig.feed(*scan(scanner, T0 + 1, ports=5))
    held = rig.blocked()
    assert scanner in held and "192.0.2.200" in held and len(held) == 15
    evicts = [r for r in rig.journal() if r["action"] == "evict"]
    assert len(evicts) == 40 + 1 - 14
    assert all(r["ip"] != "192.0.2.200" for r in evicts)
    assert rig.engine.counters["evicted"] == len(evicts)
    assert rig.engine.snapshot().counters["evicted"] == len(evicts)
    # the manual headroom: a manual block still lands although automatic ones filled it
    rig.engine.manual_block("192.0.2.201")
    assert "192.0.2.201" in rig.blocked() and len(rig.blocked()) == 16


def test_strikes_only_for_applied_blocks(tmp_path: Path) -> None:
    cfg = config.Config().replace("block", max_blocks_per_second=5)
    rig = make_rig(tmp_path, cfg)
    rig.feed(*spoofed(2000, T0))  # far more than the bucket and the retry queue hold
    applied = {r["ip"] for r in rig.journal() if r["action"] == "block"}
    assert len(rig.engine.offenders) == len(applied) == rig.engine.counters["blocks"]
    assert all(ip in rig.engine.offenders for ip in applied)
    assert rig.engine.counters["valve_drops"] > 1000


def test_a_flood_does_not_starve_a_real_scanner(tmp_path: Path) -> None:
    cfg = config.Config().replace("block", max_blocks_per_second=20)
    rig = make_rig(tmp_path, cfg)
    scanner = "203.0.113.66"
    for sec in range(10):  # 600 spoofed decisions a second against 20 tokens a second
        t = T0 + sec
        rig.clock.set(t)
        lines = spoofed(600, t, base=600 * sec % 1500)
        lines[300:300] = scan(scanner, t, ports=30)  # the real scan, in the middle of it
        rig.feed(*lines)
        rig.engine.sync()
        if scanner in rig.blocked():
            break
    assert scanner in rig.blocked()


def test_backlog_after_restart_is_fully_blocked(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)  # the valve at its default (200/s)
    n = 450
    lines: list[bytes] = []
    for i in range(n):  # a backlog an hour old, read in one go
        lines += scan(f"2001:db8:5::{i:x}", T0 - 3600 + i * 0.5)
    rig.feed(*lines)
    for _ in range(10):
        rig.clock.advance(1.0)
        rig.engine.sync()
    assert len(rig.blocked()) == n
    assert rig.engine.counters["deferred"] > 0 and rig.engine.counters["retried"] > 0
    assert len(rig.engine.offenders) == n
    # the blocks decided from the backlog run their ttl from now: still held
    rig.clock.advance(200)
    rig.engine.sync(full=True)
    assert len(rig.blocked()) == n
    assert not [r for r in rig.journal() if r["action"] == "expire"]


def test_a_line_from_2099_does_not_blind_the_engine(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.feed(rst("198.51.100.99", 22, 4_102_444_800.0))  # 2100-01-01
    rig.feed(*scan("203.0.113.5", T0 + 1))
    assert "203.0.113.5" in rig.blocked()
    assert rig.engine.counters["future"] == 1


def test_a_clock_stepping_back_is_followed(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.feed(*scan("203.0.113.5", T0))
    back = T0 - 3600  # the sensor's clock steps back an hour
    lines = [rst(f"198.51.100.{i}", 80, back + i) for i in range(10)]
    rig.feed(*lines)
    rig.feed(*scan("203.0.113.6", back + 20))
    assert "203.0.113.6" in rig.blocked()
    assert rig.engine.counters["clock_steps"] == 1


class RacyBackend(DryRunBackend):
    """Another thread blocks (and unblocks) while the kernel is being listed."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.during_list: list[object] = []

    def list(self) -> list[Block]:
        out = super().list()
        for hook in self.during_list:
            hook()  # type: ignore[operator]
        return out


def test_sync_never_expires_a_block_made_while_listing(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    racy = RacyBackend(rig.engine.cfg.block, rig.clock)
    rig.engine.backend = racy
    rig.backend = racy
    rig.engine.manual_block("198.51.100.1")
    racy.during_list = [lambda: rig.engine.manual_block("198.51.100.2"),
                        lambda: rig.engine.manual_unblock("198.51.100.1")]
    rig.engine.sync(full=True)
    racy.during_list = []
    assert set(rig.engine.active) == {"198.51.100.2"}
    actions = [(r["action"], r["ip"]) for r in rig.journal()]
    assert ("expire", "198.51.100.2") not in actions
    assert rig.engine.evidence["198.51.100.2"].reason != "external"


def test_one_spelling_per_address(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.engine.manual_block("::ffff:198.51.100.7")
    rig.engine.manual_block("2001:db8::5%eth0")
    rig.engine.manual_block("2001:DB8:0:0::0009")
    rig.feed(*scan("::ffff:203.0.113.9", T0))
    assert set(rig.engine.active) == {"198.51.100.7", "2001:db8::5", "2001:db8::9",
                                      "203.0.113.9"}
    rig.clock.advance(10)
    rig.engine.sync(full=True)
    assert not [r for r in rig.journal() if r["action"] == "expire"]
    assert len(rig.engine.active) == 4
