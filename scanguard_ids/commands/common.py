"""Arguments several subcommands share."""

from __future__ import annotations

import argparse

from scanguard_ids import config
from scanguard_ids.errors import ConfigError


def add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML config (see examples/scanguard.toml)")


def add_thresholds(p: argparse.ArgumentParser) -> None:
    d = config.DetectConfig()
    g = p.add_argument_group("detection overrides (win over the config file)")
    g.add_argument("--count", type=int, help=f"responses needed (default {d.count})")
    g.add_argument("--ports", type=int, help=f"distinct local ports needed (default {d.ports})")
    g.add_argument("--window", type=float,
                   help=f"seconds the responses must fall within (default {d.window:g})")
    g.add_argument("--ttl", type=int, help=f"first block length in seconds (default {d.ttl})")
    g.add_argument("--policy", choices=("default", "paper"),
                   help=f"repeat-offender policy (default {d.policy})")


def load_config(args: argparse.Namespace, path: str | None = None) -> config.Config:
    """Config file (``path``, default --config), then threshold overrides; errors name the key."""
    cfg = config.load(path if path is not None else getattr(args, "config", None))
    overrides = {
        k: getattr(args, k)
        for k in ("count", "ports", "window", "ttl", "policy")
        if getattr(args, k, None) is not None
    }
    if overrides:
        try:
            cfg = cfg.replace("detect", **overrides)
        except ConfigError as exc:
            key = exc.key.removeprefix("detect.")
            raise ConfigError(f"--{key}", str(exc).split(": ", 1)[1]) from None
    return cfg


def override(cfg: config.Config, section: str, **values: object) -> config.Config:
    """Apply the command-line options that were given (not None/False/empty) to a section."""
    changes = {k: v for k, v in values.items() if v not in (None, False, ())}
    return cfg.replace(section, **changes) if changes else cfg


def add_socket(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--socket",
        metavar="PATH",
        dest="control_socket",
        help="control socket of the daemon (default from config: "
             f"{config.ControlConfig().socket})",
    )
    add_config(p)


def control_path(args: argparse.Namespace) -> str:
    if getattr(args, "control_socket", None):
        return str(args.control_socket)
    return config.load(getattr(args, "config", None)).control.socket
