"""Configuration: one definition of every key (schema), the loader, and what is made from them.

``from scanguard_ids import config`` gives the frozen dataclasses, :func:`load`,
:func:`from_dict`, :func:`validate` and :func:`sid_set`; :mod:`.render` makes the example file,
the README table and ``scanguard config show`` from the same definitions.
"""

from __future__ import annotations

from scanguard_ids.config.load import (
    file_keys,
    from_dict,
    load,
    reloadable,
    restart_keys,
    sid_set,
    split_listen,
    validate,
)
from scanguard_ids.config.schema import (
    BACKENDS,
    DEFAULT_ALLOWLIST,
    MAX_TTL,
    SECTIONS,
    SID_CORE_LAST,
    SID_FIRST,
    SID_LAST,
    BlockConfig,
    Config,
    ControlConfig,
    DetectConfig,
    EveConfig,
    FastpathConfig,
    FleetConfig,
    JournalConfig,
    MetricsConfig,
    SdnConfig,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_ALLOWLIST",
    "MAX_TTL",
    "SECTIONS",
    "SID_CORE_LAST",
    "SID_FIRST",
    "SID_LAST",
    "BlockConfig",
    "Config",
    "ControlConfig",
    "DetectConfig",
    "EveConfig",
    "FastpathConfig",
    "FleetConfig",
    "JournalConfig",
    "MetricsConfig",
    "SdnConfig",
    "file_keys",
    "from_dict",
    "load",
    "reloadable",
    "restart_keys",
    "sid_set",
    "split_listen",
    "validate",
]
