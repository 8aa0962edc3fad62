"""`scanguard run` and a real CrowdSec Local API (Debian's crowdsec 1.4.6, `crowdsec -no-cs`) in
the victim namespace this test creates: real Suricata EVE lines of a scan -> the kernel block
and a LAPI ban (as `cscli decisions list` and a bouncer's stream see it) within 2 s, with the
origin `[crowdsec] share` asks for; `scanguard unblock` deletes it within 2 s; a LAPI outage
loses nothing; a dry run posts nothing. Latencies are printed (`pytest -s`)."""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blocklab import LISTENER, PORT, Lab, ping_ok, tcp_ok
from crowdsec_lapi import Lapi, need_crowdsec
from nsutil import run_in_netns
from pcaps import Capture, tcp_closed
from test_daemon_live import (  # noqa: F401 - fixtures
    REPO,
    VICTIM4,
    Daemon,
    append,
    host_untouched,
    lab,
    wait_for,
)

from scanguard_ids import suricata
from scanguard_ids.lab.netns import connect, namespaces

pytestmark = [pytest.mark.root, pytest.mark.suricata]

SCENARIO = "scanguard/port-scan"
TRIALS = ("198.51.100.11", "198.51.100.12", "198.51.100.13")
OUTAGE, DRY = "198.51.100.14", "198.51.100.15"
EDGE_SCANNER = "198.51.100.2"  # the scanner's address on its link to the bouncer's host
WITHIN = 2.0  # seconds: block -> ban in the LAPI, unblock -> ban gone


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    """Real Suricata EVE alerts (one run): a 5-port TCP scan of VICTIM4 from each remote."""
    root = tmp_path_factory.mktemp("cslive")
    remotes = (*TRIALS, OUTAGE, DRY, EDGE_SCANNER)
    cap = Capture(start=int(time.time()))
    for i, remote in enumerate(remotes):
        for j, port in enumerate((21, 23, 25, 110, 111)):
            tcp_closed(cap, i + 0.01 * j, remote, VICTIM4, port)
    eve = suricata.run_pcap(cap.write(root / "scans.pcap"), REPO / "rules" / "scanguard.rules",
                            [f"{VICTIM4}/32"], root / "eve", timeout=60)
    out: dict[str, list[bytes]] = {r: [] for r in remotes}
    for ln in eve.read_bytes().splitlines():
        if b'"event_type":"alert"' in ln:
            out[next(r for r in remotes if f'"{r}"'.encode() in ln)].append(ln)
    assert all(len(v) == 5 for v in out.values()), {k: len(v) for k, v in out.items()}
    return out


@pytest.fixture
def lapi(lab: Lab, tmp_path: Path) -> Iterator[Lapi]:  # noqa: F811
    need_crowdsec()
    lapi = Lapi(tmp_path / "lapi", wrap=lab.victim.argv, ns=lab.victim.name)
    try:
        yield lapi.start()
    finally:
        lapi.stop()


class BouncerView:
    """What a stream bouncer holds: the startup answer, then each poll's deltas."""

    def __init__(self, lapi: Lapi) -> None:
        self.lapi = lapi
        self.held: dict[str, dict[str, Any]] = {}
        self._apply(lapi.request("GET", "/v1/decisions/stream?startup=true"))

    def _apply(self, got: dict[str, Any]) -> None:
        for x in got.get("deleted") or []:
            self.held.pop(x["value"], None)
        for x in got.get("new") or []:
            self.held[x["value"]] = x

    def poll(self) -> dict[str, dict[str, Any]]:
        self._apply(self.lapi.request("GET", "/v1/decisions/stream"))
        return self.held


def ours(lapi: Lapi) -> dict[str, dict[str, Any]]:
    """`cscli decisions list -o json`: our active bans by address."""
    return {d["value"]: d for d in lapi.decisions() if d["scenario"] == SCENARIO}


def config(tmp: Path, lapi: Lapi, share: bool | None) -> str:
    path = tmp / "scanguard.toml"
    text = f'[crowdsec]\ncredentials = "{lapi.creds}"\n'
    if share is not None:
        text += f"share = {'true' if share else 'false'}\n"
    path.write_text(text)
    return str(path)


def p50(xs: list[float]) -> str:
    return f"p50 {statistics.median(xs):.2f}s (" + " ".join(f"{x:.2f}" for x in xs) + ")"


