"""The checkpoint's disk writes never hold up a reader.

Recording a position (``Checkpoint.set``, called by the file reader after every batch) must
not wait for a write in progress: fsyncs on a busy sensor disk take tens of milliseconds or
more. And in the daemon, the reader thread does not write the checkpoint at all: the
housekeeping thread does.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from scanguard_ids.eve.checkpoint import Checkpoint, Position
from scanguard_ids.eve.tail import TailSource

SLOW_WRITE_S = 0.5


class SlowDisk(Checkpoint):
    """A checkpoint whose writes take SLOW_WRITE_S and record which thread made them."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writers: list[str] = []
        self.writing = threading.Event()

    def _write(self, data: bytes) -> None:
        self.writers.append(threading.current_thread().name)
        self.writing.set()
        time.sleep(SLOW_WRITE_S)
        super()._write(data)


def test_set_does_not_wait_for_a_write_in_progress(tmp_path: Path) -> None:
    cp = SlowDisk(tmp_path / "cp.json")
    cp.set("/eve.json", Position(1, 2, 100))
    saver = threading.Thread(target=cp.save)
    saver.start()
    assert cp.writing.wait(5)
    t0 = time.monotonic()
    cp.set("/eve.json", Position(1, 2, 200))  # while the first save is in its write
    took = time.monotonic() - t0
    saver.join(5)
    assert took < SLOW_WRITE_S / 5, took
    # The write in progress had the old position; the new one makes it dirty again.
    assert json.loads(cp.path.read_bytes())["files"]["/eve.json"]["offset"] == 100
    assert cp.dirty
    assert cp.save()
    assert json.loads(cp.path.read_bytes())["files"]["/eve.json"]["offset"] == 200
    assert not cp.dirty


def test_a_failed_write_leaves_it_dirty(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    cp = Checkpoint(blocker / "cp.json")  # its parent is a file: the write fails
    cp.set("/eve.json", Position(1, 2, 100))
    assert not cp.save()
    assert cp.dirty and cp.save_errors == 1


def test_reader_without_interval_leaves_saving_to_its_owner(tmp_path: Path) -> None:
    """checkpoint_interval=None (what the daemon passes): lines flow while nobody saves,
    and a save by another thread (housekeeping) does not hold the reader up."""
    eve = tmp_path / "eve.json"
    eve.write_bytes(b"")
    cp = SlowDisk(tmp_path / "cp.json")
    got: list[bytes] = []
    src = TailSource(
        eve, lambda lines, name: got.extend(lines), checkpoint=cp, checkpoint_interval=None,
        poll_interval=0.05, name="reader",
    )
    src.start()
    try:
        with eve.open("ab", buffering=0) as fh:
            for i in range(20):
                fh.write(b'{"n":%d}\n' % i)
                time.sleep(0.01)
            deadline = time.monotonic() + 5
            while len(got) < 20 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(got) == 20
            assert cp.writers == []  # the reader wrote nothing itself
            assert cp.dirty
            saver = threading.Thread(target=cp.save, name="housekeeping")
            saver.start()
            assert cp.writing.wait(5)
            t0 = time.monotonic()
            fh.write(b'{"n":20}\n')  # read and committed while the save sleeps
            while len(got) < 21 and time.monotonic() - t0 < 5:
                time.sleep(0.005)
            took = time.monotonic() - t0
            saver.join(5)
        assert len(got) == 21 and took < SLOW_WRITE_S / 2, took
        assert cp.writers == ["housekeeping"]
    finally:
        src.stop()
        src.join(10)
    # At stop, the reader still saves what it delivered (a clean stop repeats nothing).
    assert json.loads(cp.path.read_bytes())["files"][str(eve)]["offset"] == eve.stat().st_size
