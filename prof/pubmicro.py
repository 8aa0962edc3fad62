"""CPU per published decision: Bus.publish_decisions with hiredis packing vs redis-py's own
pipeline, one thread, a private redis-server on a unix socket.

    PYTHONPATH=$PWD python prof/pubmicro.py
"""

from __future__ import annotations

import shutil
import time

from prof.drain import server
from scanguard_ids.fleet import bus as bus_mod
from scanguard_ids.fleet.bus import Bus
from scanguard_ids.fleet.codec import FleetDecision
from scanguard_ids.model import Decision

N = 3600


def main() -> None:
    srv, url, tmp = server()
    try:
        bus = Bus(url, "m")
        now = time.time()
        fds = [FleetDecision.of(Decision(ts=now, action="block", ip=f"2001:db8::{i:x}", ttl=300,
                                         count=3, ports=(21, 22, 23), reason="3 responses"),
                                "C", now, i) for i in range(N)]
        packer = bus_mod._pack
        for name, pack in (("pipeline", None), ("hiredis", packer)):
            bus_mod._pack = pack
            for k in (1, 6, 50):
                c = time.process_time()
                for i in range(0, N, k):
                    bus.publish_decisions(fds[i:i + k], now)
                print(f"{name:8} batch {k:2}: {(time.process_time() - c) / N * 1e6:6.1f} "
                      "us CPU per decision")
        bus_mod._pack = packer
    finally:
        srv.terminate()
        srv.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
