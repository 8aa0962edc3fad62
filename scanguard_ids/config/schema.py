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
    max_future: float = key(300.0, """Live: an EVE line dated more than this many seconds ahead
        of the wall clock is set aside (counted as `future`), so one bad timestamp cannot
        blind the detector (docs/security.md).""", gt=0)
    hosts: int = key(5, """Sweeps: a remote is also blocked once `count` responses within
        `window` came from this many distinct local hosts (one port each is enough: zmap,
        masscan, `nmap -p 22 <net>`). `ports` counts distinct ports per local host, so two
        refusals from two web servers are no scan.""", ge=2)
    sweep: str = key("block", """The sweep rule (`hosts`): "block", "detect" (journal and show
        what it would block, block nothing) or "off".""", choices=("block", "detect", "off"))
    slow: str = key("block", """The slow tier (`slow_*` keys, low-and-slow scans such as
        `nmap -T0`): "block", "detect" or "off".""", choices=("block", "detect", "off"))
    slow_window: float = key(7_200.0, """Slow tier: its window, seconds (event time). Each
        slow threshold is raised to the fast tier's where that is higher.""", gt=0)
    slow_count: int = key(6, """Slow tier: responses needed within slow_window ...""", ge=2)
    slow_ports: int = key(4, """... covering this many distinct ports of one local host ...""",
                          ge=1)
    slow_hosts: int = key(20, """... or this many distinct local hosts (a slow sweep).""",
                          ge=2)
    slow_max_tracked: int = key(10_000, """Memory bound: addresses with slow-tier evidence (two
        responses or more; the fewest responses are evicted first, so a flood of one-off
        sources cannot flush it). Single responses wait in a fixed table of about twice this
        many slots.""", ge=1)
    slow_max_events: int = key(32, "Memory bound: slow-tier evidence kept per address.", ge=2)
    prefix6: int = key(64, """IPv6 evidence is counted per prefix of this length (a scanner
        rotating through its /64 is one scanner). Evidence from one address blocks that
        address; from two or more, the prefix (never one that holds an allowlisted address:
        then per address). 128 = per address.""", ge=1, le=128)
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
    socket_uids: tuple[int, ...] = key((), """Users (uids) allowed to connect to a unix_stream
        EVE socket (checked with SO_PEERCRED; others are refused, counted and logged once per
        uid). Empty: root, the daemon's own user and the `suricata` user if it exists, looked
        up at start. unix_dgram has no peer credentials: the socket directory's permissions
        (0750, group of the `suricata` user) protect it.""", item=int, restart=True)
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
    dedup_tolerance: float = key(0.05, """Two reports of the same response (kind, remote, local
        address and port) whose packet timestamps are this close (seconds) count once: the
        same alert through two eve-log outputs, or the same packet seen by two sensors.
        0 = only identical timestamps.""", ge=0, le=5)
    sids: tuple[int, ...] = key((), """SIDs to act on; empty = the core rules of the scanguard
        pack (9400000-9400049). The optional extended signatures (9400050-9400099) are for the
        SIEM: the daemon does not count them.""", item=int)
    redis: str = key("", """Read alerts Suricata pushes to a Redis list (`eve-log` with filetype
        redis, mode rpush): its URL, e.g. "redis://127.0.0.1:6379/0" or "unix:///run/redis.sock".
        A list entry is popped once: give each sensor its own redis_key and exactly one daemon
        per key (see docs/fleet.md). Empty: none.""", restart=True)
    redis_key: str = key("suricata", "The Redis list Suricata pushes EVE records to.",
                         restart=True)


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
class MetricsConfig:
    """Prometheus metrics (scanguard_* counters, gauges and the reaction-time histogram)."""

    listen: str = key("", """Serve /metrics on this ADDRESS:PORT, e.g. "127.0.0.1:9477"
        ("[::1]:9477" for IPv6). Empty: off. Anything but a loopback address exposes the
        counters to that network.""", restart=True)


#: What [crowdsec] post may list: decisions made by detection, and blocks made by hand.
CROWDSEC_POST = ("automatic", "manual")


@dataclass(frozen=True, slots=True)
class CrowdsecConfig:
    """Post our blocks to a CrowdSec Local API as decisions, so every CrowdSec bouncer enforces
    them (see docs/crowdsec.md). Off unless credentials or url is set."""

    credentials: str = key("", """A credentials file written by `cscli machines add scanguard
        --password ... -f FILE` (url, login, password), e.g. /etc/scanguard/crowdsec.yaml. Empty:
        url/login/password.""",
        restart=True)
    url: str = key("", """The Local API, e.g. "http://127.0.0.1:8080" (overrides the file's
        url). Empty, with no credentials file: CrowdSec is off.""", restart=True)
    login: str = key("", "Machine login (overrides the file's).", restart=True)
    password: str = key("", "Machine password (overrides the file's).", restart=True)
    scenario: str = key("scanguard/port-scan", """The scenario our alerts and decisions carry
        (`cscli decisions list` shows it as the reason).""", restart=True)
    post: tuple[str, ...] = key(CROWDSEC_POST, """Which blocks become CrowdSec decisions:
        "automatic" (detection), "manual" (`scanguard block`). Every unblock deletes ours.""",
        item=str, restart=True)
    share: bool = key(False, """Let a Local API that talks to CrowdSec's Central API push our
        alerts upstream. false: decisions carry origin "cscli", which the Local API treats as
        manual and never shares unless its console option share_manual_decisions is on; true:
        origin "scanguard", a custom scenario, shared while share_custom is on (its default).""",
        restart=True)
    batch_ms: int = key(100, """Collect decisions this long (ms) into one POST under load; 0:
        post each at once.""", ge=0, le=10_000, restart=True)
    queue_max: int = key(10_000, """Decisions held while the Local API is unreachable (the
        oldest is dropped past this); expired ones are dropped, the rest posted when it is
        back.""", ge=1, restart=True)
    timeout: float = key(5.0, "Seconds one request to the Local API may take.", gt=0, le=120,
                         restart=True)


