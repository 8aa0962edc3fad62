"""The sdn-faucet backend without Faucet: the file it writes, batching, expiry, restarts."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from scanguard_ids.block import registry
from scanguard_ids.block.sdn.acl import AclLayout
from scanguard_ids.block.sdn.faucet import FaucetBackend
from scanguard_ids.clock import FixedClock
from scanguard_ids.config import BlockConfig
from scanguard_ids.errors import BackendError
from scanguard_ids.model import Block

T0 = 1_800_000_000.0


class FakeReloader:
    description = "fake"

    def __init__(self, path: Path | None = None) -> None:
        self.calls = 0
        self.seen: list[dict[str, float]] = []  # the file's blocks at each reload
        self.fail = False
        self.path = path
        self.event = threading.Event()

    def reload(self) -> None:
        if self.fail:
            raise BackendError("faucet is down")
        self.calls += 1
        if self.path is not None:
            self.seen.append(AclLayout().parse(self.path.read_text()))
        self.event.set()


def make(tmp_path: Path, clock: FixedClock | None = None, **kw: object
         ) -> tuple[FaucetBackend, FakeReloader]:
    acl = tmp_path / "scanguard-acl.yaml"
    rel = FakeReloader(acl)
    kw.setdefault("background", False)
    b = FaucetBackend(BlockConfig(), clock or FixedClock(T0), acl_file=str(acl), reloader=rel,
                      **kw)  # type: ignore[arg-type]
    return b, rel


def on_disk(tmp_path: Path) -> dict[str, float]:
    return AclLayout().parse((tmp_path / "scanguard-acl.yaml").read_text())


def test_start_creates_an_empty_acl_and_reloads(tmp_path: Path) -> None:
    b, rel = make(tmp_path)
    b.start()
    assert on_disk(tmp_path) == {}
    assert rel.calls == 1
    b.start()  # idempotent
    assert rel.calls == 1
    assert b.list() == []


def test_block_unblock_write_the_file(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    b, rel = make(tmp_path, clock)
    b.start()
    b.block("198.51.100.7", 300)
    b.block("2001:DB8::7", 60)
    assert on_disk(tmp_path) == {"198.51.100.7": T0 + 300, "2001:db8::7": T0 + 60}
    assert b.list() == [Block("198.51.100.7", T0 + 300), Block("2001:db8::7", T0 + 60)]
    clock.advance(10)
    b.block("198.51.100.7", 300)  # refresh
    assert on_disk(tmp_path)["198.51.100.7"] == T0 + 310
    b.unblock("198.51.100.7")
    b.unblock("203.0.113.99")  # unknown: fine, nothing to apply
    assert on_disk(tmp_path) == {"2001:db8::7": T0 + 60}
    assert rel.calls == 5
    with pytest.raises(BackendError):
        b.block("not-an-ip", 5)
    with pytest.raises(BackendError):
        b.block("198.51.100.8", 0)


def test_expired_rules_are_removed(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    b, rel = make(tmp_path, clock)
    b.start()
    b.block("198.51.100.7", 5)
    b.block("198.51.100.8", 50)
    clock.advance(5)
    assert [x.ip for x in b.list()] == ["198.51.100.8"]
    assert b.flush() is True
    assert on_disk(tmp_path) == {"198.51.100.8": T0 + 50}
    assert b.flush() is False  # nothing changed: no reload
    assert rel.calls == 4


def test_restart_adopts_live_blocks_and_drops_expired(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    first, _ = make(tmp_path, clock)
    first.start()
    first.block("198.51.100.7", 100)
    first.block("2001:db8::7", 10)
    # no stop(): a crash leaves the file as it was
    clock.advance(20)
    second, rel = make(tmp_path, clock)
    assert second.list() == [Block("198.51.100.7", T0 + 100)]  # read-only, before start
    second.start()
    assert second.list() == [Block("198.51.100.7", T0 + 100)]
    assert on_disk(tmp_path) == {"198.51.100.7": T0 + 100}
    assert rel.calls == 1


def test_foreign_file_is_not_overwritten(tmp_path: Path) -> None:
    acl = tmp_path / "scanguard-acl.yaml"
    acl.write_text("acls:\n  scanguard:\n    - rule: {actions: {allow: 1}}\n")
    b, rel = make(tmp_path)
    with pytest.raises(BackendError, match="not written by scanguard"):
        b.start()
    assert acl.read_text().startswith("acls:")
    assert rel.calls == 0


def test_missing_directory_fails_start(tmp_path: Path) -> None:
    b = FaucetBackend(acl_file=str(tmp_path / "nope" / "acl.yaml"), reloader=FakeReloader(),
                      background=False)
    with pytest.raises(BackendError, match="missing"):
        b.start()


def test_cap(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    b, _ = make(tmp_path, clock, max_blocks=2)
    b.start()
    b.block("198.51.100.1", 10)
    b.block("198.51.100.2", 100)
    b.block("198.51.100.2", 100)  # a refresh is not a new rule
    with pytest.raises(BackendError, match="full"):
        b.block("198.51.100.3", 10)
    clock.advance(10)  # one expires: room again
    b.block("198.51.100.3", 10)
    assert sorted(on_disk(tmp_path)) == ["198.51.100.2", "198.51.100.3"]


def test_outbound_off_means_source_rules_only(tmp_path: Path) -> None:
    b = FaucetBackend(BlockConfig(block_outbound=False), FixedClock(T0),
                      acl_file=str(tmp_path / "a.yaml"), reloader=FakeReloader(),
                      background=False)
    b.start()
    b.block("198.51.100.1", 10)
    text = (tmp_path / "a.yaml").read_text()
    assert "ipv4_src" in text and "ipv4_dst" not in text


def test_reload_failure_is_retried(tmp_path: Path) -> None:
    b, rel = make(tmp_path)
    b.start()
    rel.fail = True
    with pytest.raises(BackendError, match="faucet is down"):
        b.block("198.51.100.1", 10)
    assert on_disk(tmp_path) == {"198.51.100.1": T0 + 10}  # written, not yet loaded
    assert b.stats.errors == 1
    assert "faucet is down" in b.show()
    rel.fail = False
    assert b.flush() is True  # same content, but Faucet has not loaded it yet
    assert rel.calls == 2


def test_remove_keeps_an_empty_acl(tmp_path: Path) -> None:
    b, _ = make(tmp_path)
    b.start()
    b.block("198.51.100.1", 10)
    b.remove()
    assert on_disk(tmp_path) == {}
    assert (tmp_path / "scanguard-acl.yaml").exists()


def test_burst_is_one_reload(tmp_path: Path) -> None:
    """Background mode, real clock: 50 blocks in a burst are one write and one reload."""
    acl = tmp_path / "acl.yaml"
    rel = FakeReloader(acl)
    b = FaucetBackend(acl_file=str(acl), reloader=rel, batch_window=0.15)
    b.start()
    try:
        rel.event.clear()
        t0 = time.monotonic()
        for i in range(50):
            b.block(f"198.51.100.{i + 1}", 60)
        assert rel.event.wait(5)
        took = time.monotonic() - t0
        time.sleep(0.4)
        assert rel.calls == 2, rel.seen  # start + one batch
        assert len(rel.seen[-1]) == 50
        assert b.stats.last_batch == 50
        assert 0.1 < took < 2
    finally:
        b.stop()


def test_worker_expires_and_pending_changes_are_written_on_stop(tmp_path: Path) -> None:
    acl = tmp_path / "acl.yaml"
    rel = FakeReloader(acl)
    b = FaucetBackend(acl_file=str(acl), reloader=rel, batch_window=0.05,
                      min_reload_interval=0.0)
    b.start()
    try:
        b.block("198.51.100.1", 1)
        deadline = time.monotonic() + 5
        while "198.51.100.1" not in acl.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        while "198.51.100.1" in acl.read_text():  # the worker takes it out after 1 s
            assert time.monotonic() < deadline
            time.sleep(0.02)
        b.batch_window = 30.0  # now a change stays pending ...
        b.block("198.51.100.2", 60)
    finally:
        b.stop()  # ... until stop() writes it
    assert "198.51.100.2" in acl.read_text()


def test_registry_builds_it(tmp_path: Path) -> None:
    b = registry.create("sdn-faucet", BlockConfig(), FixedClock(T0),
                        acl_file=str(tmp_path / "a.yaml"), reloader=FakeReloader())
    assert isinstance(b, FaucetBackend)
    assert b.info.name == "sdn-faucet"
