"""The backends against the real kernel, only inside namespaces these tests create.

For ipset (rules via iptables-nft-restore and via python-iptables on the legacy
tables) and nftables, IPv4 and IPv6: a block really drops the scanner's ping and TCP
connect, the neighbour address on the same link still gets through, traffic to the
scanner is dropped too, the block expires with its ttl, unblock works, start() twice
adds nothing, a second instance adopts the kernel's entries, remove() leaves nothing.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from blocklab import NEIGHBOUR4, NEIGHBOUR6, Lab, ct_count, need_root
from nsutil import run_in_netns

from scanguard_ids.block.ipset import IpsetBackend
from scanguard_ids.block.iptables import detect_variant
from scanguard_ids.block.nftables import NftablesBackend
from scanguard_ids.config import BlockConfig
from scanguard_ids.errors import BackendError
from scanguard_ids.lab.netns import Netns, namespaces, run

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("host_untouched")]

OPEN = {"ping": True, "tcp": True}
SHUT = {"ping": False, "tcp": False}


def _iptc_ok() -> bool:
    try:
        import iptc  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return shutil.which("iptables-legacy-save") is not None


KINDS: dict[str, Callable[..., Any]] = {
    "ipset-nft": lambda cfg, **kw: IpsetBackend(cfg, iptables="nft", **kw),
    "ipset-legacy": lambda cfg, **kw: IpsetBackend(cfg, iptables="legacy", **kw),
    "nftables": lambda cfg, **kw: NftablesBackend(cfg, **kw),
}
AVAILABLE = {
    "ipset-nft": lambda: shutil.which("iptables-nft-restore") is not None,
    "ipset-legacy": _iptc_ok,
    "nftables": lambda: shutil.which("nft") is not None,
}
# The admin's iptables binary for each path, and its save command.
IPT = {"ipset-nft": ("iptables-nft", "ip6tables-nft"),
       "ipset-legacy": ("iptables-legacy", "ip6tables-legacy")}


def _skip_unavailable(kind: str) -> None:
    need_root()
    if not AVAILABLE[kind]():
        pytest.skip(f"{kind}: tools not installed")


def admin_accept_established(kind: str, ns: Netns) -> None:
    """What a typical host already has (and what turns conntrack on in the namespace)."""
    if kind in IPT:
        for tool in IPT[kind]:
            ns.run([tool, "-w", "5", "-A", "INPUT", "-m", "conntrack", "--ctstate",
                    "ESTABLISHED,RELATED", "-j", "ACCEPT"])
    else:
        ns.run(["nft", "add", "table", "inet", "admin"])
        ns.run(["nft", "add", "chain", "inet", "admin", "input",
                "{ type filter hook input priority 0; policy accept; }"])
        ns.run(["nft", "add", "rule", "inet", "admin", "input", "ct", "state",
                "established,related", "accept"])


def ruleset(kind: str, ns: Netns) -> str:
    """The namespace's rules as the admin sees them (no counters, no timestamps)."""
    argvs = ([[f"{t}-save"] for t in IPT[kind]] if kind in IPT
             else [["nft", "list", "ruleset"]])
    text = "".join(ns.run(a).stdout for a in argvs)
    return "\n".join(line.split(" [")[0] for line in text.splitlines() if not line.startswith("#"))


def wait_unblocked(lab: Lab, kind: str, cfg: BlockConfig, limit: float = 8.0) -> float:
    """Poll a fresh instance's list() until the kernel has expired every block."""
    t0 = time.monotonic()
    while run_in_netns(lab.victim.name, lambda: KINDS[kind](cfg).list()):
        assert time.monotonic() - t0 < limit, "blocks did not expire"
        time.sleep(0.2)
    return time.monotonic() - t0


