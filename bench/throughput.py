"""Benchmark 1: replay throughput (lines/s, alerts/s) on the mixed and the alerts-only corpus.

Measured, each in a fresh child pinned to one (the idlest) core, runs interleaved, median taken:

- scanguard: ``scanguard_ids.commands.replay.replay([path], Config())`` (its own timer: read,
  decode, detect), with the C reader (scanguard_ids/eve/_fast.c) as installed;
- scanguard-msgspec / scanguard-python (for information): the same with the msgspec reader
  (the default without a C compiler) and with the pure-Python reference reader;
- naive (the baseline): every line through stdlib ``json.loads``, the event built from the dict
  (ipaddress, timestamp parse, base64 + the same quoted-probe parser), the same Detector;
- orjson-naive (for information): the naive loop with orjson.loads: what the byte pre-filter adds
  over a fast parser alone;
- peer: ``fail2ban-regex`` with bench/fail2ban/scanguard-eve.conf on a slice of the same file
  (its own "processed in" figure, so interpreter start-up is not counted);
- daemon CPU per EVE line, per reader: ``Decoder.decode_batch`` (the live daemon's call) on
  batches of 256 lines of the mixed corpus, CPU time of the child.

The "JSON reader decision" table applies the rule of the issue "A simpler house": the msgspec
reader could replace the C one if it meets the replay targets and its daemon CPU per line is
within 1.5x of the C reader's.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from bench import corpus
from bench.common import (
    HERE,
    Context,
    NotRun,
    Row,
    Section,
    child,
    child_main,
    emit,
    idlest_cpu,
    last_error,
    median,
    pin_one_core,
    require,
    speed_target,
    spread,
)
from bench.report import md_table

NAME = "replay"
TITLE = "1. Replay throughput"
F2B_FILTER = HERE / "fail2ban" / "scanguard-eve.conf"

TARGET_MIXED = 1_000_000.0
TARGET_ALERTS = 300_000.0
TARGET_SPEEDUP = 5.0
BATCH = 256  # lines per decode_batch() call in the daemon measurement
MAX_CPU_RATIO = 1.5  # the library reader's daemon CPU per line, at most this times the C one's


# -- what the children run ---------------------------------------------------------------------


def run_scanguard(path: str, reader: str | None = None) -> dict[str, Any]:
    from scanguard_ids import config
    from scanguard_ids.commands.replay import replay

    result, decoder, _detector = replay([path], config.Config(), reader=reader)
    return {
        "seconds": result.seconds,
        "lines": result.lines,
        "alerts": decoder.stats.alerts,
        "decisions": len(result.decisions),
        "accelerated": decoder.accelerated,
        "reader": decoder.reader,
    }


def run_batches(path: str, reader: str, batch: int = BATCH) -> dict[str, Any]:
    """The live daemon's decode cost: decode_batch() on ``batch``-line lists, CPU seconds."""
    from scanguard_ids import config
    from scanguard_ids.eve.decode import Decoder

    with open(path, "rb") as fh:
        lines = fh.read().splitlines()
    batches = [lines[i : i + batch] for i in range(0, len(lines), batch)]
    cfg = config.Config()
    dec = Decoder(config.sid_set(cfg), cfg.eve.max_line_bytes, reader=reader)
    decode_batch = dec.decode_batch
    t0 = time.process_time()
    for b in batches:
        decode_batch(b)
    return {
        "seconds": time.process_time() - t0,
        "lines": dec.stats.lines,
        "alerts": dec.stats.alerts,
        "reader": dec.reader,
    }


