"""cProfile of every fleet thread during the bench's threaded drain (one profile per loop).

    PYTHONPATH=$PWD python -m prof.threads [N] [loop-name-substring]
"""

from __future__ import annotations

import cProfile
import pstats
import shutil
import sys

from prof.drain import server


def main() -> None:
    n = int(sys.argv[1])
    which = sys.argv[2] if len(sys.argv) > 2 else ""
    from bench import fleet as bf
    from scanguard_ids.fleet.node import FleetNode

    profs: dict[str, cProfile.Profile] = {}
    for name in ("_publish_decisions_loop", "_publish_events_loop", "_read_decisions_loop",
                 "_read_events_loop"):
        orig = getattr(FleetNode, name)

        def wrapped(self, _o=orig, _n=name):  # type: ignore[no-untyped-def]
            p = profs[_n] = cProfile.Profile()
            p.enable()
            try:
                _o(self)
            finally:
                p.disable()
        setattr(FleetNode, name, wrapped)
    srv, url, tmp = server()
    try:
        got = bf._drain(url, n, True, "corpus")
        print(f"{got['n']} events {got['n'] / got['seconds']:,.0f}/s wall "
              f"{got['n'] / got['cpu']:,.0f}/CPU-s (profiled)")
    finally:
        srv.terminate()
        srv.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    for name, p in profs.items():
        if which in name:
            print("=" * 20, name)
            pstats.Stats(p).sort_stats("tottime").print_stats(18)


if __name__ == "__main__":
    main()
