"""Opening the daemon's own files safely: no symlink is followed, modes do not depend on umask.

The journal, the offender state and the checkpoint live in a directory that is root-only when
we create it; these helpers still refuse a symlink at the file's path (``O_NOFOLLOW``), so a
directory an operator loosened (or a path under /tmp) cannot be turned into "write over
/etc/shadow". Temporary files are created with ``O_EXCL`` after a stale one is unlinked
(unlink removes a planted symlink, never its target). Files and directories we create get
their mode with fchmod/chmod, whatever the umask; existing ones keep the mode an operator gave
them. See docs/security.md for the modes chosen.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat

log = logging.getLogger(__name__)

#: Directory holding state (root-only; group may enter to read the journal if chgrp'ed).
DIR_MODE = 0o750
#: Offender history, checkpoint: root-only.
STATE_MODE = 0o600
#: The decision journal: read by a log shipper of the file's group, written by root only.
JOURNAL_MODE = 0o640

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(OSError):
    """A state path that is a symlink or not a regular file."""


def _refuse(path: str, exc: OSError) -> OSError:
    if exc.errno == errno.ELOOP:
        return UnsafePath(errno.ELOOP, "is a symlink; refusing to follow it", path)
    return exc


def ensure_dir(path: str, mode: int = DIR_MODE, gid: int | None = None) -> None:
    """Create ``path`` and missing parents with ``mode`` (umask-proof); existing ones are left
    as they are. ``gid``: group of the directories created."""
    if not path or os.path.isdir(path):
        return
    parent = os.path.dirname(os.path.abspath(path))
    if parent != path:
        ensure_dir(parent, mode, gid)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return
    os.chmod(path, mode)
    if gid is not None:
        os.chown(path, -1, gid)


def _check_regular(fd: int, path: str) -> None:
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePath(errno.EINVAL, "is not a regular file", path)


def open_append(path: str, mode: int = JOURNAL_MODE) -> int:
    """An O_APPEND descriptor on ``path``, created with ``mode`` if it does not exist."""
    ensure_dir(os.path.dirname(path))
    flags = os.O_WRONLY | os.O_APPEND | _NOFOLLOW | os.O_NONBLOCK
    try:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
            os.fchmod(fd, mode)
        except FileExistsError:
            fd = os.open(path, flags)
    except OSError as exc:
        raise _refuse(path, exc) from None
    _check_regular(fd, path)
    os.set_blocking(fd, True)
    return fd


def read_bytes(path: str) -> bytes:
    """The content of a regular file at ``path`` (not through a symlink; no FIFO hang)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise _refuse(path, exc) from None
    _check_regular(fd, path)
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def write_atomic(path: str, data: bytes, mode: int = STATE_MODE, tmp: str | None = None) -> None:
    """Replace ``path`` by ``data``: a fresh tmp file (O_EXCL, ``mode``), fsync, rename, fsync
    of the directory. A crash leaves the old or the new content. A symlink at ``path`` is
    replaced by the file, never followed."""
    parent = os.path.dirname(os.path.abspath(path))
    ensure_dir(parent)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISLNK(os.lstat(path).st_mode):  # replacing it would be safe, but say so
            raise UnsafePath(errno.ELOOP, "is a symlink; refusing to replace it", path)
    tmp = tmp or f"{path}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # stale (a crash) or planted: unlink never follows a symlink
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode)
    except OSError as exc:
        raise _refuse(tmp, exc) from None
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
