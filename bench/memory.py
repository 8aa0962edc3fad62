"""Benchmark 3: memory per tracked address, and the max_tracked cap holding RSS flat.

A spoofed flood: N distinct remote addresses, one TCP RST response each (so none blocks), all
inside one detection window, fed at full speed as EVE alert lines through Decoder + Detector
(default config: max_tracked 100 000). RSS (/proc/self/statm, after gc) is sampled as the flood
goes on, in a fresh child per run.

- bytes per tracked address: the RSS slope between 10 % and 100 % of the cap, divided by the
  tracked addresses gained (so fixed costs do not count);
- after the cap: RSS growth from the cap to the end of the flood.

Both tiers (the slow tier is on by default): ``scanguard`` counts each IPv6 address as its own
group (``prefix6 = 128``); ``scanguard-p64`` keeps the default ``prefix6 = 64`` and floods
distinct /64s (each its own group, keyed by its prefix); ``scanguard-slow`` gives each IPv6
address two responses, so both tiers hold it (a fast-tier list and a slow-tier record), up to
``slow_max_tracked`` addresses, against ``scanguard-fast2``: the same with the slow tier off
(what the fast tier alone holds for two responses). A one-off address holds no slow-tier
record: once its fast state ends it waits in the slow tier's fixed table (a fixed cost, not
per address).

Flat after the caps: there are two bounded tables, the fast tier (``max_tracked``) and the slow
tier's table of one-off groups (a power of two >= 2 * ``slow_max_tracked`` slots, filled by the
fast tier's evictions). The live allocations are compared from the first sample where both are
full (``max_tracked`` + 4 x the slots sources: every two-slot bucket has had ~8 candidates) to
the end of the run; the growth from the fast cap alone to the end is reported too (no target).

Baseline: the same decoder feeding a naive tracker, ``dict[str, list[tuple]]`` with no cap.
Remote addresses: IPv6 from 2001:db8::/32 (the 1 M run) and IPv4 from 11.0.0.0/8 as a stand-in
for "any address" (400 000 of them, four times the cap). They are strings in memory: nothing is
sent anywhere.
"""

from __future__ import annotations

import gc
import ipaddress
import sys
from dataclasses import replace
from typing import Any

from bench.common import (
    Context,
    NotRun,
    Row,
    Section,
    child,
    child_main,
    emit,
    pin_one_core,
    require,
    rss_bytes,
)
from bench.corpus import T0, Addr, Probe, _Ts, alert_line, v6_text
from bench.report import md_table

NAME = "memory"
TITLE = "3. Memory per tracked address"
TARGET = 300.0  # bytes per tracked address


def _template() -> str:
    """A real-layout TCP RST alert line with {ts}/{ip} placeholders (JSON braces escaped)."""
    import random

    remote = Addr("198.51.100.77", bytes([198, 51, 100, 77]))
    local = Addr("192.0.2.1", bytes([192, 0, 2, 1]))
    ts = _Ts()
    line = alert_line(
        Probe(T0, remote, local, 22, 40001, False, b""), random.Random(1), ts
    ).decode()
    line = line.replace("{", "{{").replace("}", "}}")
    stamp = ts(T0)
    assert line.count(stamp) == 1
    return line.replace(stamp, "{ts}", 1).replace('"198.51.100.77"', '"{ip}"')


def _addr_text(i: int, family: int, tracker: str = "") -> str:
    if family == 4:
        return str(ipaddress.IPv4Address(0x0B000000 + i))
    if tracker == "scanguard-p64":  # a /64 of its own for each, a random-looking host part
        return v6_text(((0x20010DB8 << 96) | (i << 64) | _iid(i)).to_bytes(16, "big"))
    return v6_text(((0x20010DB8 << 96) | (i * 0x9E3779B1 + 1)).to_bytes(16, "big"))


def _iid(i: int) -> int:
    """A deterministic, random-looking 64-bit interface id (SLAAC privacy addresses are):
    not ::1, which the address text, a cached small int or a short packed form would flatter."""
    x = (i + 1) * 0x9E3779B97F4A7C15 & 0xFFFF_FFFF_FFFF_FFFF  # splitmix64
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & 0xFFFF_FFFF_FFFF_FFFF
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & 0xFFFF_FFFF_FFFF_FFFF
    return x ^ (x >> 31)


