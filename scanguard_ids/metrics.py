"""The Prometheus view of the same counters the Snapshot carries (`run --metrics ADDR:PORT`).

Counters and gauges are read from a Snapshot at scrape time (one source of truth, nothing
is counted twice); only the reaction-time histogram is fed on the block path, by
:meth:`Metrics.observe_reaction`. A failing scrape is logged and never touches detection.
Served by prometheus_client's own HTTP server thread; off by default, and the config
validation keeps ``listen`` on an explicit address (``127.0.0.1:9477`` style).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from scanguard_ids.clock import Clock
from scanguard_ids.config.load import split_listen
from scanguard_ids.model import Decision
from scanguard_ids.snapshot import Snapshot

log = logging.getLogger(__name__)

#: Snapshot counter -> (metric name without prefix/suffix, help). Counters end in _total.
COUNTERS: dict[str, tuple[str, str]] = {
    "events": ("eve_lines", "EVE lines read from every source"),
    "responses": ("alerts_used", "Alerts of the rule pack decoded into responses"),
    "decode_errors": ("decode_errors", "EVE lines that could not be decoded (bad, oversized)"),
    "duplicates": ("duplicates", "Alerts dropped as duplicates of one already counted"),
    "blocks": ("blocks", "Blocks applied (automatic and manual)"),
    "unblocks": ("unblocks", "Manual unblocks"),
    "expired": ("expired", "Blocks that timed out in the kernel"),
    "allowlisted": ("allowlisted", "Responses to allowlisted addresses, never counted"),
    "journal_errors": ("journal_errors", "Decision journal write failures"),
    "evicted": ("evictions", "Automatic blocks evicted to make room in a full set"),
    "deferred": ("deferred", "Decisions held back by the rate valve, to be retried"),
    "retried": ("retried", "Held-back decisions applied later"),
    "pending_dropped": ("pending_dropped", "Held-back decisions dropped (expired or superseded)"),
    "future": ("future_events", "Events dated too far ahead of the clock, set aside"),
    "clock_steps": ("clock_steps", "Confirmed steps of the sensors' clock"),
    "sink_errors": ("sink_errors", "Decision sink (CrowdSec, fleet, metrics) failures"),
    "suspected_framing": ("suspected_framing", "Decisions against live peers, not enforced"),
    "would_block": ("would_block", "Detect-only decisions (sweep/slow tiers in detect mode)"),
    "alarms": ("alarms", "Distributed-scan alarms raised"),
}
#: Counters that are refusals of a decided block, exported with a ``reason`` label.
REFUSALS: dict[str, str] = {
    "valve_drops": "valve",
    "backend_errors": "backend",
}
#: Seconds from the response's own timestamp to the address being in the kernel set.
REACTION_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0)


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        try:
            snap = self._snapshot()
        except Exception:  # a scrape must never take the daemon down
            log.exception("metrics: snapshot failed")
            return
        yield from snapshot_metrics(snap)


def snapshot_metrics(snap: Snapshot) -> Iterator[Any]:
    """The metric families of one snapshot (pure: tests call it directly)."""
    c = snap.counters
    for key, (name, text) in COUNTERS.items():
        fam = CounterMetricFamily(f"scanguard_{name}", text)
        fam.add_metric([], float(c.get(key, 0)))
        yield fam
    refused = CounterMetricFamily("scanguard_refusals", "Decided blocks that were not applied",
                                  labels=["reason"])
    for key, reason in REFUSALS.items():
        refused.add_metric([reason], float(c.get(key, 0)))
    yield refused
    blocked = GaugeMetricFamily("scanguard_blocked_addresses", "Active blocks in the kernel")
    blocked.add_metric([], float(snap.blocked_total))
    yield blocked
    tracked = GaugeMetricFamily("scanguard_tracked_addresses",
                                "Remote addresses with evidence in the window")
    tracked.add_metric([], float(c.get("tracked", 0)))
    yield tracked
    lag = GaugeMetricFamily("scanguard_source_lag_bytes",
                            "EVE bytes written but not read yet, per source",
                            labels=["source", "kind"])
    up = GaugeMetricFamily("scanguard_source_up", "1 when the EVE source is healthy",
                           labels=["source", "kind"])
    for s in snap.sources:
        lag.add_metric([s.name, s.kind], float(s.lag_bytes))
        up.add_metric([s.name, s.kind], 1.0 if s.ok else 0.0)
    yield lag
    yield up


class Metrics:
    """A registry with the snapshot collector and the reaction histogram.

    Also a decision sink (engine.sinks): an automatic block observes its reaction time,
    from the triggering response's own timestamp to now (the block is in the kernel).
    """

    def __init__(self, snapshot: Callable[[], Snapshot], clock: Clock | None = None) -> None:
        self._clock = clock
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_SnapshotCollector(snapshot))
        self.reaction = Histogram(
            "scanguard_reaction_seconds",
            "Seconds from the triggering response's timestamp to the block in the kernel",
            buckets=REACTION_BUCKETS,
            registry=self.registry,
        )
        self._server: Any = None

    def on_decision(self, d: Decision) -> None:
        if d.action == "block" and not d.manual and self._clock is not None:
            self.observe_reaction(self._clock.now() - d.ts)

    def observe_reaction(self, seconds: float) -> None:
        if seconds >= 0:
            self.reaction.observe(seconds)

    def serve(self, listen: str) -> tuple[str, int]:
        """Start the HTTP endpoint on ``host:port`` (port 0: a free one); returns the address."""
        host, port = split_listen(listen)
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        bound = self._server.server_address
        log.info("metrics listening addr=%s port=%d", bound[0], bound[1])
        return str(bound[0]), int(bound[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
