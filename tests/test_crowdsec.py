"""The CrowdSec sink against a real Local API (Debian's crowdsec 1.4.6, run by the test on a
free 127.0.0.1 port with its own temp config and sqlite database): decisions posted with the
right origin and duration, seen by a bouncer, deleted on unblock, kept through an outage,
expired ones dropped, re-login on 401 and before the token expires, batched under load."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from crowdsec_lapi import MACHINE, PASSWORD, Lapi, need_crowdsec
from waiting import wait_for  # tests/waiting.py (tests/ is on sys.path)

from scanguard_ids import config
from scanguard_ids.clock import SystemClock
from scanguard_ids.config.schema import CrowdsecConfig
from scanguard_ids.errors import ConfigError
from scanguard_ids.model import Decision
from scanguard_ids.sinks.crowdsec import CrowdsecSink
from scanguard_ids.sinks.lapi import Credentials, load_credentials

SCENARIO = "scanguard/port-scan"




def seconds(duration: str) -> float:
    """Go's time.Duration text ("4m58.6s", "299.9s", "-25ms") -> seconds."""
    total = 0.0
    for num, unit in re.findall(r"(-?[\d.]+)(h|ms|m|s)", duration):
        total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total


def block(ip: str, ttl: int = 300, manual: bool = False) -> Decision:
    now = time.time()
    return Decision(ts=now, action="block", ip=ip, ttl=ttl, count=3, ports=(21, 23, 25),
                    reason="manual block" if manual else "3 responses on 3 ports in 60s",
                    first_seen=now - 1, last_seen=now, sensors=("sensor-a",),
                    kinds=("tcp-rst",), manual=manual)


def unblock(ip: str) -> Decision:
    return Decision(ts=time.time(), action="unblock", ip=ip, manual=True)


@pytest.fixture
def lapi(tmp_path: Path) -> Iterator[Lapi]:
    need_crowdsec()
    lapi = Lapi(tmp_path / "lapi")
    try:
        yield lapi.start()
    finally:
        lapi.stop()


def make_sink(lapi: Lapi, **cfg: Any) -> CrowdsecSink:
    c = CrowdsecConfig(credentials=str(lapi.creds), **cfg)
    sink = CrowdsecSink(c, load_credentials(c.credentials), SystemClock())
    sink.start()
    return sink


def ours(lapi: Lapi) -> dict[str, dict[str, Any]]:
    return {d["value"]: d for d in lapi.decisions() if d["scenario"] == SCENARIO}


@pytest.mark.parametrize(("share", "origin"), [(False, "cscli"), (True, "scanguard")])
def test_posted_ban_reaches_bouncer_and_unblock_deletes_only_ours(
    lapi: Lapi, share: bool, origin: str
) -> None:
    sink = make_sink(lapi, share=share)
    try:
        lapi.request("GET", "/v1/decisions/stream?startup=true")  # the bouncer's start
        # someone else's decision on an address must survive our unblock of it
        lapi.cscli("decisions", "add", "--ip", "192.0.2.10", "--duration", "1h",
                   "--reason", "operator")
        sink.on_decision(block("192.0.2.9", ttl=300))
        sink.on_decision(block("192.0.2.10", ttl=300))
        got = wait_for(lambda: ours(lapi).get("192.0.2.9"), 5, "the ban in the LAPI")
        assert got["origin"] == origin and got["type"] == "ban" and got["scope"] == "Ip"
        assert 290 <= seconds(got["duration"]) <= 300
        meta = {m["key"]: m["value"] for m in got["alert"]["meta"]}
        assert meta["ports"] == "21,23,25" and meta["responses"] == "3"
        assert meta["kinds"] == "tcp-rst" and meta["sensor"] == "sensor-a"
        assert got["alert"]["machine_id"] == MACHINE
        wait_for(lambda: "192.0.2.10" in ours(lapi), 5, "the second ban")
        stream = lapi.request("GET", "/v1/decisions/stream")
        # the stream gives a bouncer one decision per address (the longest)
        assert {(d["value"], d["origin"]) for d in stream["new"]} == {
            ("192.0.2.9", origin), ("192.0.2.10", "cscli")}

        sink.on_decision(unblock("192.0.2.9"))
        sink.on_decision(unblock("192.0.2.10"))
        wait_for(lambda: not ours(lapi), 5, "our bans deleted")
        stream = lapi.request("GET", "/v1/decisions/stream")
        assert [d["value"] for d in stream["deleted"] or []] == ["192.0.2.9"]
        others = [d for d in lapi.decisions() if d["value"] == "192.0.2.10"]
        assert len(others) == 1 and others[0]["origin"] == "cscli"
        assert others[0]["scenario"] != SCENARIO
        s = sink.stats()
        assert (s.posted, s.deleted, s.failed, s.queued) == (2, 2, 0, 0)
    finally:
        sink.stop()


