"""A deterministic demo Snapshot for golden tests, screenshots and trying the UI.

Documentation addresses only (RFC 5737, 2001:db8::/32). Same ``now`` -> same snapshot.
"""

from __future__ import annotations

import math
import random

from scanguard_ids.model import Decision
from scanguard_ids.snapshot import (
    BlockRow,
    DecisionRow,
    PortRow,
    Snapshot,
    SourceHealth,
    WatchRow,
)

_COMMON_PORTS = (
    21,
    22,
    23,
    25,
    53,
    80,
    110,
    111,
    135,
    139,
    143,
    443,
    445,
    993,
    995,
    1723,
    3306,
    3389,
    5900,
    8080,
)


def _v4(index: int) -> str:
    """The index-th RFC 5737 address, .1-.254 of each of the three /24s in turn."""
    nets = ("192.0.2", "198.51.100", "203.0.113")
    net, host = divmod(index, 254)
    return f"{nets[net]}.{host + 1}"


def _rate(t: int, span: int, rng: random.Random) -> float:
    """Background noise plus one scan burst 40 s before the end."""
    base = 4 + 3 * math.sin(t / 17) + rng.uniform(-2, 2)
    burst = 60 * math.exp(-((t - span + 40) ** 2) / 80) if t > span - 80 else 0.0
    return max(0.0, base + burst)


def demo_snapshot(
    now: float,
    *,
    n_watching: int = 40,
    n_blocked: int = 1200,
    history_s: int = 300,
) -> Snapshot:
    """3 sources (one down), n_watching watched, n_blocked blocked, history_s s of rates."""
    rng = random.Random(20_240_611)
    sources = (
        SourceHealth("/var/log/suricata/eve.json", "file", True, 1_523_114, 812.4, 0, ""),
        SourceHealth("/run/scanguard/eve.sock", "unix_stream", True, 88_213, 41.0, 0, "2 clients"),
        SourceHealth(
            "/var/log/suricata/sensor-b/eve.json", "file", False, 0, 0.0, 0, "waiting for file"
        ),
    )
    watch = []
    for i in range(n_watching):
        count = rng.randint(1, 4)
        ports = min(count, rng.randint(1, 2))
        if count >= 3 and ports >= 2:
            ports = 1  # at both thresholds it would already be blocked
        last = now - rng.uniform(0.5, 50)
        ip = _v4(700 + i) if i < 62 else f"2001:db8:ffff::{i:x}"
        kinds = ("tcp-rst",) if i % 3 else ("tcp-rst", "icmp-port-unreachable")
        first = last - rng.uniform(0, 9)
        watch.append(WatchRow(ip, count, ports, 3, 2, rng.uniform(1, 60), first, last, kinds))
    blocks = []
    for i in range(n_blocked):
        ip = _v4(i) if i < 658 else f"2001:db8:{i // 250:x}::{i % 250 + 1:x}"
        strikes = 1 if i % 7 else 2 + i % 3
        ttl = 300 * 2 ** (strikes - 1)
        remaining = float(rng.uniform(1, ttl)) if i % 97 else None
        since = now - (ttl - (remaining or ttl / 2))
        n_ports = rng.randint(2, 12)
        seen = tuple(sorted(rng.sample(_COMMON_PORTS, min(n_ports, len(_COMMON_PORTS)))))
        blocks.append(
            BlockRow(
                ip,
                remaining,
                ttl,
                seen,
                rng.randint(3, 40),
                strikes,
                manual=i % 151 == 5,
                since=since,
                reason="manual" if i % 151 == 5 else "threshold",
            )
        )
    history = tuple(round(_rate(t, history_s, rng), 1) for t in range(history_s))
    top = tuple(PortRow(p, "tcp", 2000 // (k + 1)) for k, p in enumerate(_COMMON_PORTS[:7])) + (
        PortRow(53, "udp", 97),
    )
    decs = tuple(
        DecisionRow.of(Decision(
            now - 600 + 20 * k,
            "unblock" if k % 5 == 4 else "block",
            blocks[k].ip,
            ttl=0 if k % 5 == 4 else blocks[k].ttl,
            count=blocks[k].responses,
            ports=blocks[k].ports,
            reason="expired"
            if k % 5 == 4
            else f"{blocks[k].responses} responses on {len(blocks[k].ports)} ports in 60s",
            strikes=blocks[k].strikes,
        ))
        for k in range(min(30, n_blocked))
    )
    return Snapshot(
        taken=now,
        started=now - 3 * 3600 - 725,
        backend="ipset",
        sources=sources,
        counters={
            "events": 1_611_327,
            "responses": 48_119,
            "blocks": 1_532,
            "unblocks": 332,
            "decode_errors": 3,
            "valve_drops": 0,
            "allowlisted": 41,
            "suppressed": 7,
        },
        events_per_s=853.4,
        responses_per_s=history[-1] if history else 0.0,
        watching=tuple(watch),
        watching_total=n_watching,
        blocked=tuple(blocks),
        blocked_total=n_blocked,
        history=history,
        top_ports=top,
        decisions=decs,
    )


#: The instant golden files and docs/monitor.svg are drawn at.
DEMO_NOW = 1_700_000_000.0


def main(argv: list[str] | None = None) -> int:
    """python -m scanguard_ids.tui.sample [docs/monitor.svg] — redraw the screenshot."""
    import sys

    from scanguard_ids.tui.app import export_svg

    args = sys.argv[1:] if argv is None else argv
    export_svg(demo_snapshot(DEMO_NOW), args[0] if args else "docs/monitor.svg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
