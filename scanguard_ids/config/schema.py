"""Every config key, defined once: its default, type, bounds and the text that documents it.

The example file (``scanguard config example``, ``examples/scanguard.toml``), the README's
configuration table and the loader's checks are all derived from these dataclasses; a test
fails when the checked-in copies drift from them.

A key is declared with :func:`key`: the default comes first, then its documentation (one
paragraph, shown as comments above the key in the example), then the constraints the loader
checks generically (``choices``, ``ge``/``gt``/``le``), then ``restart=True`` when a SIGHUP
reload cannot apply it to a running daemon. Checks that involve two keys live in
:func:`scanguard_ids.config.load.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The SID block reserved for the scanguard rule pack (see rules/README in the pack).
SID_FIRST = 9_400_000
SID_LAST = 9_400_099
#: Core rules (the paper's outbound responses) use SID_FIRST..SID_CORE_LAST; the optional
#: extended signatures above it are for the SIEM and are never acted on unless listed in eve.sids.
SID_CORE_LAST = 9_400_049

#: ipset's (and so every backend's) largest timeout, in seconds.
MAX_TTL = 2_147_483

BACKENDS = ("auto", "ipset", "nftables", "dry-run", "sdn-faucet", "sdn-openflow")

DEFAULT_ALLOWLIST: tuple[str, ...] = (
    "127.0.0.0/8",
    "::1/128",
    "169.254.0.0/16",
    "fe80::/10",
    "224.0.0.0/4",
    "ff00::/8",
    "0.0.0.0/32",
    "255.255.255.255/32",
)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the loader, the example file and the README know about one key."""

    doc: str
    choices: tuple[Any, ...] = ()
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    restart: bool = False  # a running daemon applies it only after a restart
    octal: bool = False  # file modes: shown as 0o660
    example: Any = None  # shown in the example instead of the default (e.g. an EVE path)
    item: type | None = None  # element type of a list key whose default is empty


def key(default: Any, doc: str, **info: Any) -> Any:
    """A dataclass field carrying its documentation and constraints (see the module docstring)."""
    return field(default=default, metadata={"key": KeyInfo(" ".join(doc.split()), **info)})


def info(f: Any) -> KeyInfo:
    """The KeyInfo of a dataclass field."""
    return f.metadata["key"]  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class DetectConfig:
    """Detection: when a remote address is blocked, for how long, and what is never blocked."""

    count: int = key(3, """A remote address is blocked once it has drawn this many responses
        (TCP RST / ICMP port-unreachable) ...""", ge=1)
    ports: int = key(2, "... covering this many distinct local ports ...", ge=1)
    window: float = key(60.0, "... within this many seconds (the events' own timestamps).",
                        gt=0)
    ttl: int = key(300, "First block, seconds. The kernel expires it (ipset/nftables timeouts).",
                   ge=1, le=MAX_TTL)
    policy: str = key("default", """"default": repeat offenders get
        ttl * escalation^(strikes-1), capped at max_ttl; "paper": always `ttl` (the paper's fixed
        300 s).""", choices=("default", "paper"))
    escalation: float = key(2.0, "Block length multiplier per repeat offence (policy default).",
                            ge=1)
    max_ttl: int = key(86_400, "Cap on escalated blocks, seconds.", ge=1, le=MAX_TTL)
    strike_memory: float = key(86_400.0, """An offender's strikes are forgotten after this many
        seconds without a new offence.""", gt=0)
    reorder: float = key(30.0, """How far (seconds, event time) an out-of-order EVE line may lag
        and still count.""", ge=0)
    max_tracked: int = key(100_000, """Memory bound: addresses tracked (least recently seen
        evicted first).""", ge=1)
    max_events_per_ip: int = key(64, "Memory bound: evidence kept per tracked address.", ge=1)
    max_offenders: int = key(100_000, "Memory bound: repeat-offender history entries.", ge=1)
    allowlist: tuple[str, ...] = key(DEFAULT_ALLOWLIST, """Addresses and CIDRs never blocked,
        by detection or by hand.""")
    allow_own_addresses: bool = key(True, "Never block this host's own addresses either.")