def test_lapi_outage_loses_nothing_and_drops_the_expired(lapi: Lapi) -> None:
    sink = make_sink(lapi, batch_ms=50)
    try:
        sink.on_decision(block("192.0.2.20"))
        wait_for(lambda: "192.0.2.20" in ours(lapi), 5, "the first ban")
        lapi.stop()
        for i in range(3):
            sink.on_decision(block(f"198.51.100.{i + 1}", ttl=300))
        sink.on_decision(block("203.0.113.9", ttl=1))  # expires during the outage
        wait_for(lambda: sink.stats().failed >= 2, 10, "failed attempts while down")
        assert sink.stats().queued == 4
        time.sleep(1.5)
        lapi.start()
        want = {"192.0.2.20", "198.51.100.1", "198.51.100.2", "198.51.100.3"}
        wait_for(lambda: set(ours(lapi)) == want, 15, "the queued bans after the outage")
        wait_for(lambda: sink.flushed(), 5, "the queue drained")
        s = sink.stats()
        assert (s.posted, s.dropped_expired, s.queued) == (4, 1, 0)
    finally:
        sink.stop()


def test_relogin_on_401_and_before_expiry(lapi: Lapi) -> None:
    sink = make_sink(lapi, batch_ms=0)
    try:
        sink.on_decision(block("192.0.2.30"))
        wait_for(lambda: "192.0.2.30" in ours(lapi), 5, "the first ban")
        wait_for(sink.flushed, 5, "idle")
        assert sink.client.logins == 1
        sink.client.token = "not.a.token"  # as after a LAPI restart with a new JWT secret
        sink.on_decision(block("192.0.2.31"))
        wait_for(lambda: "192.0.2.31" in ours(lapi), 5, "the ban after a 401")
        wait_for(sink.flushed, 5, "idle")
        assert sink.client.logins == 2
        sink.client.expires = time.time() + 30  # inside the refresh margin
        sink.on_decision(block("192.0.2.32"))
        wait_for(lambda: "192.0.2.32" in ours(lapi), 5, "the ban after a refresh")
        wait_for(sink.flushed, 5, "idle")
        assert sink.client.logins == 3 and sink.stats().failed == 0
    finally:
        sink.stop()


def test_batches_under_load_and_post_policy(lapi: Lapi) -> None:
    sink = make_sink(lapi, batch_ms=300, post=("automatic",))
    try:
        t0 = time.monotonic()
        for i in range(60):
            sink.on_decision(block(f"203.0.113.{i + 1}"))
        enqueue_s = time.monotonic() - t0
        sink.on_decision(block("198.51.100.50", manual=True))  # not posted: manual
        detect_only = SimpleNamespace(action="block", manual=False, detect_only=True,
                                      ip="198.51.100.51", ttl=300)
        sink.on_decision(detect_only)  # type: ignore[arg-type]
        wait_for(lambda: len(ours(lapi)) == 60, 10, "60 bans")
        wait_for(sink.flushed, 5, "idle")
        assert "198.51.100.50" not in ours(lapi) and "198.51.100.51" not in ours(lapi)
        assert sink.client.requests <= 3, sink.client.requests  # login + 1-2 POSTs
        assert enqueue_s < 0.05, enqueue_s  # the engine's side never waits for HTTP
    finally:
        sink.stop()


def test_credentials_file_and_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(f"url: http://127.0.0.1:8080/\nlogin: {MACHINE}\npassword: '{PASSWORD}'\n")
    assert load_credentials(str(f)) == Credentials("http://127.0.0.1:8080/", MACHINE, PASSWORD)
    assert load_credentials(str(f), url="http://127.0.0.1:9").url == "http://127.0.0.1:9"
    with pytest.raises(ConfigError, match="crowdsec.credentials"):
        load_credentials(str(tmp_path / "missing.yaml"))
    f.write_text("url: http://127.0.0.1:8080/\n")
    with pytest.raises(ConfigError, match="crowdsec.login"):
        load_credentials(str(f))


@pytest.mark.parametrize(("section", "message"), [
    ({"post": ["automatic", "sometimes"]}, "crowdsec.post[1]"),
    ({"url": "127.0.0.1:8080", "login": "a", "password": "b"}, "crowdsec.url"),
    ({"url": "http://127.0.0.1:8080"}, "crowdsec.url: needs login"),
    ({"batch_ms": -1}, "crowdsec.batch_ms"),
])
def test_config_checks(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.from_dict({"crowdsec": section})
