"""TOML in, a validated frozen Config out; every error names its key (exit status 2 at the CLI).

The generic checks (type, ``choices``, bounds, finite numbers) come from each key's
:class:`~scanguard_ids.config.schema.KeyInfo`; :func:`validate` adds the checks that relate
two keys or parse a value.
"""

from __future__ import annotations

import ipaddress
import math
import tomllib
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from scanguard_ids.config.schema import (
    CROWDSEC_POST,
    SECTIONS,
    SHARE_KINDS,
    SID_CORE_LAST,
    SID_FIRST,
    Config,
    KeyInfo,
    info,
)
from scanguard_ids.errors import ConfigError


def _coerce(name: str, value: Any, default: Any, ki: KeyInfo) -> Any:
    """Check a TOML value against the type of its default."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(name, f"expected true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, f"expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(name, f"expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(name, f"expected a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list):
            raise ConfigError(name, f"expected a list, got {value!r}")
        kind = ki.item or (type(default[0]) if default else str)
        for i, item in enumerate(value):
            if kind is int and (isinstance(item, bool) or not isinstance(item, int)):
                raise ConfigError(f"{name}[{i}]", f"expected an integer, got {item!r}")
            if kind is str and not isinstance(item, str):
                raise ConfigError(f"{name}[{i}]", f"expected a string, got {item!r}")
        return tuple(value)
    raise ConfigError(name, "unsupported key type")  # pragma: no cover


def _check_key(name: str, value: Any, ki: KeyInfo) -> None:
    """The constraints a key declares: choices, bounds, and no nan/inf anywhere."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(name, f"must be a finite number, got {value!r}")
    if ki.choices and value not in ki.choices:
        raise ConfigError(name, f"must be one of {', '.join(map(str, ki.choices))}, "
                                f"got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return

    def show(v: float) -> str:
        if ki.octal:
            return oct(int(v))
        return str(int(v)) if float(v).is_integer() else repr(v)

    if ki.ge is not None and value < ki.ge:
        raise ConfigError(name, f"must be >= {show(ki.ge)}, got {show(value)}")
    if ki.gt is not None and value <= ki.gt:
        raise ConfigError(name, f"must be > {show(ki.gt)}, got {show(value)}")
    if ki.le is not None and value > ki.le:
        raise ConfigError(name, f"must be <= {show(ki.le)}, got {show(value)}")


def from_dict(data: dict[str, Any]) -> Config:
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in SECTIONS:
            raise ConfigError(name, f"unknown section (known: {', '.join(sorted(SECTIONS))})")
        if not isinstance(value, dict):
            raise ConfigError(name, "expected a table")
        default = SECTIONS[name]()
        known = {f.name: f for f in fields(default)}
        changes = {}
        for k, item in value.items():
            f = known.get(k)
            if f is None:
                raise ConfigError(f"{name}.{k}", "unknown key")
            changes[k] = _coerce(f"{name}.{k}", item, getattr(default, k), info(f))
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
    except IsADirectoryError:
        raise ConfigError("--config", f"{path} is a directory") from None
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError("--config", f"{path} is not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None
    return from_dict(data)


def file_keys(path: str | Path | None) -> frozenset[str]:
    """The keys ("section.key") a config file sets, whatever their values: tells a key given on
    purpose from one left at its default. None, or a file that cannot be read, sets none
    (:func:`load` reports those errors)."""
    if path is None:
        return frozenset()
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return frozenset()
    return frozenset(f"{section}.{k}" for section, table in data.items()
                     if isinstance(table, dict) for k in table)


def validate(cfg: Config) -> None:
    """Every key's own constraints, then the checks that relate keys or parse values."""
    for section in fields(cfg):
        sec = getattr(cfg, section.name)
        for f in fields(sec):
            _check_key(f"{section.name}.{f.name}", getattr(sec, f.name), info(f))
    d = cfg.detect
    if d.ports > d.count:
        raise ConfigError("detect.ports", f"cannot exceed detect.count ({d.count})")
    if d.max_ttl < d.ttl:
        raise ConfigError("detect.max_ttl", f"must be >= detect.ttl ({d.ttl})")
    if d.max_events_per_ip < d.count:
        raise ConfigError("detect.max_events_per_ip", f"must be >= detect.count ({d.count})")
    if d.slow_ports > d.slow_count:
        raise ConfigError("detect.slow_ports", f"cannot exceed detect.slow_count ({d.slow_count})")
    if d.slow_max_events < d.slow_count:
        raise ConfigError("detect.slow_max_events",
                          f"must be >= detect.slow_count ({d.slow_count})")
    for i, net in enumerate(d.allowlist):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(
                f"detect.allowlist[{i}]", f"not an address or CIDR: {net!r}"
            ) from None
    for i, uid in enumerate(cfg.eve.socket_uids):
        if uid < 0:
            raise ConfigError(f"eve.socket_uids[{i}]", f"must be >= 0, got {uid}")
    for i, sid in enumerate(cfg.eve.sids):
        if sid <= 0:
            raise ConfigError(f"eve.sids[{i}]", f"must be > 0, got {sid}")
    if cfg.metrics.listen:
        try:
            host, _ = split_listen(cfg.metrics.listen)
            ipaddress.ip_address(host)
        except ValueError as exc:
            raise ConfigError("metrics.listen",
                              f"{exc} (an address, e.g. 127.0.0.1:9477)") from None
    for i, what in enumerate(cfg.crowdsec.post):
        if what not in CROWDSEC_POST:
            raise ConfigError(f"crowdsec.post[{i}]",
                              f"must be one of {', '.join(CROWDSEC_POST)}, got {what!r}")
    cs = cfg.crowdsec
    if cs.url and not cs.url.startswith(("http://", "https://")):
        raise ConfigError("crowdsec.url", f"expected http://HOST:PORT, got {cs.url!r}")
    if cs.url and not cs.credentials and not (cs.login and cs.password):
        raise ConfigError("crowdsec.url", "needs login and password, or a credentials file")
    a = cfg.alarm
    if a.hold <= d.reorder:
        raise ConfigError("alarm.hold", f"must exceed detect.reorder ({d.reorder:g})")
    if a.max_responses < a.sources:
        raise ConfigError("alarm.max_responses", f"must be >= alarm.sources ({a.sources})")
    name = cfg.block.set_name
    if not name or len(name) > 28 or not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError("block.set_name", "1-28 characters of letters, digits, '-' and '_'")
    for i, kind in enumerate(cfg.fleet.share):
        if kind not in SHARE_KINDS:
            raise ConfigError(f"fleet.share[{i}]", f"must be one of {', '.join(SHARE_KINDS)}")
    for name, url in (("fleet.url", cfg.fleet.url), ("eve.redis", cfg.eve.redis)):
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(name, "a redis://, rediss:// or unix:// URL")


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9477"`` / ``"[::1]:9477"`` -> (host, port); ValueError when malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port)


def sid_set(cfg: Config) -> frozenset[int]:
    """The SIDs the daemon acts on."""
    if cfg.eve.sids:
        return frozenset(cfg.eve.sids)
    return frozenset(range(SID_FIRST, SID_CORE_LAST + 1))


def restart_keys(old: Config, new: Config) -> list[str]:
    """Keys that differ between two configs but only take effect after a restart."""
    out = []
    for section in fields(old):
        a, b = getattr(old, section.name), getattr(new, section.name)
        for f in fields(a):
            if info(f).restart and getattr(a, f.name) != getattr(b, f.name):
                out.append(f"{section.name}.{f.name}")
    return out


def reloadable(old: Config, new: Config) -> Config:
    """``new`` with every restart-only key kept at its running value (what a SIGHUP applies)."""
    sections = {}
    for section in fields(old):
        a, b = getattr(old, section.name), getattr(new, section.name)
        keep = {f.name: getattr(a, f.name) for f in fields(a) if info(f).restart}
        sections[section.name] = replace(b, **keep)
    return Config(**sections)
