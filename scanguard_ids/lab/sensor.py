"""Real Suricata in the victim namespace, sniffing the victim's veth with AF_PACKET.

The configuration is generated into a temporary directory (nothing under /etc is
read for it but the classification/reference files). EVE alerts carry ``payload``
and ``packet`` (the response packet, which quotes the probe), and go to
``eve.json`` in the log directory and, optionally, to a unix stream socket that the
protector owns (stream, not datagram: a datagram socket's queue holds only
net.unix.max_dgram_qlen = 10 records by default, and live Suricata drops the rest).

Latency tuning (``Tuning``; numbers in the lab report): the defaults are the settings
measured to put an alert on the EVE output soonest after its packet is on the wire:

- ``runmode: workers`` with one thread: capture, detect and output in one thread,
  no hand-over queue (autofp adds a queue between capture and detect threads).
- ``tpacket-v3: no`` (tpacket v2 ring): v3 hands packets over in blocks, which are
  released when full or after ``block-timeout`` ms, so a lone response waits for the
  timeout; v2 hands over every frame at once.
- ``checksum-checks: no``: veth frames carry offloaded (partial) checksums; Suricata
  would otherwise flag or drop them as invalid.
- EVE output is synchronous by default (written when the alert is raised), for both
  the regular file and the unix socket.

Readiness: Suricata logs "Engine started" once its capture threads run; then the lab
sends a probe (see runner) and waits for its alert, proving the rules fire.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scanguard_ids.lab import procs
from scanguard_ids.lab.netns import Netns

log = logging.getLogger(__name__)

#: Where the real rule pack lives in the repo (written by the rules task).
RULES_PATH = Path(__file__).resolve().parents[2] / "rules" / "scanguard.rules"

#: Used only while the real rule pack is missing: the two core detections.
FALLBACK_RULES = """\
alert tcp $HOME_NET any -> $EXTERNAL_NET any (msg:"scanguard lab: TCP RST from a local port"; \
flags:RA,CE; flow:to_client; sid:9400000; rev:1;)
alert icmp $HOME_NET any -> $EXTERNAL_NET any (msg:"scanguard lab: ICMP port unreachable"; \
itype:3; icode:3; sid:9400001; rev:1;)
alert icmpv6 $HOME_NET any -> $EXTERNAL_NET any (msg:"scanguard lab: ICMPv6 port unreachable"; \
itype:1; icode:4; sid:9400002; rev:1;)
"""

READY_MARK = "Engine started"


@dataclass(frozen=True, slots=True)
class Tuning:
    """Capture/output settings that decide alert latency (see module docstring)."""

    runmode: str = "workers"
    threads: int = 1
    use_mmap: bool = True
    tpacket_v3: bool = False
    block_timeout_ms: int = 10  # tpacket-v3 only
    ring_size: int = 4096
    checksum_checks: str = "no"

    def describe(self) -> str:
        v3 = f"v3 block-timeout={self.block_timeout_ms}ms" if self.tpacket_v3 else "v2"
        return (f"runmode={self.runmode} threads={self.threads} mmap={self.use_mmap} "
                f"tpacket={v3} checksum-checks={self.checksum_checks}")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def suricata_yaml(interface: str, home_net: list[str], log_dir: str, rules: str,
                  eve_socket: str | None = None, tuning: Tuning | None = None) -> str:
    """A self-contained suricata.yaml for one AF_PACKET interface (pure)."""
    t = tuning or Tuning()
    alert = ("        - alert:\n            payload: yes\n            packet: yes\n"
             "            payload-printable: no\n            metadata: no\n")
    eve_outputs = [
        "  - eve-log:\n      enabled: yes\n      filetype: regular\n      filename: eve.json\n"
        f"      types:\n{alert}"
    ]
    if eve_socket:
        eve_outputs.append(
            "  - eve-log:\n      enabled: yes\n      filetype: unix_stream\n"
            f"      filename: {json.dumps(eve_socket)}\n      types:\n{alert}")
    home = ",".join(home_net)
    return f"""%YAML 1.1
---
vars:
  address-groups:
    HOME_NET: "[{home}]"
    EXTERNAL_NET: "!$HOME_NET"
  port-groups:
    HTTP_PORTS: "80"
default-log-dir: {json.dumps(log_dir)}
default-rule-path: {json.dumps(str(Path(rules).parent))}
rule-files:
  - {json.dumps(rules)}
classification-file: /etc/suricata/classification.config
reference-config-file: /etc/suricata/reference.config
runmode: {t.runmode}
max-pending-packets: 1024
logging:
  default-log-level: notice
  outputs:
    - console:
        enabled: no
    - file:
        enabled: yes
        level: info
        filename: suricata.log
