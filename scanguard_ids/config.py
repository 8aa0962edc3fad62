"""Frozen configuration, loaded from TOML and validated; every error names its key."""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from scanguard_ids.errors import ConfigError

#: The SID block reserved for the scanguard rule pack (see rules/README in the pack).
SID_FIRST = 9_400_000
SID_LAST = 9_400_099
#: Core rules (the paper's outbound responses) use SID_FIRST..SID_CORE_LAST; the optional
#: extended signatures above it are for the SIEM and are never acted on unless listed in eve.sids.
SID_CORE_LAST = 9_400_049

BACKENDS = ("auto", "ipset", "nftables", "dry-run", "sdn-faucet", "sdn-openflow")

DEFAULT_ALLOWLIST: tuple[str, ...] = (
    "127.0.0.0/8",
    "::1/128",
    "169.254.0.0/16",
    "fe80::/10",
    "224.0.0.0/4",
    "ff00::/8",
    "0.0.0.0/32",
    "255.255.255.255/32",
)


@dataclass(frozen=True, slots=True)
class DetectConfig:
    count: int = 3  # responses to one remote address ...
    ports: int = 2  # ... covering this many distinct local ports ...
    window: float = 60.0  # ... within this many seconds (event time)
    ttl: int = 300  # first block, seconds
    policy: str = "default"  # "default": escalate repeat offenders; "paper": always ttl
    escalation: float = 2.0  # ttl multiplier per repeat offence (policy "default")
    max_ttl: int = 86_400  # cap on escalated blocks
    strike_memory: float = 86_400.0  # forget an offender after this long without offences
    reorder: float = 30.0  # how late (event time) an out-of-order event may still count
    max_tracked: int = 100_000  # addresses tracked before least-recently-seen eviction
    max_events_per_ip: int = 64  # evidence kept per tracked address
    max_offenders: int = 100_000  # repeat-offender history entries kept
    allowlist: tuple[str, ...] = DEFAULT_ALLOWLIST
    allow_own_addresses: bool = True  # never block this host's own addresses


@dataclass(frozen=True, slots=True)
class EveConfig:
    paths: tuple[str, ...] = ()
    socket: str = ""  # unix socket scanguard owns; Suricata's eve-log writes to it
    socket_type: str = "unix_stream"  # or "unix_dgram" (needs net.unix.max_dgram_qlen >= 512)
    socket_mode: int = 0o660  # file mode of the EVE socket scanguard binds
    from_start: bool = False
    checkpoint: str = "/var/lib/scanguard/checkpoint.json"
    poll_interval: float = 1.0  # fallback poll when no file event arrives
    watch: str = "inotify"  # what wakes file readers: inotify | watchdog | poll
    max_line_bytes: int = 1_048_576
    sids: tuple[int, ...] = ()  # SIDs to act on; empty = the core rules 9400000-9400049


@dataclass(frozen=True, slots=True)
class BlockConfig:
    backend: str = "auto"  # auto | ipset | nftables | dry-run
    set_name: str = "scanguard"  # ipset sets <name>4/<name>6; nft table inet <name>
    max_blocks_per_second: float = 200.0
    max_set_size: int = 65_536
    clear_conntrack: bool = True
    block_outbound: bool = True  # also drop traffic to the blocked address


