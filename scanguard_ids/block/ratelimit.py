"""Safety valves in front of a backend: a blocks-per-second token bucket and a set-size cap.

Pure and clock-injected. A refused block is counted, and a warning is logged at most
once per ``log_interval`` seconds (with the number of refusals it stands for), so a
flood of decisions cannot flood the log either.

Two reserves keep a flood from switching protection off (docs/security.md, "Valves
under attack"):

* ``reserve`` tokens on top of the burst are only for *priority* blocks: manual ones and
  decisions the engine queued and retries best evidence first. A flood of fresh
  decisions drains the bucket down to the reserve, never below; the long-run rate stays
  ``max_per_second`` for all blocks together. The engine uses a quarter of the burst.
* ``manual_headroom`` places of the set are only for manual blocks: automatic blocks
  count the set as full that much earlier (the engine then evicts, see
  :meth:`SafetyValve.limit`). The engine uses 1/64 of the set, at least 1, at most 1024.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum

from scanguard_ids.clock import Clock
from scanguard_ids.config import BlockConfig

log = logging.getLogger(__name__)


class Refusal(StrEnum):
    RATE = "rate"  # more than max_blocks_per_second
    FULL = "full"  # the set already holds max_set_size addresses


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    last: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.tokens = self.burst

    def take(self, now: float, n: float = 1.0, keep: float = 0.0) -> bool:
        """Take ``n`` tokens if ``keep`` tokens are still left afterwards."""
        self.refill(now)
        if self.tokens - n >= keep:
            self.tokens -= n
            return True
        return False

    def refill(self, now: float) -> float:
        if self.last is not None and now > self.last:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        if self.last is None or now > self.last:
            self.last = now
        return self.tokens


@dataclass(slots=True)
class ValveStats:
    admitted: int = 0
    refused_rate: int = 0
    refused_full: int = 0

    @property
    def refused(self) -> int:
        return self.refused_rate + self.refused_full

    def as_dict(self) -> dict[str, int]:
        return {"admitted": self.admitted, "refused_rate": self.refused_rate,
                "refused_full": self.refused_full, "refused": self.refused}


class SafetyValve:
    """Decides whether one more block may go to the kernel now."""

    def __init__(self, max_per_second: float, max_set_size: int, clock: Clock,
                 burst: float | None = None, log_interval: float = 1.0, *,
                 reserve: float = 0.0, manual_headroom: int = 0) -> None:
        self.max_set_size = max_set_size
        burst = burst if burst is not None else max(1.0, max_per_second)
        #: tokens only priority blocks (manual, retried best evidence first) may use
        self.reserve = max(0.0, reserve)
        self._bucket = TokenBucket(max_per_second, burst + self.reserve)
        #: places of the set only manual blocks may use
        self.manual_headroom = max(0, min(manual_headroom, max_set_size - 1))
        self._clock = clock
        self._log_interval = log_interval
        self._last_log: float | None = None
        self._suppressed = 0
        self.stats = ValveStats()

    @classmethod
    def from_config(cls, cfg: BlockConfig, clock: Clock) -> SafetyValve:
        return cls(cfg.max_blocks_per_second, cfg.max_set_size, clock)

    @classmethod
    def with_reserves(cls, cfg: BlockConfig, clock: Clock) -> SafetyValve:
        """The engine's valve: a quarter of the burst reserved for priority blocks, 1/64 of
        the set (1..1024 places) for manual ones (docs/security.md)."""
        burst = max(1.0, cfg.max_blocks_per_second)
        return cls(cfg.max_blocks_per_second, cfg.max_set_size, clock,
                   reserve=max(1.0, burst / 4),
                   manual_headroom=min(1024, max(1, cfg.max_set_size // 64)))

    def limit(self, manual: bool = False) -> int:
        """How many blocks the set may hold before this kind of block finds it full."""
        return self.max_set_size if manual else self.max_set_size - self.manual_headroom

    def tokens(self) -> float:
        """Tokens available now to a priority block."""
        return self._bucket.refill(self._clock.monotonic())

    def fresh_tokens(self) -> float:
        """Tokens available now to a fresh (non-priority) block."""
        return self.tokens() - self.reserve

    def admit(self, ip: str, active: int, refresh: bool = False, *, manual: bool = False,
              priority: bool = False) -> Refusal | None:
        """None if ``ip`` may be blocked now, else why not.

        ``active`` is how many addresses are blocked now; a ``refresh`` of an address
        that is already blocked does not grow the set, so only the rate applies to it.
        ``manual`` blocks may use the set's manual headroom; ``manual`` and ``priority``
        blocks the bucket's reserve.
        """
        now = self._clock.monotonic()
        reason: Refusal | None = None
        if not refresh and active >= (self.max_set_size if manual
                                      else self.max_set_size - self.manual_headroom):
            reason = Refusal.FULL
        else:  # self._bucket.take(now, keep=...), inline: a flood of refusals comes here
            bucket = self._bucket
            last = bucket.last
            if last is None or now > last:
                if last is not None:
                    bucket.tokens = min(bucket.burst, bucket.tokens + (now - last) * bucket.rate)
                bucket.last = now
            if bucket.tokens - 1.0 >= (0.0 if manual or priority else self.reserve):
                bucket.tokens -= 1.0
            else:
                reason = Refusal.RATE
        if reason is None:
            self.stats.admitted += 1
            return None
        if reason is Refusal.FULL:
            self.stats.refused_full += 1
        else:
            self.stats.refused_rate += 1
        if self._last_log is not None and now - self._last_log < self._log_interval:
            self._suppressed += 1  # _log_refusal's common case, inline
        else:
            self._log_refusal(now, ip, reason, active)
        return reason

    def allow(self, active: int, ip: str = "-", refresh: bool = False, *, manual: bool = False,
              priority: bool = False) -> tuple[bool, str]:
        """``admit`` as (ok, why): why names the limit that refused, "" when ok."""
        reason = self.admit(ip, active, refresh, manual=manual, priority=priority)
        if reason is None:
            return True, ""
        return False, self.why(reason, active)

    def why(self, reason: Refusal, active: int) -> str:
        """The limit that refused (``admit``'s answer), for a log line."""
        if reason is Refusal.FULL:
            return f"full: {active} blocks, block.max_set_size = {self.max_set_size}"
        return f"rate: over block.max_blocks_per_second = {self._bucket.rate:g}"

    def _log_refusal(self, now: float, ip: str, reason: Refusal, active: int) -> None:
        if self._last_log is not None and now - self._last_log < self._log_interval:
            self._suppressed += 1
            return
        log.warning("action=refuse reason=%s ip=%s active=%d max_set_size=%d "
                    "refused_rate=%d refused_full=%d suppressed=%d",
                    reason, ip, active, self.max_set_size, self.stats.refused_rate,
                    self.stats.refused_full, self._suppressed)
        self._last_log = now
        self._suppressed = 0