@dataclass(frozen=True, slots=True)
class EveConfig:
    """Where Suricata's EVE events come from."""

    paths: tuple[str, ...] = key((), """EVE files to tail (Suricata `eve-log` with filetype
        regular). Rotation by rename+create and by copytruncate is followed; a file that does
        not exist yet is waited for.""", restart=True, item=str,
        example=("/var/log/suricata/eve.json",))
    socket: str = key("", """A unix socket scanguard binds for Suricata's `eve-log` filetype
        unix_stream / unix_dgram (the low-latency path). Empty: none.""", restart=True)
    socket_type: str = key("unix_stream", """unix_stream loses nothing under load; unix_dgram
        drops records unless the kernel's net.unix.max_dgram_qlen (default 10) is raised to
        >= 512.""", choices=("unix_stream", "unix_dgram"), restart=True)
    socket_mode: int = key(0o660, "File mode of the EVE socket scanguard binds.", ge=0,
                           le=0o777, octal=True, restart=True)
    from_start: bool = key(False, """Read files from their start instead of their end (first run
        only; later runs resume from the checkpoint).""", restart=True)
    checkpoint: str = key("/var/lib/scanguard/checkpoint.json", """EVE file positions, so a
        restart resumes where it stopped. Empty: none.""", restart=True)
    poll_interval: float = key(1.0, """Fallback poll, seconds, when no file event arrives
        (at least 0.001).""", ge=0.001, restart=True)
    watch: str = key("inotify", """What wakes the file readers: "inotify" (a direct watch; falls
        back to watchdog where it is unavailable), "watchdog" (the library: portable, more CPU
        and a slower wake-up, see make bench), or "poll" (every poll_interval only).""",
        choices=("inotify", "watchdog", "poll"), restart=True)
    max_line_bytes: int = key(1_048_576, "Longer lines are counted as oversized and skipped.",
                              ge=1024, restart=True)
    sids: tuple[int, ...] = key((), """SIDs to act on; empty = the core rules of the scanguard
        pack (9400000-9400049). The optional extended signatures (9400050-9400099) are for the
        SIEM: the daemon does not count them.""", item=int)


@dataclass(frozen=True, slots=True)
class BlockConfig:
    """Enforcement: the kernel sets (or switch rules) that drop a blocked address."""

    backend: str = key("auto", """auto | ipset | nftables | dry-run | sdn-faucet | sdn-openflow.
        auto prefers ipset (netlink) when the host supports it.""", choices=BACKENDS,
        restart=True)
    set_name: str = key("scanguard", """ipset sets <set_name>4 / <set_name>6 and iptables chain;
        or nftables table `inet <set_name>`.""", restart=True)
    max_blocks_per_second: float = key(200.0, """Safety valve against spoofed floods: blocks
        added per second.""", gt=0)
    max_set_size: int = key(65_536, "Safety valve: largest number of blocks held at once.", ge=1)
    clear_conntrack: bool = key(True, """Delete the blocked address's connection-tracking
        entries (so established traffic stops too).""", restart=True)
    block_outbound: bool = key(True, """Also drop traffic to a blocked address (answers to probes
        already in flight do not leak).""", restart=True)


@dataclass(frozen=True, slots=True)
class SdnConfig:
    """Switch-level enforcement (block.backend sdn-faucet or sdn-openflow); see docs/sdn.md."""

    faucet_acl_file: str = key("/etc/faucet/scanguard-acl.yaml", """sdn-faucet: the ACL file
        scanguard owns; faucet.yaml includes it.""", restart=True)
    faucet_acl_name: str = key("scanguard", "sdn-faucet: the ACL's name.", restart=True)
    faucet_pid_file: str = key("", """Reload Faucet by SIGHUP to the PID in this file; if empty,
        run faucet_reload_command.""", restart=True)
    faucet_reload_command: tuple[str, ...] = key(("systemctl", "reload", "faucet"), """How to
        ask Faucet to reload ([] = none: Faucet reloads by itself with
        FAUCET_CONFIG_STAT_RELOAD=1).""", restart=True)
    faucet_max_blocks: int = key(250, """Faucet rebuilds the whole ACL on every change (0.5 s
        empty, 1.8 s at 250 rules): keep it small.""", ge=1, restart=True)
    faucet_batch_ms: int = key(150, "Coalesce blocks this long (ms) into one reload.", ge=1,
                               restart=True)
    faucet_min_reload_interval: float = key(0.5, "Seconds between two Faucet reloads at least.",
                                            ge=0, restart=True)
    faucet_terminal_allow: bool = key(True, "End the ACL with an allow-all rule.", restart=True)
    openflow_target: str = key("unix:/var/run/openvswitch/br0.mgmt", """sdn-openflow: the
        switch to push drop flows with a hard timeout to (OpenFlow 1.3), so the switch expires
        them itself; for switches without Faucet.""", restart=True)
    openflow_transport: str = key("native", "native (our OpenFlow 1.3 client) | ofctl.",
                                  choices=("native", "ofctl"), restart=True)
    openflow_table: int = key(0, "Flow table of the drop flows.", ge=0, le=254, restart=True)
    openflow_priority: int = key(40_000, "Priority of the drop flows.", ge=0, le=65535,
                                 restart=True)
    openflow_max_blocks: int = key(0, "Most drop flows at once; 0 = block.max_set_size.", ge=0,
                                   restart=True)

    def backend_kwargs(self, backend: str) -> dict[str, Any]:
        if backend == "sdn-faucet":
            return {
                "acl_file": self.faucet_acl_file,
                "acl_name": self.faucet_acl_name,
                "faucet_pid_file": self.faucet_pid_file or None,
                "reload_command": self.faucet_reload_command or None,
                "max_blocks": self.faucet_max_blocks,
                "batch_window": self.faucet_batch_ms / 1000,
                "min_reload_interval": self.faucet_min_reload_interval,
                "terminal_allow": self.faucet_terminal_allow,
            }
        if backend == "sdn-openflow":
            return {
                "target": self.openflow_target,
                "transport": self.openflow_transport,
                "table": self.openflow_table,
                "priority": self.openflow_priority,
                "max_blocks": self.openflow_max_blocks or None,
            }
        return {}


