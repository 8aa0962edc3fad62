"""Live wiring for the monitor: a poller thread fetches snapshots, the main loop draws.

The render path never blocks: get_snapshot() (which may talk to a socket) runs only in
the poller thread, which stores the latest result; the frame is drawn from that store.
Keys are read from stdin in cbreak mode (only when stdin is a TTY): 'q' quits, as does
Ctrl-C; the terminal (alternate screen, cursor, tty mode) is restored either way.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.align import Align
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from scanguard_ids.snapshot import Snapshot
from scanguard_ids.tui.view import layout

log = logging.getLogger(__name__)

#: Longest the main loop sleeps between checks of the stop event.
_TICK = 0.25
QUIT_KEYS = frozenset(b"qQ")


@dataclass(slots=True)
class Latest:
    """The poller's latest result, shared with the render path under a lock."""

    snap: Snapshot | None = None
    error: str | None = None  # why the last fetch failed; None after a success
    failures: int = 0  # consecutive failed fetches
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def put(self, snap: Snapshot) -> None:
        with self._lock:
            self.snap, self.error, self.failures = snap, None, 0

    def fail(self, error: str) -> None:
        with self._lock:
            self.error = error
            self.failures += 1

    def read(self) -> tuple[Snapshot | None, str | None]:
        with self._lock:
            return self.snap, self.error


def fetch_once(get_snapshot: Callable[[], Snapshot | None], latest: Latest) -> bool:
    """One poll: store the snapshot or the reason there is none. True on success."""
    try:
        snap = get_snapshot()
    except Exception as exc:  # any getter failure means "disconnected"; keep polling
        log.debug("snapshot fetch failed error=%r", exc)
        latest.fail(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        return False
    if snap is None:
        latest.fail("no snapshot")
        return False
    latest.put(snap)
    return True


def poll(
    get_snapshot: Callable[[], Snapshot | None],
    latest: Latest,
    refresh: float,
    done: threading.Event,
    wake: Callable[[], None] = lambda: None,
) -> None:
    """Fetch every ``refresh`` seconds until ``done``; call ``wake`` after each fetch."""
    while not done.is_set():
        fetch_once(get_snapshot, latest)
        wake()
        done.wait(refresh)


def frame(snap: Snapshot | None, error: str | None, width: int, height: int) -> RenderableType:
    """What the screen shows for the poller's latest result (pure)."""
    if error is None and snap is not None:
        return layout(snap, width, height)
    if error is None:
        return Align.center(Text("connecting…", style="bold"), vertical="middle", height=height)
    banner = Text.assemble(
        ("disconnected — retrying", "bold red"),
        f"  ({error})",
        "   q to quit",
        no_wrap=True,
        overflow="ellipsis",
    )
    if snap is None:
        return Align.center(banner, vertical="middle", height=height)
    return Group(banner, layout(snap, width, max(1, height - 1)))


def render_once(snap: Snapshot, console: Console, height: int | None = None) -> None:
    """Print one frame with every panel (``--once``); fine when stdout is not a TTY.

    Width comes from the console (terminal size or COLUMNS); height from the terminal,
    else LINES, else 24, and panels that do not fit that are kept anyway.
    """
    if height is None:
        lines = os.environ.get("LINES", "")
        height = console.height if console.is_terminal else int(lines) if lines.isdigit() else 24
    console.print(layout(snap, console.width, height, every_panel=True))


def export_svg(snap: Snapshot, path: str | Path, width: int = 120, height: int = 40) -> None:
    """Save one frame as an SVG screenshot (README / docs)."""
    console = Console(
        record=True,
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
    )
    console.print(layout(snap, width, height))
    console.save_svg(str(path), title="scanguard top")


@contextlib.contextmanager
def _cbreak(fd: int | None) -> Iterator[None]:
    """Keys without Enter (Ctrl-C still raises KeyboardInterrupt); restored on exit."""
    if fd is None:
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def _on_resize(wake: Callable[[], None]) -> Iterator[None]:
    """Redraw at once on SIGWINCH (main thread only; elsewhere the next tick does it)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGWINCH"):
        yield
        return
    previous = signal.signal(signal.SIGWINCH, lambda *_: wake())
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)


def _stdin_tty_fd() -> int | None:
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return None
    return fd if os.isatty(fd) else None


def run_live(
    get_snapshot: Callable[[], Snapshot | None],
    refresh: float = 1.0,
    console: Console | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Full-screen monitor until 'q', Ctrl-C or ``stop``; returns the exit code (0).

    When the console is not a terminal (output piped or redirected) there is no screen
    to refresh: one frame is printed as render_once() does (exit 0), or the reason no
    snapshot could be fetched (exit 1).
    """
    console = console or Console()
    if not console.is_terminal:
        return _print_one(get_snapshot, console)
    stop = stop or threading.Event()
    latest = Latest()
    done = threading.Event()
    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    os.set_blocking(wfd, False)

    def wake() -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(wfd, b"x")

    def render() -> RenderableType:
        snap, error = latest.read()
        width, height = console.size
        return frame(snap, error, width, height)

    poller = threading.Thread(
        target=poll,
        args=(get_snapshot, latest, refresh, done, wake),
        name="scanguard-tui-poll",
        daemon=True,
    )
    key_fd = _stdin_tty_fd()
    try:
        with (
            _cbreak(key_fd),
            _on_resize(wake),
            Live(
                console=console,
                screen=True,
                auto_refresh=False,
                get_renderable=render,
                redirect_stdout=False,
                redirect_stderr=False,
            ) as live,
        ):
            poller.start()
            _loop(live, key_fd, rfd, refresh, stop)
    except KeyboardInterrupt:
        log.debug("monitor interrupted")
    finally:
        done.set()
        if poller.ident is not None:
            poller.join(timeout=1.0)  # a getter stuck in I/O is a daemon thread: do not hang
        if poller.is_alive():
            # its wake() may still write: closing now could hit a reused fd number
            log.debug("snapshot poller still busy; leaving its wake pipe open")
        else:
            os.close(rfd)
            os.close(wfd)
    return 0


def _print_one(get_snapshot: Callable[[], Snapshot | None], console: Console) -> int:
    latest = Latest()
    fetch_once(get_snapshot, latest)
    snap, error = latest.read()
    if snap is None:
        console.print(Text(f"scanguard: no snapshot ({error})", style="bold red"))
        return 1
    render_once(snap, console)
    return 0


def _loop(live: Live, key_fd: int | None, rfd: int, refresh: float, stop: threading.Event) -> None:
    """Redraw on each new snapshot, resize or ``refresh`` tick; return on 'q' or ``stop``."""
    watch: list[Any] = [rfd] + ([key_fd] if key_fd is not None else [])
    live.refresh()
    drawn = time.monotonic()
    while not stop.is_set():
        ready, _, _ = select.select(watch, [], [], min(refresh, _TICK))
        if key_fd is not None and key_fd in ready:
            keys = os.read(key_fd, 64)
            if not keys or QUIT_KEYS.intersection(keys):
                return
        if rfd in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(rfd, 4096)
        if ready or time.monotonic() - drawn >= refresh:
            live.refresh()
            drawn = time.monotonic()
