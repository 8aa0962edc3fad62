"""Clearing conntrack entries of a blocked address, against the kernel in a namespace."""

from __future__ import annotations

import time

import pytest
from blocklab import NEIGHBOUR4, Lab, ct_count
from nsutil import run_in_netns

from scanguard_ids.block.conntrack import BULK, ConntrackClearer

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("host_untouched")]


def _traffic(lab: Lab) -> None:
    """Make tracked flows: the admin's accept-established rule turns conntrack on."""
    v = lab.victim
    v.run(["nft", "add", "table", "inet", "admin"])
    v.run(["nft", "add", "chain", "inet", "admin", "input",
           "{ type filter hook input priority 0; policy accept; }"])
    v.run(["nft", "add", "rule", "inet", "admin", "input", "ct", "state", "established", "accept"])
    for src in (lab.pair.scanner4, lab.pair.scanner6, NEIGHBOUR4):
        assert lab.ping(lab.scanner, lab.pair.victim6 if ":" in src else lab.pair.victim4, src)
        assert lab.tcp(lab.scanner, lab.pair.victim6 if ":" in src else lab.pair.victim4, src)


@pytest.mark.parametrize("method", ["netlink", "argv"])
def test_clear_removes_only_that_address(method: str, lab: Lab) -> None:
    _traffic(lab)
    s4, s6 = lab.pair.scanner4, lab.pair.scanner6

    def go() -> dict[str, float]:
        before = {ip: ct_count(ip) for ip in (s4, s6, NEIGHBOUR4)}
        c = ConntrackClearer(method)
        t0 = time.perf_counter()
        n = c.clear(s4) + c.clear(s6)
        ms = (time.perf_counter() - t0) * 1000 / 2
        c.close()
        return {"n": n, "ms": ms, **{f"before {k}": v for k, v in before.items()},
                **{f"after {ip}": ct_count(ip) for ip in (s4, s6, NEIGHBOUR4)}}

    res = run_in_netns(lab.victim.name, go)
    print(f"conntrack clear via {method}: {res['ms']:.1f} ms per address")
    assert res[f"before {s4}"] >= 2 and res[f"before {s6}"] >= 2, res  # icmp + tcp each
    assert res["n"] == res[f"before {s4}"] + res[f"before {s6}"], res
    assert res[f"after {s4}"] == 0 and res[f"after {s6}"] == 0, res
    assert res[f"after {NEIGHBOUR4}"] == res[f"before {NEIGHBOUR4}"] > 0, res


def test_background_queue_and_bulk_dump(lab: Lab) -> None:
    _traffic(lab)
    s4, s6 = lab.pair.scanner4, lab.pair.scanner6

    def go() -> dict[str, int]:
        c = ConntrackClearer("netlink")
        c.submit(s6)
        assert c.drain(10)
        after6 = ct_count(s6)
        many = [s4] + [f"198.51.100.{i}" for i in range(1, BULK + 3)]  # > BULK: one dump
        n = c.clear_many(many)
        c.close()
        return {"after6": after6, "n": n, "after4": ct_count(s4),
                "neighbour": ct_count(NEIGHBOUR4), "deleted": c.stats["deleted"]}

    res = run_in_netns(lab.victim.name, go)
    assert res["after6"] == 0 and res["deleted"] >= 2, res
    assert res["after4"] == 0 and res["n"] >= 2 and res["neighbour"] > 0, res
