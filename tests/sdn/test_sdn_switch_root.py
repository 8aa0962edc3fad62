"""Both sdn backends against real components: OVS (userspace datapath) and Faucet.

victim (192.0.2.1, 2001:db8::1) and scanner (192.0.2.2, 2001:db8::2, plus the
neighbour addresses .3/::3 on the same interface) sit behind an OVS bridge in a third
namespace; Faucet, when used, runs there too on 127.0.0.1. Everything is made by the
module's fixtures and removed after it; the host's interfaces are checked unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nsutil import run_in_netns  # tests/nsutil.py

from scanguard_ids.block.sdn.faucet import FaucetBackend
from scanguard_ids.block.sdn.openflow import OpenFlowBackend
from scanguard_ids.lab.netns import Netns
from scanguard_ids.lab.sdn import faucetproc, ovs
from scanguard_ids.lab.sdn.network import SdnNet, switched_pair
from scanguard_ids.lab.sdn.probe import Pinger

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

NEIGHBOURS = ["192.0.2.3/24", "2001:db8::3/64"]
PAIRS = {4: ("192.0.2.2", "192.0.2.1", "192.0.2.3"),
         6: ("2001:db8::2", "2001:db8::1", "2001:db8::3")}  # scanner, victim, neighbour


def _need(controller: str) -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 (network namespaces)")
    why = ovs.missing() or (faucetproc.missing() if controller == "faucet" else None)
    if why:
        pytest.skip(why)


def _host_links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


def _echo(dst: str, src: str, timeout: float) -> bool:
    p = Pinger(dst, src)
    try:
        return p.echo(timeout)
    finally:
        p.close()


def reach(ns: Netns, src: str, dst: str, timeout: float = 0.3) -> bool:
    return run_in_netns(ns.name, _echo, dst, src, timeout, timeout=10)


def wait_reach(ns: Netns, src: str, dst: str, want: bool, limit: float) -> float:
    """Seconds until a probe from src to dst has outcome ``want`` (fails after limit)."""
    start = time.monotonic()
    while reach(ns, src, dst) != want:
        assert time.monotonic() - start < limit, f"{src}->{dst} still {not want} after {limit}s"
    return time.monotonic() - start


def start_probe(net: SdnNet, src: str, dst: str, until: str,
                limit: float = 20) -> subprocess.Popen[str]:
    argv = net.scanner.argv([sys.executable, "-m", "scanguard_ids.lab.sdn.probe", dst,
                             "--src", src, "--until", until, "--interval", "0.005",
                             "--timeout", "0.3", "--max", str(limit)])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)  # probing before the change
    return proc


def probe_time(proc: subprocess.Popen[str], since: float) -> float:
    out, _ = proc.communicate(timeout=40)
    t = json.loads(out)["t"]
    assert t is not None, "the probe never saw the change"
    return float(t) - since


@pytest.fixture(scope="module")
def host_links() -> Iterator[None]:
    before = _host_links()
    yield
    assert _host_links() == before, "host interfaces changed"


def _net(tmp: Path, controller: str) -> Iterator[SdnNet]:
    _need(controller)
    with switched_pair(tmp, controller, prefix="sgt", extra_scanner_addrs=NEIGHBOURS) as net:
        yield net


@pytest.fixture(scope="module")
def faucet_net(tmp_path_factory: pytest.TempPathFactory, host_links: None) -> Iterator[SdnNet]:
    yield from _net(tmp_path_factory.mktemp("faucet"), "faucet")


@pytest.fixture(scope="module")
def of_net(tmp_path_factory: pytest.TempPathFactory, host_links: None) -> Iterator[SdnNet]:
    yield from _net(tmp_path_factory.mktemp("openflow"), "none")


@pytest.fixture
def faucet_backend(faucet_net: SdnNet) -> Iterator[FaucetBackend]:
    b = FaucetBackend(**faucet_net.switch.backend_kwargs())
    b.start()
    try:
        yield b
    finally:
        b.remove()  # an empty ACL for the next test


@pytest.fixture(params=["native", "ofctl"])
def of_backend(request: pytest.FixtureRequest, of_net: SdnNet) -> Iterator[OpenFlowBackend]:
    b = OpenFlowBackend(**of_net.switch.backend_kwargs(), transport=request.param)
    b.start()
    try:
        yield b
    finally:
        b.remove()


# -- Faucet --------------------------------------------------------------------------
def test_faucet_drops_scanner_not_neighbour(faucet_net: SdnNet,
                                            faucet_backend: FaucetBackend) -> None:
    net, b = faucet_net, faucet_backend
    scanner4, victim4, _ = PAIRS[4]
    probe = start_probe(net, scanner4, victim4, "dropped")
    t0 = time.monotonic()
    b.block(scanner4, 60)
    b.block(PAIRS[6][0], 60)  # same batch: one reload
    latency = probe_time(probe, t0)
    print(f"sdn-faucet block->dropped {latency * 1000:.0f} ms")
    assert latency < 10
    for fam, (scanner, victim, neighbour) in PAIRS.items():
        wait_reach(net.scanner, scanner, victim, False, 10)
        assert reach(net.scanner, neighbour, victim), f"IPv{fam} neighbour was cut off"
        assert not reach(net.victim, victim, scanner), f"IPv{fam}: victim still reaches it"
    assert "192.0.2.2" in net.switch.flows(0) and "2001:db8::2" in net.switch.flows(0)
    assert {x.ip for x in b.list()} == {PAIRS[4][0], PAIRS[6][0]}
    for scanner, _victim, _ in PAIRS.values():
        b.unblock(scanner)
    for scanner, victim, _ in PAIRS.values():
        wait_reach(net.scanner, scanner, victim, True, 10)


def test_faucet_rule_goes_after_ttl(faucet_net: SdnNet, faucet_backend: FaucetBackend) -> None:
    net, b = faucet_net, faucet_backend
    scanner, victim, _ = PAIRS[6]
    t0 = time.monotonic()
    b.block(scanner, 2)
    wait_reach(net.scanner, scanner, victim, False, 10)
    probe = start_probe(net, scanner, victim, "passing")
    back = probe_time(probe, t0)
    print(f"sdn-faucet ttl=2 -> passing again after {back:.2f} s")
    assert 2.0 <= back < 6.0
    assert b.list() == []
    assert scanner not in Path(net.switch.backend_kwargs()["acl_file"]).read_text()


def test_faucet_restart_adopts_rules(faucet_net: SdnNet) -> None:
    net = faucet_net
    kw = net.switch.backend_kwargs()
    first = FaucetBackend(**kw, background=False)
    first.start()
    first.block(PAIRS[4][0], 60)
    first.block(PAIRS[6][0], 1)
    expires = {x.ip: x.expires for x in first.list()}
    wait_reach(net.scanner, PAIRS[4][0], PAIRS[4][1], False, 10)
    del first  # "crash": no stop(); the file is all that is left
    time.sleep(1.1)  # the IPv6 block runs out while no daemon is there
    second = FaucetBackend(**kw)
    try:
        second.start()
        adopted = second.list()
        assert [x.ip for x in adopted] == [PAIRS[4][0]]
        assert adopted[0].expires == pytest.approx(expires[PAIRS[4][0]], abs=0.001)
        assert not reach(net.scanner, PAIRS[4][0], PAIRS[4][1]), "adopted block not enforced"
        wait_reach(net.scanner, PAIRS[6][0], PAIRS[6][1], True, 10)  # expired one is gone
        second.unblock(PAIRS[4][0])
        wait_reach(net.scanner, PAIRS[4][0], PAIRS[4][1], True, 10)
    finally:
        second.remove()


# -- direct OpenFlow -----------------------------------------------------------------
def test_openflow_drops_scanner_not_neighbour(of_net: SdnNet, of_backend: OpenFlowBackend
                                              ) -> None:
    net, b = of_net, of_backend
    for fam, (scanner, victim, neighbour) in PAIRS.items():
        probe = start_probe(net, scanner, victim, "dropped")
        t0 = time.monotonic()
        b.block(scanner, 60)
        latency = probe_time(probe, t0)
        print(f"sdn-openflow ({b.transport.name}) IPv{fam} block->dropped "
              f"{latency * 1000:.1f} ms")
        assert latency < 1.0
        assert reach(net.scanner, neighbour, victim), f"IPv{fam} neighbour was cut off"
        assert not reach(net.victim, victim, scanner), f"IPv{fam}: victim still reaches it"
    assert {x.ip for x in b.list()} == {PAIRS[4][0], PAIRS[6][0]}
    for scanner, victim, _ in PAIRS.values():
        b.unblock(scanner)
        # the flow is gone at once; an IPv6 neighbour entry that failed while the scanner was
        # dropped can take a moment to resolve again on a loaded machine
        wait_reach(net.scanner, scanner, victim, True, 5)


def test_openflow_switch_expires_flow(of_net: SdnNet, of_backend: OpenFlowBackend) -> None:
    net, b = of_net, of_backend
    scanner, victim, _ = PAIRS[4]
    t0 = time.monotonic()
    b.block(scanner, 2)
    b.stop()  # nothing of ours runs any more: the switch alone removes the flow
    assert not reach(net.scanner, scanner, victim)
    probe = start_probe(net, scanner, victim, "passing")
    back = probe_time(probe, t0)
    print(f"sdn-openflow ttl=2 -> passing again after {back:.2f} s")
    assert 1.9 <= back < 4.0
    assert b.list() == []


def test_openflow_restart_adopts_flows(of_net: SdnNet, of_backend: OpenFlowBackend) -> None:
    net, first = of_net, of_backend
    first.block(PAIRS[6][0], 60)
    first.block(PAIRS[4][0], 60)
    first.stop()
    second = OpenFlowBackend(**net.switch.backend_kwargs(), transport="native")
    try:
        second.start()
        blocks = second.list()
        assert sorted(x.ip for x in blocks) == sorted([PAIRS[4][0], PAIRS[6][0]])
        for x in blocks:
            assert x.expires is not None and 55 < x.expires - time.time() <= 60
        second.unblock(PAIRS[6][0])
        assert reach(net.scanner, PAIRS[6][0], PAIRS[6][1])
        assert not reach(net.scanner, PAIRS[4][0], PAIRS[4][1])
    finally:
        second.stop()
