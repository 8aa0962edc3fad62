"""Benchmark: fleet mode on one Redis (a redis-server this benchmark starts on a unix socket).

Propagation: node A (a child process, dry-run backend) makes N manual blocks, one every
PACE_S, its deciding thread busy in between (as the engine's is, in the middle of a batch of
EVE lines: the fleet threads must get the GIL from it); node B (another child, in a network
namespace made for the run, ipset backend: a real kernel set) applies them through the
decision stream. Latency = wall clock after B's ``ipset add`` returned - wall clock before
A's ``manual_block`` (one machine, one clock).
Baseline: the bare XADD -> blocking XREAD hop between the same two processes, no scanguard.

Evidence throughput ("the alerts/s one detector sustains", issue #17): the evidence stream is
filled first with the events of a workload in entries of ``fleet.batch`` (as fast as any number
of producers could: producers are never the limit), then one node's reader drains it through
``Engine.feed_events`` (decode, dedup, detector, enforcement on a dry-run backend, and the
node publishing what it decides, as a node in production does) and the rate is taken on that
consuming side. Baseline: the same events handed to ``Engine.feed_events`` directly, no Redis.
The workloads, all IPv6 remotes in 2001:db8::/32:

* ``corpus`` (the headline figure): the replay benchmark's alerts-only corpus (bench/corpus.py,
  decoded once): scanners of every size, stray single responses, retransmissions; 1 event in
  ~85 makes a decision (3 510 blocks in 300 000 events), most come from remotes already known.
  The realistic mix: mostly evidence that decides nothing, a few scanners that are blocked.
* ``sweep``: of every 150 events, 147 from remotes never seen before that probe once and 3
  from one scanner (blocked): every event a new remote, each in its own /64 (the detector's
  IPv6 group). The worst case for every per-address cache; also raises the distributed-scan
  alarm on each protected host.
* ``decisions``: every remote probes 3 ports and is blocked on its third: per-decision costs
  (valves, journal, snapshot row, the fleet's publication of each block) dominate.

The corpus is drained once more at the interpreter's default switch interval (5 ms; fleet
mode sets 0.5 ms for the decision latency): what that setting costs the consuming side.

(Until this was written down, the sweep put all its remotes in one /64: the detector saw one
remote and made 2 blocks in 300 000 events, and the figure measured the cost of IPv6 text
handling for ever new addresses, not of detection.)
"""

from __future__ import annotations

import gc
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    Context,
    NotRun,
    Row,
    Section,
    child,
    child_main,
    emit,
    is_root,
    last_error,
    median,
    percentile,
    require,
    speed_target,
)
from bench.throughput import yardstick

NAME = "fleet"
TARGET_EVENTS = 100_000.0  # events/s consumed (on the reference day's machine)
TITLE = "Fleet mode on Redis"
PACE_S = 0.004
N_DECISIONS = 600
N_EVENTS = 300_000
PREFIX = "bench"


# -- helpers -------------------------------------------------------------------------------


def _addr(i: int) -> str:
    return str(ipaddress.IPv6Address((0x20010DB8 << 96) | (0xF1EE << 64) | (i + 1)))


def _engine(backend_name: str = "dry-run", node_url: str = "") -> Any:
    from scanguard_ids import config
    from scanguard_ids.block import registry
    from scanguard_ids.clock import SystemClock
    from scanguard_ids.detect.allowlist import Allowlist
    from scanguard_ids.engine import Engine
    from scanguard_ids.journal import Journal

    cfg = config.Config().replace("block", backend=backend_name, set_name="sgfleet",
                                  clear_conntrack=False, max_blocks_per_second=1e6,
                                  max_set_size=10_000_000)
    if node_url:
        cfg = cfg.replace("fleet", url=node_url)
    clock = SystemClock()
    backend = registry.create(backend_name, cfg.block, clock)
    backend.start()
    return Engine(cfg, backend, clock, Allowlist(cfg.detect.allowlist), Journal("")), cfg


def _node(engine: Any, cfg: Any, url: str, name: str) -> Any:
    from scanguard_ids.fleet.bus import Bus
    from scanguard_ids.fleet.node import FleetNode

    node = FleetNode(engine, cfg.fleet, Bus(url, PREFIX), engine.clock, name)
    node.attach()
    return node