unix-command:
  enabled: no
stats:
  enabled: no
outputs:
{chr(10).join(eve_outputs)}
af-packet:
  - interface: {interface}
    threads: {t.threads}
    cluster-id: 98
    cluster-type: cluster_flow
    defrag: yes
    use-mmap: {_yes(t.use_mmap)}
    tpacket-v3: {_yes(t.tpacket_v3)}
    block-timeout: {t.block_timeout_ms}
    ring-size: {t.ring_size}
    checksum-checks: {t.checksum_checks}
stream:
  checksum-validation: no
  memcap: 64mb
flow:
  memcap: 64mb
  hash-size: 65536
  prealloc: 10000
detect:
  profile: low
app-layer:
  protocols:
    http:
      enabled: no
    tls:
      enabled: no
    dns:
      enabled: no
    smb:
      enabled: no
host-mode: sniffer-only
"""


@dataclass(slots=True)
class Sensor:
    """A running Suricata; ``eve_path`` is its EVE JSON file."""

    proc: subprocess.Popen[bytes]
    workdir: Path
    log_dir: Path
    eve_path: Path
    rules_path: Path
    tuning: Tuning
    eve_socket: str | None = None
    started: float = 0.0
    ready_after: float = 0.0
    notes: list[str] = field(default_factory=list)

    def log_tail(self, lines: int = 20) -> str:
        path = self.log_dir / "suricata.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def rules_file(dest_dir: Path, rules: Path | None = None) -> tuple[Path, bool]:
    """The rule file to load: the real pack if present, else the fallback (flag False)."""
    src = rules or RULES_PATH
    if src.exists():
        return src, True
    dest = dest_dir / "fallback.rules"
    dest.write_text(FALLBACK_RULES)
    return dest, False


def _wait_ready(sensor: Sensor, timeout: float) -> None:
    logfile = sensor.log_dir / "suricata.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sensor.proc.poll() is not None:
            raise procs.LabError(f"suricata exited {sensor.proc.returncode}: {sensor.log_tail()}")
        if logfile.exists() and READY_MARK in logfile.read_text(errors="replace"):
            sensor.ready_after = time.monotonic() - sensor.started
            return
        time.sleep(0.05)
    raise procs.LabError(f"suricata not ready after {timeout:.0f}s: {sensor.log_tail()}")


@contextlib.contextmanager
def run_suricata(ns: Netns, interface: str, home_net: list[str], rules: Path | None = None,
                 eve_socket: str | None = None, tuning: Tuning | None = None,
                 ready_timeout: float = 60.0, keep_dir: Path | None = None) -> Iterator[Sensor]:
    """Start Suricata in ``ns`` on ``interface``; stop it and remove its temp dir on exit.

    With ``keep_dir`` the EVE file and logs are copied there before the temp dir goes.
    """
    tuning = tuning or Tuning()
    workdir = Path(tempfile.mkdtemp(prefix="scanguard-lab-suricata-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        log_dir = workdir / "log"
        log_dir.mkdir()
        rules_path, real = rules_file(workdir, rules)
        cfg = workdir / "suricata.yaml"
        cfg.write_text(suricata_yaml(interface, home_net, str(log_dir), str(rules_path),
                                     eve_socket, tuning))
        argv = ns.argv(["suricata", "-c", str(cfg), f"--af-packet={interface}", "-k", "none",
                        "-l", str(log_dir), "--pidfile", str(workdir / "suricata.pid")])
        started = time.monotonic()
        proc = procs.spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sensor = Sensor(proc, workdir, log_dir, log_dir / "eve.json", rules_path, tuning,
                        eve_socket, started)
        if not real:
            sensor.notes.append(f"rule pack {RULES_PATH} missing: used fallback rules")
            log.warning("suricata rules=fallback reason=missing path=%s", RULES_PATH)
        _wait_ready(sensor, ready_timeout)
        log.info("suricata ready ns=%s if=%s after=%.1fs %s", ns.name, interface,
                 sensor.ready_after, tuning.describe())
        yield sensor
    finally:
        procs.stop(proc, grace=10)
        if keep_dir is not None:
            keep_dir.mkdir(parents=True, exist_ok=True)
            for name in ("eve.json", "suricata.log"):
                src = workdir / "log" / name
                if src.exists():
                    shutil.copy2(src, keep_dir / name)
        shutil.rmtree(workdir, ignore_errors=True)


def reconnects(sensor: Sensor) -> int:
    """How often Suricata has (re)connected its EVE socket (its log says so each time)."""
    path = sensor.log_dir / "suricata.log"
    return path.read_text(errors="replace").count("Reconnected socket") if path.exists() else 0
