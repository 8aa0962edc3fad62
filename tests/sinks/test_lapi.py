"""The alert we post: a ban lasts its TTL from the post, however old the evidence is (the LAPI
ends a decision at the alert's ``stop_at`` plus its duration). Pure checks of the body, and
one against a real Local API (Debian's crowdsec 1.4.6, tests/crowdsec_lapi.py)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
from crowdsec_lapi import Lapi, need_crowdsec
from test_crowdsec import SCENARIO, make_sink, ours, seconds, wait_for

from scanguard_ids.model import Decision
from scanguard_ids.sinks.crowdsec import CrowdsecSink
from scanguard_ids.sinks.lapi import alert_body, rfc3339

NOW = 1_800_000_000.25


def stale(ip: str, age: float, ttl: int, now: float) -> Decision:
    """A block whose last response was ``age`` seconds before ``now``."""
    return Decision(ts=now, action="block", ip=ip, ttl=ttl, count=3, ports=(21, 23, 25),
                    reason="3 responses on 3 ports in 60s", first_seen=now - age - 2,
                    last_seen=now - age, sensors=("s",), kinds=("tcp-rst",))


def parse(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize("age", [0.0, 30.0, 3600.0, -5.0])  # -5: the sensor's clock is ahead
def test_ban_is_anchored_at_the_post_not_the_evidence(age: float) -> None:
    body = alert_body(stale("192.0.2.9", age, 8, NOW), SCENARIO, "cscli", 8, NOW)
    assert parse(body["stop_at"]) == pytest.approx(NOW, abs=1e-6)
    assert parse(body["start_at"]) <= parse(body["stop_at"])
    assert body["decisions"][0]["duration"] == "8s"
    meta = {m["key"]: m["value"] for m in body["meta"]}
    assert parse(meta["last_seen"]) == pytest.approx(NOW - age, abs=1e-6)


def test_rfc3339_keeps_the_fraction() -> None:
    assert rfc3339(NOW) == "2027-01-15T08:00:00.250000Z"


def test_stale_evidence_still_bans_for_its_ttl(tmp_path: Path) -> None:
    """Evidence 30 s old, a 10 s TTL: the ban reaches a bouncer with ~10 s left (it used to be
    born expired: stop_at was the last response)."""
    need_crowdsec()
    lapi = Lapi(tmp_path / "lapi")
    sink: CrowdsecSink | None = None
    try:
        lapi.start()
        assert CrowdsecSink.external is True  # a dry-run daemon hands it nothing
        lapi.request("GET", "/v1/decisions/stream?startup=true")
        sink = make_sink(lapi, batch_ms=0)
        sink.on_decision(stale("192.0.2.40", 30, 10, time.time()))
        got = wait_for(lambda: ours(lapi).get("192.0.2.40"), 5, "the ban in the LAPI")
        assert 8 <= seconds(got["duration"]) <= 10
        new = lapi.request("GET", "/v1/decisions/stream")["new"] or []
        assert [d["value"] for d in new] == ["192.0.2.40"]
        assert 8 <= seconds(new[0]["duration"]) <= 10
    finally:
        if sink is not None:
            sink.stop()
        lapi.stop()
