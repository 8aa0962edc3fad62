"""Read whole EVE files (plain or gzip) in large blocks of whole lines: the replay source."""

from __future__ import annotations

import gzip
import io
import sys
import zlib
from collections.abc import Iterator

from scanguard_ids.errors import ScanguardError

CHUNK = 1 << 20


class ReaderError(ScanguardError):
    """An EVE file that cannot be read to its end (a truncated or corrupt gzip stream)."""


def _open(path: str) -> io.BufferedIOBase:
    if path == "-":
        return sys.stdin.buffer  # type: ignore[return-value]
    fh = open(path, "rb")  # noqa: SIM115 - returned to the caller, closed by iter_blocks
    if fh.read(2) == b"\x1f\x8b":
        fh.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]
    fh.seek(0)
    return fh


def iter_blocks(
    path: str, chunk: int = CHUNK, max_line: int = 1 << 20
) -> Iterator[tuple[bytearray | bytes, int, int]]:
    """Yield ``(buf, start, end)``: ``buf[start:end]`` holds whole lines, newline-separated.

    ``buf`` is one reused buffer: use a block before asking for the next. A last line without
    a newline counts too. A line longer than ``max_line`` is passed on once either way, for
    the decoder to count as oversized: whole if its newline comes within the same read, else
    cut to ``max_line + 1`` bytes with the rest skipped, so memory stays under
    ``max_line + 2 * chunk`` whatever the input. A damaged gzip stream raises ReaderError.
    """
    fh = _open(path)
    buf = bytearray(2 * chunk)
    carry = 0  # buf[:carry]: the start of a line whose newline has not been read yet
    skipping = False  # inside an over-long line that was already passed on
    try:
        while True:
            if len(buf) < carry + chunk:
                buf.extend(bytes(carry + chunk - len(buf)))
            try:
                with memoryview(buf) as mv, mv[carry : carry + chunk] as room:
                    n = fh.readinto(room)
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                raise ReaderError(f"{path}: damaged gzip data ({exc})") from None
            if not n:
                break
            start, hi = 0, carry + n
            if skipping:
                nl = buf.find(b"\n", 0, hi)
                if nl < 0:
                    continue
                skipping, start = False, nl + 1
            last = buf.rfind(b"\n", start, hi)
            if last >= 0:
                yield buf, start, last + 1
                start = last + 1
            rest = hi - start
            if rest > max_line:
                yield bytes(buf[start : start + max_line + 1]), 0, max_line + 1
                skipping, carry = True, 0
            else:
                buf[:rest] = buf[start:hi]
                carry = rest
        if carry and not skipping:
            yield buf, 0, carry
    finally:
        if path != "-":
            fh.close()
