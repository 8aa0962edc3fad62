"""The victim's open ports: the most popular TCP and UDP ports by nmap's own frequency table.

The paper opened "100 TCP and UDP ports ... selected by popularity" from its trap
servers; the lab uses the same idea with the open-frequency column of
``/usr/share/nmap/nmap-services`` (``name  port/proto  frequency  # comment``), which is
also what ``nmap --top-ports`` uses. Ties are broken by port number, so the choice is
deterministic for a given nmap-services file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

NMAP_SERVICES = Path("/usr/share/nmap/nmap-services")


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    name: str
    port: int
    proto: str
    frequency: float


def parse_services(lines: Iterable[str]) -> list[ServiceEntry]:
    """Entries of an nmap-services file; comments and malformed lines are skipped."""
    out: list[ServiceEntry] = []
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 3 or "/" not in parts[1]:
            continue
        port_s, proto = parts[1].split("/", 1)
        try:
            port, freq = int(port_s), float(parts[2])
        except ValueError:
            continue
        if 0 <= port <= 65535 and proto in ("tcp", "udp", "sctp"):
            out.append(ServiceEntry(parts[0], port, proto, freq))
    return out


def by_frequency(entries: Iterable[ServiceEntry], proto: str) -> list[int]:
    """All listed ports of ``proto``, most frequent first (ties: lower port first)."""
    best: dict[int, float] = {}
    for e in entries:
        if e.proto == proto:
            best[e.port] = max(best.get(e.port, 0.0), e.frequency)
    return sorted(best, key=lambda p: (-best[p], p))


def top_ports(proto: str, n: int = 100, path: Path = NMAP_SERVICES,
              exclude: Iterable[int] = (0,)) -> list[int]:
    """The ``n`` most popular ``proto`` ports of nmap's table (port 0 excluded: nothing
    can listen on it)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        ranked = by_frequency(parse_services(fh), proto)
    skip = set(exclude)
    return [p for p in ranked if p not in skip][:n]


def to_ranges(ports: Iterable[int]) -> str:
    """Compact nmap port spec: [1, 2, 3, 7] -> "1-3,7"."""
    srt = sorted(set(ports))
    parts: list[str] = []
    i = 0
    while i < len(srt):
        j = i
        while j + 1 < len(srt) and srt[j + 1] == srt[j] + 1:
            j += 1
        parts.append(str(srt[i]) if i == j else f"{srt[i]}-{srt[j]}")
        i = j + 1
    return ",".join(parts)
