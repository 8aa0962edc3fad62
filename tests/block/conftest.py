"""Fixtures for the enforcement-backend tests: the namespace lab and a host-untouched check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from blocklab import Lab, host_firewall, listening_lab, need_root


@pytest.fixture
def lab() -> Iterator[Lab]:
    """victim (192.0.2.1, 2001:db8::1, TCP listener on 8080) <-> scanner (.2/::2, plus
    the neighbour addresses .3/::3 on the same interface)."""
    with listening_lab("sgb", neighbours=True) as lab:
        yield lab


@pytest.fixture(scope="module")
def host_untouched() -> Iterator[None]:
    """Fail the module if the host's own firewall changed while it ran."""
    need_root()
    before = host_firewall()
    yield
    assert host_firewall() == before, "the host namespace's firewall changed"