@pytest.mark.parametrize("kind", list(KINDS))
def test_block_really_blocks(kind: str, lab: Lab) -> None:
    _skip_unavailable(kind)
    cfg = BlockConfig(max_set_size=4096)
    victim = lab.victim
    s4, s6 = lab.pair.scanner4, lab.pair.scanner6
    admin_accept_established(kind, victim)
    for src in (s4, s6, NEIGHBOUR4, NEIGHBOUR6):
        assert lab.reach(src) == OPEN, src

    def install_and_block() -> dict[str, Any]:
        b = KINDS[kind](cfg)
        b.start()
        first = ruleset(kind, victim)
        b.start()
        out = {"first": first, "second": ruleset(kind, victim), "info": b.info,
               "ct_before": (ct_count(s4), ct_count(s6)), "ct_neighbour": ct_count(NEIGHBOUR4)}
        b.block(s4, 300)
        b.block(s6, 300)
        b.stop()  # waits for the queued conntrack clearing
        out["ct_after"] = (ct_count(s4), ct_count(s6))
        out["ct_neighbour_after"] = ct_count(NEIGHBOUR4)
        return out

    res = run_in_netns(victim.name, install_and_block)
    assert res["first"] == res["second"], "start() twice changed the rules"
    assert min(res["ct_before"]) > 0 and res["ct_after"] == (0, 0), res  # conntrack cleared
    assert res["ct_neighbour"] > 0 and res["ct_neighbour_after"] == res["ct_neighbour"], res
    if kind in IPT:  # our jump is first, above the admin's accept-established, once
        for tool in IPT[kind]:
            rules = victim.run([tool, "-S", "INPUT"]).stdout.splitlines()
            assert rules[1] == "-A INPUT -j SCANGUARD", rules
            assert "ESTABLISHED" in rules[2] and len(rules) == 3, rules
        if kind == f"ipset-{detect_variant()}":  # the admin's own `iptables -S` shows them
            assert "-A INPUT -j SCANGUARD" in victim.run(["iptables", "-S"]).stdout
    else:
        assert "priority mangle" in res["first"] and "ip saddr @blocked4 drop" in res["first"]

    # Blocked: the scanner's addresses, both directions; the neighbour is untouched.
    for src in (s4, s6):
        assert lab.reach(src) == SHUT, src
    for src in (NEIGHBOUR4, NEIGHBOUR6):
        assert lab.reach(src) == OPEN, src
    assert not lab.ping(victim, s4) and not lab.ping(victim, s6)
    assert lab.ping(victim, NEIGHBOUR4) and lab.ping(victim, NEIGHBOUR6)

    # Adoption: another instance (another process) sees the kernel's entries.
    def adopt_and_refresh() -> tuple[list[Any], list[Any], float]:
        b = KINDS[kind](cfg)
        adopted = b.list()
        b.block(s4, 2)  # a present entry: the timeout is refreshed (down) ...
        b.block(s4, 100)  # ... and up again
        return adopted, b.list(), time.time()

    adopted, refreshed, now = run_in_netns(victim.name, adopt_and_refresh)
    assert {b.ip for b in adopted} == {s4, s6}
    assert all(b.expires is not None and 290 < b.expires - now <= 301 for b in adopted), adopted
    left = {b.ip: b.expires - now for b in refreshed if b.expires is not None}
    assert 95 < left[s4] <= 101 and left[s6] > 290, left

    # Unblock (twice: idempotent), then the scanner gets through again.
    def unblock() -> list[Any]:
        b = KINDS[kind](cfg)
        for ip in (s4, s6, s4, s6, "198.51.100.77"):
            b.unblock(ip)
        return b.list()

    assert run_in_netns(victim.name, unblock) == []
    for src in (s4, s6):
        assert lab.reach(src) == OPEN, src

    # Expiry: a 2 s block is gone without anyone touching it.
    run_in_netns(victim.name, lambda: [KINDS[kind](cfg).block(ip, 2) for ip in (s4, s6)])
    assert not lab.ping(lab.scanner, lab.pair.victim4, s4)
    wait_unblocked(lab, kind, cfg)
    for src in (s4, s6):
        assert lab.reach(src) == OPEN, src

    # remove() (twice) leaves nothing of ours, and the admin's rule in place.
    def remove() -> str:
        b = KINDS[kind](cfg)
        b.block(s4, 300)
        b.remove()
        b.remove()
        return b.show()

    shown = run_in_netns(victim.name, remove)
    assert "not installed" in shown
    after = ruleset(kind, victim)
    assert "SCANGUARD" not in after and "scanguard" not in after, after
    assert ("ESTABLISHED" in after) if kind in IPT else ("table inet admin" in after)
    assert victim.run(["ipset", "list", "-n"]).stdout.strip() == ""
    assert lab.reach(s4) == OPEN


@pytest.mark.parametrize("kind", list(KINDS))
def test_show_describes_rules_and_sizes(kind: str) -> None:
    _skip_unavailable(kind)
    cfg = BlockConfig(max_set_size=1000)
    with namespaces("sgs") as (ns,):
        def go() -> str:
            b = KINDS[kind](cfg)
            b.start()
            b.block("192.0.2.50", 60)
            b.block("2001:db8::50", 60)
            return b.show()

        text = run_in_netns(ns.name, go)
    if kind in IPT:
        assert "ipset scanguard4: 1 entries (maxelem 1000" in text
        assert "ipset scanguard6: 1 entries" in text
        assert "INPUT: jump to SCANGUARD at position 1" in text
        assert "-A SCANGUARD -m set --match-set scanguard6 dst -j DROP" in text
    else:
        assert "blocked4: 1 of 1000, blocked6: 1 of 1000" in text
        assert "chain forward" in text and "ip6 daddr @blocked6 drop" in text


