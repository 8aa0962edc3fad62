"""Event time against outliers: a line from the future, a sensor clock that steps.

Pure and clock-free (the wall clock, when there is one, is passed in). The detector runs
on the events' own timestamps and never lets event time go backwards, so one bad
timestamp could blind it: a line dated 2099 makes every later event ``too_late``, and
so does a sensor clock stepping back. This module decides what the detector sees.

Live (:meth:`TimeGuard.future` with a wall clock):

* an event more than ``max_future`` seconds ahead of the wall clock is set aside and
  counted (``future``). Old events are *not* outliers: a backlog after a restart or a
  rotation catch-up is judged in its own event time.
* a step back: ``confirm`` events in a row that are all more than ``window + reorder``
  behind the newest event time, and within ``window + reorder`` of each other, are a
  clock that stepped back, not stragglers. From then on event times are shifted forward by
  the step (``shift``), so the detector keeps counting; the confirming events are handed
  back, shifted, to be counted again. When the sensor clock comes back (an event that
  the shift would push beyond ``max_future`` but is fine without it) the shift is dropped.

Replay (:class:`ReplayGuard`, no wall clock): an event more than ``window + reorder``
ahead of the median of the last ``confirm`` accepted events is held back. ``confirm``
held events that agree with each other (within ``window + reorder``) are a real clock
jump: they are released in order and the jump is accepted. ``confirm`` ordinary events
while something is held make the held ones lone outliers: dropped and counted. The first
``confirm`` events of a replay have no neighbours to be judged by and are accepted.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from statistics import median_low

from scanguard_ids.model import ResponseEvent

#: Events that must agree before a jump in event time is believed.
CONFIRM = 8


@dataclass(slots=True)
class GuardStats:
    future: int = 0  # set aside: too far ahead of the wall clock
    steps: int = 0  # clock steps back confirmed (shift applied)
    outliers: int = 0  # replay: lone jumps dropped
    jumps: int = 0  # replay: jumps forward confirmed


class TimeGuard:
    """Live guard. See the module docstring."""

    __slots__ = ("confirm", "late", "max_future", "run", "shift", "stats")

    def __init__(self, late: float, max_future: float, confirm: int = CONFIRM) -> None:
        self.late = float(late)
        self.max_future = float(max_future)
        self.confirm = max(1, confirm)
        self.shift = 0.0
        #: the events behind in a row so far (a step back once ``confirm`` agree); the list
        #: is never replaced, so a caller may hold it and skip :meth:`ok` while it is empty
        self.run: list[ResponseEvent] = []
        self.stats = GuardStats()

    def bound(self, wall: float) -> float:
        """Event times above this are from the future."""
        return wall + self.max_future

    def future(self, ev: ResponseEvent, wall: float) -> bool:
        """``ev.ts`` (already shifted) is beyond the bound: True to set it aside. Drops the
        shift instead when the shift alone put it there (the sensor clock came back)."""
        if self.shift and ev.ts - self.shift <= self.bound(wall):
            ev.ts -= self.shift
            self.shift = 0.0
            return False
        self.stats.future += 1
        return True

    def ok(self) -> None:
        """An event in the usual range: a run of events behind is broken."""
        if self.run:
            self.run.clear()

    def behind(self, ev: ResponseEvent, newest: float) -> list[ResponseEvent]:
        """``ev`` is more than ``late`` behind ``newest``. Returns the events of a confirmed
        step back, shifted to continue from ``newest`` (else [])."""
        run = self.run
        if run and abs(ev.ts - run[0].ts) > self.late:
            run.clear()
        run.append(ev)
        if len(run) < self.confirm:
            return []
        step = newest - min(e.ts for e in run)
        self.shift += step
        self.stats.steps += 1
        out = list(run)
        run.clear()
        for e in out:
            e.ts += step
        return out


class ReplayGuard:
    """Replay guard (event time only). See the module docstring.

    Hot path for callers: an event with ``ts <= limit`` while nothing is ``held`` is
    accepted as it is by ``recent.append(ts)``; anything else goes through :meth:`admit`.
    """

    __slots__ = ("_since_held", "confirm", "held", "late", "limit", "recent", "stats")

    def __init__(self, late: float, confirm: int = CONFIRM) -> None:
        self.late = float(late)
        self.confirm = max(1, confirm)
        self.recent: deque[float] = deque(maxlen=self.confirm)
        self.held: list[ResponseEvent] = []
        self.limit = -math.inf  # median of recent + late (recomputed when passed)
        self._since_held = 0
        self.stats = GuardStats()

    def admit(self, ev: ResponseEvent) -> list[ResponseEvent]:
        """The events to feed now, in order (usually just ``ev``)."""
        recent = self.recent
        if len(recent) < self.confirm and not self.held:  # warming up: nothing to judge by
            recent.append(ev.ts)
            if len(recent) == self.confirm:
                self.limit = median_low(recent) + self.late
            return [ev]
        if ev.ts > self.limit:
            self.limit = median_low(recent) + self.late
        if ev.ts > self.limit:
            held = self.held
            if held and abs(ev.ts - held[0].ts) > self.late:
                self.stats.outliers += len(held)
                held.clear()
            if not held:
                self._since_held = 0
            held.append(ev)
            if len(held) < self.confirm:
                return []
            self.stats.jumps += 1
            out = sorted(held, key=lambda e: e.ts)
            held.clear()
            recent.clear()
            recent.extend(e.ts for e in out[-self.confirm:])
            self.limit = median_low(recent) + self.late
            return out
        recent.append(ev.ts)
        if self.held:
            self._since_held += 1
            if self._since_held >= self.confirm:
                self.stats.outliers += len(self.held)
                self.held.clear()
        return [ev]

    def flush(self) -> list[ResponseEvent]:
        """At the end of the input: what is still held is a lone outlier (dropped)."""
        self.stats.outliers += len(self.held)
        self.held.clear()
        return []
