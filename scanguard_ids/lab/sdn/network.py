"""The switched lab network: victim and scanner behind an OVS bridge, optionally under Faucet.

::

    victim [sv0 192.0.2.1, 2001:db8::1]
        <-veth-> [pv0 | switch ns: OVS br0 (netdev), Faucet on 127.0.0.1:6653 | ps0] <-veth->
                                                  [ss0 192.0.2.2, 2001:db8::2] scanner

The switch namespace holds the veth ends, both OVS daemons (userspace datapath, so
the bridge's tap device is there too) and Faucet, whose controller port and
Prometheus exporter are on that namespace's loopback. Nothing is created in the host
namespace: the backends reach the switch through files in ``workdir`` (the ACL file,
Faucet's pid, the bridge's ``br0.mgmt`` OpenFlow socket).

:func:`attach_switch` bridges veth ends that already sit in a namespace (what the
``scanguard lab`` topology builds); :func:`switched_pair` builds the whole picture
for tests. ``controller="faucet"``: Faucet runs the bridge (fail_mode secure) and
includes the ACL file scanguard writes; ``controller="none"``: a standalone learning
bridge that the sdn-openflow backend adds drop flows to.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanguard_ids.block.sdn.acl import AclLayout, faucet_yaml
from scanguard_ids.errors import BackendError
from scanguard_ids.lab import netns, procs
from scanguard_ids.lab.netns import Netns
from scanguard_ids.lab.procs import LabError
from scanguard_ids.lab.sdn.faucetproc import FaucetController
from scanguard_ids.lab.sdn.ovs import Bridge, OvsSwitch

log = logging.getLogger(__name__)

BRIDGE = "br0"
DPID = 0x5CA9
ACL_NAME = "scanguard"
VICTIM4, SCANNER4 = "192.0.2.1", "192.0.2.2"
VICTIM6, SCANNER6 = "2001:db8::1", "2001:db8::2"


@dataclass(slots=True)
class SdnSwitch:
    """A running bridge (and controller); what the backends need to reach it."""

    ns: Netns
    workdir: Path
    ovs: OvsSwitch
    bridge: Bridge
    faucet: FaucetController | None = None
    acl_file: Path | None = None

    def backend(self) -> str:
        return "sdn-faucet" if self.faucet is not None else "sdn-openflow"

    def backend_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``registry.create(self.backend(), cfg, clock, **kw)``."""
        if self.faucet is not None:
            return {"acl_file": str(self.acl_file), "acl_name": ACL_NAME,
                    "faucet_pid_file": str(self.faucet.pid_file)}
        return {"target": self.bridge.target}

    def flows(self, table: int | None = None) -> str:
        args = ["dump-flows"] + ([f"table={table}"] if table is not None else [])
        return self.ovs.ofctl(self.bridge, *args)


def _faucet_ready(sw: OvsSwitch, bridge: Bridge) -> bool:
    # Faucet's first table sends every port's traffic on to its VLAN table.
    return sw.controller_connected(bridge) and "goto_table" in sw.ofctl(
        bridge, "dump-flows", "table=0")


@contextlib.contextmanager
def attach_switch(ns: Netns, ports: Sequence[str], workdir: Path, controller: str = "faucet",
                  of_port: int = 6653, start_timeout: float = 30.0) -> Iterator[SdnSwitch]:
    """Bridge ``ports`` (veth ends in ``ns``; ofport 1, 2, ... in that order) with OVS."""
    if controller not in ("faucet", "none"):
        raise LabError(f"controller {controller!r}: one of faucet, none")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ovs = OvsSwitch(ns, workdir / "ovs")
    faucet: FaucetController | None = None
    try:
        ovs.start()
        sw: SdnSwitch
        if controller == "faucet":
            acl_file = workdir / "scanguard-acl.yaml"
            acl_file.write_text(AclLayout(ACL_NAME).render({}))
            config = workdir / "faucet.yaml"
            config.write_text(faucet_yaml(str(acl_file), ACL_NAME,
                                          {i + 1: p for i, p in enumerate(ports)}, DPID))
            faucet = FaucetController(ns, workdir / "faucet", config, port=of_port,
                                      start_timeout=start_timeout)
            faucet.start()
            bridge = ovs.add_bridge(BRIDGE, DPID, controller=faucet.controller)
            sw = SdnSwitch(ns, workdir, ovs, bridge, faucet, acl_file)
        else:
            bridge = ovs.add_bridge(BRIDGE, DPID, protocols="OpenFlow10,OpenFlow13",
                                    fail_mode="standalone")
            sw = SdnSwitch(ns, workdir, ovs, bridge)
        for i, port in enumerate(ports):
            ovs.add_port(bridge, port, i + 1)
        if faucet is not None:
            took = procs.wait_for("Faucet programming the bridge",
                                  lambda: _faucet_ready(ovs, bridge), start_timeout,
                                  faucet.proc)
            log.info("action=switch-ready controller=faucet seconds=%.2f", took)
        yield sw
    except (LabError, BackendError) as exc:  # the rig's or a backend's under test
        if faucet is not None:
            exc.add_note(f"faucet log tail:\n{faucet.log_tail()}")
        raise
    finally:
        if faucet is not None:
            faucet.stop()
        ovs.stop()


@dataclass(slots=True)
class SdnNet:
    victim: Netns
    scanner: Netns
    switch: SdnSwitch
    victim4: str = VICTIM4
    scanner4: str = SCANNER4
    victim6: str = VICTIM6
    scanner6: str = SCANNER6
    extra_scanner_addrs: list[str] = field(default_factory=list)


def _reachable(ns: Netns, dst: str) -> bool:
    argv = [sys.executable, "-m", "scanguard_ids.lab.sdn.probe", dst, "--timeout", "0.5"]
    return ns.run(argv, check=False, timeout=10).returncode == 0


@contextlib.contextmanager
def switched_pair(workdir: Path, controller: str = "faucet", prefix: str = "sgq",
                  extra_scanner_addrs: Sequence[str] = (),
                  start_timeout: float = 30.0) -> Iterator[SdnNet]:
    """victim and scanner namespaces joined through the switch namespace.

    ``extra_scanner_addrs`` (e.g. ``192.0.2.3/24``) are added on the scanner's
    interface too: neighbours that share its link and must stay reachable.
    """
    with netns.namespaces(f"{prefix}v", f"{prefix}s", f"{prefix}w") as (victim, scanner, sw):
        netns.connect(victim, sw, [f"{VICTIM4}/24", f"{VICTIM6}/64"], [], a_if="sv0",
                      b_if="pv0", tx_off=True)
        netns.connect(scanner, sw, [f"{SCANNER4}/24", f"{SCANNER6}/64"], [], a_if="ss0",
                      b_if="ps0", tx_off=True)
        for addr in extra_scanner_addrs:
            netns.check_doc_address(addr)
            extra = ["nodad"] if ":" in addr else []
            scanner.run(["ip", "addr", "add", addr, "dev", "ss0", *extra])
        with attach_switch(sw, ["pv0", "ps0"], workdir, controller,
                           start_timeout=start_timeout) as switch:
            net = SdnNet(victim, scanner, switch, extra_scanner_addrs=list(extra_scanner_addrs))
            deadline = time.monotonic() + start_timeout
            for dst in (VICTIM4, VICTIM6):
                while not _reachable(scanner, dst):
                    if time.monotonic() > deadline:
                        raise LabError(f"{dst} not reachable through the switch in "
                                       f"{start_timeout:g}s")
            yield net