def make_naive_event() -> Callable[[dict[str, Any], int], Any]:
    """Build a ResponseEvent from a parsed alert, written the obvious way."""
    from scanguard_ids.eve.packet import PORT_PROTOCOLS, quoted_from_frame, quoted_probe
    from scanguard_ids.model import Kind, ResponseEvent
    from scanguard_ids.timefmt import parse_eve_ts

    def naive_event(doc: dict[str, Any], sid: int) -> Any:
        try:
            ts = parse_eve_ts(doc["timestamp"])
            local = str(ip_address(doc["src_ip"]))
            remote = str(ip_address(doc["dest_ip"]))
        except (KeyError, TypeError, ValueError):
            return None
        proto = doc.get("proto")
        port = None
        if proto == "TCP":
            kind, name, port = Kind.TCP_RST, "tcp", doc.get("src_port")
        else:
            if proto == "ICMP" and doc.get("icmp_type") == 3 and doc.get("icmp_code") == 3:
                kind = Kind.ICMP4_PORT_UNREACH
            elif proto == "IPv6-ICMP" and doc.get("icmp_type") == 1 and doc.get("icmp_code") == 4:
                kind = Kind.ICMP6_PORT_UNREACH
            else:
                return None
            name = "udp"
            quoted = None
            if doc.get("payload"):
                quoted = quoted_probe(base64.b64decode(doc["payload"]))
            if quoted is None and doc.get("packet"):
                quoted = quoted_from_frame(
                    base64.b64decode(doc["packet"]),
                    (doc.get("packet_info") or {}).get("linktype", 1),
                )
            if quoted is not None:
                name, port = PORT_PROTOCOLS[quoted.proto], quoted.dst_port
        return ResponseEvent(ts, remote, local, port, name, kind, sid, doc.get("in_iface", ""))

    return naive_event


def run_naive(path: str, loads: Callable[[bytes], Any]) -> dict[str, Any]:
    from scanguard_ids import config
    from scanguard_ids.detect.allowlist import Allowlist
    from scanguard_ids.detect.detector import Detector

    cfg = config.Config()
    sids = config.sid_set(cfg)
    det = Detector(cfg.detect, Allowlist(cfg.detect.allowlist))
    feed = det.feed
    naive_event = make_naive_event()
    lines = alerts = decisions = 0
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        for line in fh:
            lines += 1
            try:
                doc = loads(line)
            except ValueError:
                continue
            if doc.get("event_type") != "alert":
                continue
            sid = (doc.get("alert") or {}).get("signature_id")
            if sid not in sids:
                continue
            ev = naive_event(doc, sid)
            if ev is None:
                continue
            alerts += 1
            if feed(ev) is not None:
                decisions += 1
    return {
        "seconds": time.perf_counter() - t0,
        "lines": lines,
        "alerts": alerts,
        "decisions": decisions,
    }


def _child(argv: list[str]) -> None:
    mode, path = argv[0], argv[1]
    cpu = pin_one_core()
    if mode == "scanguard":
        out = run_scanguard(path)
    elif mode in ("msgspec", "python"):
        out = run_scanguard(path, reader=mode)
    elif mode == "batch":
        out = run_batches(path, argv[2])
    elif mode == "naive":
        out = run_naive(path, json.loads)
    elif mode == "orjson":
        import orjson

        out = run_naive(path, orjson.loads)
    else:
        raise SystemExit(f"unknown mode {mode}")
    out["cpu"] = cpu
    emit(out)


# -- the peer -------------------------------------------------------------------------------------

_PROCESSED = re.compile(r"\[processed in ([0-9.]+) sec\]")
_LINES = re.compile(r"^Lines: (\d+) lines, (\d+) ignored, (\d+) matched", re.M)


def slice_file(src: Path, n: int) -> Path:
    dst = src.with_name(src.name.replace(".eve.json", f".head{n}.eve.json"))
    if not dst.exists():
        tmp = dst.with_suffix(".tmp")
        with src.open("rb") as fi, tmp.open("wb") as fo:
            for i, line in enumerate(fi):
                if i >= n:
                    break
                fo.write(line)
        os.replace(tmp, dst)
    return dst


