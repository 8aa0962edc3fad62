"""`scanguard lab --fleet --ports`: the fleet lab's own default, and an explicit count is
taken as given (65536 used to be read as the default, 100)."""

from __future__ import annotations

import pytest

from scanguard_ids.cli import build_parser
from scanguard_ids.commands import lab
from scanguard_ids.errors import ConfigError


def _args(*argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args(["lab", *argv])


def test_ports_default_is_per_lab() -> None:
    assert _args().ports is None and _args("--fleet").ports is None
    assert (lab.HOST_PORTS, lab.FLEET_PORTS) == ((65_536,), 100)
    assert _args("--fleet", "--ports", "300").ports == (300,)


@pytest.mark.parametrize("ports", ["65536", "100,200", "1"])
def test_fleet_lab_refuses_what_it_cannot_scan(ports: str) -> None:
    with pytest.raises(ConfigError, match="--ports"):
        lab.run_fleet(_args("--fleet", "--ports", ports))