@pytest.mark.parametrize(("share", "origin"), [(None, "cscli"), (True, "scanguard")])
def test_block_becomes_a_ban_and_unblock_deletes_it(
    lab: Lab, lapi: Lapi, tmp_path: Path, scans: dict[str, list[bytes]],  # noqa: F811
    share: bool | None, origin: str,
) -> None:
    eve = tmp_path / "eve.json"
    eve.write_bytes(b"")
    d = Daemon(lab, tmp_path, "ipset", "--eve", str(eve), "--config",
               config(tmp_path, lapi, share)).start()
    view = BouncerView(lapi)
    bans: list[float] = []
    deletes: list[float] = []  # from the command's return (the kernel's unblock is done)
    totals: list[float] = []  # from the command's start: Python's start-up on a loaded host too
    try:
        for ip in TRIALS:
            t0 = time.monotonic()
            append(eve, scans[ip])
            got = wait_for(lambda ip=ip: view.poll().get(ip), WITHIN, f"{ip}'s ban in the stream")
            bans.append(time.monotonic() - t0)
            assert got["origin"] == origin and got["type"] == "ban", got
            listed = wait_for(lambda ip=ip: ours(lapi).get(ip), t0 + WITHIN - time.monotonic(),
                              f"{ip} in cscli decisions list")
            assert listed["origin"] == origin and listed["alert"]["machine_id"] == "scanguard"
            assert ip in d.blocked()  # the kernel's block is there too

            t1 = time.monotonic()
            d.call("unblock", ip)
            t2 = time.monotonic()
            wait_for(lambda ip=ip: ip not in view.poll(), WITHIN, f"{ip}'s ban deleted")
            deletes.append(time.monotonic() - t2)
            totals.append(time.monotonic() - t1)
            assert ip not in ours(lapi)
    finally:
        assert d.stop() == 0
    print(f"\ncrowdsec live origin={origin}: EVE line -> ban in a bouncer's stream {p50(bans)}; "
          f"`scanguard unblock` returned -> ban gone {p50(deletes)}; "
          f"from the command's start {p50(totals)}")


def test_lapi_outage_loses_no_decision(
    lab: Lab, lapi: Lapi, tmp_path: Path, scans: dict[str, list[bytes]],  # noqa: F811
) -> None:
    eve = tmp_path / "eve.json"
    eve.write_bytes(b"")
    # a TTL that outlasts the outage and its retry backoff (the default harness TTL is 8 s)
    d = Daemon(lab, tmp_path, "ipset", "--eve", str(eve), "--config",
               config(tmp_path, lapi, None), "--ttl", "120").start()
    log = tmp_path / "daemon.log"
    try:
        wait_for(lambda: b"crowdsec login ok" in log.read_bytes(), 10, "the sink's login")
        lapi.stop()  # by PID
        append(eve, scans[OUTAGE])
        wait_for(lambda: OUTAGE in d.blocked(), 5, "the kernel block while the LAPI is down")
        wait_for(lambda: b"crowdsec request failed" in log.read_bytes(), 10, "a failed post")
        lapi.start()
        t0 = time.monotonic()
        view = BouncerView(lapi)
        got = wait_for(lambda: view.poll().get(OUTAGE), 10, "the queued ban after the outage",
                       step=0.1)
        after = time.monotonic() - t0
        listed = ours(lapi)[OUTAGE]
        assert got["origin"] == listed["origin"] == "cscli"
        assert OUTAGE in d.blocked()
    finally:
        assert d.stop() == 0
    print(f"\ncrowdsec live outage: queued ban in the LAPI {after:.2f}s after it answered again")


def test_dry_run_posts_nothing(
    lab: Lab, lapi: Lapi, tmp_path: Path, scans: dict[str, list[bytes]],  # noqa: F811
) -> None:
    eve = tmp_path / "eve.json"
    eve.write_bytes(b"")
    d = Daemon(lab, tmp_path, "dry-run", "--eve", str(eve), "--config",
               config(tmp_path, lapi, True)).start()
    view = BouncerView(lapi)
    try:
        append(eve, scans[DRY])
        wait_for(lambda: ("block", DRY) in {(r["action"], r["ip"]) for r in d.journal()}, 5,
                 "the dry run's block decision")
        time.sleep(WITHIN)  # the time a real run takes to post it, with margin
        assert view.poll() == {}
        assert lapi.decisions() == []
    finally:
        assert d.stop() == 0
    text = (tmp_path / "daemon.log").read_text()
    assert "crowdsec sink started" not in text and "crowdsec login" not in text, text


BOUNCER = "/usr/bin/crowdsec-firewall-bouncer"


def bouncer_config(tmp: Path, lapi: Lapi, key: str, table: str) -> Path:
    """Debian's crowdsec-firewall-bouncer (0.0.25) in nftables mode with its own table and set
    names, polling every second, logging under ``tmp`` (JSON: its YAML reader takes it)."""
    cfg = {
        "mode": "nftables", "pid_dir": str(tmp), "update_frequency": "1s",
        "daemonize": False, "log_mode": "file", "log_dir": str(tmp), "log_level": "info",
        "api_url": lapi.url + "/", "api_key": key, "insecure_skip_verify": False,
        "disable_ipv6": True, "deny_action": "DROP", "deny_log": False,
        "supported_decisions_types": ["ban"],
        "blacklists_ipv4": f"{table}-bl", "blacklists_ipv6": f"{table}-bl6",
        "nftables": {"ipv4": {"enabled": True, "set-only": False, "table": table,
                              "chain": f"{table}-chain"},
                     "ipv6": {"enabled": False, "set-only": False, "table": f"{table}6",
                              "chain": f"{table}6-chain"}},
        "prometheus": {"enabled": False, "listen_addr": "127.0.0.1", "listen_port": 60601},
    }
    path = tmp / "bouncer.yaml"
    path.write_text(json.dumps(cfg, indent=1) + "\n")
    return path


