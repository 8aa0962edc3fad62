"""The dry-run backend: logs what it would do and remembers blocks in memory."""

from __future__ import annotations

import logging

from scanguard_ids.block.base import BackendInfo
from scanguard_ids.block.common import check_ttl, normalize_target
from scanguard_ids.clock import Clock, SystemClock
from scanguard_ids.config import BlockConfig
from scanguard_ids.model import Block

log = logging.getLogger(__name__)


class DryRunBackend:
    """Enforces nothing; ``list()`` reports the blocks it would hold, expired by the clock.

    Accepts addresses and prefixes ("2001:db8:1:2::/64"), as the kernel backends do.
    """

    def __init__(self, cfg: BlockConfig | None = None, clock: Clock | None = None) -> None:
        self.cfg = cfg or BlockConfig()
        self.clock: Clock = clock or SystemClock()
        self.info = BackendInfo("dry-run", "nothing enforced; blocks kept in memory")
        self._blocks: dict[str, float] = {}

    def start(self) -> None:
        log.info("action=install backend=dry-run set_name=%s", self.cfg.set_name)

    def block(self, ip: str, ttl: int) -> None:
        addr = str(normalize_target(ip))
        ttl = check_ttl(ttl)
        self._blocks[addr] = self.clock.now() + ttl
        log.debug("action=block ip=%s ttl=%d backend=dry-run", addr, ttl)

    def unblock(self, ip: str) -> None:
        addr = str(normalize_target(ip))
        self._blocks.pop(addr, None)
        log.debug("action=unblock ip=%s backend=dry-run", addr)

    def list(self) -> list[Block]:
        now = self.clock.now()
        for ip in [ip for ip, exp in self._blocks.items() if exp <= now]:
            del self._blocks[ip]
        return [Block(ip, exp) for ip, exp in sorted(self._blocks.items())]

    def stop(self) -> None:
        log.debug("action=stop backend=dry-run")

    def remove(self) -> None:
        self._blocks.clear()
        log.info("action=remove backend=dry-run")

    def show(self) -> str:
        return f"dry-run backend: nothing installed; {len(self.list())} blocks held in memory\n"
