"""The enforcement interface every backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from scanguard_ids.model import Block


@dataclass(frozen=True, slots=True)
class BackendInfo:
    name: str  # "ipset", "nftables", "dry-run"
    detail: str  # e.g. "ipset sets scanguard4/scanguard6, iptables-nft rules"


class Backend(Protocol):
    """Blocks addresses (IPv4 and IPv6) with kernel-side timeouts.

    All methods are idempotent: blocking a blocked address refreshes its timeout,
    unblocking an unknown address succeeds, start() on an installed host changes nothing.
    """

    info: BackendInfo

    def start(self) -> None:
        """Create sets and the rules that reference them (idempotent)."""
        ...

    def block(self, ip: str, ttl: int) -> None:
        """Drop traffic from (and to) ip for ttl seconds; the kernel expires it."""
        ...

    def unblock(self, ip: str) -> None: ...

    def list(self) -> list[Block]:
        """Active blocks as the kernel holds them (the source of truth)."""
        ...

    def stop(self) -> None:
        """Release handles; leaves sets, rules and blocks in place."""
        ...

    def remove(self) -> None:
        """Remove rules and sets entirely (`scanguard firewall remove`)."""
        ...

    def show(self) -> str:
        """What is installed: rules and set sizes, as text (`scanguard firewall show`)."""
        ...
