"""A file rotated while the daemon was down is finished from the checkpoint first."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

from scanguard_ids.eve.checkpoint import Checkpoint
from scanguard_ids.eve.tail import FileTail


def lines(prefix: str, n: int) -> bytes:
    return b"".join(b'{"n": "%s-%d"}\n' % (prefix.encode(), i) for i in range(n))


def first_run(eve: Path, cp_path: Path) -> list[bytes]:
    eve.write_bytes(lines("old", 10))
    cp = Checkpoint(cp_path)
    tail = FileTail(eve, from_start=True, checkpoint=cp)
    got = tail.poll()
    tail.commit()
    cp.save()
    tail.close()
    with eve.open("ab") as f:  # written after our last read: the daemon is down now
        f.write(lines("late", 5))
    return got


def read_all(eve: Path, cp_path: Path) -> list[bytes]:
    tail = FileTail(eve, checkpoint=Checkpoint.load(cp_path), rotate_grace=0.0)
    out: list[bytes] = []
    for _ in range(5):
        out += tail.poll()
    tail.close()
    return out


def test_rename_rotation_while_down(tmp_path: Path) -> None:
    eve, cp = tmp_path / "eve.json", tmp_path / "cp.json"
    assert len(first_run(eve, cp)) == 10
    os.rename(eve, tmp_path / "eve.json.1")
    eve.write_bytes(lines("new", 3))
    got = read_all(eve, cp)
    assert got == lines("late", 5).splitlines() + lines("new", 3).splitlines()


def test_copytruncate_while_down_plain_copy(tmp_path: Path) -> None:
    eve, cp = tmp_path / "eve.json", tmp_path / "cp.json"
    first_run(eve, cp)
    shutil.copyfile(eve, tmp_path / "eve.json.1")  # logrotate copytruncate (delaycompress)
    os.truncate(eve, 0)
    with eve.open("ab") as f:
        f.write(lines("new", 3))
    got = read_all(eve, cp)
    assert got == lines("late", 5).splitlines() + lines("new", 3).splitlines()


def test_copytruncate_compress_loses_the_rest_but_reads_the_new_file(tmp_path: Path) -> None:
    """Debian's stock logrotate for Suricata (copytruncate + compress): the copy is gzipped
    at once, so the rest of the old file is gone; the new file is still read whole."""
    eve, cp = tmp_path / "eve.json", tmp_path / "cp.json"
    first_run(eve, cp)
    with gzip.open(tmp_path / "eve.json.1.gz", "wb") as z:
        z.write(eve.read_bytes())
    os.truncate(eve, 0)
    with eve.open("ab") as f:
        f.write(lines("new", 3))
    assert read_all(eve, cp) == lines("new", 3).splitlines()


def test_an_unrelated_sibling_is_not_taken_for_the_old_file(tmp_path: Path) -> None:
    eve, cp = tmp_path / "eve.json", tmp_path / "cp.json"
    first_run(eve, cp)
    os.unlink(eve)  # gone for good
    (tmp_path / "eve.json.1").write_bytes(lines("other", 20))
    eve.write_bytes(lines("new", 3))
    assert read_all(eve, cp) == lines("new", 3).splitlines()
