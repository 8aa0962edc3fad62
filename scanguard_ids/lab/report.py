"""Lab results: the data (LabResult), Table I or II beside the paper's, JSON, Figures 1-3.

Table I is the paper's host utility (our ipset backend); Table II its SDN module (our
sdn-faucet / sdn-openflow backends): :func:`paper_ref` picks by the run's backend.
Runs with the kernel fast path (``RunResult.fast_path``, `scanguard lab --fast-path`) get
their own row and figure series beside the response-only ones.

Everything here is a pure function of a LabResult except the two writers.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scanguard_ids.lab.analysis import LatencyStats, LeakReport, Reaction

#: Table I of the paper (Linux utility), 65 536 ports per protocol.
PAPER_TABLE_I: dict[tuple[bool, str], dict[str, int]] = {
    (False, "udp"): {"open": 0, "closed": 65_435, "filtered": 101},
    (False, "tcp"): {"open": 99, "closed": 65_436, "filtered": 1},
    (True, "udp"): {"open": 0, "closed": 1_333, "filtered": 64_203},
    (True, "tcp"): {"open": 14, "closed": 1_262, "filtered": 64_260},
}
#: Table II of the paper (SDN module), 65 536 ports per protocol; the no-protection row
#: is the same measurement as Table I's.
PAPER_TABLE_II: dict[tuple[bool, str], dict[str, int]] = {
    (False, "udp"): PAPER_TABLE_I[(False, "udp")],
    (False, "tcp"): PAPER_TABLE_I[(False, "tcp")],
    (True, "udp"): {"open": 0, "closed": 357, "filtered": 65_171},
    (True, "tcp"): {"open": 15, "closed": 1_262, "filtered": 64_260},
}
COLUMNS = ("open", "closed", "filtered")


@dataclass(frozen=True, slots=True)
class PaperRef:
    """The paper's table a lab run is compared with."""

    number: str  # "I" | "II"
    label: str  # its protected row
    table: dict[tuple[bool, str], dict[str, int]]
    accuracy: str  # the paper's shares of correctly determined ports
    short: str  # the protection's name in figure legends


PAPER_I = PaperRef("I", "Security utility activated (paper)", PAPER_TABLE_I,
                   "Linux utility: open TCP 14%, closed TCP 1.9%, closed UDP 2%",
                   "Linux utility (paper)")
PAPER_II = PaperRef("II", "SDN module activated (paper)", PAPER_TABLE_II,
                    "SDN module: open TCP 15%, closed TCP 1.9%, closed UDP 0.5%",
                    "SDN module (paper)")


def paper_ref(result: LabResult) -> PaperRef:
    return PAPER_II if result.backend.startswith("sdn-") else PAPER_I


def _enforced_in(result: LabResult) -> str:
    """Where a block takes effect, for the latency lines."""
    return "drop flow in the switch" if result.backend.startswith("sdn-") else "kernel block"


@dataclass(slots=True)
class RunResult:
    """One nmap scan of the victim."""

    protection: bool
    proto: str
    n_ports: int  # ports scanned
    counts: dict[str, int]  # paper columns: open / closed / filtered
    nmap_states: dict[str, int]  # nmap's own states
    truth_open: int  # listening ports among those scanned
    correct_open: list[int]  # open ports nmap determined open
    correct_closed: int  # closed ports nmap determined closed
    wrong: int  # ports nmap determined open/closed against the truth
    duration: float  # seconds (wall clock of the nmap process)
    nmap_argv: list[str]
    reasons: dict[str, int] = field(default_factory=dict)
    reaction: Reaction | None = None
    leaks: LeakReport | None = None
    decisions: int = 0  # block decisions of the protector
    blocks: int = 0  # times the scanner entered a kernel set
    fast_path: bool = False  # protected with the kernel fast path too (mode block)
    fp_blocked: list[str] = field(default_factory=list)  # in the fast path's blocked sets
    fp_adopted: list[str] = field(default_factory=list)  # of those: journaled by the fast path
    fp_journaled: list[str] = field(default_factory=list)  # of those: any block decision

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in (
            "protection", "proto", "n_ports", "counts", "nmap_states", "truth_open",
            "correct_open", "correct_closed", "wrong", "duration", "nmap_argv", "reasons",
            "decisions", "blocks", "fast_path", "fp_blocked", "fp_adopted", "fp_journaled")}
        d["correct_open_count"] = len(self.correct_open)
        d["reaction"] = self.reaction.to_dict() if self.reaction else None
        d["leaks"] = self.leaks.to_dict() if self.leaks else None
        return d