def _measure(kind: str, clear: bool, n: int, netlink: bool = True) -> dict[str, float]:
    kw = {} if kind != "nftables" else {"netlink": netlink}
    b = KINDS[kind](BlockConfig(clear_conntrack=clear), **kw)
    b.start()
    ips = [f"{net}.{i}" for net in ("198.51.100", "203.0.113") for i in range(1, 251)][:n]
    times = []
    for ip in ips:
        t0 = time.perf_counter()
        b.block(ip, 300)  # returns once the kernel acknowledged the entry
        times.append((time.perf_counter() - t0) * 1000)
    held = len(b.list())
    b.remove()  # also drains the conntrack queue
    assert held == n
    return {"mean_ms": statistics.mean(times), "p50_ms": statistics.median(times),
            "p95_ms": sorted(times)[int(0.95 * n) - 1], "max_ms": max(times)}


@pytest.mark.parametrize("kind", list(KINDS))
def test_block_latency(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    _skip_unavailable(kind)
    with namespaces("sgl") as (ns,):
        run(["ip", "netns", "exec", ns.name, "true"])
        bare = run_in_netns(ns.name, _measure, kind, False, 200)
        with_ct = run_in_netns(ns.name, _measure, kind, True, 100)
        extra = (run_in_netns(ns.name, _measure, kind, False, 100, False)
                 if kind == "nftables" else None)
    with capsys.disabled():
        print(f"\nblock() latency {kind}: set only {bare}; conntrack clear queued {with_ct}"
              + (f"; nft argv fallback {extra}" if extra else ""))
    assert bare["p50_ms"] < 20 and with_ct["p50_ms"] < 20


@pytest.mark.parametrize("kind", ["ipset-nft", "nftables"])
def test_full_set_is_a_clear_error(kind: str) -> None:
    _skip_unavailable(kind)
    with namespaces("sgf") as (ns,):
        def go() -> str:
            b = KINDS[kind](BlockConfig(max_set_size=2, clear_conntrack=False))
            b.start()
            b.block("192.0.2.10", 60)
            b.block("192.0.2.11", 60)
            b.block("192.0.2.11", 60)  # a refresh of a present entry still works
            try:
                b.block("192.0.2.12", 60)
            except BackendError as exc:
                return str(exc)
            return "no error"

        assert "is full" in run_in_netns(ns.name, go)


def test_ipset_adopts_a_compatible_set_and_refuses_a_foreign_one() -> None:
    _skip_unavailable("ipset-nft")
    with namespaces("sga") as (ns,):
        ns.run(["ipset", "create", "scanguard4", "hash:ip", "timeout", "60", "maxelem", "10"])

        def adopt() -> list[str]:
            import logging

            records: list[str] = []

            class Keep(logging.Handler):
                def emit(self, record: logging.LogRecord) -> None:
                    records.append(record.getMessage())

            logging.getLogger("scanguard_ids.block").addHandler(Keep())
            logging.getLogger("scanguard_ids.block").setLevel(logging.INFO)
            b = KINDS["ipset-nft"](BlockConfig(clear_conntrack=False))
            b.start()
            b.block("192.0.2.10", 30)
            return records

        logs = run_in_netns(ns.name, adopt)
    assert any(r.startswith("action=adopt backend=ipset set=scanguard4 maxelem=10")
               for r in logs), logs
    assert any(r.startswith("action=install backend=ipset") and "rules_via=iptables-nft-restore"
               in r for r in logs), logs
    with namespaces("sga") as (ns,):
        ns.run(["ipset", "create", "scanguard6", "hash:net", "family", "inet6"])
        with pytest.raises(BackendError, match="scanguard6 exists but is not a hash:ip inet6"):
            run_in_netns(ns.name, lambda: KINDS["ipset-nft"](BlockConfig()).start())


def test_auto_picks_ipset_on_this_host() -> None:
    need_root()
    from scanguard_ids.block import registry

    with namespaces("sgr") as (ns,):
        assert run_in_netns(ns.name, registry.detect) == "ipset"
        info = run_in_netns(ns.name, lambda: registry.create("auto", BlockConfig()).info)
    assert info.name == "ipset"