# -- children ----------------------------------------------------------------------------------


def _child(argv: list[str]) -> None:
    role, url = argv[0], argv[1]
    if role == "receiver":  # node B: applies fleet blocks to a real set, stamps each
        n = int(argv[2])
        engine, cfg = _engine(argv[3], url)
        stamps: dict[str, float] = {}
        block = engine.backend.block

        def timed(ip: str, ttl: int) -> None:
            block(ip, ttl)
            stamps[ip] = time.time()

        engine.backend.block = timed
        got: dict[str, float] = {}
        apply = engine.apply_fleet

        def received(d: Any, expires: float = 0.0) -> bool:
            got[d.ip] = time.time()
            return bool(apply(d, expires))

        engine.apply_fleet = received
        node = _node(engine, cfg, url, "B")
        node.start()
        if not node.ready.wait(10):
            emit({"not_run": "receiver could not reach redis"})
            return
        print("READY", flush=True)
        deadline = time.monotonic() + 60
        while len(stamps) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        node.stop()
        held = len(engine.backend.list())
        engine.backend.remove() if hasattr(engine.backend, "remove") else engine.backend.stop()
        emit({"stamps": stamps, "got": got, "held": held})
    elif role == "sender":  # node A: N manual blocks, paced
        n = int(argv[2])
        engine, cfg = _engine("dry-run", url)
        # a dry-run daemon publishes nothing (external sinks are skipped); A stands for a
        # blocking node whose own kernel set is not what is measured
        engine.dry_run = False
        node = _node(engine, cfg, url, "A")
        published: dict[str, float] = {}
        publish = node.bus.publish_decisions

        def stamped(decisions: Any, now: float) -> None:
            publish(decisions, now)
            t = time.time()
            for fd in decisions:
                published[fd.ip] = t

        node.bus.publish_decisions = stamped
        queued: dict[str, float] = {}
        on_decision = node.on_decision

        def enqueued(d: Any) -> None:
            on_decision(d)
            queued[d.ip] = time.time()

        node.on_decision = enqueued
        node.start()
        node.ready.wait(10)
        sent: dict[str, float] = {}
        for i in range(n):
            ip = _addr(i)
            sent[ip] = time.time()
            engine.manual_block(ip, 300)
            end = time.perf_counter() + PACE_S  # busy, as the engine is in the middle of
            while time.perf_counter() < end:  # a batch of EVE lines when it decides
                pass
        time.sleep(0.5)
        node.stop()
        emit({"sent": sent, "queued": queued, "published": published})
    elif role == "hop-recv":  # baseline: bare XADD -> XREAD
        import redis

        r = redis.Redis.from_url(url)
        n = int(argv[2])
        last = r.xrevrange("hop", count=1)
        after = last[0][0] if last else b"0-0"
        print("READY", flush=True)
        lat = []
        while len(lat) < n:
            got = r.xread({"hop": after}, block=10_000, count=100)
            now = time.time()
            if not got:
                break
            for eid, fields in got[0][1]:
                after = eid
                lat.append(now - float(fields[b"t"]))
        emit({"lat": lat})
    elif role == "hop-send":
        import redis

        r = redis.Redis.from_url(url)
        for _ in range(int(argv[2])):
            r.xadd("hop", {"t": repr(time.time())}, maxlen=10_000, approximate=True)
            time.sleep(PACE_S)
        emit({})
    elif role == "drain":  # one consumer of a pre-filled evidence stream
        emit(_drain(url, int(argv[2]), argv[3] == "redis", argv[4],
                     float(argv[5]), argv[6] == "quick"))
    else:
        raise SystemExit(f"unknown role {role}")


WORKLOADS = ("corpus", "sweep", "decisions")