@dataclass(slots=True)
class LabResult:
    options: dict[str, Any] = field(default_factory=dict)
    delay: dict[str, Any] = field(default_factory=dict)  # requested and measured (ping)
    sensor: dict[str, Any] = field(default_factory=dict)  # tuning, alert latency
    runs: list[RunResult] = field(default_factory=list)
    #: nmap scans only: first RST/unreachable on the wire -> scanner in a kernel set
    reaction_first: LatencyStats = field(default_factory=lambda: LatencyStats.of([]))
    #: scans and latency trials: the threshold-meeting response -> scanner in a kernel set
    reaction_trigger: LatencyStats = field(default_factory=lambda: LatencyStats.of([]))
    latency_trials: list[Reaction] = field(default_factory=list)
    block_count: int = 0
    leaks_after_block: int = 0  # open ports answered while the scanner was blocked
    protector: str = ""
    backend: str = "ipset"  # where the protector blocked: ipset | sdn-faucet | sdn-openflow
    switch: dict[str, Any] = field(default_factory=dict)  # sdn runs: the switch and its watch
    fast_path: dict[str, Any] = field(default_factory=dict)  # fast-path runs: mode, burst, rate
    notes: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def run(self, protection: bool, proto: str, n_ports: int | None = None,
            fast_path: bool = False) -> RunResult | None:
        """The run for (protection, proto) with ``n_ports`` (default: the largest);
        ``fast_path``: the runs with the kernel fast path, else the others."""
        cands = [r for r in self.runs if r.protection == protection and r.proto == proto
                 and r.fast_path == fast_path]
        if n_ports is not None:
            cands = [r for r in cands if r.n_ports == n_ports]
        return max(cands, key=lambda r: r.n_ports) if cands else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "options": self.options, "delay": self.delay, "sensor": self.sensor,
            "protector": self.protector, "backend": self.backend, "switch": self.switch,
            "fast_path": self.fast_path,
            "runs": [r.to_dict() for r in self.runs],
            "reaction_latency": {"from_first_response": self.reaction_first.to_dict(),
                                 "from_trigger_response": self.reaction_trigger.to_dict()},
            "latency_trials": [r.to_dict() for r in self.latency_trials],
            "block_count": self.block_count, "leaks_after_block": self.leaks_after_block,
            "notes": self.notes, "started": self.started, "finished": self.finished,
        }


def _cell(counts: dict[str, int] | None) -> list[str]:
    if counts is None:
        return ["-"] * 3
    return [f"{counts.get(c, 0):,}".replace(",", " ") for c in COLUMNS]


def table_i(result: LabResult) -> str:
    """Table I (ipset) or II (sdn-*): the lab's largest runs beside the paper's, as text."""
    ref = paper_ref(result)
    n_udp = (result.run(False, "udp") or result.run(True, "udp"))
    n_tcp = (result.run(False, "tcp") or result.run(True, "tcp"))
    head = (f"TABLE {ref.number} - nmap against the victim (UDP: "
            f"{n_udp.n_ports if n_udp else '-'} ports, TCP: {n_tcp.n_ports if n_tcp else '-'} "
            f"ports; paper: 65 536 each)")
    name = result.protector or "protection"
    if result.backend != "ipset":
        name = f"{name} {result.backend}"
    rows = [("No protection (lab)", False, False, False),
            ("No security utility (paper)", False, True, False),
            (f"{name} (lab)", True, False, False), (ref.label, True, True, False)]
    if has_fast_path(result):
        rows.insert(3, (f"{name} + fast path {fast_path_label(result)} (lab)", True, False,
                        True))
    w = 36
    lines = [head,
             f"{'Test mode':<{w}}{'UDP':^27}{'TCP':^27}",
             f"{'':<{w}}" + "".join(f"{c:>9}" for c in COLUMNS * 2)]
    for label, prot, paper, fast in rows:
        cells: list[str] = []
        for proto in ("udp", "tcp"):
            if paper:
                cells += _cell(ref.table[(prot, proto)])
            else:
                run = result.run(prot, proto, fast_path=fast)
                cells += _cell(run.counts if run else None)
        lines.append(f"{label:<{w}}" + "".join(f"{c:>9}" for c in cells))
    lines.append("")
    lines.append(accuracy_lines(result))
    return "\n".join(lines)


def has_fast_path(result: LabResult) -> bool:
    return any(r.fast_path for r in result.runs)


def fast_path_label(result: LabResult) -> str:
    """``b8/r2``: the fast path's burst and rate, for row labels and legends."""
    fp = result.fast_path
    return f"b{fp.get('burst', '?')}/r{fp.get('rate', '?')}" if fp else ""


def _pct(num: int, den: int) -> str:
    return f"{100.0 * num / den:.1f}%" if den else "-"


