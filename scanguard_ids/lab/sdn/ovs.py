"""Open vSwitch for tests and the lab: its daemons in a namespace, all state in a temp dir.

On this kind of host OVS has no kernel module, so the bridge uses the userspace
datapath (``datapath_type=netdev``): ovs-vswitchd reads and writes the ports itself
(AF_PACKET) and makes a tap device for the bridge's internal port. Both daemons run
inside a namespace of ours (``ip netns exec``), so that tap device, every port and
any ``ptcp:`` listener live there, never in the host's namespace. Database, pid
files, control sockets, logs and the bridges' ``<bridge>.mgmt`` OpenFlow sockets are
all in ``workdir`` (``OVS_RUNDIR`` etc.); unix sockets cross namespaces, so the
host-side ``ovs-vsctl``/``ovs-ofctl`` and scanguard's own OpenFlow client reach them.

Ports are veths whose other end sits in another namespace of ours: :meth:`add_port`
refuses anything that is not a veth in the switch namespace. Frames through the
netdev datapath carry whatever checksum the sending kernel left for offload, so the
caller turns TX checksum offload off on both veth ends (``netns.connect(tx_off=True)``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from scanguard_ids.lab import procs
from scanguard_ids.lab.netns import Netns
from scanguard_ids.lab.procs import LabError

log = logging.getLogger(__name__)

SCHEMA_DIRS = ("/usr/share/openvswitch", "/usr/local/share/openvswitch")
BINARIES = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl")


def missing() -> str | None:
    """Why OVS cannot be started here (None: it can)."""
    for b in BINARIES:
        if shutil.which(b) is None:
            return f"{b} not found (Debian package openvswitch-switch)"
    if _schema() is None:
        return "vswitch.ovsschema not found"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun missing (the netdev datapath's internal port is a tap)"
    return None


def _schema() -> Path | None:
    for d in SCHEMA_DIRS:
        p = Path(d) / "vswitch.ovsschema"
        if p.is_file():
            return p
    return None


@dataclass(slots=True)
class Bridge:
    name: str
    dpid: int
    mgmt: Path  # the bridge's OpenFlow unix socket (ovs-ofctl's default target)
    ports: dict[str, int] = field(default_factory=dict)  # ifname -> ofport

    @property
    def target(self) -> str:
        """What ``ovs-ofctl`` or :mod:`openflow` connects to: ``unix:<mgmt>``."""
        return f"unix:{self.mgmt}"


class OvsSwitch:
    """ovsdb-server + ovs-vswitchd running in ``ns`` with every file under ``workdir``.

    Use as a context manager or call start()/stop(); stop() kills both daemons by PID.
    """

    def __init__(self, ns: Netns, workdir: Path, start_timeout: float = 10.0) -> None:
        self.ns = ns
        self.dir = Path(workdir)
        self.start_timeout = start_timeout
        self.db_sock = self.dir / "db.sock"
        self.env = {**os.environ, "OVS_RUNDIR": str(self.dir), "OVS_DBDIR": str(self.dir),
                    "OVS_LOGDIR": str(self.dir), "OVS_SYSCONFDIR": str(self.dir)}
        self._ovsdb: subprocess.Popen[bytes] | None = None
        self._vswitchd: subprocess.Popen[bytes] | None = None
        self.bridges: dict[str, Bridge] = {}

    def __enter__(self) -> OvsSwitch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in (self._ovsdb, self._vswitchd) if p is not None]

    def start(self) -> None:
        why = missing()
        if why:
            raise LabError(f"cannot start Open vSwitch: {why}")
        self.dir.mkdir(parents=True, exist_ok=True)
        db = self.dir / "conf.db"
        if not db.exists():
            procs.run(["ovsdb-tool", "create", str(db), str(_schema())], timeout=15.0,
                      env=self.env)
        d = self.dir
        self._ovsdb = procs.spawn_logged(self.ns.argv([
            "ovsdb-server", str(db), f"--remote=punix:{self.db_sock}",
            f"--pidfile={d / 'ovsdb-server.pid'}", f"--unixctl={d / 'ovsdb-server.ctl'}",
            f"--log-file={d / 'ovsdb-server.log'}", "--no-chdir"]), d / "ovsdb.out", self.env)
        procs.wait_for("ovsdb-server", self.db_sock.exists, self.start_timeout, self._ovsdb)
        self.vsctl("--no-wait", "init")
        self._vswitchd = procs.spawn_logged(self.ns.argv([
            "ovs-vswitchd", f"unix:{self.db_sock}", f"--pidfile={d / 'ovs-vswitchd.pid'}",
            f"--unixctl={d / 'ovs-vswitchd.ctl'}", f"--log-file={d / 'ovs-vswitchd.log'}",
            "--no-chdir"]), d / "vswitchd.out", self.env)
        procs.wait_for("ovs-vswitchd", (d / "ovs-vswitchd.ctl").exists, self.start_timeout,
                       self._vswitchd)
        log.info("action=ovs-start ns=%s dir=%s pids=%s", self.ns.name, d, self.pids)

    def vsctl(self, *args: str, timeout: float = 15.0) -> str:
        return procs.run(["ovs-vsctl", f"--db=unix:{self.db_sock}",
                          f"--timeout={int(timeout)}", *args], timeout=timeout + 5,
                         env=self.env).stdout

    def add_bridge(self, name: str, dpid: int, controller: str | None = None,
                   protocols: str = "OpenFlow13", fail_mode: str = "secure") -> Bridge:
        """A netdev bridge; ``controller`` e.g. ``tcp:127.0.0.1:6653`` (inside the namespace).

        Without a controller, fail_mode ``standalone`` makes it a plain learning switch
        (one ``actions=NORMAL`` flow) that OpenFlow clients may add flows to.
        """
        if controller is not None and not controller.startswith(("tcp:127.", "unix:")):
            raise LabError(f"controller {controller!r}: only loopback or unix sockets")
        args = ["--may-exist", "add-br", name, "--", "set", "bridge", name,
                "datapath_type=netdev", f"protocols={protocols}", f"fail_mode={fail_mode}",
                f"other-config:datapath-id={dpid:016x}",
                "other-config:disable-in-band=true"]
        self.vsctl(*args)
        if controller is not None:
            self.vsctl("set-controller", name, controller)
            # The netdev datapath; no in-band control, no probing delays in the lab.
            self.vsctl("--", "set", "controller", name, "connection-mode=out-of-band")
        br = Bridge(name, dpid, self.dir / f"{name}.mgmt")
        procs.wait_for(f"bridge {name} socket", br.mgmt.exists, self.start_timeout)
        self.bridges[name] = br
        return br

    def add_port(self, bridge: Bridge, ifname: str, ofport: int) -> None:
        """Attach ``ifname`` (a veth in the switch namespace, nothing else) as ``ofport``."""
        info = self.ns.run(["ip", "-d", "-o", "link", "show", "dev", ifname], check=False)
        if info.returncode != 0 or " veth " not in f" {info.stdout} ":
            raise LabError(f"refusing port {ifname!r}: not a veth in namespace "
                           f"{self.ns.name}")
        self.vsctl("--may-exist", "add-port", bridge.name, ifname, "--", "set",
                   "interface", ifname, f"ofport_request={ofport}")
        bridge.ports[ifname] = ofport

    def controller_connected(self, bridge: Bridge) -> bool:
        out = self.vsctl("--columns=is_connected", "list", "controller")
        return "true" in out

    def ofctl(self, bridge: Bridge, *args: str, timeout: float = 15.0) -> str:
        """``ovs-ofctl -O OpenFlow13 <args[0]> unix:<mgmt> <args[1:]>``."""
        cmd, rest = args[0], args[1:]
        return procs.run(["ovs-ofctl", "-O", "OpenFlow13", f"--timeout={int(timeout)}", cmd,
                          bridge.target, *rest], timeout=timeout + 5).stdout

    def stop(self) -> None:
        for proc in (self._vswitchd, self._ovsdb):
            procs.stop(proc, grace=5.0)
        if self._ovsdb is not None:
            log.info("action=ovs-stop ns=%s dir=%s", self.ns.name, self.dir)
        self._vswitchd = self._ovsdb = None
