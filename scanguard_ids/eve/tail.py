"""Follow Suricata's eve.json as raw byte lines (decoding is eve/decode.py's job).

Modelled on fail2ban's FileContainer: the tail tracks (inode, offset), reopens on a new
inode or a shrunk file and holds a partial last line until its newline arrives. File
events (watchdog / inotify) only *wake* the reader; a slow poll is the fallback.

Rotation, as done by Suricata itself or logrotate:

* rename + create (logrotate ``create`` + SIGHUP, Suricata reopens on its next write): the
  path gets a new inode. The old handle is read to its end first; it is left only once the
  new file holds data (the single writer has moved on, nothing more will land in the old
  one) or after ``rotate_grace`` seconds without growth. The new file is read from 0.
  No line is lost or delivered twice (unless a file is created *and* rotated away again
  before the reader looks at the path: no path-following tailer can see that one).
* copytruncate: the file shrinks below our offset (or its first bytes change) and is read
  again from 0; nothing is delivered twice. Lost, as with every tailer: lines written
  between logrotate's copy and its truncate (in neither file), and lines not read yet when
  the truncate comes (only in the copy). Prefer ``create``.

Rotated while the daemon was down (the checkpoint names a file the path no longer is):
the rotated file is looked up beside the path (``eve.json.1``, ``eve.json.2``...: same
inode for rename rotation, same first bytes for a copytruncate copy), finished from the
checkpoint, and then the path is read from 0. A compressed copy (Debian's stock
``copytruncate`` + ``compress`` gives ``eve.json.1.gz`` at once) is not read: its rest
is lost; ``delaycompress`` keeps ``eve.json.1`` plain for one cycle (docs/security.md).

A line is delivered without its newline once the newline arrives. Bytes that can never be
completed (the end of a rotated-away or truncated file) are delivered as a last line and
counted as ``unterminated``. Lines longer than ``max_line_bytes`` are dropped (counted as
``oversized``) and the reader resynchronises on the next newline. Empty lines are skipped.

Only a regular file is read: the path is opened with O_NONBLOCK (a FIFO cannot hang the
open) and a directory, FIFO, device or socket is refused with one warning; health() then
says ``ok=False`` and why, as it does for a file that cannot be opened (permissions).
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import stat
import threading
from dataclasses import dataclass

from scanguard_ids.clock import Clock, SystemClock
from scanguard_ids.eve.checkpoint import HEAD_BYTES, Checkpoint, Position, head_digest
from scanguard_ids.eve.lines import DEFAULT_MAX_LINE, LineSplitter, RateMeter, Sink
from scanguard_ids.eve.source import SourceHealth
from scanguard_ids.eve.watch import Wakeup, Watcher

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20  # one read() call
MAX_BATCH_BYTES = 8 << 20  # one poll() returns after reading at most this much


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a file"


@dataclass(slots=True)
class TailStats:
    lines: int = 0
    bytes: int = 0
    rotations: int = 0
    truncations: int = 0
    oversized: int = 0
    unterminated: int = 0
    reopen_errors: int = 0
    lag_bytes: int = 0


@dataclass(slots=True)
class _OpenFile:
    fd: int
    dev: int
    ino: int
    offset: int  # next byte to read
    head: bytes = b""  # first bytes of the file (fingerprint)
    size: int = 0  # size at the last fstat


class FileTail:
    """Non-blocking reader of one growing file; see the module docstring.

    The first open (``open()``, or the first ``poll()``) resumes from the checkpoint when
    its entry still describes the file, else starts at the end (``from_start=False``; at
    the start of the line being written) or at 0. Files that appear later and files
    that replace a rotated one are always read from 0.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        from_start: bool = False,
        max_line_bytes: int = DEFAULT_MAX_LINE,
        checkpoint: Checkpoint | None = None,
        mismatch_from_start: bool = True,
        rotate_grace: float = 5.0,
        read_size: int = READ_SIZE,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        clock: Clock | None = None,
    ) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.from_start = from_start
        self.checkpoint = checkpoint
        self.mismatch_from_start = mismatch_from_start
        self.rotate_grace = rotate_grace
        self.read_size = read_size
        self.max_batch_bytes = max_batch_bytes
        self.stats = TailStats()
        self._clock = clock or SystemClock()
        self._splitter = LineSplitter(max_line_bytes)
        self._cur: _OpenFile | None = None
        #: the last poll() stopped at max_batch_bytes: more is available right now
        self.pending = False
        self._opened_once = False
        self._stuck_since: float | None = None  # rotation seen, old file not yet left
        self._open_error: int | None = None  # errno of the last failed open (log once)
        #: why the path cannot be read ("is a directory", "Permission denied"...), else None
        self.problem: str | None = None
        self._digest: tuple[bytes, str] = (b"", head_digest(b""))  # (head, its digest)

    # -- public -------------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return self._cur is not None or os.path.exists(self.path)

    @property
    def is_open(self) -> bool:
        return self._cur is not None

    def open(self) -> bool:
        """Do the first open now if the file exists (no reading). True if a file is open."""
        if self._cur is None:
            self._open(initial=not self._opened_once)
        return self._cur is not None

    def position(self) -> tuple[int, int]:
        """(inode, offset) just past the last line handed out; (0, 0) with no file open."""
        cur = self._cur
        if cur is None:
            return (0, 0)
        return (cur.ino, cur.offset - self._splitter.held)

    def poll(self) -> list[bytes]:
        """Read what is available now (at most max_batch_bytes) and return complete lines."""
        out: list[bytes] = []
        self.pending = False
        if self._cur is None and not self.open():
            return out
        cur = self._cur
        assert cur is not None
        budget = self.max_batch_bytes
        path_id, path_size = self._stat_path()
        if path_id != (cur.dev, cur.ino):
            read, eof = self._read(cur, out, budget)
            budget -= read
            if eof and self._should_leave(read, path_id, path_size):
                self._leave(cur, out, rotated=path_id is not None)
                if path_id is not None and self._open(initial=False):
                    cur = self._cur
                    assert cur is not None
                    self._check_truncation(cur, out)
                    eof = self._read(cur, out, budget)[1]
            self.pending = not eof
        else:
            self._stuck_since = None
            self._check_truncation(cur, out)
            self.pending = not self._read(cur, out, budget)[1]
        self._finish_stats(out)
        return out

    def commit(self) -> None:
        """Record the delivered position in the checkpoint (in memory; Checkpoint.save
        writes it). Call it once the lines poll() returned are handled."""
        cur = self._cur
        if self.checkpoint is None or cur is None:
            return
        offset = cur.offset - self._splitter.held
        head = cur.head[: min(len(cur.head), offset)]
        cached, digest = self._digest
        if cached != head:
            digest = head_digest(head)
            self._digest = (head, digest)
        self.checkpoint.set(self.path, Position(cur.dev, cur.ino, offset, digest, len(head)))

    def close(self) -> None:
        if self._cur is not None:
            os.close(self._cur.fd)
            self._cur = None

    # -- internals ----------------------------------------------------------------------

    def _stat_path(self) -> tuple[tuple[int, int] | None, int]:
        try:
            st = os.stat(self.path)
        except OSError:
            return None, 0
        return (st.st_dev, st.st_ino), st.st_size

    def _open(self, *, initial: bool) -> bool:
        self._opened_once = True
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below)
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                raise OSError(errno.EINVAL, f"not a regular file ({_kind(st.st_mode)})")
        except FileNotFoundError:
            self.problem = None
            return False
        except OSError as exc:
            self.stats.reopen_errors += 1
            self.problem = exc.strerror or str(exc)
            if self._open_error != exc.errno:
                log.warning("eve_open_failed path=%s error=%s", self.path, self.problem)
            self._open_error = exc.errno
            return False
        self._open_error = None
        self.problem = None
        cur = _OpenFile(fd, st.st_dev, st.st_ino, 0, size=st.st_size)
        cur.head = os.pread(fd, HEAD_BYTES, 0)
        if initial:
            rotated = self._rotated_while_down(cur)
            if rotated is not None:
                os.close(fd)  # the path is read from 0 once the rotated file is finished
                cur = rotated
            else:
                cur.offset = self._initial_offset(cur)
        self._cur = cur
        log.info(
            "eve_opened path=%s inode=%d offset=%d size=%d",
            self.path,
            cur.ino,
            cur.offset,
            cur.size,
        )
        return True

    def _initial_offset(self, cur: _OpenFile) -> int:
        saved = self.checkpoint.get(self.path) if self.checkpoint is not None else None
        if saved is not None:
            same = (
                (saved.dev, saved.inode) == (cur.dev, cur.ino)
                and cur.size >= saved.offset
                and len(cur.head) >= saved.head_len
                and (not saved.head or head_digest(cur.head[: saved.head_len]) == saved.head)
            )
            if same:
                log.info("eve_resume path=%s inode=%d offset=%d", self.path, cur.ino, saved.offset)
                return saved.offset
            start = 0 if self.mismatch_from_start else self._end_offset(cur)
            log.info(
                "eve_checkpoint_mismatch path=%s saved_inode=%d inode=%d saved_offset=%d"
                " size=%d start=%d",
                self.path,
                saved.inode,
                cur.ino,
                saved.offset,
                cur.size,
                start,
            )
            return start
        return 0 if self.from_start else self._end_offset(cur)

    def _rotated_while_down(self, cur: _OpenFile) -> _OpenFile | None:
        """The checkpointed file was rotated while we were not running: find it beside the
        path (``eve.json.1``...) and resume it at the checkpoint, so its rest is not lost.

        Rename rotation: the sibling has the checkpoint's (dev, inode). copytruncate: the
        path shrank or changed; the copy has another inode but the checkpoint's first bytes
        and at least its offset. Compressed copies (``.gz``...) are not read.
        """
        saved = self.checkpoint.get(self.path) if self.checkpoint is not None else None
        if saved is None:
            return None
        if (saved.dev, saved.inode) == (cur.dev, cur.ino) and cur.size >= saved.offset and (
            not saved.head or head_digest(cur.head[: saved.head_len]) == saved.head
        ):
            return None  # still the same file: resumed as usual
        folder, base = os.path.split(self.path)
        try:
            names = sorted(n for n in os.listdir(folder)
                           if n.startswith(base + ".") and n[len(base) + 1:].isdigit())
        except OSError:
            return None
        for name in names:
            full = os.path.join(folder, name)
            try:
                fd = os.open(full, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW)
            except OSError:
                continue
            st = os.fstat(fd)
            head = os.pread(fd, HEAD_BYTES, 0) if stat.S_ISREG(st.st_mode) else b""
            same_inode = (st.st_dev, st.st_ino) == (saved.dev, saved.inode)
            same_head = bool(saved.head) and len(head) >= saved.head_len and \
                head_digest(head[: saved.head_len]) == saved.head
            if (stat.S_ISREG(st.st_mode) and st.st_size >= saved.offset
                    and (same_inode or (saved.head_len and same_head))
                    and (not saved.head or same_head)):
                log.info("eve_resume_rotated path=%s rotated=%s inode=%d offset=%d size=%d",
                         self.path, full, st.st_ino, saved.offset, st.st_size)
                old = _OpenFile(fd, st.st_dev, st.st_ino, saved.offset, size=st.st_size)
                old.head = head
                return old
            os.close(fd)
        return None

    def _end_offset(self, cur: _OpenFile) -> int:
        """Start of the line being written at the end of the file (so it is read whole)."""
        pos, step = cur.size, 65_536
        limit = max(0, cur.size - self._splitter.max_line_bytes - 1)
        while pos > limit:
            lo = max(limit, pos - step)
            nl = os.pread(cur.fd, pos - lo, lo).rfind(b"\n")
            if nl >= 0:
                return lo + nl + 1
            pos = lo
        if limit == 0:
            return 0
        self._splitter.skip_to_next_line()  # an oversized line is being written: skip it
        return cur.size

    def _read(self, cur: _OpenFile, out: list[bytes], budget: int) -> tuple[int, bool]:
        """Read up to budget bytes into lines. Returns (bytes read, reached end of file)."""
        total = 0
        while total < budget:
            want = min(self.read_size, budget - total)
            try:
                data = os.pread(cur.fd, want, cur.offset)
            except OSError as exc:
                self.stats.reopen_errors += 1
                log.warning("eve_read_failed path=%s error=%s", self.path, exc.strerror)
                return total, True
            if data and cur.head and os.pread(cur.fd, len(cur.head), 0) != cur.head:
                # Truncated (copytruncate) while we read: these bytes are the new content seen
                # at the old offset. Drop them; they are read again from offset 0.
                self._truncated(cur, out, len(data))
                continue
            cur.offset += len(data)
            total += len(data)
            self.stats.bytes += len(data)
            if data:
                self._splitter.feed(data, out)
                if len(cur.head) < HEAD_BYTES and cur.offset > len(cur.head):
                    cur.head = os.pread(cur.fd, HEAD_BYTES, 0)
            if len(data) < want:
                return total, True
        return total, False

    def _check_truncation(self, cur: _OpenFile, out: list[bytes]) -> None:
        """copytruncate: the file shrank below our offset, or its first bytes changed."""
        size = os.fstat(cur.fd).st_size
        grew, cur.size = size != cur.size, size
        truncated = size < cur.offset
        if not truncated and grew and cur.head:
            truncated = os.pread(cur.fd, len(cur.head), 0) != cur.head
        if truncated:
            self._truncated(cur, out, size)

    def _truncated(self, cur: _OpenFile, out: list[bytes], size: int) -> None:
        self.stats.truncations += 1
        log.info("eve_truncated path=%s inode=%d offset=%d size=%d", self.path, cur.ino,
                 cur.offset, size)
        if self._splitter.flush(out):
            self.stats.unterminated += 1
        cur.offset = 0
        cur.head = os.pread(cur.fd, HEAD_BYTES, 0)

    def _should_leave(self, read: int, path_id: tuple[int, int] | None, path_size: int) -> bool:
        """The path points elsewhere; may the old file be left now that it is read out?"""
        if path_id is not None and path_size > 0:
            return True  # the writer has moved to the new file
        now = self._clock.monotonic()
        if read or self._stuck_since is None:
            self._stuck_since = now
        return now - self._stuck_since >= self.rotate_grace

    def _leave(self, cur: _OpenFile, out: list[bytes], *, rotated: bool) -> None:
        if self._splitter.flush(out):
            self.stats.unterminated += 1
        os.close(cur.fd)
        self._cur = None
        self._stuck_since = None
        if rotated:
            self.stats.rotations += 1
            log.info(
                "eve_rotated path=%s old_inode=%d old_offset=%d", self.path, cur.ino, cur.offset
            )
        else:
            log.info("eve_file_gone path=%s inode=%d offset=%d", self.path, cur.ino, cur.offset)

    def _finish_stats(self, out: list[bytes]) -> None:
        st = self.stats
        st.lines += len(out)
        st.oversized = self._splitter.oversized
        cur = self._cur
        if cur is not None:
            st.lag_bytes = max(0, cur.size - cur.offset)