@dataclass(frozen=True, slots=True)
class SdnConfig:
    """Settings of the switch-level backends sdn-faucet and sdn-openflow (docs/sdn.md)."""

    faucet_acl_file: str = "/etc/faucet/scanguard-acl.yaml"  # included from faucet.yaml
    faucet_acl_name: str = "scanguard"
    faucet_pid_file: str = ""  # SIGHUP this PID to reload; else faucet_reload_command
    faucet_reload_command: tuple[str, ...] = ("systemctl", "reload", "faucet")  # [] = stat reload
    faucet_max_blocks: int = 250  # Faucet rebuilds the whole ACL per change: keep it small
    faucet_batch_ms: int = 150  # coalesce blocks this long into one reload
    faucet_min_reload_interval: float = 0.5
    faucet_terminal_allow: bool = True  # end the ACL with an allow-all rule
    openflow_target: str = "unix:/var/run/openvswitch/br0.mgmt"
    openflow_transport: str = "native"  # native OpenFlow 1.3 client | ofctl
    openflow_table: int = 0
    openflow_priority: int = 40_000
    openflow_max_blocks: int = 0  # 0 = block.max_set_size

    def backend_kwargs(self, backend: str) -> dict[str, Any]:
        if backend == "sdn-faucet":
            return {
                "acl_file": self.faucet_acl_file,
                "acl_name": self.faucet_acl_name,
                "faucet_pid_file": self.faucet_pid_file or None,
                "reload_command": self.faucet_reload_command or None,
                "max_blocks": self.faucet_max_blocks,
                "batch_window": self.faucet_batch_ms / 1000,
                "min_reload_interval": self.faucet_min_reload_interval,
                "terminal_allow": self.faucet_terminal_allow,
            }
        if backend == "sdn-openflow":
            return {
                "target": self.openflow_target,
                "transport": self.openflow_transport,
                "table": self.openflow_table,
                "priority": self.openflow_priority,
                "max_blocks": self.openflow_max_blocks or None,
            }
        return {}


@dataclass(frozen=True, slots=True)
class ControlConfig:
    socket: str = "/run/scanguard/control.sock"
    mode: int = 0o600


@dataclass(frozen=True, slots=True)
class JournalConfig:
    path: str = "/var/lib/scanguard/decisions.jsonl"
    state: str = "/var/lib/scanguard/offenders.json"


