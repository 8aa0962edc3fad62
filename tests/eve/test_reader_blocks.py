"""reader.iter_blocks: blocks of whole lines that re-join to exactly the file's lines.

An over-long line (> max_line) comes out once, cut to max_line + 1 bytes (so the decoder
counts it as oversized once), or whole when its newline arrived in the same read that took
it over max_line; the yielded buffer never grows past max_line + 2 * chunk. And
``scanguard replay`` (iter_blocks + Decoder.decode_block, with each reader) counts what the
pure-Python decoder counts line by line.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import io
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scanguard_ids import config
from scanguard_ids.commands import replay as replay_cmd
from scanguard_ids.detect.allowlist import Allowlist
from scanguard_ids.detect.detector import Detector
from scanguard_ids.eve import decode as decode_mod
from scanguard_ids.eve.decode import Decoder
from scanguard_ids.eve.reader import iter_blocks

REPO = Path(__file__).resolve().parents[2]
SAMPLES = [REPO / "bench" / "samples" / "suricata7-eve.jsonl",
           REPO / "tests" / "data" / "eve" / "mixed_scan.eve.json",
           REPO / "tests" / "data" / "eve" / "mixed_scan_raw.eve.json"]


def lines_of(data: bytes) -> list[bytes]:
    """The lines of a file: newline-separated, the last one with or without its newline."""
    if not data:
        return []
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return lines


def read_blocks(path: Path | str, chunk: int, max_line: int) -> list[bytes]:
    """iter_blocks() re-joined into lines, checking each block on the way."""
    out: list[bytes] = []
    blocks = list(_blocks(path, chunk, max_line))
    for i, block in enumerate(blocks):
        if block.endswith(b"\n"):
            out.extend(block[:-1].split(b"\n"))
        else:  # only the file's last line, or a line cut to max_line + 1 bytes
            assert i == len(blocks) - 1 or len(block) == max_line + 1, block
            assert b"\n" not in block
            out.append(block)
    return out


def _blocks(path: Path | str, chunk: int, max_line: int):  # type: ignore[no-untyped-def]
    for buf, start, end in iter_blocks(str(path), chunk, max_line):
        assert 0 <= start < end <= len(buf)
        assert len(buf) <= max_line + 2 * chunk, (len(buf), max_line, chunk)
        yield bytes(buf[start:end])  # the buffer is reused: copy before the next block


def expected(lines: list[bytes], chunk: int, max_line: int, got: list[bytes]) -> None:
    """got == lines, except that an over-long line comes cut (or, if short enough, whole)."""
    assert len(got) == len(lines)
    for want, line in zip(lines, got, strict=True):
        if len(want) <= max_line:
            assert line == want
        elif len(want) >= max_line + chunk:
            assert line == want[: max_line + 1]
        else:
            assert line in (want[: max_line + 1], want), (len(line), len(want))


def write(tmp: Path, data: bytes, gz: bool) -> Path:
    path = tmp / ("eve.json.gz" if gz else "eve.json")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# ---------------------------------------------------------------------------------------------

LINE = st.binary(max_size=30).map(lambda b: b.replace(b"\n", b""))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINE, max_size=30), st.booleans(), st.integers(1, 64), st.integers(1, 80),
       st.lists(st.tuples(st.integers(0, 30), st.integers(1, 700)), max_size=2), st.booleans())
def test_blocks_rejoin_to_the_lines(tmp_path_factory: pytest.TempPathFactory, lines: list[bytes],
                                    newline: bool, chunk: int, max_line: int,
                                    long_lines: list[tuple[int, int]], gz: bool) -> None:
    lines = list(lines)
    for where, size in long_lines:
        lines.insert(min(where, len(lines)), bytes([65 + where % 26]) * (max_line + size))
    data = b"\n".join(lines)
    if lines and (newline or not lines[-1]):
        data += b"\n"
    assume(gz or not data.startswith(b"\x1f\x8b"))  # a plain file with gzip's magic is read as gzip
    path = write(tmp_path_factory.mktemp("blocks"), data, gz)
    assert lines_of(data) == lines
    expected(lines, chunk, max_line, read_blocks(path, chunk, max_line))


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("chunk", range(1, 65))
def test_real_lines_in_every_chunk_size(tmp_path: Path, chunk: int, gz: bool) -> None:
    """Lines spanning chunk boundaries, an over-long line in the middle, no final newline."""
    real = SAMPLES[0].read_bytes().splitlines()[:30]
    max_line = 1200
    long = b'{"event_type":"flow","x":"' + b"y" * 5000 + b'"}'  # > max_line and many chunks
    lines = real[:15] + [long] + real[15:] + [b"", b"", real[0]]
    path = write(tmp_path, b"\n".join(lines), gz)
    got = read_blocks(path, chunk, max_line)
    assert got == lines[:15] + [long[: max_line + 1]] + lines[16:]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
@pytest.mark.parametrize("data,lines", [
    (b"", []),
    (b"\n", [b""]),
    (b"\n\n\n", [b"", b"", b""]),
    (b"a", [b"a"]),
    (b"a\n", [b"a"]),
    (b"a\nb", [b"a", b"b"]),
    (b"\nab\n\ncd", [b"", b"ab", b"", b"cd"]),
    (b"0123456789\n", [b"0123456789"]),  # exactly max_line: not over-long
])
def test_small_files(tmp_path: Path, chunk: int, data: bytes, lines: list[bytes]) -> None:
    for gz in (False, True):
        assert read_blocks(write(tmp_path, data, gz), chunk, 10) == lines


def test_an_empty_file_yields_nothing(tmp_path: Path) -> None:
    assert list(iter_blocks(str(write(tmp_path, b"", False)), 4, 10)) == []
    assert list(iter_blocks(str(write(tmp_path, b"", True)), 4, 10)) == []


@pytest.mark.parametrize("chunk", [1, 5, 16, 64])
def test_over_long_lines(tmp_path: Path, chunk: int) -> None:
    max_line = 10
    cut = max_line + 1
    cases = [
        (b"x" * 500, [b"x" * cut]),  # the only line, no newline
        (b"x" * 500 + b"\n", [b"x" * cut]),
        (b"a\n" + b"x" * 500 + b"\nb\n", [b"a", b"x" * cut, b"b"]),
        (b"a\n" + b"x" * 500, [b"a", b"x" * cut]),
        (b"x" * 500 + b"\n" + b"y" * 500 + b"\n\n", [b"x" * cut, b"y" * cut, b""]),
    ]
    for data, want in cases:
        for gz in (False, True):
            assert read_blocks(write(tmp_path, data, gz), chunk, max_line) == want


def test_just_over_max_line(tmp_path: Path) -> None:
    """max_line + 1 bytes: passed on whole or cut, either way exactly max_line + 1 bytes."""
    for chunk in range(1, 20):
        got = read_blocks(write(tmp_path, b"a\n" + b"x" * 11 + b"\nb", False), chunk, 10)
        assert got == [b"a", b"x" * 11, b"b"]


def test_memory_stays_bounded(tmp_path: Path) -> None:
    max_line, chunk = 100, 16
    data = b"\n".join([b"s" * 50, b"L" * 100_000, b"s" * 99, b"M" * 3000, b"t"]) + b"\n"
    path = write(tmp_path, data, False)
    sizes = [len(buf) for buf, _s, _e in iter_blocks(str(path), chunk, max_line)]
    assert max(sizes) <= max_line + 2 * chunk
    assert read_blocks(path, chunk, max_line) == [b"s" * 50, b"L" * 101, b"s" * 99, b"M" * 101,
                                                  b"t"]


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"a\n" + b"x" * 100 + b"\nbc"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert read_blocks("-", 4, 10) == [b"a", b"x" * 11, b"bc"]


# ---------------------------------------------------------------------------------------------
# decoding whole files: iter_blocks + decode_block (C) == line-by-line decode (Python)

SIDS = config.sid_set(config.Config())


def _corpus() -> bytes:
    lines: list[bytes] = []
    for path in SAMPLES:
        lines += path.read_bytes().splitlines()
    lines[10:10] = [b"", b"garbage", b"\xff\xfe", b'{"event_type":"alert"}']
    lines[40:40] = [b'{"event_type":"flow","x":"' + b"y" * 3000 + b'"}']  # over 1024 bytes
    return b"\n".join(lines) + b"\n"


def _line_by_line(data: bytes, cfg: config.Config) -> tuple[Decoder, list, list]:
    dec = Decoder(config.sid_set(cfg), cfg.eve.max_line_bytes, accel=False)
    det = Detector(cfg.detect, Allowlist(cfg.detect.allowlist))
    events, decisions = [], []
    for line in lines_of(data):
        ev = dec.decode(line)
        if ev is not None:
            events.append(ev)
            d = det.feed(ev)
            if d is not None:
                decisions.append(d)
    return dec, events, decisions


@pytest.mark.parametrize("reader", decode_mod.READERS)
@pytest.mark.parametrize("chunk", [1, 13, 64, 4096])
def test_blocks_decode_like_lines(tmp_path: Path, chunk: int, reader: str) -> None:
    data = _corpus()
    cfg = config.Config(eve=config.EveConfig(max_line_bytes=1024))
    ref, want, _ = _line_by_line(data, cfg)
    for gz in (False, True):
        dec = Decoder(SIDS, 1024, reader=reader)
        got = []
        for buf, start, end in iter_blocks(str(write(tmp_path, data, gz)), chunk, 1024):
            got += dec.decode_block(buf, start, end)
        assert got == want
        assert dataclasses.asdict(dec.stats) == dataclasses.asdict(ref.stats)
        assert ref.stats.oversized > 1 and ref.stats.alerts > 20


@pytest.mark.parametrize("reader", decode_mod.READERS)
@pytest.mark.parametrize("max_line", [1024, 1_048_576])
@pytest.mark.parametrize("chunk", [None, 97])
def test_replay_counts_like_line_by_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         max_line: int, chunk: int | None, reader: str) -> None:
    data = _corpus() + b"z" * (max_line + 10) + b"\n" + SAMPLES[1].read_bytes()
    path = write(tmp_path, data, gz=chunk is None)
    if chunk is not None:
        monkeypatch.setattr(replay_cmd, "iter_blocks", functools.partial(iter_blocks, chunk=chunk))
    cfg = config.Config(eve=config.EveConfig(max_line_bytes=max_line))
    result, decoder, _det = replay_cmd.replay([str(path)], cfg, reader=reader)
    ref, events, decisions = _line_by_line(data, cfg)
    assert decoder.reader == reader
    assert result.lines == ref.stats.lines == len(lines_of(data))
    assert decoder.stats.alerts == ref.stats.alerts == len(events)
    assert dataclasses.asdict(decoder.stats) == dataclasses.asdict(ref.stats)
    assert result.decisions == decisions and decisions


def test_damaged_gzip_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A truncated .gz, or a plain file that starts like one: one line naming the file, exit 1."""
    from scanguard_ids import cli
    from scanguard_ids.eve.reader import ReaderError

    full = gzip.compress(b"".join(b'{"event_type":"flow","n":%d}\n' % i for i in range(5000)))
    cases = {"truncated.gz": full[: len(full) // 2], "fake.gz": b"\x1f\x8bnot gzip at all\n"}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ReaderError, match=name):
            for _ in iter_blocks(str(path)):
                pass
        assert cli.main(["replay", str(path)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(f"scanguard replay: {path}: damaged gzip data"), err