def accuracy_lines(result: LabResult) -> str:
    """Share of ports whose true state nmap determined, with protection (paper: <15%, <2%)."""
    out = [f"Correctly determined with protection (paper, {paper_ref(result).accuracy}):"]
    for fast in (False, True):
        for proto in ("tcp", "udp"):
            run = result.run(True, proto, fast_path=fast)
            if run is None:
                continue
            closed_truth = run.n_ports - run.truth_open
            found = len(run.correct_open)
            label = f"{proto.upper()} + fast path" if fast else proto.upper()
            out.append(f"  {label}: open {found}/{run.truth_open} "
                       f"({_pct(found, run.truth_open)}), closed "
                       f"{run.correct_closed}/{closed_truth} "
                       f"({_pct(run.correct_closed, closed_truth)})")
    return "\n".join(out)


def _fmt_ms(v: float | None) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.1f} ms"


def summary(result: LabResult) -> str:
    """Table I plus delay, sensor latency, scan durations, reaction latency and leaks."""
    lines = [table_i(result), ""]
    if result.delay:
        lines.append(f"Path delay: requested {result.delay.get('requested_ms', 0)} ms each way; "
                     f"measured one-way {_fmt_ms(result.delay.get('one_way_ms', math.nan))} "
                     f"(ping p50 rtt {_fmt_ms(result.delay.get('rtt_p50_ms', math.nan))})")
    lat = result.sensor.get("alert_latency")
    if lat:
        lines.append(f"Suricata alert latency (wire -> EVE, {result.sensor.get('transport')}): "
                     f"p50 {_fmt_ms(lat['p50_ms'])}, p99 {_fmt_ms(lat['p99_ms'])} (n={lat['n']})")
    lines.append("Scans:")
    for r in result.runs:
        extra = ""
        if r.reaction is not None:
            extra = (f", blocked {_fmt_ms(r.reaction.from_first_ms)} after the first response "
                     f"({_fmt_ms(r.reaction.from_trigger_ms)} after the threshold was met)")
        mode = "fast path  " if r.fast_path else "protected  " if r.protection else "unprotected"
        lines.append(f"  {mode} {r.proto} "
                     f"{r.n_ports:>6} ports: {r.duration:7.1f} s  "
                     f"open/closed/filtered {r.counts['open']}/{r.counts['closed']}/"
                     f"{r.counts['filtered']}{extra}")
    rf, rt = result.reaction_first, result.reaction_trigger
    where = _enforced_in(result)
    if result.switch:
        lines.append(f"Switch: {result.switch.get('backend')} (controller "
                     f"{result.switch.get('controller')}) at the victim's edge; block time = "
                     f"first flow-table poll with the drop flow (every "
                     f"{result.switch.get('poll_interval_ms', 0):g} ms)")
    if rf.n:
        lines.append(f"Reaction latency, first offending response on the wire -> {where} "
                     f"(nmap scans): p50 {_fmt_ms(rf.p50_ms)}, p99 {_fmt_ms(rf.p99_ms)} "
                     f"(n={rf.n})")
    if rt.n:
        lines.append(f"Reaction latency, threshold-meeting response -> {where} (scans + "
                     f"{len(result.latency_trials)} trials): p50 {_fmt_ms(rt.p50_ms)}, "
                     f"p99 {_fmt_ms(rt.p99_ms)}, max {_fmt_ms(rt.max_ms)} (n={rt.n})")
    if any(r.protection for r in result.runs):
        lines.append(f"Blocks: {result.block_count}; open ports answered after the block: "
                     f"{result.leaks_after_block}")
        for r in result.runs:
            if r.leaks is not None and r.leaks.found_open:
                lines.append(f"  {r.proto} {r.n_ports}: found open {len(r.leaks.found_open)} "
                             f"(before block {len(r.leaks.before_block)}, after block "
                             f"{len(r.leaks.after_block)}, not in capture "
                             f"{len(r.leaks.no_answer_seen)})")
    lines += fast_path_lines(result)
    lines += [f"Note: {n}" for n in result.notes]
    return "\n".join(lines)


def fast_path_lines(result: LabResult) -> list[str]:
    """Per fast-path run: the kernel's drop time and whether the daemon journaled it."""
    if not has_fast_path(result):
        return []
    out = [f"Fast path ({fast_path_label(result)}, mode block): block time = the first poll "
           f"showing the scanner in the fast path's own blocked set"]
    for r in result.runs:
        if not r.fast_path:
            continue
        rc = r.reaction
        first = (f"{(rc.blocked - rc.first_offending) * 1000.0:.1f} ms after the first response"
                 if rc and rc.blocked is not None and rc.first_offending is not None else
                 "before any response" if rc and rc.blocked is not None else "never blocked")
        out.append(f"  {r.proto} {r.n_ports}: kernel blocked {len(r.fp_blocked)} source(s) "
                   f"({first}); journaled {len(r.fp_journaled)}/{len(r.fp_blocked)}, "
                   f"{len(r.fp_adopted)} as fast-path decisions")
    return out