def run_cli(path: Path) -> dict[str, Any]:
    """`scanguard replay --format json FILE` end to end (interpreter start-up included)."""
    exe = str(Path(sys.executable).with_name("scanguard"))
    cpu = idlest_cpu()
    t0 = time.perf_counter()
    res = subprocess.run(
        [exe, "replay", "--format", "json", str(path)],
        capture_output=True,
        timeout=600,
        check=False,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise NotRun(f"scanguard replay exit {res.returncode}: {last_error(res.stderr.decode())}")
    m = re.search(rb"lines=(\d+) alerts_used=(\d+)", res.stderr)
    if not m:
        raise NotRun("scanguard replay printed no summary")
    return {
        "seconds": seconds,
        "lines": int(m.group(1)),
        "alerts": int(m.group(2)),
        "decisions": res.stdout.count(b"\n"),
    }


def run_fail2ban(path: Path) -> dict[str, Any]:
    exe = "/usr/bin/fail2ban-regex"
    if not os.access(exe, os.X_OK):
        raise NotRun("fail2ban-regex not installed")
    cpu = idlest_cpu()
    res = subprocess.run(
        [exe, str(path), str(F2B_FILTER)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )
    m, n = _PROCESSED.search(res.stdout), _LINES.search(res.stdout)
    if res.returncode != 0 or not m or not n:
        raise NotRun(f"fail2ban-regex failed (exit {res.returncode}): {last_error(res.stderr)}")
    return {
        "seconds": float(m.group(1)),
        "lines": int(n.group(1)),
        "alerts": int(n.group(3)),
        "cpu": cpu,
    }


# -- the section ---------------------------------------------------------------------------------


def _runs(
    ctx: Context, plan: list[tuple[str, list[str]]], reps: dict[str, int]
) -> dict[str, list[dict]]:
    """Run the children interleaved: a, b, c, a, b, c, ... (each mode its own repeat count)."""
    out: dict[str, list[dict]] = {mode: [] for mode, _ in plan}
    for i in range(max(reps.values())):
        for mode, args in plan:
            if i < reps[mode]:
                out[mode].append(child("throughput", args, timeout=900))
    return out


def _rate(runs: list[dict], key: str) -> float:
    return median([r[key] / r["seconds"] for r in runs])


def yardstick(ctx: Context) -> float | None:
    """This run's yardstick (see bench.common.speed_target): the replay section's naive
    alerts/s when it ran, else measured here (the naive loop on the full alerts-only corpus,
    median of 3, ~20 s each on a slow day). None in --quick runs."""
    if ctx.quick:
        return None
    if ctx.yardstick is None:
        path, _meta = corpus.ensure("alerts", False)
        ctx.say("yardstick: the naive json.loads loop on the alerts-only corpus x3")
        runs = [child("throughput", ["naive", str(path)], timeout=900) for _ in range(3)]
        ctx.yardstick = _rate(runs, "alerts")
    return ctx.yardstick


def _daemon_cpu(ctx: Context, r: int) -> dict[str, float]:
    """Median CPU microseconds per line of decode_batch(), per reader (interleaved runs)."""
    path, _meta = corpus.ensure("mixed", quick=True)  # a realistic all-events eve.json
    ctx.say(f"replay: daemon CPU per line, decode_batch of {BATCH} lines, c/msgspec/python x{r}")
    plan = [(reader, ["batch", str(path), reader]) for reader in ("c", "msgspec", "python")]
    runs = _runs(ctx, plan, {"c": r, "msgspec": r, "python": r})
    return {
        reader: median([x["seconds"] / x["lines"] * 1e6 for x in rs]) for reader, rs in runs.items()
    }


def _decision_md(ctx: Context, mixed: float, alerts: float, speedup: float, cpu_ratio: float
                 ) -> str:
    """The issue's rule for replacing the C reader by the msgspec one, on this run's figures."""
    mixed_need, mixed_met = speed_target(ctx, mixed, TARGET_MIXED, "lines/s")
    alerts_need, alerts_met = speed_target(ctx, alerts, TARGET_ALERTS, "alerts/s")
    checks = [
        ("mixed lines/s", f"{mixed:,.0f}", mixed_need, bool(mixed_met)),
        ("alerts-only alerts/s", f"{alerts:,.0f}", alerts_need, bool(alerts_met)),
        (
            "speed-up over naive (mixed)",
            f"{speedup:.2f}x",
            f">= {TARGET_SPEEDUP:.0f}x",
            speedup >= TARGET_SPEEDUP,
        ),
        (
            "daemon CPU per line vs the C reader",
            f"{cpu_ratio:.2f}x",
            f"<= {MAX_CPU_RATIO}x",
            cpu_ratio <= MAX_CPU_RATIO,
        ),
    ]
    ok = all(c[3] for c in checks)
    table = md_table(
        ("condition", "msgspec reader", "needed", "met"),
        ((name, value, need, "yes" if met else "no") for name, value, need, met in checks),
    )
    verdict = (
        "the msgspec reader meets every condition: the C reader can go."
        if ok
        else "the msgspec reader does not meet every condition: the C reader stays; the msgspec "
        "reader is the default where the C one is not built."
    )
    return (
        "**JSON reader decision** (msgspec reader in place of the C one):\n\n"
        f"{table}\n\nOn this run {verdict}\n"
    )


def run(ctx: Context) -> Section:
    sec = Section(NAME, TITLE)
    require(
        "scanguard_ids.eve.decode", "scanguard_ids.detect.detector", "scanguard_ids.commands.replay"
    )
    mixed, mmeta = corpus.ensure("mixed", ctx.quick)
    alerts, ameta = corpus.ensure("alerts", ctx.quick)
    sec.notes.append(
        f"Corpora (bench/corpus.py, seeded): mixed {mmeta.lines:,} lines / "
        f"{mmeta.bytes / 1e6:.0f} MB ({mmeta.alerts:,} our alerts from {mmeta.scanners:,} "
        f"remote addresses, {mmeta.foreign_alerts:,} "
        f"other alerts, {mmeta.stats_events:,} stats events); alerts-only {ameta.lines:,} lines / "
        f"{ameta.bytes / 1e6:.0f} MB from {ameta.scanners:,} addresses."
    )
    r = 2 if ctx.quick else ctx.repeats
    table: list[tuple[object, ...]] = []
    results: dict[str, dict[str, list[dict]]] = {}
    for label, path in (("mixed", mixed), ("alerts", alerts)):
        few = max(1, r - 2)
        ctx.say(
            f"replay: {label} corpus, scanguard and scanguard-msgspec x{r}, scanguard-python, "
            f"naive and orjson x{few}"
        )
        plan = [
            ("scanguard", ["scanguard", str(path)]),
            ("msgspec", ["msgspec", str(path)]),
            ("python", ["python", str(path)]),
            ("naive", ["naive", str(path)]),
            ("orjson", ["orjson", str(path)]),
        ]
        runs = _runs(
            ctx, plan, {"scanguard": r, "msgspec": r, "python": few, "naive": few, "orjson": few}
        )
        if not all(x.get("accelerated") for x in runs["scanguard"]):
            sec.notes.append(
                f"WARNING {label}: the C reader is not built (no compiler at install?): the "
                "scanguard figures are the pure-Python reader's"
            )
        n_slice = (
            (20_000 if ctx.quick else 200_000)
            if label == "mixed"
            else (10_000 if ctx.quick else 60_000)
        )
        try:
            piece = slice_file(path, n_slice)
            ctx.say(f"replay: {label} fail2ban-regex on {n_slice:,} lines x{min(3, r)}")
            runs["fail2ban"] = [run_fail2ban(piece) for _ in range(min(3, r))]
        except NotRun as exc:
            sec.notes.append(f"fail2ban-regex not run on {label}: {exc}")
        if label == "mixed":
            try:
                ctx.say("replay: mixed corpus, `scanguard replay` CLI x2")
                runs["cli"] = [run_cli(path) for _ in range(2)]
            except NotRun as exc:
                sec.notes.append(f"scanguard replay CLI not run: {exc}")
        results[label] = runs
        for mode, rs in runs.items():
            rates = [x["lines"] / x["seconds"] for x in rs]
            table.append(
                (
                    label,
                    mode,
                    len(rs),
                    f"{median([x['lines'] for x in rs]):,.0f}",
                    f"{_rate(rs, 'lines'):,.0f} ({spread(rates)})",
                    f"{_rate(rs, 'alerts'):,.0f}",
                    rs[0].get("decisions", "-"),
                )
            )
        dec = {m: {x.get("decisions") for x in rs} for m, rs in runs.items() if m != "fail2ban"}
        if len({frozenset(v) for v in dec.values()}) != 1:
            sec.notes.append(
                f"WARNING {label}: decision counts differ between implementations: {dec}"
            )

    m, a = results["mixed"], results["alerts"]
    sg_m, nv_m = _rate(m["scanguard"], "lines"), _rate(m["naive"], "lines")
    sg_a, nv_a = _rate(a["scanguard"], "alerts"), _rate(a["naive"], "alerts")
    if not ctx.quick:
        ctx.yardstick = nv_a
    mixed_target, mixed_met = speed_target(ctx, sg_m, TARGET_MIXED, "lines/s")
    alerts_target, alerts_met = speed_target(ctx, sg_a, TARGET_ALERTS, "alerts/s")
    sec.rows += [
        Row(
            "mixed corpus: lines/s (one core)",
            sg_m,
            "lines/s",
            "naive json.loads loop",
            nv_m,
            mixed_target,
            mixed_met,
        ),
        Row(
            "mixed corpus: speed-up over naive",
            sg_m,
            "lines/s",
            "naive json.loads loop",
            nv_m,
            f">= {TARGET_SPEEDUP:.0f}x",
            sg_m / nv_m >= TARGET_SPEEDUP,
        ),
        Row(
            "mixed corpus: lines/s vs orjson-naive",
            sg_m,
            "lines/s",
            "orjson.loads every line",
            _rate(m["orjson"], "lines"),
        ),
        Row(
            "mixed corpus: lines/s of the msgspec reader (no C compiler)",
            _rate(m["msgspec"], "lines"),
            "lines/s",
            "naive json.loads loop",
            nv_m,
        ),
        Row(
            "mixed corpus: lines/s of the pure-Python reader (reference)",
            _rate(m["python"], "lines"),
            "lines/s",
            "naive json.loads loop",
            nv_m,
        ),
        Row(
            "mixed corpus: our alerts/s",
            _rate(m["scanguard"], "alerts"),
            "alerts/s",
            "naive json.loads loop",
            _rate(m["naive"], "alerts"),
        ),
        Row(
            "alerts-only corpus: alerts/s (one core)",
            sg_a,
            "alerts/s",
            "naive json.loads loop",
            nv_a,
            alerts_target,
            alerts_met,
        ),
        Row(
            "alerts-only corpus: alerts/s of the msgspec reader (no C compiler)",
            _rate(a["msgspec"], "alerts"),
            "alerts/s",
            "naive json.loads loop",
            nv_a,
        ),
        Row(
            "alerts-only corpus: alerts/s of the pure-Python reader (reference)",
            _rate(a["python"], "alerts"),
            "alerts/s",
            "naive json.loads loop",
            nv_a,
        ),
        Row(
            "alerts-only corpus: alerts/s vs orjson-naive",
            sg_a,
            "alerts/s",
            "orjson.loads every line",
            _rate(a["orjson"], "alerts"),
        ),
    ]
    if "fail2ban" in m:
        sec.rows.append(
            Row(
                "mixed corpus: lines/s vs fail2ban-regex (peer)",
                sg_m,
                "lines/s",
                "fail2ban-regex 1.0, equivalent filter",
                _rate(m["fail2ban"], "lines"),
            )
        )
    if "fail2ban" in a:
        sec.rows.append(
            Row(
                "alerts-only: alerts/s vs fail2ban-regex (peer)",
                sg_a,
                "alerts/s",
                "fail2ban-regex 1.0, equivalent filter",
                _rate(a["fail2ban"], "alerts"),
            )
        )
    if m.get("cli"):
        sec.rows.append(
            Row(
                "mixed corpus: `scanguard replay` CLI, wall time incl. start-up",
                _rate(m["cli"], "lines"),
                "lines/s",
                "naive json.loads loop",
                nv_m,
            )
        )
    per_line = _daemon_cpu(ctx, r)
    sec.rows += [
        Row(
            f"daemon: CPU per EVE line, decode_batch of {BATCH} lines, {reader} reader",
            per_line[reader],
            "us",
            "C reader",
            per_line["c"],
            lower_is_better=True,
        )
        for reader in ("c", "msgspec", "python")
    ]
    header = (
        "corpus",
        "implementation",
        "runs",
        "lines",
        "lines/s median (min..max)",
        "alerts/s",
        "decisions",
    )
    sec.extra_md = (
        md_table(header, table)
        + "\n\n"
        + _decision_md(
            ctx,
            _rate(m["msgspec"], "lines"),
            _rate(a["msgspec"], "alerts"),
            _rate(m["msgspec"], "lines") / nv_m,
            per_line["msgspec"] / per_line["c"],
        )
    )
    sec.notes.append(
        "fail2ban-regex only matches lines (no count/port threshold) and runs on the first "
        "lines of the file; its figure is its own 'processed in' time."
    )
    return sec


if __name__ == "__main__":
    child_main(__doc__, _child)
