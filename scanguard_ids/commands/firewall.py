"""`scanguard firewall install|remove|show`: manage the backend's sets and rules explicitly."""

from __future__ import annotations

import argparse

from scanguard_ids.block.fastpath import FastPath, FastPathLayout
from scanguard_ids.clock import SystemClock
from scanguard_ids.commands.common import add_config, load_config, override
from scanguard_ids.config import BACKENDS
from scanguard_ids.errors import BackendError


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "firewall", help="install, remove or show the blocking sets and rules", description=__doc__
    )
    p.add_argument("action", choices=("install", "remove", "show"),
                   help="install: create the sets and rules; remove: delete them (and every "
                        "block); show: print what is installed")
    add_config(p)
    p.add_argument("--backend", choices=BACKENDS,
                   help="enforcement backend (default: from the config, auto)")
    p.add_argument("--set-name", help="ipset set / nftables table name (default scanguard)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scanguard_ids.block import registry

    cfg = override(load_config(args), "block", backend=args.backend, set_name=args.set_name)
    backend = registry.create(cfg.block.backend, cfg.block, SystemClock(),
                              **cfg.sdn.backend_kwargs(cfg.block.backend))
    if args.action == "install":
        backend.start()
        print(f"installed: {backend.info.detail}")
    elif args.action == "remove":
        backend.remove()
        print(f"removed: {backend.info.name} sets and rules")
        fast = FastPath(FastPathLayout.from_config(cfg.fastpath))
        fast.remove()  # idempotent: also when it was never installed
        print(f"removed: fast-path table inet {fast.layout.table}")
    else:
        print(backend.show())
        print(_fast_path_status(FastPath(FastPathLayout.from_config(cfg.fastpath))))
    backend.stop()
    return 0


def _fast_path_status(fast: FastPath) -> str:
    try:
        c = fast.counters()
    except BackendError:
        return f"fast path: table inet {fast.layout.table} is not installed"
    return (f"fast path: table inet {fast.layout.table}: tripped {c.tripped} probes, "
            f"seen set full {c.seen_full}, meter set full {c.meter_full} (probes passed "
            "uncounted)")