def _default(obj: object) -> object:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)  # type: ignore[call-overload]
    if isinstance(obj, set | frozenset | tuple):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _clean(obj: Any) -> Any:
    """NaN/inf -> None (JSON has neither)."""
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def to_json(result: LabResult) -> str:
    return json.dumps(_clean(result.to_dict()), indent=2, default=_default)


def write_json(result: LabResult, path: Path) -> Path:
    path.write_text(to_json(result) + "\n")
    return path


def figure_series(result: LabResult) -> dict[str, dict[bool, list[tuple[int, int]]]]:
    """Figures 1-3 data: {figure: {protection: [(N, correctly determined)]}}."""
    figs: dict[str, dict[bool, list[tuple[int, int]]]] = {
        "closed_udp": {False: [], True: []}, "closed_tcp": {False: [], True: []},
        "open_tcp": {False: [], True: []}}
    for r in sorted(result.runs, key=lambda r: r.n_ports):
        if r.fast_path:  # fast_path_series
            continue
        if r.proto == "udp":
            figs["closed_udp"][r.protection].append((r.n_ports, r.correct_closed))
        else:
            figs["closed_tcp"][r.protection].append((r.n_ports, r.correct_closed))
            figs["open_tcp"][r.protection].append((r.n_ports, len(r.correct_open)))
    return figs


def fast_path_series(result: LabResult) -> dict[str, list[tuple[int, int]]]:
    """Figures 1-3 data of the fast-path runs: {figure: [(N, correctly determined)]}."""
    figs: dict[str, list[tuple[int, int]]] = {"closed_udp": [], "closed_tcp": [], "open_tcp": []}
    for r in sorted(result.runs, key=lambda r: r.n_ports):
        if not r.fast_path:
            continue
        figs[f"closed_{r.proto}"].append((r.n_ports, r.correct_closed))
        if r.proto == "tcp":
            figs["open_tcp"].append((r.n_ports, len(r.correct_open)))
    return figs


_FIGS = (("closed_udp", "Fig. 1: closed UDP ports", ("udp", "closed")),
         ("closed_tcp", "Fig. 2: closed TCP ports", ("tcp", "closed")),
         ("open_tcp", "Fig. 3: open TCP ports", ("tcp", "open")))


def plot(result: LabResult, path: Path) -> Path:
    """PNG of Figures 1-3: correctly determined ports vs N scanned, with/without protection."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = figure_series(result)
    fast = fast_path_series(result)
    ref = paper_ref(result)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, (key, title, (proto, col)) in zip(axes, _FIGS, strict=True):
        protected = result.protector or "protection"
        if result.backend != "ipset":
            protected = f"{protected} {result.backend}"
        lab_series = [(series[key][False], "o--", "no protection"),
                      (series[key][True], "s-", protected)]
        if fast[key]:
            lab_series.append((fast[key], "^-",
                               f"{protected} + fast path {fast_path_label(result)}"))
        for pts, style, label in lab_series:
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=f"{label} (lab)")
                for x, y in pts:
                    ax.annotate(str(y), (x, y), textcoords="offset points", xytext=(4, 4),
                                fontsize=7)
        for prot, marker, label in ((False, "x", "no protection (paper)"),
                                    (True, "*", ref.short)):
            ax.plot([65_536], [ref.table[(prot, proto)][col]], marker, markersize=10,
                    label=label)
        ax.set_xscale("log")
        ax.set_xlim(50, 150_000)
        ax.set_yscale("symlog", linthresh=10)
        ax.set_ylim(0, 200_000 if col == "closed" else 300)
        ax.set_title(f"{title} (less is better)")
        ax.set_xlabel("ports scanned (N)")
        ax.set_ylabel("ports with a correctly determined state")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(result: LabResult, outdir: Path, figures: bool = True) -> dict[str, Path]:
    """result.json, table.txt (the summary) and, with matplotlib, figures.png in ``outdir``."""
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {"json": write_json(result, outdir / "result.json")}
    (outdir / "table.txt").write_text(summary(result) + "\n")
    paths["table"] = outdir / "table.txt"
    if figures and result.runs:
        try:
            paths["figures"] = plot(result, outdir / "figures.png")
        except ImportError:
            result.notes.append("matplotlib missing: no figures (pip install 'scanguard-ids[lab]')")
    return paths
