"""Full-range nmap TCP and UDP scans against a victim with the fast path (block mode).

    PYTHONPATH=$PWD python scripts/fastpath_nmap.py BURST RATE

The victim listens on 13 popular + 87 other TCP ports and UDP 53; prints the ports nmap
determined (open / closed) per protocol. Each protocol starts from a fresh table.
"""

from __future__ import annotations

import subprocess
import sys
import time

from scanguard_ids.block.fastpath import FastPathLayout
from scanguard_ids.lab.netns import victim_scanner
from scanguard_ids.lab.scan import DEFAULT_TIMING

PORTS = [22, 25, 53, 80, 110, 143, 443, 445, 993, 3306, 5432, 8080, 8443,
         *range(20000, 20087)]
SERVER = (f"import socket, time\nss = [socket.create_server(('0.0.0.0', x)) for x in {PORTS}]\n"
          "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nu.bind(('0.0.0.0', 53))\n"
          "time.sleep(900)\n")


def main() -> None:
    lay = FastPathLayout(mode="block", burst=int(sys.argv[1]), rate=int(sys.argv[2]))
    with victim_scanner("fpf") as p:
        srv = p.victim.popen([sys.executable, "-c", SERVER])
        try:
            time.sleep(0.5)
            for proto, flag in (("tcp", "-sS"), ("udp", "-sU")):
                subprocess.run(p.victim.argv(["nft", "-f", "-"]),
                               input=lay.remove() + lay.install(["127.0.0.0/8"]),
                               text=True, check=True)
                t = time.monotonic()
                r = p.scanner.run(["nmap", "-n", "-Pn", flag, "-p-", *DEFAULT_TIMING,
                                   p.victim4], check=False, timeout=900)
                rows = [x for x in r.stdout.splitlines() if f"/{proto}" in x]
                print(proto, f"{time.monotonic() - t:.0f}s",
                      "open:", sum(" open " in x for x in rows),
                      "closed:", sum(" closed " in x for x in rows),
                      [x.split()[0] for x in rows][:12], flush=True)
        finally:
            srv.kill()
            srv.wait(timeout=10)


if __name__ == "__main__":
    main()
