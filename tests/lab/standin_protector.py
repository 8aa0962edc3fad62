"""A minimal stand-in for `scanguard run`, for the lab tests only.

Tails Suricata's eve.json from its end, counts alerts of the scanguard SID block per
remote address, and once one address has drawn >= 3 responses from >= 2 local ports
adds it to an ipset (kernel timeout) that an iptables rule drops in both directions.
Writes one JSON line per block to --journal and "standin running" to stderr when ready.
Runs inside the victim namespace; bounded by --max-seconds.

    python standin_protector.py --eve EVE --journal J --set NAME --ttl 300
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

SID_FIRST, SID_LAST = 9_400_000, 9_400_099


def quoted_port(packet_b64: str) -> int:
    """The probed local port quoted in an ICMPv4/v6 port unreachable (Ethernet frame)."""
    try:
        frame = base64.b64decode(packet_b64)
        ip = frame[14:]
        if ip[0] >> 4 == 4:
            inner = ip[(ip[0] & 0x0F) * 4 + 8:]
            return int.from_bytes(inner[(inner[0] & 0x0F) * 4 + 2:][:2], "big")
        inner = ip[40 + 8:]
        return int.from_bytes(inner[40 + 2:][:2], "big")
    except (ValueError, IndexError):
        return -1


def sh(*argv: str) -> None:
    subprocess.run(list(argv), check=False, capture_output=True, timeout=10)


def setup(name: str, ttl: int) -> None:
    sh("ipset", "create", name, "hash:ip", "timeout", str(ttl), "-exist")
    for chain, direction in (("INPUT", "src"), ("OUTPUT", "dst")):
        rule = ["-m", "set", "--match-set", name, direction, "-j", "DROP"]
        check = subprocess.run(["iptables", "-C", chain, *rule], capture_output=True, timeout=10)
        if check.returncode != 0:
            sh("iptables", "-I", chain, "1", *rule)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--eve", required=True)
    p.add_argument("--journal", required=True)
    p.add_argument("--set", default="sgstandin")
    p.add_argument("--ttl", type=int, default=300)
    p.add_argument("--max-seconds", type=float, default=1800)
    a = p.parse_args()
    stop = False

    def _stop(_s: int, _f: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    setup(a.set, a.ttl)
    seen: dict[str, tuple[int, set[int]]] = {}
    blocked: set[str] = set()
    path = Path(a.eve)
    fh = open(path, "rb")  # noqa: SIM115 - tailed for the process lifetime
    fh.seek(0, 2)
    buf = b""
    sys.stderr.write("standin running\n")
    sys.stderr.flush()
    deadline = time.monotonic() + a.max_seconds
    with open(a.journal, "a") as journal:
        while not stop and time.monotonic() < deadline:
            chunk = fh.read(1 << 20)
            if not chunk:
                time.sleep(0.001)
                continue
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                sid = rec.get("alert", {}).get("signature_id", 0)
                if rec.get("event_type") != "alert" or not SID_FIRST <= sid <= SID_LAST:
                    continue
                remote, port = rec.get("dest_ip"), rec.get("src_port")
                if remote is None or remote in blocked:
                    continue
                if rec.get("proto") in ("ICMP", "IPv6-ICMP"):
                    port = quoted_port(rec.get("packet", ""))
                n, ports = seen.get(remote, (0, set()))
                ports.add(port if isinstance(port, int) else -1)
                seen[remote] = (n + 1, ports)
                if n + 1 >= 3 and len(ports) >= 2:
                    sh("ipset", "add", a.set, remote, "timeout", str(a.ttl), "-exist")
                    blocked.add(remote)
                    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
                    journal.write(json.dumps({"ts": ts, "action": "block", "ip": remote}) + "\n")
                    journal.flush()
    fh.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
