"""Repeat-offender policy: how long to block an address that was blocked before.

Policy ``default``: the n-th offence (strike) is blocked for
``ttl * escalation ** (n - 1)`` seconds, capped at ``max_ttl``. An address that
stays out of trouble for ``strike_memory`` seconds (event time) starts again at
strike 1. Policy ``paper``: every block lasts ``ttl``; strikes are still counted
so decisions and the UI can show them.

The history is bounded (``max_offenders``, least-recently-offended evicted) and
travels as plain JSON-able data (:meth:`Offenders.dump` /
:meth:`Offenders.load`) so the daemon can keep it across restarts.
Pure: time is always passed in.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from scanguard_ids.config import DetectConfig

log = logging.getLogger(__name__)

#: Format version of :meth:`Offenders.dump`.
EXPORT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Strike:
    """The outcome of one offence: the strike number and the block length."""

    strikes: int
    ttl: int


class Offenders:
    """Strike history per address, bounded, least-recently-offended evicted first."""

    __slots__ = ("_cfg", "_first", "_hist", "_undo", "evicted")

    def __init__(self, cfg: DetectConfig) -> None:
        self._cfg = cfg
        # ip -> (strikes, event time of the last offence); order = least recently offended first
        self._hist: OrderedDict[str, tuple[int, float]] = OrderedDict()
        # the last offence and the record it replaced, so a refused block can take it back
        self._undo: tuple[str, int, tuple[int, float] | None] | None = None
        self.evicted = 0
        # every first offence has the same (immutable) outcome: a spoofed flood's are all first
        self._first = Strike(1, self.ttl_for(1))

    def __len__(self) -> int:
        return len(self._hist)

    def __contains__(self, ip: object) -> bool:
        return ip in self._hist

    def reconfigure(self, cfg: DetectConfig) -> None:
        """Apply a reloaded config; the history is kept (trimmed to a smaller bound)."""
        self._cfg = cfg
        self._first = Strike(1, self.ttl_for(1))
        while len(self._hist) > cfg.max_offenders:
            self._hist.popitem(last=False)
            self.evicted += 1

    def ttl_for(self, strikes: int) -> int:
        """Block length of the given strike under the configured policy."""
        cfg = self._cfg
        if cfg.policy == "paper" or strikes <= 1:
            return cfg.ttl
        try:
            ttl = cfg.ttl * cfg.escalation ** (strikes - 1)
        except OverflowError:
            return cfg.max_ttl
        if math.isinf(ttl) or ttl >= cfg.max_ttl:
            return cfg.max_ttl
        return int(ttl)

    def strikes(self, ip: str, ts: float) -> int:
        """Strikes on record for ``ip`` that still count at event time ``ts`` (0 = none)."""
        rec = self._hist.get(ip)
        if rec is None or ts - rec[1] > self._cfg.strike_memory:
            return 0
        return rec[0]

    def offend(self, ip: str, ts: float) -> Strike:
        """Record an offence of ``ip`` at event time ``ts``; return its strike and ttl."""
        hist = self._hist
        rec = hist.pop(ip, None)
        if rec is None or ts - rec[1] > self._cfg.strike_memory:
            strikes, last = 1, ts
        else:
            strikes, last = rec[0] + 1, max(rec[1], ts)
        hist[ip] = (strikes, last)
        self._undo = (ip, strikes, rec)
        while len(hist) > self._cfg.max_offenders:
            hist.popitem(last=False)
            self.evicted += 1
        return self._first if strikes == 1 else Strike(strikes, self.ttl_for(strikes))

    def retract(self, ip: str, strikes: int) -> bool:
        """Take back the last offence of ``ip`` (strike number ``strikes``): its block was
        refused, so it never happened. Only the most recent :meth:`offend` can be taken back
        (the engine calls this right after the detector's decision, under its lock).
        True if it was."""
        undo = self._undo
        if undo is None or undo[0] != ip or undo[1] != strikes:
            return False
        self._undo = None
        prev = undo[2]
        if prev is None:
            self._hist.pop(ip, None)
        else:
            self._hist[ip] = prev
        return True

    def remember(self, ip: str, strikes: int, ts: float) -> None:
        """Record an offence another node decided (fleet): its strike count becomes ours, so
        this address's next offence here escalates from it. Never lowers what we hold."""
        rec = self._hist.pop(ip, None)
        if rec is not None and ts - rec[1] <= self._cfg.strike_memory:
            strikes = max(strikes, rec[0])
            ts = max(ts, rec[1])
        self._hist[ip] = (max(1, strikes), ts)
        while len(self._hist) > self._cfg.max_offenders:
            self._hist.popitem(last=False)
            self.evicted += 1

    def forget(self, ip: str) -> bool:
        """Drop the history of one address (operator pardon). True if there was any."""
        return self._hist.pop(ip, None) is not None

    def forgive(self, ip: str, strikes: int | None = None) -> int:
        """Take back ``strikes`` offences of ``ip`` (all when None): an operator's unblock, or
        an offence found forged. Returns how many were taken back."""
        rec = self._hist.get(ip)
        if rec is None:
            return 0
        if strikes is None or strikes >= rec[0]:
            del self._hist[ip]
            return rec[0]
        self._hist[ip] = (rec[0] - strikes, rec[1])
        return strikes

    def prune(self, now: float) -> int:
        """Drop histories whose last offence is more than strike_memory before ``now``."""
        memory = self._cfg.strike_memory
        stale = [ip for ip, (_, last) in self._hist.items() if now - last > memory]
        for ip in stale:
            del self._hist[ip]
        return len(stale)

    def dump(self, now: float | None = None) -> dict[str, Any]:
        """Plain JSON-able history, least recently offended first.

        With ``now``, histories already forgotten at ``now`` are left out.
        """
        memory = self._cfg.strike_memory
        rows = [
            [ip, strikes, last]
            for ip, (strikes, last) in self._hist.items()
            if now is None or now - last <= memory
        ]
        return {"version": EXPORT_VERSION, "offenders": rows}

    def load(self, data: Any) -> int:
        """Merge a :meth:`dump` result back in; return how many entries were loaded.

        Malformed entries are skipped (and counted in a warning): a damaged state
        file must not stop the daemon. Entries already known keep the larger strike
        count and the later offence time. Afterwards the history is ordered by
        offence time and the ``max_offenders`` bound still holds.
        """
        if not data:  # nothing saved yet
            return 0
        if not isinstance(data, dict) or data.get("version") != EXPORT_VERSION:
            log.warning("offenders load=skipped reason=unknown-format")
            return 0
        rows = data.get("offenders")
        if not isinstance(rows, list):
            log.warning("offenders load=skipped reason=no-list")
            return 0
        loaded = skipped = 0
        hist = self._hist
        parsed: list[tuple[str, int, float]] = []
        for row in rows:
            if (
                isinstance(row, list | tuple)
                and len(row) == 3
                and isinstance(row[0], str)
                and isinstance(row[1], int)
                and not isinstance(row[1], bool)
                and row[1] >= 1
                and isinstance(row[2], int | float)
                and not isinstance(row[2], bool)
                and math.isfinite(row[2])
            ):
                parsed.append((row[0], row[1], float(row[2])))
            else:
                skipped += 1
        for ip, strikes, last in parsed:
            old = hist.get(ip)
            if old is not None:
                strikes, last = max(strikes, old[0]), max(last, old[1])
            hist[ip] = (strikes, last)
            loaded += 1
        # Least recently offended first (stable: an export's own order is kept on ties).
        ordered = sorted(hist.items(), key=lambda kv: kv[1][1])
        hist.clear()
        hist.update(ordered)
        while len(hist) > self._cfg.max_offenders:
            hist.popitem(last=False)
            self.evicted += 1
        if skipped:
            log.warning("offenders load=partial loaded=%d skipped=%d", loaded, skipped)
        return loaded
