"""Our blocks as CrowdSec decisions: a DecisionSink that posts them to a Local API.

``on_decision`` runs in the engine's thread with its lock held, so it only filters and appends
to a bounded queue; one worker thread owns the HTTP client. The worker batches (waits
``batch_ms`` for more, then posts up to BATCH_MAX alerts in one request), keeps the queue while
the Local API is unreachable (retrying with a capped backoff), posts each ban for what is left of
its TTL (so a late post ends when the kernel's block does) and drops the ones already expired.
Every unblock deletes our decisions on that address (our scenario only). Which blocks are
posted: ``post`` (automatic, manual); detect-only decisions never are.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from dataclasses import dataclass

from scanguard_ids.clock import Clock
from scanguard_ids.config.schema import CrowdsecConfig
from scanguard_ids.model import Decision
from scanguard_ids.sinks.lapi import (
    Credentials,
    LapiClient,
    LapiError,
    alert_body,
    load_credentials,
)

__all__ = ["CrowdsecSink", "CrowdsecStats", "load_credentials"]

log = logging.getLogger(__name__)

BATCH_MAX = 100  # alerts in one POST
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.25, 5.0
ORIGIN_SHARED, ORIGIN_LOCAL = "scanguard", "cscli"


def configured(cfg: CrowdsecConfig) -> bool:
    return bool(cfg.credentials or cfg.url)


@dataclass(frozen=True, slots=True)
class CrowdsecStats:
    posted: int = 0  # decisions the LAPI accepted
    deleted: int = 0  # unblocks the LAPI carried out
    failed: int = 0  # requests that failed (each retry counts)
    queued: int = 0  # waiting now
    dropped_expired: int = 0  # expired while the LAPI was unreachable
    dropped_full: int = 0  # pushed out of a full queue
    rejected: int = 0  # refused by the LAPI (4xx): not retried


@dataclass(frozen=True, slots=True)
class _Post:
    decision: Decision
    until: float  # monotonic deadline: the kernel's block ends then too


@dataclass(frozen=True, slots=True)
class _Delete:
    ip: str


_Op = _Post | _Delete


class CrowdsecSink:
    external = True  # reaches beyond this host: a dry run hands it nothing

    def __init__(self, cfg: CrowdsecConfig, creds: Credentials, clock: Clock) -> None:
        self.cfg = cfg
        self.clock = clock
        self.origin = ORIGIN_SHARED if cfg.share else ORIGIN_LOCAL
        self.client = LapiClient(creds, cfg.scenario, cfg.timeout)
        self._queue: deque[_Op] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._stop = False
        self._busy = False  # the worker holds ops taken off the queue
        self._thread: threading.Thread | None = None
        self._counts = dict.fromkeys(
            ("posted", "deleted", "failed", "dropped_expired", "dropped_full", "rejected"), 0)

    # -- the engine's side: never blocks ---------------------------------------------
    def on_decision(self, d: Decision) -> None:
        if d.action == "block":
            if getattr(d, "detect_only", False):
                return
            if ("manual" if d.manual else "automatic") not in self.cfg.post:
                return
            op: _Op = _Post(d, self.clock.monotonic() + d.ttl)
        elif d.action == "unblock":
            op = _Delete(d.ip)
        else:  # "expire": the LAPI's decision ends by its own duration
            return
        with self._cond:
            if isinstance(op, _Delete):  # a ban not posted yet need not be
                self._queue = deque(o for o in self._queue
                                    if not (isinstance(o, _Post) and o.decision.ip == op.ip))
            if len(self._queue) >= self.cfg.queue_max:
                self._queue.popleft()
                self._counts["dropped_full"] += 1
            self._queue.append(op)
            self._cond.notify()

    def stats(self) -> CrowdsecStats:
        with self._cond:
            return CrowdsecStats(queued=len(self._queue), **self._counts)

    # -- life cycle ----------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="crowdsec", daemon=True)
        self._thread.start()
        log.info("crowdsec sink started url=%s scenario=%s origin=%s post=%s",
                 self.client.base, self.cfg.scenario, self.origin, ",".join(self.cfg.post))

    def stop(self, flush: float = 2.0) -> None:
        """Give the queue up to ``flush`` seconds to drain, then stop the worker."""
        if self._thread is None:
            return
        deadline = self.clock.monotonic() + flush
        with self._cond:
            while (self._queue or self._busy) and self.clock.monotonic() < deadline:
                self._cond.wait(0.05)
            self._stop = True
            self._cond.notify_all()
            left = len(self._queue)
        self._thread.join(timeout=self.cfg.timeout * 2 + 1)
        self._thread = None
        s = self.stats()
        log.info("crowdsec sink stopped posted=%d deleted=%d failed=%d left=%d", s.posted,
                 s.deleted, s.failed, left)

    def flushed(self) -> bool:
        with self._cond:
            return not self._queue and not self._busy

    # -- the worker ----------------------------------------------------------------
    def _run(self) -> None:
        try:  # log in now: the LAPI's password check takes ~0.5 s, not on the first ban
            self.client.login()
        except LapiError as exc:
            log.warning("crowdsec login failed (retried with the first decision) error=%s", exc)
        backoff = 0.0
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._send(batch)
                backoff = 0.0
                self._done()
            except LapiError as exc:
                with self._cond:
                    self._counts["failed"] += 1
                    if exc.retry:
                        self._queue.extendleft(reversed(batch))
                    else:
                        self._counts["rejected"] += len(batch)
                    self._busy = False
                    self._cond.notify_all()
                log.warning("crowdsec request failed (%s) error=%s",
                            "will retry" if exc.retry else "dropped", exc)
                if exc.retry:
                    backoff = min(BACKOFF_MAX_S, max(BACKOFF_MIN_S, backoff * 2))
                    with self._cond:
                        if not self._stop:
                            self._cond.wait(backoff)

    def _done(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    def _take(self) -> list[_Op] | None:
        """Wait for work (None: stop), linger batch_ms for more, then take a run of posts
        (up to BATCH_MAX) or one delete, in queue order."""
        with self._cond:
            while not self._queue and not self._stop:
                self._cond.wait()
            if self._stop:
                return None
            if self.cfg.batch_ms and isinstance(self._queue[0], _Post):
                end = self.clock.monotonic() + self.cfg.batch_ms / 1000
                while (len(self._queue) < BATCH_MAX and not self._stop
                       and (left := end - self.clock.monotonic()) > 0):
                    self._cond.wait(left)
            if isinstance(self._queue[0], _Delete):
                batch: list[_Op] = [self._queue.popleft()]
            else:
                batch = []
                while (self._queue and isinstance(self._queue[0], _Post)
                       and len(batch) < BATCH_MAX):
                    batch.append(self._queue.popleft())
            self._busy = True
            return batch

    def _send(self, batch: list[_Op]) -> None:
        """One request; leaves in ``batch`` what to put back if it fails."""
        now, mono = self.clock.now(), self.clock.monotonic()
        if isinstance(batch[0], _Delete):
            n = self.client.delete(batch[0].ip, now)
            with self._cond:
                self._counts["deleted"] += 1
            log.info("crowdsec action=delete ip=%s deleted=%d", batch[0].ip, n)
            return
        alerts, live = [], []
        for op in batch:
            assert isinstance(op, _Post)
            left = math.ceil(op.until - mono)
            if left > 0:
                live.append(op)
                alerts.append(alert_body(op.decision, self.cfg.scenario, self.origin, left, now))
        expired = len(batch) - len(live)
        batch[:] = live  # what a retry puts back
        if expired:
            with self._cond:
                self._counts["dropped_expired"] += expired
            log.info("crowdsec dropped expired decisions count=%d", expired)
        if alerts:
            self.client.post_alerts(alerts, now)
            with self._cond:
                self._counts["posted"] += len(alerts)
            log.info("crowdsec action=post decisions=%d ips=%s", len(alerts),
                     ",".join(a["source"]["value"] for a in alerts[:5]))
