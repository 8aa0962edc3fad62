"""nmap-services parsing and the victim's port choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanguard_ids.lab import ports

SAMPLE = """\
# Fields in this file are: Service name, portnum/protocol, open-frequency, optional comments
#
tcpmux\t1/tcp\t0.001995\t# TCP Port Service Multiplexer
http\t80/tcp\t0.484143\t# World Wide Web HTTP
http\t80/udp\t0.035767
ssh\t22/tcp\t0.182286\t# Secure Shell Login
telnet\t23/tcp\t0.221265
domain\t53/udp\t0.213496
unknown\t0/tcp\t0.900000
tie-b\t9/tcp\t0.001995
broken line without fields
bad\tx/tcp\t0.5
bad\t70000/tcp\t0.5
sctp-thing\t80/sctp\t0.9
"""


def test_parse_services_skips_comments_and_junk() -> None:
    entries = ports.parse_services(SAMPLE.splitlines())
    assert [(e.port, e.proto) for e in entries] == [
        (1, "tcp"), (80, "tcp"), (80, "udp"), (22, "tcp"), (23, "tcp"), (53, "udp"),
        (0, "tcp"), (9, "tcp"), (80, "sctp")]
    assert entries[1] == ports.ServiceEntry("http", 80, "tcp", 0.484143)


@pytest.mark.parametrize(("proto", "expected"), [
    ("tcp", [0, 80, 23, 22, 1, 9]),  # ties by port number
    ("udp", [53, 80]),
    ("sctp", [80]),
])
def test_by_frequency(proto: str, expected: list[int]) -> None:
    assert ports.by_frequency(ports.parse_services(SAMPLE.splitlines()), proto) == expected


def test_top_ports_excludes_port_zero(tmp_path: Path) -> None:
    f = tmp_path / "nmap-services"
    f.write_text(SAMPLE)
    assert ports.top_ports("tcp", 3, path=f) == [80, 23, 22]
    assert ports.top_ports("udp", 100, path=f) == [53, 80]


@pytest.mark.parametrize(("given", "spec"), [
    ([], ""), ([5], "5"), ([1, 2, 3, 7], "1-3,7"), ([7, 3, 2, 1, 3], "1-3,7"),
    (range(0, 65_536), "0-65535"), ([1, 3, 5], "1,3,5"), ([9, 10, 12, 13, 14], "9-10,12-14"),
])
def test_to_ranges(given: list[int], spec: str) -> None:
    assert ports.to_ranges(given) == spec


@pytest.mark.skipif(not ports.NMAP_SERVICES.exists(), reason="nmap-services not installed")
@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_real_nmap_services_top_100(proto: str) -> None:
    top = ports.top_ports(proto, 100)
    assert len(top) == len(set(top)) == 100
    assert 0 not in top
    assert (80 if proto == "tcp" else 161) in top
    assert top[0] == (80 if proto == "tcp" else 631)  # nmap's most frequent ports