class TailSource:
    """A thread that follows one file and hands batches of lines to sink(lines, name).

    Offsets are committed to the checkpoint only after sink() returned for the batch,
    and the checkpoint is written at most every `checkpoint_interval` seconds and at
    stop, so after a crash at most that many seconds of lines are delivered twice, and
    after a clean stop none. `checkpoint_interval` None: the owner saves the checkpoint
    (the daemon does, from its housekeeping thread, so that a slow fsync never delays
    this thread's reading). ``watch`` picks the Watcher backend ("inotify", "watchdog",
    "poll"); the poll interval is always the fallback. An event after a quiet spell is
    read at once (~0.1 ms); while the file is busy, reads are at least
    `min_read_interval` apart so lines arrive in batches.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sink: Sink,
        *,
        name: str | None = None,
        from_start: bool = False,
        max_line_bytes: int = DEFAULT_MAX_LINE,
        checkpoint: Checkpoint | None = None,
        poll_interval: float = 1.0,
        checkpoint_interval: float | None = 1.0,
        watch: str = "inotify",
        min_read_interval: float = 0.0005,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self.min_read_interval = min_read_interval
        self.tail = FileTail(
            path,
            from_start=from_start,
            max_line_bytes=max_line_bytes,
            checkpoint=checkpoint,
            clock=self._clock,
        )
        self.name = name or self.tail.path
        self.sink = sink
        self.checkpoint = checkpoint
        self.poll_interval = poll_interval
        self.checkpoint_interval = checkpoint_interval
        self.sink_errors = 0
        self.last_read: float | None = None
        self._wakeup = Wakeup()
        self._stop = threading.Event()
        self._watcher = Watcher([self.tail.path], self._wakeup, watch)
        self._rate = RateMeter()
        self._last_drain = 0.0
        self._thread = threading.Thread(
            target=self._run, name=f"eve-tail:{os.path.basename(self.tail.path)}", daemon=True
        )

    def start(self) -> None:
        """Open the file (if present) before returning, then follow it in a thread."""
        self.tail.open()
        self._watcher.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wakeup.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def wake(self) -> None:
        """Ask for a read now (tests, or a caller that knows the file changed)."""
        self._wakeup.set()

    def health(self) -> SourceHealth:
        st = self.tail.stats
        inode, offset = self.tail.position()
        exists = self.tail.exists
        running = self._thread.is_alive()
        watch = self._watcher.mode
        problem = None if self.tail.is_open else self.tail.problem
        detail = f"watch={watch}" if exists else "waiting for file"
        if problem:
            detail = f"cannot read: {problem}"
        if st.rotations:
            detail += f" rotations={st.rotations}"
        return SourceHealth(
            name=self.tail.path,
            kind="file",
            ok=exists and running and not problem,
            lines=st.lines,
            lines_per_s=round(self._rate.rate(self._clock.monotonic(), st.lines), 1),
            lag_bytes=st.lag_bytes,
            detail=detail,
            exists=exists,
            running=running,
            bytes=st.bytes,
            oversized=st.oversized,
            unterminated=st.unterminated,
            sink_errors=self.sink_errors,
            last_read=self.last_read,
            watch=watch,
            inode=inode,
            offset=offset,
            rotations=st.rotations,
            truncations=st.truncations,
            reopen_errors=st.reopen_errors,
        )

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wakeup, selectors.EVENT_READ)
        watch_fd = self._watcher.fileno()
        if watch_fd is not None:
            sel.register(watch_fd, selectors.EVENT_READ)
        next_save = 0.0
        next_refresh = self._clock.monotonic() + self.poll_interval
        try:
            while not self._stop.is_set():
                self._drain()
                now = self._clock.monotonic()
                self._rate.sample(now, self.tail.stats.lines)
                interval = self.checkpoint_interval
                if self.checkpoint is not None and interval is not None and now >= next_save:
                    self.checkpoint.save()
                    next_save = now + interval
                if now >= next_refresh:
                    self._watcher.refresh()
                    next_refresh = now + self.poll_interval
                self._wait(sel, now + self.poll_interval)
        finally:
            sel.close()
            self._watcher.stop()
            if self.checkpoint is not None:
                self.tail.commit()
                self.checkpoint.save()
            self.tail.close()
            self._wakeup.close()

    def _wait(self, sel: selectors.BaseSelector, deadline: float) -> None:
        """Until a wake-up, an event on our file, or the poll interval has passed. Events
        are drained only here, so those arriving while we read merge in the kernel."""
        while not self._stop.is_set():
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                return
            sel.select(remaining)
            woke = self._wakeup.consume()
            if self._watcher.consume() or woke:
                # a busy file: let writes pile up (and their events merge) for a moment,
                # so reading costs per batch rather than per line
                since = self._clock.monotonic() - self._last_drain
                if since < self.min_read_interval:
                    self._stop.wait(self.min_read_interval - since)
                return

    def _drain(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    lines = self.tail.poll()
                except OSError as exc:  # e.g. EIO on the file system: retry at the next tick
                    self.tail.stats.reopen_errors += 1
                    log.warning("eve_poll_failed source=%s error=%s", self.name, exc.strerror)
                    return
                if lines:
                    self.last_read = self._clock.now()
                    try:
                        self.sink(lines, self.name)
                    except Exception:
                        self.sink_errors += 1
                        log.exception("eve_sink_failed source=%s lines=%d", self.name, len(lines))
                self.tail.commit()
                if not self.tail.pending:
                    return
        finally:
            self._last_drain = self._clock.monotonic()
