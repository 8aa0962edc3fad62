"""Read whole EVE files (plain or gzip) as lines, in large batches: the replay source."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import BinaryIO

CHUNK = 1 << 20


def _open(path: str) -> BinaryIO:
    if path == "-":
        import sys

        return sys.stdin.buffer
    fh = open(path, "rb")  # noqa: SIM115 - returned to the caller, closed by iter_lines
    if fh.read(2) == b"\x1f\x8b":
        fh.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]
    fh.seek(0)
    return fh


def iter_batches(path: str, chunk: int = CHUNK) -> Iterator[list[bytes]]:
    """Yield lists of complete lines (without newlines); a last line without newline counts too."""
    fh = _open(path)
    try:
        rest = b""
        while True:
            data = fh.read(chunk)
            if not data:
                break
            if rest:
                data = rest + data
            lines = data.split(b"\n")
            rest = lines.pop()
            if lines:
                yield lines
        if rest:
            yield [rest]
    finally:
        if path != "-":
            fh.close()