def _events(workload: str, n: int, quick: bool = False) -> list[Any]:
    """The response events of one throughput workload (see the module docstring)."""
    if workload == "corpus":
        return _corpus_events(n, quick)
    from scanguard_ids.model import Kind, ResponseEvent

    t0 = time.time() - 30
    out = []
    for i in range(n):
        if workload == "decisions":  # every remote probes 3 ports: blocked on its third
            q, r = divmod(i, 3)
            remote, port = _remote(2, q), 21 + r
        else:  # sweep: of every 150 events, 147 one-probe remotes and one 3-port scanner
            q, r = divmod(i, 150)
            remote, port = _remote(2, q), 21 + r
            if r >= 3:
                remote, port, q = _remote(1, i), 22 + i % 7, i  # q: picks the local host
        udp = r == 1  # one response in three (of a scanner: its second) a UDP probe's
        out.append(ResponseEvent(t0 + i * 1e-5, str(ipaddress.IPv6Address(remote)),
                                 f"2001:db8::{1 + q % 8:x}", port, "udp" if udp else "tcp",
                                 Kind.ICMP6_PORT_UNREACH if udp else Kind.TCP_RST, 0, "P"))
    return out


def _remote(net: int, i: int) -> int:
    """The i-th remote of 2001:db8:NET::/48, each in its own /64 (the detector's IPv6
    group: remotes sharing a /64 would count as one)."""
    return (0x20010DB8 << 96) | (net << 80) | ((i & 0xFFFF) << 64) | (i >> 16) + 1


def _corpus_events(n: int, quick: bool = False) -> list[Any]:
    """The first ``n`` alerts of the replay benchmark's alerts-only corpus, decoded once by
    the engine's decoder (as the node that saw them decoded them before publishing)."""
    from bench import corpus
    from scanguard_ids import config
    from scanguard_ids.eve.decode import Decoder

    path, _meta = corpus.ensure("alerts", quick)
    cfg = config.Config()
    dec = Decoder(config.sid_set(cfg), max_line_bytes=cfg.eve.max_line_bytes)
    lines: list[bytes] = []
    with path.open("rb") as fh:
        for line in fh:
            lines.append(line)
            if len(lines) >= n:
                break
    out: list[Any] = []
    for i in range(0, len(lines), 256):
        out += dec.decode_batch(lines[i:i + 256])
    return out


def _drain(url: str, n: int, via_redis: bool, workload: str, switch: float = 0.0,
           quick: bool = False) -> dict:
    from scanguard_ids.fleet.codec import encode_events
    from scanguard_ids.giveback import tune_gc

    events = _events(workload, n, quick)
    n = len(events)
    engine, cfg = _engine("dry-run", url)
    tune_gc()  # as `scanguard run` does
    if not via_redis:
        t, c = time.perf_counter(), time.process_time()
        for i in range(0, n, cfg.fleet.batch):
            engine.feed_events(events[i:i + cfg.fleet.batch], "P")
        return {"n": n, "seconds": time.perf_counter() - t, "cpu": time.process_time() - c,
                "blocks": engine.counters["blocks"]}
    import redis

    r = redis.Redis.from_url(url)
    r.delete(f"{PREFIX}:events", f"{PREFIX}:decisions")
    size = cfg.fleet.batch
    pipe = r.pipeline(transaction=False)
    for i in range(0, n, size):
        pipe.xadd(f"{PREFIX}:events", encode_events(events[i:i + size], "P"))  # type: ignore[arg-type]
        if len(pipe) >= 100:
            pipe.execute()
    pipe.execute()
    del events, pipe  # the consumer's heap holds what it read, as in production (the GC
    gc.collect()  # walks every live object: 300 000 idle events cost it ~12 % of its CPU)
    # a node in production publishes what its detector decides from the merged evidence
    # (the backend stays dry-run: no kernel set is what is measured here)
    engine.dry_run = False
    node = _node(engine, cfg, url, "C")
    node._after = {f"{PREFIX}:events": b"0-0", f"{PREFIX}:decisions": b"0-0"}
    t, c = time.perf_counter(), time.process_time()
    node.start()
    if switch:
        sys.setswitchinterval(switch)
    deadline = time.monotonic() + 240
    while engine.counters["fleet_events"] < n and time.monotonic() < deadline:
        time.sleep(0.005)
    secs, cpu = time.perf_counter() - t, time.process_time() - c
    got = engine.counters["fleet_events"]
    node.stop()
    return {"n": got, "seconds": secs, "cpu": cpu, "blocks": engine.counters["blocks"],
            "published": node.counters["fleet_decisions_out"],
            "garbage": node.counters["fleet_garbage"], "switch": sys.getswitchinterval()}


