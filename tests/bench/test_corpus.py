"""The benchmark corpus generator writes valid EVE JSON lines shaped like Suricata 7's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scanguard_ids import config
from scanguard_ids.eve.decode import Decoder

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "bench" / "samples" / "suricata7-eve.jsonl"


def _generate(tmp_path: Path, name: str, lines: int) -> tuple[Path, dict]:
    out = tmp_path / f"{name}.eve.json"
    res = subprocess.run(
        [sys.executable, "-m", "bench.corpus", name, "--lines", str(lines), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out, json.loads(res.stdout.strip().splitlines()[-1])


def _real_orders() -> dict[str, set[tuple[str, ...]]]:
    orders: dict[str, set[tuple[str, ...]]] = {}
    for line in SAMPLES.read_text().splitlines():
        doc = json.loads(line)
        orders.setdefault(doc["event_type"], set()).add(tuple(doc))
    return orders


def _in_order(keys: tuple[str, ...], real: set[tuple[str, ...]]) -> bool:
    """True if the keys appear in the same relative order as in some real event of the type."""
    for ref in real:
        pos = {k: i for i, k in enumerate(ref)}
        known = [pos[k] for k in keys if k in pos]
        if known == sorted(known) and keys[:4] == ref[:4]:
            return True
    return False


@pytest.mark.parametrize(("name", "lines"), [("mixed", 3000), ("alerts", 300)])
def test_corpus_lines_are_compact_json_in_suricata_key_order(
    tmp_path: Path, name: str, lines: int
) -> None:
    path, meta = _generate(tmp_path, name, lines)
    raw = path.read_bytes().split(b"\n")
    assert raw[-1] == b""
    raw = raw[:-1]
    assert len(raw) == meta["lines"] == lines
    real = _real_orders()
    seen: set[str] = set()
    for line in raw:
        doc = json.loads(line)
        assert (
            json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode() == line
        )  # compact
        et = doc["event_type"]
        seen.add(et)
        if et in real:
            assert _in_order(tuple(doc), real[et]), (
                f"{et} keys out of Suricata's order: {list(doc)}"
            )
    assert "alert" in seen
    if name == "mixed":
        assert {"flow", "dns", "tls", "http", "fileinfo", "stats"} <= seen


def test_corpus_alerts_decode_with_their_probed_port(tmp_path: Path) -> None:
    path, meta = _generate(tmp_path, "alerts", 3000)
    decoder = Decoder(config.sid_set(config.Config()))
    events = [decoder.decode(line) for line in path.read_bytes().splitlines()]
    assert all(ev is not None for ev in events)
    assert decoder.stats.alerts == meta["alerts"] == 3000
    assert decoder.stats.no_port == 0  # TCP src_port, or the ICMP error's quoted probe
    kinds = {ev.kind for ev in events if ev is not None}
    assert len(kinds) == 3
