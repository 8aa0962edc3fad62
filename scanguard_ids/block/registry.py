"""Pick an enforcement backend by name; backends are imported only when chosen.

``auto`` prefers ipset (when the ip_set netlink answers and the admin's iptables
variant can be written), else nftables (when ``nft`` answers), else fails with a
message that says what was missing on each side.
"""

from __future__ import annotations

import importlib
import logging
import shutil
from collections.abc import Callable
from typing import Any

from scanguard_ids.block.base import Backend
from scanguard_ids.block.common import Runner, run_argv
from scanguard_ids.clock import Clock
from scanguard_ids.config import BlockConfig
from scanguard_ids.errors import BackendError

log = logging.getLogger(__name__)

NAMES = ("auto", "ipset", "nftables", "dry-run", "sdn-faucet", "sdn-openflow")


def _factory(name: str) -> Callable[..., Any]:
    module, cls = {
        "ipset": ("scanguard_ids.block.ipset", "IpsetBackend"),
        "nftables": ("scanguard_ids.block.nftables", "NftablesBackend"),
        "dry-run": ("scanguard_ids.block.dryrun", "DryRunBackend"),
        "sdn-faucet": ("scanguard_ids.block.sdn.faucet", "FaucetBackend"),
        "sdn-openflow": ("scanguard_ids.block.sdn.openflow", "OpenFlowBackend"),
    }[name]
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def ipset_unusable(runner: Runner = run_argv,
                   which: Callable[[str], str | None] = shutil.which) -> str | None:
    """Why the ipset backend cannot work here (None: it can). Changes nothing."""
    try:
        from pyroute2.ipset import IPSet

        sock = IPSet()  # asks the kernel for the ip_set protocol version
        sock.close()
    except Exception as exc:  # noqa: BLE001 - any failure means: not usable
        return f"ip_set netlink: {exc!r}"
    from scanguard_ids.block.iptables import detect_variant, unusable_reason

    try:
        variant = detect_variant(runner, which)
    except BackendError as exc:
        return str(exc)
    reason = unusable_reason(variant, which)
    return f"iptables ({variant}): {reason}" if reason else None


def nftables_unusable(runner: Runner = run_argv) -> str | None:
    """Why the nftables backend cannot work here (None: it can). Changes nothing."""
    try:
        res = runner(["nft", "list", "tables"], timeout=10)
    except BackendError as exc:
        return str(exc)
    if res.returncode != 0:
        return f"`nft list tables` failed: {res.stderr.strip()}"
    return None


def detect(runner: Runner = run_argv,
           which: Callable[[str], str | None] = shutil.which) -> str:
    why_ipset = ipset_unusable(runner, which)
    if why_ipset is None:
        return "ipset"
    why_nft = nftables_unusable(runner)
    if why_nft is None:
        log.info("action=select backend=nftables ipset_unusable=%r", why_ipset)
        return "nftables"
    raise BackendError("block.backend = auto: no usable firewall on this host "
                       f"(ipset: {why_ipset}; nftables: {why_nft}). Install ipset and "
                       "iptables, or nftables, or set block.backend = \"dry-run\"")


def create(name: str, cfg: BlockConfig, clock: Clock | None = None, **kwargs: Any) -> Backend:
    """The backend called ``name`` ("auto" detects one), configured from ``cfg``."""
    if name not in NAMES:
        raise BackendError(f"unknown backend {name!r} (one of {', '.join(NAMES)})")
    chosen = detect() if name == "auto" else name
    log.info("action=select backend=%s requested=%s", chosen, name)
    return _factory(chosen)(cfg, clock, **kwargs)  # type: ignore[no-any-return]
