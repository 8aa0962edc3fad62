"""EVE timestamps <-> epoch seconds, without regexes or the slow strptime path."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_eve_ts(text: str) -> float:
    """Parse Suricata's '2026-11-25T20:13:04.123456+0000' into epoch seconds.

    Raises ValueError on anything else.
    """
    # Python 3.11's fromisoformat wants "+00:00"; Suricata writes "+0000".
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def iso(ts: float) -> str:
    """Epoch seconds -> ISO 8601 in UTC with microseconds, as EVE writes it."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
