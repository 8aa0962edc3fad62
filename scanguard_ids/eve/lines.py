"""Splitting byte streams into lines, and a rate meter: shared by the file and socket sources."""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_MAX_LINE = 1 << 20

#: sink(lines, source_name): called from the source's thread with one batch of lines.
Sink = Callable[[list[bytes], str], None]


@dataclass(slots=True)
class LineSplitter:
    """Splits a byte stream on b"\\n", holding the unfinished last line between feeds."""

    max_line_bytes: int = DEFAULT_MAX_LINE
    oversized: int = 0
    _partial: bytearray = field(default_factory=bytearray)
    _skipping: bool = False
    _skipped: int = 0

    @property
    def held(self) -> int:
        """Bytes of the current unfinished line (buffered, or being skipped as oversized)."""
        return self._skipped if self._skipping else len(self._partial)

    def feed(self, data: bytes, out: list[bytes]) -> None:
        """Append the complete lines in data (without newline) to out."""
        start = 0
        if self._skipping:
            nl = data.find(b"\n")
            if nl < 0:
                self._skipped += len(data)
                return
            self._skipping, self._skipped, start = False, 0, nl + 1
        if self._partial:
            nl = data.find(b"\n", start)
            if nl < 0:
                self._partial += data[start:]
                if len(self._partial) > self.max_line_bytes:
                    self._skip(len(self._partial))
                return
            self._partial += data[start:nl]
            line = bytes(self._partial)
            self._partial.clear()
            self._emit(line, out)
            start = nl + 1
        last = data.rfind(b"\n", start)
        if last >= 0:
            for line in data[start:last].split(b"\n"):
                self._emit(line, out)
            start = last + 1
        rest = len(data) - start
        if rest > self.max_line_bytes:
            self._skip(rest)
        elif rest:
            self._partial += data[start:]

    def _emit(self, line: bytes, out: list[bytes]) -> None:
        if len(line) > self.max_line_bytes:
            self.oversized += 1
        elif line:
            out.append(line)

    def _skip(self, held: int) -> None:
        self.oversized += 1
        self._partial.clear()
        self._skipping, self._skipped = True, held

    def skip_to_next_line(self) -> None:
        """We start inside an oversized line: count it and discard up to the next newline."""
        self._skip(0)

    def flush(self, out: list[bytes]) -> bool:
        """The stream ended: deliver the unfinished line, if any. True if one was."""
        line = bytes(self._partial)
        self.reset()
        if line:
            out.append(line)
            return True
        return False

    def reset(self) -> None:
        self._partial.clear()
        self._skipping, self._skipped = False, 0


class RateMeter:
    """Items per second over roughly the last `window` seconds of monotonic time."""

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def sample(self, now: float, total: int) -> None:
        if self._samples and now - self._samples[-1][0] < 1.0:
            return
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()

    def rate(self, now: float, total: int) -> float:
        if not self._samples:
            return 0.0
        t0, n0 = self._samples[0]
        return (total - n0) / (now - t0) if now > t0 else 0.0