# -- parent ------------------------------------------------------------------------------------


def _pair(recv: list[str], send: list[str], timeout: float = 120) -> tuple[dict, dict]:
    """Start the receiver, wait for READY, run the sender, collect both JSON answers."""
    rp = subprocess.Popen(recv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    try:
        assert rp.stdout is not None
        line = rp.stdout.readline()
        if not line.startswith("READY"):
            rp.wait(10)
            raise NotRun(f"receiver: {line.strip() or last_error(rp.stderr.read())}")  # type: ignore[union-attr]
        s = subprocess.run(send, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                           check=False)
        out, err = rp.communicate(timeout=timeout)
    finally:
        if rp.poll() is None:
            rp.kill()
            rp.wait()
    rl = [ln for ln in out.splitlines() if ln.startswith("{")]
    sl = [ln for ln in s.stdout.splitlines() if ln.startswith("{")]
    if not rl or not sl:
        raise NotRun(f"fleet children failed: {last_error(err or s.stderr)}")
    return json.loads(rl[-1]), json.loads(sl[-1])


def run(ctx: Context) -> Section:
    require("redis", "scanguard_ids.fleet.node")
    if shutil.which("redis-server") is None:
        raise NotRun("redis-server not installed")
    sec = Section(NAME, TITLE)
    tmp = Path(tempfile.mkdtemp(prefix="sgfleet-"))
    sock = tmp / "redis.sock"
    srv = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(sock),
                            "--unixsocketperm", "777", "--save", "", "--appendonly", "no",
                            "--dir", str(tmp)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    url = f"unix://{sock}"
    try:
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.02)
        _propagation(ctx, sec, url)
        _throughput(ctx, sec, url)
    finally:
        srv.terminate()
        srv.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    return sec


def _propagation(ctx: Context, sec: Section, url: str) -> None:
    n = 150 if ctx.quick else N_DECISIONS
    py = [sys.executable, "-m", "bench.fleet", "--child"]
    ctx.say(f"fleet: XADD -> XREAD hop x{n}")
    hop, _ = _pair([*py, "hop-recv", url, str(n)], [*py, "hop-send", url, str(n)])
    hop_ms = [x * 1e3 for x in hop["lat"]]
    kind = "ipset"
    if is_root():
        from scanguard_ids.lab.netns import namespaces

        with namespaces("sgfl") as (ns,):
            ctx.say(f"fleet: decision at A -> ipset at B x{n} (B in {ns.name})")
            recv, sent = _pair(ns.argv([*py, "receiver", url, str(n), "ipset"]),
                               [*py, "sender", url, str(n)])
    else:
        kind = "dry-run"
        sec.notes.append("not root: B applies to the dry-run backend, not a kernel set")
        recv, sent = _pair([*py, "receiver", url, str(n), "dry-run"],
                           [*py, "sender", url, str(n)])
    lat = [(recv["stamps"][ip] - t0) * 1e3 for ip, t0 in sent["sent"].items()
           if ip in recv["stamps"]]
    if len(lat) < n:
        sec.notes.append(f"WARNING: B applied {len(lat)} of {n} blocks")
    if recv.get("held", n) < len(lat):
        sec.notes.append(f"WARNING: B's set holds {recv['held']} of {len(lat)}")
    hop99 = percentile(hop_ms, 99)
    stages = []
    for ip, t0 in sent["sent"].items():
        if ip in recv["stamps"] and ip in recv.get("got", {}) and ip in sent.get("published", {}):
            pub, got = sent["published"][ip], recv["got"][ip]
            q = sent.get("queued", {}).get(ip, t0)
            stages.append(((q - t0) * 1e3, (pub - q) * 1e3, (got - pub) * 1e3,
                           (recv["stamps"][ip] - got) * 1e3))
    if stages:
        cols = list(zip(*stages, strict=True))
        names = ("A's manual_block has queued it (engine lock, valves, journal, sink)",
                 "A's publisher woke and its pipeline (SET + XADD) returned",
                 "B's decision reader has it", "in B's set (apply_fleet + ipset add)")
        sec.notes.append("stages p50 / p99 (ms): " + "; ".join(
            f"{name} {median(c):.2f} / {percentile(c, 99):.2f}"
            for name, c in zip(names, cols, strict=True)))
    sec.rows += [
        Row(f"decision at A -> rule in B's {kind} set, p50", median(lat), "ms",
            "bare XADD -> XREAD hop p50", median(hop_ms), lower_is_better=True),
        Row(f"decision at A -> rule in B's {kind} set, p99", percentile(lat, 99), "ms",
            "bare XADD -> XREAD hop p99", hop99, target="< 5 ms",
            passed=percentile(lat, 99) < 5.0, lower_is_better=True,
            note=f"{len(lat)} blocks, one every {PACE_S * 1e3:.0f} ms; max {max(lat):.2f} ms"),
    ]


