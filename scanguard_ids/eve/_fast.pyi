"""Types of the optional C accelerator (_fast.c); see scanguard_ids.eve.decode."""

from typing_extensions import Buffer

def prefilter(
    buf: Buffer, start: int, end: int, max_line: int, /
) -> tuple[int, int, list[bytes], bytearray]: ...
def head(
    line: bytes, /
) -> (
    tuple[
        float,
        str,
        str,
        str,
        int | None,
        int | None,
        int | None,
        int,
        str,
        int | None,
        bytes | None,
        int | None,
    ]
    | None
): ...
