"""sd_notify(3) without libsystemd: one datagram to the socket systemd names in $NOTIFY_SOCKET.

With ``Type=notify`` (examples/scanguard.service) systemd counts the daemon as started only when
it sends ``READY=1``; the daemon sends it once its EVE socket is bound, so units ordered after it
(``Before=suricata.service``) find the socket there. Outside systemd ($NOTIFY_SOCKET unset) every
call is a no-op. A failure to notify is logged and never stops the daemon.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (newline-separated ``KEY=value`` pairs); True if it was sent."""
    addr = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not addr:
        return False
    if addr[0] == "@":  # abstract namespace
        addr = "\0" + addr[1:]
    elif addr[0] != "/":
        log.warning("sd_notify skipped: unsupported NOTIFY_SOCKET=%r", addr)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(addr)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("sd_notify failed socket=%s error=%s", addr.lstrip("\0"), exc)
        return False
    return True


def ready(status: str = "", env: Mapping[str, str] | None = None) -> bool:
    """Tell systemd the daemon is up (its sockets are bound)."""
    return notify("READY=1" + (f"\nSTATUS={status}" if status else ""), env)


def stopping(env: Mapping[str, str] | None = None) -> bool:
    """Tell systemd the daemon is shutting down on its own."""
    return notify("STOPPING=1", env)