def test_firewall_bouncer_drops_the_scanner_on_another_host(
    lab: Lab, tmp_path: Path, scans: dict[str, list[bytes]],  # noqa: F811
) -> None:
    """victim (scanguard, ipset; the LAPI on 203.0.113.1) -- edge (the firewall bouncer, a
    listener, no scanguard) -- scanner (198.51.100.2). scanguard's block on the victim becomes
    a ban that the bouncer enforces on the edge: the scanner's traffic to the edge is dropped
    by the bouncer's own nftables table, the only firewall the edge has, and flows again after
    `scanguard unblock`."""
    need_crowdsec()
    if not os.access(BOUNCER, os.X_OK):
        pytest.skip("crowdsec-firewall-bouncer not installed (scripts/setup.sh)")
    table = f"sgcs{os.getpid() % 10000}"
    with namespaces("sgce") as (edge,):
        connect(lab.victim, edge, ["203.0.113.1/24"], ["203.0.113.2/24"])
        connect(edge, lab.scanner, ["198.51.100.1/24"], [f"{EDGE_SCANNER}/24"])
        lapi = Lapi(tmp_path / "lapi", wrap=lab.victim.argv, ns=lab.victim.name,
                    host="203.0.113.1")
        procs: list[subprocess.Popen[bytes]] = []
        try:
            lapi.start()
            key = lapi.cscli("bouncers", "add", "fw-bouncer", "-o", "raw").stdout.strip()
            procs.append(edge.popen([sys.executable, "-c", LISTENER, str(PORT), "120"]))
            blog = open(tmp_path / "bouncer.out", "ab")  # noqa: SIM115
            procs.append(edge.popen([BOUNCER, "-c", str(bouncer_config(tmp_path, lapi, key,
                                                                       table))],
                                    stdout=blog, stderr=blog))

            def reach() -> dict[str, bool]:
                return {"ping": run_in_netns(lab.scanner.name, ping_ok, "198.51.100.1",
                                             EDGE_SCANNER, timeout=10),
                        "tcp": run_in_netns(lab.scanner.name, tcp_ok, "198.51.100.1", PORT,
                                            EDGE_SCANNER, timeout=10)}

            def in_set() -> bool:
                res = edge.run(["nft", "-j", "list", "set", "ip", table, f"{table}-bl"],
                               check=False)
                return res.returncode == 0 and f'"{EDGE_SCANNER}"' in res.stdout

            wait_for(lambda: edge.run(["nft", "list", "table", "ip", table],
                                      check=False).returncode == 0, 15,
                     "the bouncer's table", step=0.2)
            wait_for(lambda: reach() == {"ping": True, "tcp": True}, 10, "the edge's listener")

            eve = tmp_path / "eve.json"
            eve.write_bytes(b"")
            d = Daemon(lab, tmp_path, "ipset", "--eve", str(eve), "--config",
                       config(tmp_path, lapi, None), "--ttl", "60").start()
            try:
                t0 = time.monotonic()
                append(eve, scans[EDGE_SCANNER])
                wait_for(in_set, 5, "the scanner in the bouncer's set")
                enforced = time.monotonic() - t0
                assert reach() == {"ping": False, "tcp": False}
                # the bouncer's table is the edge's only firewall: nothing else dropped it
                rules = edge.run(["nft", "list", "ruleset"]).stdout
                assert [ln for ln in rules.splitlines() if ln.startswith("table")] == [
                    f"table ip {table} {{"], rules
                dropped = re.search(r"ip saddr @\S+ counter packets (\d+) bytes \d+ drop", rules)
                assert dropped and int(dropped[1]) >= 2, rules  # our ping and SYN at least
                assert edge.run(["ipset", "list", "-n"]).stdout.strip() == ""

                t1 = time.monotonic()
                d.call("unblock", EDGE_SCANNER)
                wait_for(lambda: not in_set(), 5, "the scanner out of the bouncer's set")
                lifted = time.monotonic() - t1
                wait_for(lambda: reach() == {"ping": True, "tcp": True}, 5,
                         "the scanner's traffic flowing again")
            finally:
                assert d.stop() == 0
            print(f"\ncrowdsec live firewall bouncer (update_frequency 1s): EVE line -> "
                  f"enforced on the edge {enforced:.2f}s; `scanguard unblock` -> lifted "
                  f"{lifted:.2f}s")
        finally:
            for p in reversed(procs):  # by PID; the bouncer removes its table on SIGTERM
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
            lapi.stop()
