"""Small helpers the enforcement backends share: address/TTL checks and argv commands."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence
from typing import Protocol

from scanguard_ids import children
from scanguard_ids.errors import BackendError, CommandError

#: ipset's (and so our) largest timeout, in seconds.
MAX_TTL = 2_147_483

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def normalize_ip(ip: str) -> IPAddress:
    """Parse one address; an IPv4-mapped IPv6 address becomes its IPv4 address."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        raise BackendError(f"not an IP address: {ip!r}") from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


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
