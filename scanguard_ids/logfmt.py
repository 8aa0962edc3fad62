"""Logging that fits where the daemon runs: a terminal, systemd's journal, syslog, or a SIEM.

* under systemd (``JOURNAL_STREAM`` set) stderr lines carry no timestamp of our own (the
  journal adds one) and a ``<N>`` priority prefix the journal turns into a log level;
* ``--log-format json``: one JSON object per line (ts, level, logger, msg);
* ``--syslog``: also to the local syslog socket (/dev/log) where the host has one.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time

import orjson

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: sd-daemon(3) priority prefixes for stderr lines read by journald.
_SD_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
                logging.CRITICAL: 2}


class JournalFormatter(logging.Formatter):
    """``<6>scanguard_ids.engine: action=block ...``: no timestamp, journald adds its own."""

    def format(self, record: logging.LogRecord) -> str:
        prio = _SD_PRIORITY.get(record.levelno, 6)
        return f"<{prio}>{record.name}: {super().format(record)}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


def under_journald() -> bool:
    """stderr is connected to systemd's journal (systemd sets JOURNAL_STREAM=dev:inode)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = stream.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


def formatter(fmt: str) -> logging.Formatter:
    """``auto`` (journal style under systemd, else timestamped text), ``text`` or ``json``."""
    if fmt == "json":
        return JsonFormatter()
    if fmt == "auto" and under_journald():
        return JournalFormatter("%(message)s")
    return logging.Formatter(TEXT)


def setup(level: int, fmt: str = "auto", syslog: bool = False) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root.addHandler(handler)
    if syslog and os.path.exists("/dev/log"):
        sys_handler = logging.handlers.SysLogHandler(
            address="/dev/log", facility=logging.handlers.SysLogHandler.LOG_DAEMON)
        sys_handler.ident = "scanguard: "
        sys_handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        root.addHandler(sys_handler)
    elif syslog:
        logging.getLogger(__name__).warning("--syslog: no /dev/log on this host; stderr only")
    root.setLevel(level)
