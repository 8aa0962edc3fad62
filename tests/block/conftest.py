"""Fixtures for the enforcement-backend tests: the namespace lab and a host-untouched check."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest
from blocklab import LISTENER, NEIGHBOUR4, NEIGHBOUR6, PORT, Lab, host_firewall, need_root

from scanguard_ids.lab.netns import victim_scanner


@pytest.fixture
def lab() -> Iterator[Lab]:
    """victim (192.0.2.1, 2001:db8::1, TCP listener on 8080) <-> scanner (.2/::2, plus
    the neighbour addresses .3/::3 on the same interface)."""
    need_root()
    with victim_scanner("sgb") as pair:
        pair.scanner.run(["ip", "addr", "add", f"{NEIGHBOUR4}/24", "dev", "scan0"])
        pair.scanner.run(["ip", "addr", "add", f"{NEIGHBOUR6}/64", "dev", "scan0", "nodad"])
        listener = pair.victim.popen([sys.executable, "-c", LISTENER, str(PORT), "120"])
        try:
            lab = Lab(pair, listener)
            deadline = time.monotonic() + 10
            while not lab.tcp(pair.scanner, pair.victim4):
                assert time.monotonic() < deadline, "listener in the victim ns never came up"
                time.sleep(0.1)
            yield lab
        finally:
            listener.kill()
            listener.wait(timeout=10)


@pytest.fixture(scope="module")
def host_untouched() -> Iterator[None]:
    """Fail the module if the host's own firewall changed while it ran."""
    need_root()
    before = host_firewall()
    yield
    assert host_firewall() == before, "the host namespace's firewall changed"
