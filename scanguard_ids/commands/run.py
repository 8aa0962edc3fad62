"""`scanguard run`: the daemon. Tails EVE files and/or an EVE unix socket and blocks scanners."""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

from scanguard_ids import config, giveback
from scanguard_ids.commands.common import add_config, add_thresholds, load_config, override
from scanguard_ids.config import BACKENDS


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="run the daemon (foreground)", description=__doc__)
    add_options(p)
    p.add_argument("--tui", action="store_true", help="show the live monitor in this terminal")
    p.add_argument(
        "--log-file",
        metavar="PATH",
        help="log here instead of stderr (with --tui default: scanguard.log next to the journal)",
    )
    p.set_defaults(func=run)


def add_options(p: argparse.ArgumentParser) -> None:
    """The options that override config keys (`run` and `config show` share them)."""
    add_config(p)
    add_thresholds(p)
    p.add_argument(
        "--eve", action="append", metavar="PATH", default=[], help="EVE file to tail (repeatable)"
    )
    p.add_argument(
        "--eve-socket", metavar="PATH", help="bind this unix socket for Suricata's EVE output"
    )
    p.add_argument(
        "--eve-socket-type",
        choices=("unix_dgram", "unix_stream"),
        help="Suricata eve-log filetype of --eve-socket "
             f"(default {config.EveConfig().socket_type})",
    )
    p.add_argument("--eve-redis", metavar="URL",
                   help="read EVE records Suricata pushes to a Redis list (filetype redis)")
    p.add_argument("--eve-redis-key", metavar="KEY",
                   help=f"that list's key (default {config.EveConfig().redis_key})")
    p.add_argument("--fleet", metavar="URL",
                   help="share evidence and decisions through this Redis, e.g. "
                        "redis://HOST:6379/0 (docs/fleet.md)")
    p.add_argument("--node", metavar="NAME", help="this node's fleet name (default: host name)")
    p.add_argument("--from-start", action="store_true", help="read EVE files from their start")
    p.add_argument("--backend", choices=BACKENDS,
                   help="enforcement backend (default auto: ipset where the host has it)")
    p.add_argument("--set-name", help="ipset set / nftables table name "
                   f"(default {config.BlockConfig().set_name})")
    p.add_argument("--socket", dest="control_socket", metavar="PATH", help="control socket path")
    p.add_argument("--journal", metavar="PATH", help="decision journal (JSON lines)")
    p.add_argument("--state", metavar="PATH", help="offender-history state file")
    p.add_argument("--checkpoint", metavar="PATH", help="EVE file position checkpoint")
    p.add_argument("--metrics", metavar="ADDR:PORT",
                   help="serve Prometheus /metrics here, e.g. 127.0.0.1:9477 (default: off)")
    p.add_argument("--fast-path", nargs="?", const="block", choices=("off", "detect", "block"),
                   help="the kernel fast path (docs/fast-path.md): block (the default of the "
                        "flag), detect or off (default: fastpath.mode)")


def effective_config(args: argparse.Namespace, path: str | None = None) -> config.Config:
    """The config file (``path``, default --config), then the command-line options."""
    cfg = load_config(args, path if path is not None else args.config)
    cfg = override(cfg, "eve", paths=tuple(args.eve), socket=args.eve_socket,
                   socket_type=args.eve_socket_type, from_start=args.from_start,
                   checkpoint=args.checkpoint, redis=args.eve_redis,
                   redis_key=args.eve_redis_key)
    cfg = override(cfg, "fleet", url=args.fleet, node=args.node)
    cfg = override(cfg, "block", backend=args.backend, set_name=args.set_name)
    cfg = override(cfg, "control", socket=args.control_socket)
    cfg = override(cfg, "metrics", listen=args.metrics)
    cfg = override(cfg, "fastpath", mode=getattr(args, "fast_path", None))
    return override(cfg, "journal", path=args.journal, state=args.state)


def _log_to(path: str) -> None:
    """Send logging to a file (the monitor owns the terminal)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)


def run(args: argparse.Namespace) -> int:
    from scanguard_ids.daemon import Daemon

    cfg = effective_config(args)
    log_file = args.log_file or (
        str(Path(cfg.journal.path).parent / "scanguard.log") if args.tui else None
    )
    if log_file:
        _log_to(log_file)

    def reload_config(path: str | None) -> config.Config:
        return effective_config(args, path)

    daemon = Daemon(cfg, args.config, reload_config=reload_config)
    daemon.install_signals()
    giveback.tune_gc()
    try:
        engine = daemon.start()
        if args.tui:
            from scanguard_ids.tui.app import run_live

            keeper = threading.Thread(target=daemon.housekeeping, name="housekeeping", daemon=True)
            keeper.start()
            run_live(engine.snapshot, stop=daemon.stop_event)
        else:
            daemon.housekeeping()
    finally:
        daemon.shutdown()
    return 0
