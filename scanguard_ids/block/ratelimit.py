"""Safety valves in front of a backend: a blocks-per-second token bucket and a set-size cap.

Pure and clock-injected. A refused block is counted, and a warning is logged at most
once per ``log_interval`` seconds (with the number of refusals it stands for), so a
flood of decisions cannot flood the log either.
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

    def take(self, now: float, n: float = 1.0) -> bool:
        if self.last is not None and now > self.last:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        if self.last is None or now > self.last:
            self.last = now
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False


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
                 burst: float | None = None, log_interval: float = 1.0) -> None:
        self.max_set_size = max_set_size
        self._bucket = TokenBucket(max_per_second, burst if burst is not None
                                   else max(1.0, max_per_second))
        self._clock = clock
        self._log_interval = log_interval
        self._last_log: float | None = None
        self._suppressed = 0
        self.stats = ValveStats()

    @classmethod
    def from_config(cls, cfg: BlockConfig, clock: Clock) -> SafetyValve:
        return cls(cfg.max_blocks_per_second, cfg.max_set_size, clock)

    def admit(self, ip: str, active: int, refresh: bool = False) -> Refusal | None:
        """None if ``ip`` may be blocked now, else why not.

        ``active`` is how many addresses are blocked now; a ``refresh`` of an address
        that is already blocked does not grow the set, so only the rate applies to it.
        """
        now = self._clock.monotonic()
        reason: Refusal | None = None
        if not refresh and active >= self.max_set_size:
            reason = Refusal.FULL
        elif not self._bucket.take(now):
            reason = Refusal.RATE
        if reason is None:
            self.stats.admitted += 1
            return None
        if reason is Refusal.FULL:
            self.stats.refused_full += 1
        else:
            self.stats.refused_rate += 1
        self._log_refusal(now, ip, reason, active)
        return reason

    def allow(self, active: int, ip: str = "-", refresh: bool = False) -> tuple[bool, str]:
        """``admit`` as (ok, why): why names the limit that refused, "" when ok."""
        reason = self.admit(ip, active, refresh)
        if reason is None:
            return True, ""
        if reason is Refusal.FULL:
            return False, f"full: {active} blocks, block.max_set_size = {self.max_set_size}"
        return False, f"rate: over block.max_blocks_per_second = {self._bucket.rate:g}"

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