def _child(argv: list[str]) -> None:
    tracker, family, total = argv[0], int(argv[1]), int(argv[2])
    pin_one_core()
    from scanguard_ids import config
    from scanguard_ids.detect.allowlist import Allowlist
    from scanguard_ids.detect.detector import Detector
    from scanguard_ids.eve.decode import Decoder

    cfg = config.Config()
    if tracker in ("scanguard", "scanguard-slow", "scanguard-fast2"):
        cfg = replace(cfg, detect=replace(cfg.detect, prefix6=128))
    if tracker == "scanguard-fast2":
        cfg = replace(cfg, detect=replace(cfg.detect, slow="off"))
    two = tracker in ("scanguard-slow", "scanguard-fast2")
    cap = cfg.detect.slow_max_tracked if two else cfg.detect.max_tracked
    per_addr = 2 if two else 1
    decoder = Decoder(config.sid_set(cfg), max_line_bytes=cfg.eve.max_line_bytes)
    tpl = _template()
    fmt = tpl.format
    naive: dict[str, list[tuple[float, int | None, str]]] = {}
    detector = Detector(cfg.detect, Allowlist(cfg.detect.allowlist))
    feed = detector.feed

    def tracked() -> int:
        if tracker == "naive":
            return len(naive)
        st = detector.stats
        return st.slow_tracked if tracker == "scanguard-slow" else st.tracked

    # Warm up the allocator and the caches with addresses outside the measured run.
    ts = _Ts()
    step = 20.0 / max(total, 1)  # the whole flood inside 20 s of event time (one window)
    full = caps_full(cfg.detect)
    marks = sorted(
        {int(total * f) for f in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)}
        | {int(cap * f) for f in (0.1, 0.5, 1.0) if cap * f <= total}
        | ({full} if tracker == "scanguard" and full < total else set())
    )
    samples: list[dict[str, Any]] = []
    gc.collect()
    for i in range(total + 1):
        if i in marks:
            gc.collect()
            samples.append(
                {
                    "events": i,
                    "tracked": tracked(),
                    "rss": rss_bytes(),
                    "blocks": sys.getallocatedblocks(),
                }
            )
        if i == total:
            break
        ip = _addr_text(i, family, tracker)
        for k in range(per_addr):
            line = fmt(ts=ts(T0 + i * step + k * step / 2), ip=ip).encode()
            ev = decoder.decode(line)
            if ev is None:
                raise SystemExit(f"decoder dropped the template line: {decoder.stats}")
            if tracker != "naive":
                if feed(ev) is not None:
                    raise SystemExit("one endpoint blocked: the flood is not what it should be")
            else:
                naive.setdefault(ev.remote, []).append((ev.ts, ev.local_port, ev.kind))
    emit({"tracker": tracker, "family": family, "cap": cap, "samples": samples,
          "caps_full": full if tracker == "scanguard" else None})


def once_slots(slow_max_tracked: int) -> int:
    """Slots of the slow tier's one-off table (as SlowTier sizes it)."""
    slots = 2
    while slots < 2 * slow_max_tracked:
        slots *= 2
    return slots


def caps_full(detect: Any) -> int:
    """Sources after which both bounded tables are full (see the module docstring)."""
    return int(detect.max_tracked + 4 * once_slots(detect.slow_max_tracked))


def _slope(samples: list[dict], cap: int) -> float | None:
    lo = next((s for s in samples if s["tracked"] >= cap * 0.1), None)
    hi = next((s for s in samples if s["tracked"] >= cap), None) or samples[-1]
    if lo is None or hi["tracked"] <= lo["tracked"]:
        return None
    return (hi["rss"] - lo["rss"]) / (hi["tracked"] - lo["tracked"])


