"""Types of the optional C accelerator (_fast.c); see scanguard_ids.eve.decode."""

from typing import Any

from typing_extensions import Buffer

_Fields = tuple[
    float, str, str, str, int | None, int | None, int | None, int, str,
    int | None, bytes | None, int | None,
]

def prefilter(
    buf: Buffer,
    start: int,
    end: int,
    max_line: int,
    sids: frozenset[int] | None = None,
    ctx: tuple[object, ...] | None = None,
    /,
) -> tuple[int, int, int, list[Any], bytearray, tuple[int, int, int]]: ...
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
