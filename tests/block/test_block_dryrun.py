from __future__ import annotations

import logging

import pytest

from scanguard_ids.block.common import MAX_TTL, check_ttl, normalize_ip, normalize_target
from scanguard_ids.block.dryrun import DryRunBackend
from scanguard_ids.block.registry import create
from scanguard_ids.clock import FixedClock
from scanguard_ids.config import BlockConfig
from scanguard_ids.errors import BackendError
from scanguard_ids.model import Block


def test_dry_run_keeps_blocks_until_they_expire(caplog: pytest.LogCaptureFixture) -> None:
    clock = FixedClock(1000.0)
    b = DryRunBackend(BlockConfig(), clock)
    caplog.set_level(logging.DEBUG, "scanguard_ids.block.dryrun")  # block lines are DEBUG
    b.start()
    b.block("192.0.2.9", 10)
    b.block("2001:DB8::0:9", 20)
    assert b.list() == [Block("192.0.2.9", 1010.0), Block("2001:db8::9", 1020.0)]
    b.block("192.0.2.9", 30)  # refresh
    clock.advance(25)
    assert b.list() == [Block("192.0.2.9", 1030.0)]
    b.unblock("192.0.2.9")
    b.unblock("192.0.2.9")
    assert b.list() == []
    assert "action=block ip=192.0.2.9 ttl=10 backend=dry-run" in caplog.messages
    assert "action=unblock ip=192.0.2.9 backend=dry-run" in caplog.messages
    assert "0 blocks" in b.show()
    b.stop()
    b.remove()


def test_registry_makes_a_dry_run_backend() -> None:
    clock = FixedClock(5.0)
    b = create("dry-run", BlockConfig(), clock)
    assert b.info.name == "dry-run"
    b.block("::ffff:192.0.2.4", 1)
    assert b.list() == [Block("192.0.2.4", 6.0)]


@pytest.mark.parametrize("ip", ["", "192.0.2", "example.org", "1.2.3.4.5", "192.0.2.0/33"])
def test_bad_addresses_are_refused(ip: str) -> None:
    with pytest.raises(BackendError, match="not an IP address"):
        DryRunBackend().block(ip, 10)


@pytest.mark.parametrize(("ip", "why"), [("192.0.2.1/24", "host bits set"),
                                         ("2001:db8::1/64", "host bits set"),
                                         ("2001::/16", "prefix too wide")])
def test_bad_prefixes_are_refused(ip: str, why: str) -> None:
    with pytest.raises(BackendError, match=why):
        DryRunBackend().block(ip, 10)


def test_prefixes_are_held_and_listed_as_prefixes() -> None:
    clock = FixedClock(100.0)
    b = DryRunBackend(clock=clock)
    b.block("2001:DB8:1:2::/64", 10)
    b.block("198.51.100.0/24", 20)
    b.block("2001:db8::9/128", 30)  # a full-length prefix is the address
    assert b.list() == [Block("198.51.100.0/24", 120.0), Block("2001:db8:1:2::/64", 110.0),
                        Block("2001:db8::9", 130.0)]
    b.unblock("2001:db8:1:2::/64")
    clock.advance(25)
    assert b.list() == [Block("2001:db8::9", 130.0)]


def test_single_address_backends_refuse_prefixes_by_name() -> None:
    with pytest.raises(BackendError, match="prefix blocks are not supported by this backend: "
                                           "2001:db8:1:2::/64"):
        normalize_ip("2001:db8:1:2::/64")
    assert str(normalize_ip("192.0.2.7/32")) == "192.0.2.7"
    assert str(normalize_target("::ffff:198.51.100.0/120")) == "198.51.100.0/24"


@pytest.mark.parametrize("ttl", [0, -1, MAX_TTL + 1, 1.5, True, "10"])
def test_bad_ttls_are_refused(ttl: object) -> None:
    with pytest.raises(BackendError, match="ttl"):
        check_ttl(ttl)  # type: ignore[arg-type]


def test_normalize() -> None:
    assert str(normalize_ip(" 2001:0db8:0::1 ")) == "2001:db8::1"
    assert str(normalize_ip("::ffff:198.51.100.1")) == "198.51.100.1"
    assert check_ttl(MAX_TTL) == MAX_TTL
