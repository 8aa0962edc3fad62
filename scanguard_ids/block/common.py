"""Small helpers the enforcement backends share: address/TTL checks and argv commands."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Protocol

from scanguard_ids import children
from scanguard_ids.config import MAX_TTL
from scanguard_ids.errors import BackendError, CommandError
from scanguard_ids.model import IPAddress, IPNetwork, parse_ip, parse_target


def normalize_ip(ip: str) -> IPAddress:
    """:func:`scanguard_ids.model.parse_ip`, failing with BackendError.

    For backends that block single addresses only: a prefix is refused by name.
    """
    try:
        return parse_ip(ip)
    except ValueError as exc:
        if "/" in str(ip):
            target = normalize_target(ip)
            if not isinstance(target, IPNetwork):
                return target  # "a/32", "a/128"
            raise BackendError(f"prefix blocks are not supported by this backend: {target}") \
                from None
        raise BackendError(str(exc)) from None


def normalize_target(ip: str) -> IPAddress | IPNetwork:
    """:func:`scanguard_ids.model.parse_target` (an address or a prefix), failing with
    BackendError."""
    try:
        return parse_target(ip)
    except ValueError as exc:
        raise BackendError(str(exc)) from None


def check_ttl(ttl: int) -> int:
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise BackendError(f"ttl must be an integer number of seconds, got {ttl!r}")
    if not 1 <= ttl <= MAX_TTL:
        raise BackendError(f"ttl must be 1..{MAX_TTL} seconds, got {ttl}")
    return ttl


class Runner(Protocol):
    """Runs one command given as an argv list (never a shell string)."""

    def __call__(self, argv: Sequence[str], stdin: str | None = None,
                 timeout: float = 30.0) -> subprocess.CompletedProcess[str]: ...


def run_argv(argv: Sequence[str], stdin: str | None = None,
             timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """:func:`children.run` unchecked; a missing binary or a hang becomes BackendError."""
    try:
        return children.run(argv, stdin=stdin, timeout=timeout, check=False)
    except CommandError as exc:
        raise BackendError(str(exc)) from exc


def check_result(res: subprocess.CompletedProcess[str], what: str) -> str:
    """Return stdout, or raise BackendError naming what failed and the command's stderr."""
    if res.returncode != 0:
        msg = (res.stderr or res.stdout).strip().replace("\n", " | ")
        raise BackendError(f"{what} failed (exit {res.returncode}): {msg}")
    return res.stdout
