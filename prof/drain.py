"""Fast iteration on the fleet evidence drain (issue #17): one redis-server on a unix socket
(no persistence), the bench's own _drain (stream filled, one node's reader drains it).

    PYTHONPATH=$PWD python prof/drain.py time [N] [workload]     # via redis + direct rates
    PYTHONPATH=$PWD python prof/drain.py profile [N] [workload]  # cProfile of the reader

``profile`` fills the stream the same way, then runs the reader's read+handle in the main
thread (cProfile sees one thread only).
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def server() -> tuple[subprocess.Popen[bytes], str, Path]:
    tmp = Path(tempfile.mkdtemp(prefix="sgprof-"))
    sock = tmp / "redis.sock"
    srv = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(sock),
                            "--unixsocketperm", "777", "--save", "", "--appendonly", "no",
                            "--dir", str(tmp)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    for _ in range(200):
        if sock.exists():
            break
        time.sleep(0.02)
    return srv, f"unix://{sock}", tmp


def profile(url: str, n: int, workload: str) -> None:
    import redis

    from bench import fleet as bf
    from scanguard_ids.fleet.codec import encode_events

    events = bf._events(workload, n)
    n = len(events)
    engine, cfg = bf._engine("dry-run", url)
    r = redis.Redis.from_url(url)
    r.delete(f"{bf.PREFIX}:events", f"{bf.PREFIX}:decisions")
    pipe = r.pipeline(transaction=False)
    for i in range(0, n, cfg.fleet.batch):
        pipe.xadd(f"{bf.PREFIX}:events", encode_events(events[i:i + cfg.fleet.batch], "P"))
    pipe.execute()
    del events, pipe
    gc.collect()
    engine.dry_run = False
    node = bf._node(engine, cfg, url, "C")
    stream = node.bus.events
    node._after = {stream: b"0-0", node.bus.decisions: b"0-0"}
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    while engine.counters["fleet_events"] < n:
        entries = node.bus.read({stream: node._after[stream]}, 100)
        if not entries:
            break
        node._handle(entries)
    prof.disable()
    secs = time.perf_counter() - t
    print(f"profiled drain: {engine.counters['fleet_events']} events in {secs:.2f} s "
          f"({engine.counters['fleet_events'] / secs:,.0f}/s under cProfile)")
    st = pstats.Stats(prof)
    st.sort_stats("tottime").print_stats(25)


def main() -> None:
    mode = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 300_000
    workload = sys.argv[3] if len(sys.argv) > 3 else "corpus"
    srv, url, tmp = server()
    try:
        if mode == "profile":
            profile(url, n, workload)
        else:
            from bench.fleet import _drain

            for via in (True, False):
                got = _drain(url, n, via, workload)
                print(f"{'redis ' if via else 'direct'} {got['n']} events "
                      f"{got['n'] / got['seconds']:,.0f}/s wall "
                      f"{got['n'] / got['cpu']:,.0f}/CPU-s blocks={got['blocks']}", flush=True)
    finally:
        srv.terminate()
        srv.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)




def breakdown(url: str, n: int, workload: str) -> None:
    """Single thread, no profiler: CPU of XREAD (hiredis), decode, feed_events; vs direct."""
    import redis

    from bench import fleet as bf
    from scanguard_ids.fleet.codec import decode_events, encode_events

    events = bf._events(workload, n)
    n = len(events)
    engine, cfg = bf._engine("dry-run", url)
    size = cfg.fleet.batch
    r = redis.Redis.from_url(url)
    r.delete(f"{bf.PREFIX}:events")
    pipe = r.pipeline(transaction=False)
    for i in range(0, n, size):
        pipe.xadd(f"{bf.PREFIX}:events", encode_events(events[i:i + size], "P"))
    pipe.execute()
    gc.collect()
    c = time.process_time()
    for i in range(0, n, size):
        engine.feed_events(events[i:i + size], "P")
    direct = time.process_time() - c
    del events
    gc.collect()
    engine, cfg = bf._engine("dry-run", url)
    after = b"0-0"
    rows = []
    c = time.process_time()
    while True:
        got = r.xread({f"{bf.PREFIX}:events": after}, count=1000)
        if not got:
            break
        rows += got[0][1]
        after = got[0][1][-1][0]
    t_read = time.process_time() - c
    c = time.process_time()
    batches = [decode_events(f)[1] for _eid, f in rows]  # type: ignore[index]
    t_dec = time.process_time() - c
    c = time.process_time()
    for b in batches:
        engine.feed_events(b, "P")
    t_feed = time.process_time() - c
    us = 1e6 / n
    print(f"{n} events, us/event: direct feed {direct * us:.2f} | xread {t_read * us:.2f} "
          f"decode {t_dec * us:.2f} feed(decoded) {t_feed * us:.2f} "
          f"sum {(t_read + t_dec + t_feed) * us:.2f}")


if __name__ == "__main__" and sys.argv[1] == "breakdown":
    srv, url, tmp = server()
    try:
        breakdown(url, int(sys.argv[2]) if len(sys.argv) > 2 else 300_000,
                  sys.argv[3] if len(sys.argv) > 3 else "corpus")
    finally:
        srv.terminate()
        srv.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__" and sys.argv[1] != "breakdown":
    main()
