"""What every benchmark shares: result rows, statistics, CPU pinning, child processes, machine.

A benchmark module exposes ``NAME``, ``TITLE`` and ``run(ctx) -> Section``. Heavy measurements run
in a fresh child interpreter (``python -m bench.<module> --child ...``) that prints one JSON object,
so each figure gets a clean heap and its own CPU pinning, and a crash there becomes a
"not run" line instead of a dead harness.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"


class NotRun(Exception):
    """A benchmark (or one of its rows) cannot run here; the message says why."""


@dataclass(slots=True)
class Row:
    """One figure against its baseline: ratio = figure / baseline (or inverted, see ``lower``)."""

    figure: str  # what is measured
    value: float | None
    unit: str
    baseline_name: str = ""
    baseline: float | None = None
    target: str = ""  # human text, e.g. ">= 1 000 000 lines/s"
    passed: bool | None = None  # None: no target
    lower_is_better: bool = False
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.baseline is None or self.value <= 0 or self.baseline <= 0:
            return None  # no meaningful ratio (zero, or a signed change)
        return self.baseline / self.value if self.lower_is_better else self.value / self.baseline


@dataclass(slots=True)
class Section:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra_md: str = ""  # free-form markdown (tables of distributions, profiles)
    not_run: str = ""  # reason, when the whole section could not run
    seconds: float = 0.0


@dataclass(slots=True)
class Context:
    quick: bool = False  # smaller corpora and fewer repeats (smoke runs)
    repeats: int = 5
    log: list[str] = field(default_factory=list)
    #: the yardstick of this run: the naive json.loads loop's alerts/s on the full alerts-only
    #: corpus (bench.throughput measures it; None until then, and in --quick runs)
    yardstick: float | None = None

    def say(self, msg: str) -> None:
        stamp = _dt.datetime.now().strftime("%H:%M:%S")
        print(f"[bench {stamp}] {msg}", file=sys.stderr, flush=True)
        self.log.append(msg)


# -- targets set on another machine -------------------------------------------------------

#: The day the absolute throughput targets (>= 300 000 alerts/s replay, >= 100 000 alerts/s
#: through the engine, >= 100 000 fleet events/s) were set and first met, and the yardstick
#: measured that day: the naive json.loads loop on the alerts-only corpus. The VM's host, hence
#: its speed, changes between days (0.32x of that machine on 2026-12-05).
REFERENCE_DAY = "2026-11-26"
REFERENCE_NAIVE_ALERTS = 46_270.0


def machine_factor(ctx: Context) -> float | None:
    """This machine's speed against the reference day's, from this run's yardstick."""
    return ctx.yardstick / REFERENCE_NAIVE_ALERTS if ctx.yardstick else None


def speed_target(ctx: Context, value: float | None, absolute: float, unit: str
                 ) -> tuple[str, bool | None]:
    """An absolute throughput target of the reference day, judged as a ratio to this run's
    yardstick (the same code runs at the same multiple of the naive loop on any machine):
    the target scaled by :func:`machine_factor`. Without a yardstick (``--quick``, or the
    replay corpus could not be built) the absolute figure is judged. Returns (text, met)."""
    factor = machine_factor(ctx)
    if factor is None:
        return f">= {absolute:,.0f} {unit}", None if value is None else value >= absolute
    need = absolute * factor
    times = absolute / REFERENCE_NAIVE_ALERTS
    text = (f">= {absolute:,.0f} {unit} on the {REFERENCE_DAY} machine ({times:.2f}x its naive "
            f"loop): >= {need:,.0f} here (x{factor:.2f})")
    return text, None if value is None else value >= need


# -- statistics -----------------------------------------------------------------------------


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def percentile(xs: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    s = sorted(xs)
    if not s:
        raise ValueError("empty")
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return float(s[k])


def spread(xs: Sequence[float]) -> str:
    """'min..max' of repeats, for the notes."""
    return f"{min(xs):,.0f}..{max(xs):,.0f}"


# -- processes --------------------------------------------------------------------------------


def pin_one_core(core: int | None = None, pid: int = 0) -> int:
    """Pin a process (this one by default) to one CPU, the idlest one unless given; returns it."""
    cpu = idlest_cpu() if core is None else core
    os.sched_setaffinity(pid, {cpu})
    return cpu


def rss_bytes() -> int:
    """Current resident set size of this process (from /proc/self/statm)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize()


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its reaped children, in seconds (/proc/PID/stat): what
    a daemon forks (nft, ipset, conntrack) is its cost too."""
    with open(f"/proc/{pid}/stat") as fh:
        data = fh.read()
    fields = data[data.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14-17.
    ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def proc_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def child(module: str, args: Sequence[str], timeout: float = 300.0) -> dict:
    """Run ``python -m bench.<module> --child ARGS`` and return the JSON it prints last."""
    argv = [sys.executable, "-m", f"bench.{module}", "--child", *args]
    try:
        res = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise NotRun(f"child {module} {' '.join(args)} timed out after {timeout:.0f}s") from None
    return answer(f"child {module} {' '.join(args)}", res.returncode, res.stdout, res.stderr)


def answer(what: str, returncode: int | None, stdout: str, stderr: str) -> dict:
    """The JSON object a child printed last (see emit()); NotRun naming ``what`` when it
    failed, printed none, or answered ``{"not_run": reason}``."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if returncode != 0 or not lines:
        why = last_error(stderr or stdout)
        raise NotRun(f"{what}: exit {returncode}: {why}")
    out = json.loads(lines[-1])
    if "not_run" in out:
        raise NotRun(str(out["not_run"]))
    return out


def child_main(doc: str | None, child_fn: Callable[[list[str]], None]) -> None:
    """`python -m bench.X --child ARGS` runs one measurement (bench.run starts these);
    anything else prints the module's docstring."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_fn(sys.argv[2:])
    else:
        print(doc)


def last_error(text: str, limit: int = 300) -> str:
    """The last non-empty line of a child's stderr (the exception), shortened to one line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else "no output")[:limit]


def emit(obj: dict) -> None:
    """What a child prints as its answer."""
    print(json.dumps(obj), flush=True)


def require(*modules: str) -> None:
    """Raise NotRun naming the first module that cannot be imported."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise NotRun(f"{name} missing ({exc})") from None


def is_root() -> bool:
    return os.geteuid() == 0


# -- machine ------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version() + " (" + platform.python_implementation() + ")",
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def cpu_times() -> list[tuple[int, int]]:
    """(busy, total) jiffies per CPU from /proc/stat."""
    out = []
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith("cpu") and line[3].isdigit():
                vals = [int(x) for x in line.split()[1:]]
                idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
                out.append((sum(vals) - idle, sum(vals)))
    return out


def idlest_cpu(sample_s: float = 0.2) -> int:
    """The allowed CPU that was least busy over a short sample (the machine is shared)."""
    import time

    allowed = sorted(os.sched_getaffinity(0))
    a = cpu_times()
    time.sleep(sample_s)
    b = cpu_times()
    best, best_busy = allowed[-1], None
    for cpu in allowed:
        if cpu >= len(a) or cpu >= len(b):
            continue
        busy = (b[cpu][0] - a[cpu][0]) / max(1, b[cpu][1] - a[cpu][1])
        if best_busy is None or busy < best_busy:
            best, best_busy = cpu, busy
    return best