@dataclass(frozen=True, slots=True)
class Config:
    detect: DetectConfig = field(default_factory=DetectConfig)
    eve: EveConfig = field(default_factory=EveConfig)
    block: BlockConfig = field(default_factory=BlockConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    sdn: SdnConfig = field(default_factory=SdnConfig)

    def replace(self, section: str, **changes: Any) -> Config:
        """A copy with some keys of one section changed (CLI overrides), validated."""
        cfg = replace(self, **{section: replace(getattr(self, section), **changes)})
        validate(cfg)
        return cfg


_SECTIONS: dict[str, Any] = {
    "detect": DetectConfig,
    "eve": EveConfig,
    "block": BlockConfig,
    "control": ControlConfig,
    "journal": JournalConfig,
    "sdn": SdnConfig,
}


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check a TOML value against the type of its default."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list):
            raise ConfigError(key, f"expected a list, got {value!r}")
        kind = type(default[0]) if default else (int if key.endswith("sids") else str)
        out = []
        for i, item in enumerate(value):
            if kind is int and (isinstance(item, bool) or not isinstance(item, int)):
                raise ConfigError(f"{key}[{i}]", f"expected an integer, got {item!r}")
            if kind is str and not isinstance(item, str):
                raise ConfigError(f"{key}[{i}]", f"expected a string, got {item!r}")
            out.append(item)
        return tuple(out)
    raise ConfigError(key, "unsupported key type")  # pragma: no cover


def from_dict(data: dict[str, Any]) -> Config:
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _SECTIONS:
            raise ConfigError(name, f"unknown section (known: {', '.join(sorted(_SECTIONS))})")
        if not isinstance(value, dict):
            raise ConfigError(name, "expected a table")
        default = _SECTIONS[name]()
        known = {f.name: getattr(default, f.name) for f in fields(default)}
        changes = {}
        for key, item in value.items():
            if key not in known:
                raise ConfigError(f"{name}.{key}", "unknown key")
            changes[key] = _coerce(f"{name}.{key}", item, known[key])
        sections[name] = replace(default, **changes)
    cfg = Config(**sections)
    validate(cfg)
    return cfg


def load(path: str | Path | None) -> Config:
    """Load and validate a TOML config; None gives the defaults."""
    if path is None:
        return Config()
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("--config", f"no such file: {path}") from None
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None
    return from_dict(data)


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(key, f"must be > 0, got {value!r}")


def validate(cfg: Config) -> None:
    d = cfg.detect
    if d.count < 1:
        raise ConfigError("detect.count", f"must be >= 1, got {d.count}")
    if d.ports < 1:
        raise ConfigError("detect.ports", f"must be >= 1, got {d.ports}")
    if d.ports > d.count:
        raise ConfigError("detect.ports", f"cannot exceed detect.count ({d.count})")
    _positive("detect.window", d.window)
    _positive("detect.ttl", d.ttl)
    if d.policy not in ("default", "paper"):
        raise ConfigError("detect.policy", f"must be 'default' or 'paper', got {d.policy!r}")
    if d.escalation < 1:
        raise ConfigError("detect.escalation", f"must be >= 1, got {d.escalation}")
    if d.max_ttl < d.ttl:
        raise ConfigError("detect.max_ttl", f"must be >= detect.ttl ({d.ttl})")
    if d.ttl > 2_147_483:  # ipset's timeout limit
        raise ConfigError("detect.ttl", "must be <= 2147483")
    if d.max_ttl > 2_147_483:
        raise ConfigError("detect.max_ttl", "must be <= 2147483")
    _positive("detect.strike_memory", d.strike_memory)
    if d.reorder < 0:
        raise ConfigError("detect.reorder", f"must be >= 0, got {d.reorder}")
    for key in ("max_tracked", "max_offenders"):
        _positive(f"detect.{key}", getattr(d, key))
    if d.max_events_per_ip < d.count:
        raise ConfigError("detect.max_events_per_ip", f"must be >= detect.count ({d.count})")
    for i, net in enumerate(d.allowlist):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(
                f"detect.allowlist[{i}]", f"not an address or CIDR: {net!r}"
            ) from None
    e = cfg.eve
    if e.socket_type not in ("unix_dgram", "unix_stream"):
        raise ConfigError(
            "eve.socket_type", f"must be unix_dgram or unix_stream, got {e.socket_type!r}"
        )
    _positive("eve.poll_interval", e.poll_interval)
    if e.watch not in ("watchdog", "inotify", "poll"):
        raise ConfigError("eve.watch", f"must be watchdog, inotify or poll, got {e.watch!r}")
    if not 0 <= e.socket_mode <= 0o777:
        raise ConfigError("eve.socket_mode", "must be a file mode like 0o660")
    if e.max_line_bytes < 1024:
        raise ConfigError("eve.max_line_bytes", "must be >= 1024")
    for i, sid in enumerate(e.sids):
        if sid <= 0:
            raise ConfigError(f"eve.sids[{i}]", f"must be > 0, got {sid}")
    b = cfg.block
    if b.backend not in BACKENDS:
        raise ConfigError(
            "block.backend", f"must be one of {', '.join(BACKENDS)}, got {b.backend!r}"
        )
    if (
        not b.set_name
        or len(b.set_name) > 28
        or not b.set_name.replace("_", "").replace("-", "").isalnum()
    ):
        raise ConfigError("block.set_name", "1-28 characters of letters, digits, '-' and '_'")
    _positive("block.max_blocks_per_second", b.max_blocks_per_second)
    _positive("block.max_set_size", b.max_set_size)
    n = cfg.sdn
    if n.openflow_transport not in ("native", "ofctl"):
        raise ConfigError(
            "sdn.openflow_transport", f"must be native or ofctl, got {n.openflow_transport!r}"
        )
    for key in ("faucet_max_blocks", "faucet_batch_ms"):
        _positive(f"sdn.{key}", getattr(n, key))
    if not 0 <= n.openflow_table <= 254:
        raise ConfigError("sdn.openflow_table", "must be 0..254")
    if not 0 <= n.openflow_priority <= 65535:
        raise ConfigError("sdn.openflow_priority", "must be 0..65535")
    if n.openflow_max_blocks < 0:
        raise ConfigError("sdn.openflow_max_blocks", "must be >= 0")
    if not 0 <= cfg.control.mode <= 0o777:
        raise ConfigError("control.mode", "must be a file mode like 0o600")


def sid_set(cfg: Config) -> frozenset[int]:
    """The SIDs the daemon acts on."""
    if cfg.eve.sids:
        return frozenset(cfg.eve.sids)
    return frozenset(range(SID_FIRST, SID_CORE_LAST + 1))
