"""Benchmark 5: blocks per second the enforcement backends sustain when many scanners arrive.

In a network namespace made for the run (nothing touches the host's firewall), a child pinned
to one core creates the backend through ``registry.create`` (``start()`` installs sets and
rules), then calls ``block(ip, 300)`` for N distinct addresses (90 % IPv4 from 198.18.0.0/15,
10 % IPv6 from 2001:db8::/32) as fast as it can, and checks with ``list()`` that the kernel
holds them all. Conntrack clearing is off for the main figures (it is a separate worker thread;
one row shows ipset with it on).

Baselines, same namespace, same kind of set: one forked ``ipset add SET IP timeout 300 -exist``
per block (what fail2ban's iptables-ipset action runs), and one forked ``nft add element``
per block (fail2ban's nftables action).
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import time
from typing import Any

from bench.common import (
    ROOT,
    Context,
    NotRun,
    Row,
    Section,
    answer,
    child_main,
    emit,
    is_root,
    median,
    pin_one_core,
    require,
)

NAME = "blocking"
TITLE = "5. Blocking throughput"
N_ADDRS = 5000
N_FORK = 600


def addresses(n: int) -> list[str]:
    out = []
    for i in range(n):
        if i % 10 == 9:
            out.append(str(ipaddress.IPv6Address((0x20010DB8 << 96) | (0x5000 << 64) | (i + 1))))
        else:
            out.append(str(ipaddress.IPv4Address(0xC6120000 + 256 + i)))
    return out


def _child(argv: list[str]) -> None:
    mode, n = argv[0], int(argv[1])
    pin_one_core()
    ips = addresses(n)
    if mode in ("ipset", "nftables", "ipset+conntrack"):
        from scanguard_ids.block import registry
        from scanguard_ids.clock import SystemClock
        from scanguard_ids.config import BlockConfig

        cfg = BlockConfig(
            backend=mode.split("+")[0],
            set_name="sgbench",
            clear_conntrack=mode.endswith("+conntrack"),
        )
        backend = registry.create(cfg.backend, cfg, SystemClock())
        backend.start()
        try:
            t0 = time.perf_counter()
            for ip in ips:
                backend.block(ip, 300)
            seconds = time.perf_counter() - t0
            t1 = time.perf_counter()
            held = len(backend.list())
            list_s = time.perf_counter() - t1
        finally:
            backend.stop()
        emit({"mode": mode, "n": n, "seconds": seconds, "held": held, "list_s": list_s})
        return
    if mode == "fork-ipset":
        for name, fam in (("sgfork4", "inet"), ("sgfork6", "inet6")):
            subprocess.run(
                [
                    "ipset",
                    "create",
                    name,
                    "hash:ip",
                    "family",
                    fam,
                    "timeout",
                    "300",
                    "maxelem",
                    "65536",
                    "-exist",
                ],
                check=True,
            )
        t0 = time.perf_counter()
        for ip in ips:
            subprocess.run(
                [
                    "ipset",
                    "add",
                    "sgfork6" if ":" in ip else "sgfork4",
                    ip,
                    "timeout",
                    "300",
                    "-exist",
                ],
                check=True,
                capture_output=True,
            )
        seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        held = sum(_ipset_count(s) for s in ("sgfork4", "sgfork6"))
        emit(
            {
                "mode": mode,
                "n": n,
                "seconds": seconds,
                "held": held,
                "list_s": time.perf_counter() - t1,
            }
        )
        return
    if mode == "fork-nft":
        script = (
            "add table inet sgfork\n"
            "add set inet sgfork b4 { type ipv4_addr; flags timeout; size 65536; }\n"
            "add set inet sgfork b6 { type ipv6_addr; flags timeout; size 65536; }\n"
        )
        subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)
        t0 = time.perf_counter()
        for ip in ips:
            s = "b6" if ":" in ip else "b4"
            subprocess.run(
                ["nft", "add", "element", "inet", "sgfork", s, "{", ip, "timeout", "300s", "}"],
                check=True,
                capture_output=True,
            )
        seconds = time.perf_counter() - t0
        emit({"mode": mode, "n": n, "seconds": seconds, "held": n})
        return
    raise SystemExit(f"unknown mode {mode}")


def _ipset_count(name: str) -> int:
    """Members of a set, from a full `ipset list` (what a forking tool would parse)."""
    out = subprocess.run(["ipset", "list", name], capture_output=True, text=True, check=True)
    members = out.stdout.split("Members:\n", 1)[1] if "Members:\n" in out.stdout else ""
    return sum(1 for line in members.splitlines() if line.strip())


def _in_ns(ns: Any, mode: str, n: int) -> dict:
    argv = ns.argv([sys.executable, "-m", "bench.blocking", "--child", mode, str(n)])
    res = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    return answer(mode, res.returncode, res.stdout, res.stderr)


def _list_ms(rs: list[dict] | None) -> float | None:
    return median([r["list_s"] * 1e3 for r in rs]) if rs else None


def run(ctx: Context) -> Section:
    if not is_root():
        raise NotRun("needs root (network namespaces, firewall)")
    require("scanguard_ids.block.registry", "scanguard_ids.lab.netns")
    from scanguard_ids.lab.netns import namespaces

    sec = Section(NAME, TITLE)
    n = 1000 if ctx.quick else N_ADDRS
    nf = 200 if ctx.quick else N_FORK
    reps = 1 if ctx.quick else 3
    results: dict[str, list[dict]] = {}
    plan = [
        ("ipset", n),
        ("fork-ipset", nf),
        ("nftables", n),
        ("fork-nft", nf),
        ("ipset+conntrack", n),
    ]
    for rep in range(reps):
        for mode, count in plan:
            if mode == "ipset+conntrack" and rep > 0:
                continue
            ctx.say(f"blocking: {mode} x{count} (run {rep + 1}/{reps})")
            with namespaces("sgbb") as (ns,):  # a fresh namespace: empty sets every run
                try:
                    results.setdefault(mode, []).append(_in_ns(ns, mode, count))
                except NotRun as exc:
                    sec.notes.append(f"{mode}: not run: {exc}")

    fork = results.get("fork-ipset")
    if fork:  # scale the forked list time to n entries
        results["fork-ipset-list"] = [{"list_s": r["list_s"] * n / max(1, r["n"])} for r in fork]

    def rate(mode: str) -> float | None:
        rs = results.get(mode)
        return median([r["n"] / r["seconds"] for r in rs]) if rs else None

    for mode in ("ipset", "nftables", "ipset+conntrack"):
        for r in results.get(mode, []):
            if r["held"] != r["n"]:
                sec.notes.append(
                    f"WARNING {mode}: the kernel holds {r['held']} of {r['n']} blocked addresses"
                )
    sec.rows += [
        Row(
            f"ipset backend (netlink): blocks/s, {n:,} addresses",
            rate("ipset"),
            "blocks/s",
            "forked `ipset add` per block",
            rate("fork-ipset"),
            "faster than the baseline",
            None
            if rate("ipset") is None or rate("fork-ipset") is None
            else rate("ipset") > rate("fork-ipset"),
        ),
        Row(
            f"nftables backend: blocks/s, {n:,} addresses",
            rate("nftables"),
            "blocks/s",
            "forked `nft add element` per block",
            rate("fork-nft"),
            "faster than the baseline",
            None
            if rate("nftables") is None or rate("fork-nft") is None
            else rate("nftables") > rate("fork-nft"),
        ),
        Row(
            f"ipset backend: list() of {n:,} blocks (the daemon's kernel sync, every 15 s)",
            _list_ms(results.get("ipset")),
            "ms",
            "forked `ipset list` of both sets",
            _list_ms(results.get("fork-ipset-list")),
            lower_is_better=True,
        ),
        Row(
            "ipset backend with conntrack clearing on: blocks/s",
            rate("ipset+conntrack"),
            "blocks/s",
            "forked `ipset add` per block",
            rate("fork-ipset"),
        ),
    ]
    sec.notes.append(
        "The baseline for list() is one forked `ipset list` per set after the forked run of "
        f"{nf:,} blocks, scaled to {n:,} entries (linear)."
    )
    sec.notes.append(
        "The daemon's safety valve (block.max_blocks_per_second, default 200) caps blocks "
        "on purpose; these figures are what the backends could take above it."
    )
    return sec


if __name__ == "__main__":
    child_main(__doc__, _child)
