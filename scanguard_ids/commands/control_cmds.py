"""`scanguard status|list|block|unblock`: talk to a running daemon over its control socket."""

from __future__ import annotations

import argparse
import sys
import time

import orjson

from scanguard_ids import control
from scanguard_ids.commands.common import add_socket, control_path
from scanguard_ids.config import MAX_TTL
from scanguard_ids.errors import ConfigError
from scanguard_ids.model import parse_target


def _ip(text: str) -> str:
    try:
        return str(parse_target(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ttl(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 < v <= MAX_TTL:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_TTL} seconds")
    return v


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, helptext in (("status", "daemon status and counters"), ("list", "active blocks")):
        p = sub.add_parser(name, help=helptext)
        add_socket(p)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=globals()[f"cmd_{name}"])
    p = sub.add_parser("block", help="block an address now (same backend and journal)")
    add_socket(p)
    p.add_argument("ip", type=_ip, help="the address (or prefix, e.g. 2001:db8:1:2::/64) to block")
    p.add_argument("--ttl", type=_ttl, help="seconds (default: detect.ttl)")
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    p.set_defaults(func=cmd_block)
    p = sub.add_parser("unblock", help="lift a block now")
    add_socket(p)
    p.add_argument("ip", type=_ip, help="the address or prefix to unblock")
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    p.set_defaults(func=cmd_unblock)


def _out(obj: object) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")


def cmd_status(args: argparse.Namespace) -> int:
    data = control.call(control_path(args), "status", limit=20)
    if args.json:
        _out(data)
        return 0
    c = data.get("counters", {})
    up = data["taken"] - data["started"]
    print(
        f"backend {data['backend']}  up {up:.0f}s  policy {data['policy']}  "
        f"threshold {data['count']} responses / {data['ports']} ports / {data['window']:g}s"
    )
    for s in data.get("sources", []):
        print(
            f"source {s['kind']} {s['name']} ok={s['ok']} lines={s['lines']} "
            f"lag_bytes={s['lag_bytes']} {s['detail']}"
        )
    keys = (
        "events",
        "responses",
        "blocks",
        "unblocks",
        "expired",
        "decode_errors",
        "valve_drops",
        "allowlisted",
        "suppressed",
        "tracked",
    )
    print(" ".join(f"{k}={c.get(k, 0)}" for k in keys))
    print(f"blocked {data['blocked_total']}  watching {data['watching_total']}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    data = control.call(control_path(args), "list")
    if args.json:
        _out(data)
        return 0
    now = time.time()
    for row in sorted(data, key=lambda r: r["ip"]):
        left = "-" if row["expires"] is None else f"{max(0, row['expires'] - now):.0f}s"
        print(f"{row['ip']}\t{left}")
    return 0


def cmd_block(args: argparse.Namespace) -> int:
    kw = {"ip": args.ip}
    if args.ttl is not None:
        kw["ttl"] = args.ttl
    data = control.call(control_path(args), "block", **kw)
    _out(data) if args.json else print(f"blocked {data['ip']} for {data['ttl']}s")
    return 0


def cmd_unblock(args: argparse.Namespace) -> int:
    data = control.call(control_path(args), "unblock", ip=args.ip)
    _out(data) if args.json else print(f"unblocked {data['ip']}")
    return 0


__all__ = ["ConfigError", "add_parser"]