def run(ctx: Context) -> Section:
    require("scanguard_ids.eve.decode", "scanguard_ids.detect.detector")
    sec = Section(NAME, TITLE)
    big = 100_000 if ctx.quick else 1_000_000
    v4 = 400_000 if not ctx.quick else 60_000
    runs: dict[tuple[str, int], dict] = {}
    slow_total = 10_000  # the default slow_max_tracked
    plan = [(6, big, ("scanguard", "naive")), (4, v4, ("scanguard", "naive")),
            (6, big, ("scanguard-p64",)), (6, slow_total, ("scanguard-slow", "scanguard-fast2"))]
    for family, total, trackers in plan:
        for tracker in trackers:
            ctx.say(f"memory: {tracker} IPv{family} {total:,} sources")
            try:
                runs[(tracker, family)] = child(
                    "memory", [tracker, str(family), str(total)], timeout=600
                )
            except NotRun as exc:
                sec.notes.append(f"{tracker} IPv{family}: not run: {exc}")
    if ("scanguard", 6) not in runs:
        raise NotRun("the scanguard run failed: " + "; ".join(sec.notes))
    table: list[tuple[str, ...]] = []
    for (tracker, family), out in runs.items():
        cap = out["cap"]
        base = out["samples"][0]["rss"]
        for s in out["samples"]:
            table.append(
                (
                    f"{tracker} IPv{family}",
                    f"{s['events']:,}",
                    f"{s['tracked']:,}",
                    f"{s['rss'] / 2**20:,.1f}",
                    f"{(s['rss'] - base) / 2**20:,.1f}",
                    f"{s['blocks']:,}",
                )
            )
        if tracker in ("naive", "scanguard-fast2"):
            continue
        per = _slope(out["samples"], cap)
        naive = runs.get(("naive", family))
        nper = _slope(naive["samples"], cap) if naive else None
        if tracker == "scanguard-slow":
            # Two responses per address: the target is for a tracked address (one
            # response, rows above); this shows what the slow-tier record adds to the fast
            # tier's two-response state, against the fast tier alone (no target).
            fast2 = runs.get(("scanguard-fast2", family))
            sec.rows.append(
                Row(
                    "IPv6 (prefix6 128), two responses each: bytes per address, both tiers",
                    per,
                    "bytes/address",
                    "the fast tier alone (slow off)",
                    _slope(fast2["samples"], cap) if fast2 else None,
                    lower_is_better=True,
                )
            )
            continue
        what = {"scanguard": "" if family == 4 else " (prefix6 128)",
                "scanguard-p64": " (prefix6 64, a /64 each)"}[tracker]
        sec.rows.append(
            Row(
                f"IPv{family}{what}: bytes per tracked address (below the cap)",
                per,
                "bytes/address",
                "naive dict of lists",
                nper,
                f"< {TARGET:.0f} bytes/address",
                per is not None and per < TARGET,
                lower_is_better=True,
            )
        )
        if tracker != "scanguard":
            continue
        samples = out["samples"]
        end = samples[-1]
        nb = naive["samples"] if naive else None
        at_cap = next((s for s in samples if s["tracked"] >= cap), None)
        full = out.get("caps_full")
        at_full = next((s for s in samples if full is not None and s["events"] >= full), None)

        def naive_change(at: dict, key: str, nb: list | None = nb) -> float | None:
            if not nb or nb[-1]["events"] <= at["events"]:
                return None
            ref = next(s for s in nb if s["events"] >= at["events"])
            if key == "blocks":
                return (nb[-1]["blocks"] - ref["blocks"]) / ref["blocks"] * 100
            return (nb[-1]["rss"] - ref["rss"]) / 2**20

        for at, label, target in ((at_full, "after both caps", True),
                                  (at_cap, "after the fast-tier cap alone", False)):
            if at is None or end["events"] <= at["events"]:
                continue
            span = f"{at['events']:,} -> {end['events']:,} sources"
            drift = (end["blocks"] - at["blocks"]) / at["blocks"] * 100
            sec.rows.append(
                Row(
                    f"IPv{family}: live allocations {label} ({span}), change",
                    drift,
                    "%",
                    "naive dict of lists",
                    naive_change(at, "blocks"),
                    "flat: within +-2 %" if target else "",
                    abs(drift) <= 2.0 if target else None,
                )
            )
            sec.rows.append(
                Row(
                    f"IPv{family}: RSS growth {label} ({span})",
                    (end["rss"] - at["rss"]) / 2**20,
                    "MiB",
                    "naive dict of lists",
                    naive_change(at, "rss"),
                    lower_is_better=True,
                )
            )
    sec.extra_md = (
        md_table(
            ("run", "events fed", "tracked", "RSS MiB", "RSS growth MiB", "live blocks"), table
        )
        + "\n"
    )
    sec.notes.append(
        "Live allocations = sys.getallocatedblocks(): the objects the process holds. "
        "RSS also carries allocator slack (partly used pymalloc arenas, the tracking "
        "table resized while evicting), so it can rise in steps after the cap while the "
        "live allocations stay flat."
    )
    sec.notes.append(
        "max_tracked is the default 100 000; one response per address, all within one "
        "20 s event-time window so nothing ages out; RSS read after gc.collect()."
    )
    sec.notes.append(
        "Two bounded tables fill in turn: the fast tier at max_tracked sources, then the slow "
        "tier's one-off table (fixed slots) from the fast tier's evictions; 'after both caps' "
        "starts once both are full, 'after the fast-tier cap alone' shows the second one "
        "filling."
    )
    return sec


if __name__ == "__main__":
    child_main(__doc__, _child)