@dataclass(frozen=True, slots=True)
class FastpathConfig:
    """The kernel fast path (docs/fast-path.md): an nftables table that drops a source
    probing too many new ports per second, before any response is sent. Unlike the
    response-based detector it judges inbound probes: read the false-positive figures
    in docs/fast-path.md before turning it on."""

    mode: str = key("off", """off | detect (add to the would_block set, drop nothing; the
        daemon journals what it would have blocked) | block (the kernel drops the source
        itself; the daemon adopts it as a block of the main backend).""",
                    choices=("off", "detect", "block"), restart=True)
    placement: str = key("host", """host: meter in INPUT, counting (source, port) pairs;
        gateway: meter in FORWARD, counting (source, destination, port), so sweeps count.""",
                         choices=("host", "gateway"), restart=True)
    burst: int = key(6, """New (source, port) pairs a source may open back to back before it
        is stopped ...""", ge=1, le=10_000, restart=True)
    rate: int = key(3, "... and per second after that.", ge=1, le=10_000, restart=True)
    ttl: int = key(300, """How long the kernel holds a fast-path block by itself (the daemon
        adopts it into the main backend with detect.ttl and the repeat-offender policy).""",
                   ge=1, le=MAX_TTL, restart=True)
    seen_timeout: int = key(60, """A (source, port) pair seen within this many seconds never
        counts again (retransmissions, reconnects).""", ge=1, le=86_400, restart=True)
    live_bytes: int = key(1000, """A peer whose established connection carried more than this
        many bytes each way is "live" for live_timeout and never metered (a connect scan
        sends no data, so it never qualifies).""", ge=1, restart=True)
    live_timeout: int = key(600, "See live_bytes, seconds.", ge=1, le=86_400, restart=True)
    max_sources: int = key(65_536, """Set size bound of the per-source sets (meter, live,
        blocked). A full set fails open for the meter (counted as meter_full).""",
                           ge=16, restart=True)
    max_pairs: int = key(262_144, """Set size bound of the seen (source, port) pairs. A full
        set fails open for the meter (counted as seen_full).""", ge=16, restart=True)
    exclude_ports: tuple[str, ...] = key((), """Ports never counted, as "21" or ranges
        "50000-51000" (e.g. a passive-FTP data range).""", item=str, restart=True)

    def __post_init__(self) -> None:
        from scanguard_ids.block.fastpath import parse_ports
        from scanguard_ids.errors import ConfigError

        try:
            parse_ports(self.exclude_ports)
        except ValueError as exc:
            raise ConfigError("fastpath.exclude_ports", str(exc)) from None


SHARE_KINDS = ("automatic", "manual")


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """Fleet mode: share evidence and decisions with other nodes through Redis (docs/fleet.md)."""

    url: str = key("", """Redis URL as redis-py reads it: redis://[:PASSWORD@]HOST:PORT/DB,
        rediss://... for TLS (?ssl_cert_reqs=required&ssl_ca_certs=PATH), unix:///PATH?db=N.
        Empty: fleet mode off.""", restart=True)
    node: str = key("", "This node's name in the fleet. Empty: the host name.", restart=True)
    prefix: str = key("scanguard", """Key prefix: streams PREFIX:events and PREFIX:decisions,
        active blocks PREFIX:block:<ip>. Fleets sharing one Redis need distinct prefixes.""",
        restart=True)
    share: tuple[str, ...] = key(SHARE_KINDS, """Which of this node's block/unblock decisions
        are published: "automatic" (the detector's), "manual" (scanguard block/unblock).
        Detect-only and dry-run nodes publish nothing.""", item=str, restart=True)
    events_maxlen: int = key(1_000_000, """Evidence stream length kept (XADD MAXLEN ~, in
        entries of up to batch events each).""", ge=100, restart=True)
    decisions_maxlen: int = key(100_000, "Decision stream length kept (XADD MAXLEN ~).",
                                ge=100, restart=True)
    batch: int = key(512, "Most response events in one evidence stream entry.", ge=1,
                     le=10_000, restart=True)
    queue: int = key(100_000, """Response events waiting to be published; past it the oldest
        are dropped (counted as fleet_events_dropped).""", ge=1, restart=True)
    dedup_keep: float = key(5.0, """How long (seconds, event time) a response is remembered so
        another sensor's report of the same packet, read later from the fleet, counts once
        (matched within eve.dedup_tolerance).""", ge=0, le=600)
    outbox: int = key(10_000, """Decisions waiting for Redis while it is unreachable; published
        when it returns, expired blocks dropped.""", ge=1, restart=True)


@dataclass(frozen=True, slots=True)
class Config:
    detect: DetectConfig = field(default_factory=DetectConfig)
    eve: EveConfig = field(default_factory=EveConfig)
    block: BlockConfig = field(default_factory=BlockConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    sdn: SdnConfig = field(default_factory=SdnConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    crowdsec: CrowdsecConfig = field(default_factory=CrowdsecConfig)
    fastpath: FastpathConfig = field(default_factory=FastpathConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)
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
    "metrics": MetricsConfig,
    "crowdsec": CrowdsecConfig,
    "fastpath": FastpathConfig,
    "fleet": FleetConfig,
    "alarm": AlarmConfig,
}
