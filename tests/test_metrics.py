"""Prometheus metrics: the families made from a Snapshot, and the real HTTP endpoint."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from scanguard_ids.metrics import Metrics
from scanguard_ids.snapshot import Snapshot, SourceHealth


def _snap() -> Snapshot:
    return Snapshot(
        taken=100.0, started=0.0, backend="dry-run",
        counters={"events": 10, "responses": 7, "blocks": 2, "valve_drops": 1, "tracked": 3,
                  "decode_errors": 1},
        sources=(SourceHealth(name="/var/log/suricata/eve.json", kind="file", ok=True,
                              lag_bytes=42),),
        blocked_total=2,
    )


def _scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback only
        text = resp.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def test_metrics_endpoint_serves_snapshot_counters_and_reaction_histogram() -> None:
    m = Metrics(_snap)
    host, port = m.serve("127.0.0.1:0")
    try:
        m.observe_reaction(0.0008)
        m.observe_reaction(0.003)
        got = _scrape(f"http://{host}:{port}/metrics")
    finally:
        m.stop()
    assert got["scanguard_eve_lines_total"] == 10
    assert got["scanguard_alerts_used_total"] == 7
    assert got["scanguard_blocks_total"] == 2
    assert got["scanguard_decode_errors_total"] == 1
    assert got["scanguard_refusals_total{reason=valve}"] == 1
    assert got["scanguard_blocked_addresses"] == 2
    assert got["scanguard_tracked_addresses"] == 3
    assert got["scanguard_source_lag_bytes{kind=file,source=/var/log/suricata/eve.json}"] == 42
    assert got["scanguard_reaction_seconds_count"] == 2
    assert got["scanguard_reaction_seconds_bucket{le=0.001}"] == 1


def test_a_failing_snapshot_never_breaks_the_scrape() -> None:
    def broken() -> Snapshot:
        raise RuntimeError("boom")

    m = Metrics(broken)
    host, port = m.serve("127.0.0.1:0")
    try:
        got = _scrape(f"http://{host}:{port}/metrics")
    finally:
        m.stop()
    assert "scanguard_reaction_seconds_count" in got
    assert "scanguard_blocks_total" not in got