#: workload -> (events, quick events, runs); corpus: the alerts corpus (quick: its quick one)
SIZES = {"corpus": (N_EVENTS, 30_000, 3), "sweep": (60_000, 15_000, 1),
         "decisions": (30_000, 6_000, 1)}
DEFAULT_SWITCH = 0.005  # the interpreter's own switch interval


def _throughput(ctx: Context, sec: Section, url: str) -> None:
    quick = "quick" if ctx.quick else "full"
    runs: dict[str, tuple[list[dict], list[dict]]] = {}
    for workload, (n_full, n_quick, reps) in SIZES.items():
        n = n_quick if ctx.quick else n_full
        via, direct = [], []
        for rep in range(1 if ctx.quick else reps):
            ctx.say(f"fleet: drain {n} {workload} events through one node's reader "
                    f"(run {rep + 1}/{reps})")
            via.append(child(NAME, ["drain", url, str(n), "redis", workload, "0", quick]))
            direct.append(child(NAME, ["drain", url, str(n), "direct", workload, "0", quick]))
        runs[workload] = via, direct
        if any(r["n"] < direct[0]["n"] for r in via):
            sec.notes.append(f"WARNING: a {workload} drain consumed fewer than "
                             f"{direct[0]['n']} events")

    def rate(rs: list[dict], key: str = "seconds") -> float:
        return median([r["n"] / r[key] for r in rs])

    via, direct = runs["corpus"]
    yardstick(ctx)
    target, met = speed_target(ctx, rate(via), TARGET_EVENTS, "events/s")
    sec.rows.append(Row("evidence consumed by one node's detector, alerts corpus "
                        "(stream -> feed_events)", rate(via), "events/s",
                        "Engine.feed_events without Redis", rate(direct),
                        target=target, passed=met,
                        note=f"{via[0]['n']:,} events, {via[0]['blocks']} blocks published; "
                             "stream pre-filled (producers never the limit)"))
    sec.rows.append(Row("the same per CPU-second of the consuming process", rate(via, "cpu"),
                        "events/CPU-s", "Engine.feed_events without Redis",
                        rate(direct, "cpu"),
                        note="less sensitive to a loaded machine than the wall-clock rate"))
    for workload, what in (("sweep", "wide sweep, every event a new remote"),
                           ("decisions", "every 3rd event blocks a new remote")):
        via, direct = runs[workload]
        sec.rows.append(Row(f"the same, {what}", rate(via, "cpu"), "events/CPU-s",
                            "Engine.feed_events without Redis", rate(direct, "cpu"),
                            note=f"{via[0]['n']:,} events, {via[0]['blocks']} blocks"))
    # fleet mode lowers the interpreter's switch interval to 0.5 ms (fleet/node.py, for the
    # decision latency above): what that costs the consuming side
    n = SIZES["corpus"][1 if ctx.quick else 0]
    ctx.say("fleet: drain the corpus at the interpreter's default switch interval")
    slow = child(NAME, ["drain", url, str(n), "redis", "corpus", str(DEFAULT_SWITCH), quick])
    via = runs["corpus"][0]
    sec.rows.append(Row("alerts corpus, stream -> feed_events, switch interval 5 ms (default)",
                        slow["n"] / slow["cpu"], "events/CPU-s", "at 0.5 ms (fleet mode's)",
                        rate(via, "cpu"), note="one run; fleet mode sets 0.5 ms"))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    child_main(__doc__, _child)