@dataclass(frozen=True, slots=True)
class AlarmConfig:
    """Distributed-scan alarm: many remote addresses, one or two probes each, on one target.

    No per-address threshold sees such a scan; the alarm counts distinct addresses per target.
    It is an alarm (journal, monitor, replay output), not a block, unless shield is on.
    """

    mode: str = key("alarm", """"alarm": raise alarms; "off": do not track targets at all.""",
                    choices=("alarm", "off"))
    target: str = key("host", """What one target is: "host" (a local address; a distributed scan
        spreads the ports over its sources) or "endpoint" (a local address, protocol and port:
        one service probed from many sources; `ports` does not apply).""",
        choices=("host", "endpoint"))
    sources: int = key(20, """An alarm is raised once this many distinct remote addresses drew a
        response from one target ... (about 20x the unsolicited probes an Internet-facing
        address draws in `window` from background scanning; far above a few load-balancer
        health checkers)""", ge=2)
    ports: int = key(5, """... covering at least this many distinct local ports (target "host"
        only: clients hitting a restarted or stopped service draw RSTs from one port) ...""",
        ge=1)
    window: float = key(10.0, """... within this many seconds (the events' own timestamps): a
        coordinated scan is a burst; a slower one is left to the per-address threshold.""",
        gt=0)
    hold: float = key(60.0, """An alarm lasts this long (event time) from its trigger; a scan
        that still qualifies afterwards raises a new one. Must exceed detect.reorder.""", gt=0)
    max_targets: int = key(1024, """Memory bound: local targets tracked (least recently seen evicted
        first).""", ge=1)
    max_responses: int = key(256, """Memory bound: responses remembered per target, the newest
        (so a flood of spoofed sources holds at most this many); at least `sources`.""", ge=1)
    shield: bool = key(False, """While an alarm lasts, block every source drawing a response on
        its target for shield_ttl. Off by default: the sources of a distributed scan are easily
        spoofed, so this lets anyone make us block addresses of their choosing (allowlisted
        ones excepted) for a short while.""")
    shield_ttl: int = key(60, "Length of a shield block, seconds (kept short: see shield).",
                          ge=1, le=MAX_TTL)


@dataclass(frozen=True, slots=True)
class ControlConfig:
    """The local control socket for scanguard status|list|block|unblock|top."""

    socket: str = key("/run/scanguard/control.sock", "Its path. Empty: none.", restart=True)
    mode: int = key(0o600, "Its file mode (root-only by default).", ge=0, le=0o777, octal=True,
                    restart=True)


@dataclass(frozen=True, slots=True)
class JournalConfig:
    """What the daemon writes down."""

    path: str = key("/var/lib/scanguard/decisions.jsonl", """Decisions (block / unblock / expire,
        with evidence) as JSON lines for a SIEM.""", restart=True)
    state: str = key("/var/lib/scanguard/offenders.json", """Repeat-offender history, kept
        across restarts.""", restart=True)


@dataclass(frozen=True, slots=True)
class Config:
    detect: DetectConfig = field(default_factory=DetectConfig)
    eve: EveConfig = field(default_factory=EveConfig)
    block: BlockConfig = field(default_factory=BlockConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    sdn: SdnConfig = field(default_factory=SdnConfig)
    alarm: AlarmConfig = field(default_factory=AlarmConfig)

    def replace(self, section: str, **changes: Any) -> Config:
        """A copy with some keys of one section changed (CLI overrides), validated."""
        from dataclasses import replace

        from scanguard_ids.config.load import validate

        cfg = replace(self, **{section: replace(getattr(self, section), **changes)})
        validate(cfg)
        return cfg


#: Section name -> its dataclass, in the order the example and the README show them.
SECTIONS: dict[str, type] = {
    "detect": DetectConfig,
    "eve": EveConfig,
    "block": BlockConfig,
    "control": ControlConfig,
    "journal": JournalConfig,
    "sdn": SdnConfig,
    "alarm": AlarmConfig,
}
