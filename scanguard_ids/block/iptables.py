"""The iptables rules that make the ipset sets bite, installed idempotently.

One chain (``SCANGUARD``, the upper-cased set name) holds ``-m set --match-set X src -j
DROP`` and, with block_outbound, ``... X dst -j DROP``, for the address set X and then
for its prefix companion (``<X>n``, hash:net) the same; it is jumped to from the top
(position 1, above any "accept established" rule) of INPUT, FORWARD and OUTPUT. The same
for ip6tables with the v6 sets. A chain of an older layout (the address set only) differs
from the wanted one and is rebuilt in the same restore transaction. (The src rule never
matches in OUTPUT, the dst rule never in INPUT: our own addresses are never blocked.)

Two writers, picked by the iptables variant the admin's ``iptables`` is:
- nf_tables: python-iptables (libiptc) would write the LEGACY tables, where
  ``iptables -S`` cannot see them, so ``iptables-nft-restore --noflush`` gets a
  generated ruleset on stdin (argv only, no shell); the state is read back with
  ``iptables-nft-save -t filter``.
- legacy: python-iptables (``iptc``), committed once per table. It is the optional
  extra ``scanguard-ids[iptables]`` (it needs a compiler to install), imported only
  here; without it the legacy path uses ``iptables-legacy-restore``.
Both read the current state, plan the missing changes (pure), and apply them only if
there are any: start() twice adds nothing. This forks only at install time; per-block
work never touches iptables.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from scanguard_ids.block.common import Runner, check_result, run_argv
from scanguard_ids.errors import BackendError

log = logging.getLogger(__name__)

BASE_CHAINS = ("INPUT", "FORWARD", "OUTPUT")
State = dict[str, list[str]]  # chain -> rule specs as iptables-save prints them after "-A CHAIN"


#: How to get python-iptables, for the messages that need it.
IPTC_HINT = "pip install 'scanguard-ids[iptables]'"


def import_iptc() -> Any:
    """python-iptables, imported only when the legacy path is taken."""
    try:
        import iptc
    except ImportError as exc:
        raise BackendError(
            f"python-iptables is not installed ({exc}); it is the optional extra: {IPTC_HINT}"
        ) from exc
    return iptc


def chain_name(set_name: str) -> str:
    return set_name.upper()


def chain_rules(set_name: str, outbound: bool, net_set: str | None = None) -> list[str]:
    """The chain's rules for one family: the address set, then the prefix set if any."""
    rules = []
    for name in (set_name, net_set):
        if name is None:
            continue
        rules.append(f"-m set --match-set {name} src -j DROP")
        if outbound:
            rules.append(f"-m set --match-set {name} dst -j DROP")
    return rules


# -- variant ----------------------------------------------------------------
def parse_variant(version: str) -> str | None:
    """"nft" or "legacy" from ``iptables -V`` output; None if it says neither."""
    if "(nf_tables)" in version:
        return "nft"
    if "(legacy)" in version:
        return "legacy"
    m = re.search(r"iptables v1\.(\d+)", version)
    if m and int(m.group(1)) < 8:  # before 1.8 there was only the legacy variant
        return "legacy"
    return None


def detect_variant(runner: Runner = run_argv,
                   which: Callable[[str], str | None] = shutil.which) -> str:
    """Which variant the admin's ``iptables`` is, so our rules land where they look."""
    try:
        res = runner(["iptables", "-V"], timeout=10)
        found = parse_variant(res.stdout + res.stderr)
        if found:
            return found
    except BackendError:
        pass
    path = which("iptables")
    if path:
        target = os.path.realpath(path)
        if "nft" in target:
            return "nft"
        if "legacy" in target:
            return "legacy"
    if which("iptables-nft"):
        return "nft"
    if which("iptables-legacy"):
        return "legacy"
    raise BackendError("no iptables found (neither iptables, iptables-nft nor iptables-legacy)")


def _tool(which: Callable[[str], str | None], v6: bool, variant: str, kind: str) -> str | None:
    """The save/restore binary of a variant, e.g. ip6tables-nft-restore."""
    base = "ip6tables" if v6 else "iptables"
    for name in (f"{base}-{variant}-{kind}", f"{base}-{kind}"):
        if which(name):
            return name
    return None


def unusable_reason(variant: str, which: Callable[[str], str | None] = shutil.which) -> str | None:
    """Why rules cannot be installed with this variant (None: they can)."""
    if variant == "legacy":
        try:
            import_iptc()
        except Exception as exc:  # noqa: BLE001 - not installed, or libiptc/xtables broken
            if _tool(which, False, "legacy", "restore") and _tool(which, True, "legacy", "restore"):
                return None
            why = exc if isinstance(exc, BackendError) else f"python-iptables unusable ({exc})"
            return f"{why}; and no iptables-legacy-restore"
        return None
    for v6 in (False, True):
        for kind in ("save", "restore"):
            if _tool(which, v6, "nft", kind) is None:
                return f"no {'ip6tables' if v6 else 'iptables'}-nft-{kind}"
    return None


# -- planning (pure) --------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Action:
    op: str  # new-chain (create or flush) | append | insert-top | delete | delete-chain
    chain: str
    rule: str = ""


def parse_save(text: str) -> State:
    """The filter table from ``iptables-save -t filter`` output."""
    state: State = {}
    in_filter = False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            in_filter = line == "*filter"
        elif not in_filter:
            continue
        elif line.startswith(":"):
            state.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A "):
            _, chain, *rest = line.split(maxsplit=2)
            state.setdefault(chain, []).append(rest[0] if rest else "")
    return state


def plan_install(state: State, chain: str, rules: Sequence[str],
                 bases: Sequence[str] = BASE_CHAINS) -> list[Action]:
    actions: list[Action] = []
    if state.get(chain) != list(rules):
        actions.append(Action("new-chain", chain))
        actions.extend(Action("append", chain, r) for r in rules)
    jump = f"-j {chain}"
    for base in bases:
        present = state.get(base, [])
        n = present.count(jump)
        if n == 1 and present[0] == jump:
            continue
        actions.extend(Action("delete", base, jump) for _ in range(n))
        actions.append(Action("insert-top", base, jump))
    return actions


def plan_remove(state: State, chain: str, bases: Sequence[str] = BASE_CHAINS) -> list[Action]:
    jump = f"-j {chain}"
    actions = [Action("delete", base, jump)
               for base in bases for _ in range(state.get(base, []).count(jump))]
    if chain in state:
        actions.append(Action("delete-chain", chain))
    return actions


def render_restore(actions: Sequence[Action]) -> str:
    lines = ["*filter"]
    for a in actions:
        if a.op == "new-chain":
            lines.append(f":{a.chain} - [0:0]")  # with --noflush: create, or flush if present
        elif a.op == "append":
            lines.append(f"-A {a.chain} {a.rule}")
        elif a.op == "insert-top":
            lines.append(f"-I {a.chain} 1 {a.rule}")
        elif a.op == "delete":
            lines.append(f"-D {a.chain} {a.rule}")
        elif a.op == "delete-chain":
            lines += [f"-F {a.chain}", f"-X {a.chain}"]
        else:
            raise ValueError(f"unknown action {a.op}")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


# -- writers ----------------------------------------------------------------
class Writer(Protocol):
    via: str

    def read(self) -> State: ...

    def apply(self, actions: Sequence[Action]) -> None: ...


class RestoreWriter:
    """iptables-<variant>-save / -restore --noflush, fed on stdin."""

    def __init__(self, v6: bool, variant: str, runner: Runner = run_argv,
                 which: Callable[[str], str | None] = shutil.which) -> None:
        save, restore = _tool(which, v6, variant, "save"), _tool(which, v6, variant, "restore")
        if save is None or restore is None:
            raise BackendError(f"{'ip6tables' if v6 else 'iptables'}-{variant}-save/-restore "
                               "not found")
        self.save, self.restore, self.via = save, restore, restore
        self._run = runner

    def read(self) -> State:
        return parse_save(check_result(self._run([self.save, "-t", "filter"]), self.save))

    def apply(self, actions: Sequence[Action]) -> None:
        res = self._run([self.restore, "-w", "10", "--noflush"], stdin=render_restore(actions))
        check_result(res, self.restore)


def _iptc_rule_text(rule: Any) -> str:
    parts = []
    for attr, flag, defaults in (("src", "-s", ("0.0.0.0/0.0.0.0", "::/0")),
                                 ("dst", "-d", ("0.0.0.0/0.0.0.0", "::/0")),
                                 ("in_interface", "-i", (None,)),
                                 ("out_interface", "-o", (None,)),
                                 ("protocol", "-p", ("ip", None))):
        value = getattr(rule, attr)
        if value not in defaults:
            parts.append(f"{flag} {value}")
    for m in rule.matches:
        params = m.get_all_parameters()
        if m.name == "set" and "match-set" in params:
            parts.append("-m set --match-set " + " ".join(params["match-set"]))
        else:
            parts.append(f"-m {m.name} " + " ".join(f"--{k} {' '.join(v)}" for k, v in
                                                    sorted(params.items())))
    if rule.target is not None and rule.target.name:
        parts.append(f"-j {rule.target.name}")
    return " ".join(parts)


class IptcWriter:
    """python-iptables (libiptc) on the legacy tables; one commit per apply()."""

    via = "python-iptables"

    def __init__(self, v6: bool) -> None:
        self._iptc = import_iptc()
        self.v6 = v6

    def _table(self) -> Any:
        iptc = self._iptc
        table = iptc.Table6(iptc.Table6.FILTER) if self.v6 else iptc.Table(iptc.Table.FILTER)
        table.refresh()
        return table

    def read(self) -> State:
        table = self._table()
        return {ch.name: [_iptc_rule_text(r) for r in ch.rules] for ch in table.chains}

    def _rule(self, text: str) -> Any:
        iptc = self._iptc
        rule = iptc.Rule6() if self.v6 else iptc.Rule()
        tokens = text.split()
        if tokens[:3] == ["-m", "set", "--match-set"] and len(tokens) == 7 and tokens[5] == "-j":
            match = rule.create_match("set")
            match.match_set = [tokens[3], tokens[4]]
            tokens = tokens[5:]
        if len(tokens) != 2 or tokens[0] != "-j":
            raise ValueError(f"rule outside our grammar: {text!r}")
        rule.target = iptc.Target(rule, tokens[1])
        return rule

    def apply(self, actions: Sequence[Action]) -> None:
        iptc = self._iptc
        table = self._table()
        table.autocommit = False
        try:
            for a in actions:
                if a.op == "new-chain":
                    if table.is_chain(a.chain):
                        iptc.Chain(table, a.chain).flush()
                    else:
                        table.create_chain(a.chain)
                elif a.op == "append":
                    iptc.Chain(table, a.chain).append_rule(self._rule(a.rule))
                elif a.op == "insert-top":
                    iptc.Chain(table, a.chain).insert_rule(self._rule(a.rule), 0)
                elif a.op == "delete":
                    chain = iptc.Chain(table, a.chain)
                    for r in chain.rules:
                        if _iptc_rule_text(r) == a.rule:
                            chain.delete_rule(r)
                            break
                elif a.op == "delete-chain":
                    iptc.Chain(table, a.chain).flush()
                    table.delete_chain(a.chain)
                else:
                    raise ValueError(f"unknown action {a.op}")
            table.commit()
        except iptc.IPTCError as exc:
            table.refresh()  # drop the half-built change set
            raise BackendError(f"python-iptables: {exc}") from None
        finally:
            table.autocommit = True


# -- both families ----------------------------------------------------------
class IptablesRules:
    """The chain and jumps for the v4 sets (iptables) and the v6 sets (ip6tables)."""

    def __init__(self, set4: str, set6: str, chain: str, outbound: bool, variant: str = "auto",
                 runner: Runner = run_argv,
                 which: Callable[[str], str | None] = shutil.which, *,
                 net4: str | None = None, net6: str | None = None) -> None:
        self.chain = chain
        self.sets = {False: set4, True: set6}
        self.net_sets = {False: net4, True: net6}
        self.outbound = outbound
        self.variant = detect_variant(runner, which) if variant == "auto" else variant
        if self.variant not in ("nft", "legacy"):
            raise BackendError(f"unknown iptables variant {variant!r} (auto, nft or legacy)")
        self.writers: dict[bool, Writer] = {v6: self._writer(v6, runner, which)
                                            for v6 in (False, True)}
        self.via = self.writers[False].via

    def _writer(self, v6: bool, runner: Runner, which: Callable[[str], str | None]) -> Writer:
        if self.variant == "legacy":
            try:
                return IptcWriter(v6)
            except Exception as exc:  # noqa: BLE001 - libiptc missing: legacy-restore instead
                log.warning("action=iptc-unavailable reason=%r fallback=iptables-legacy-restore",
                            exc)
        return RestoreWriter(v6, self.variant, runner, which)

    def install(self) -> int:
        """Add what is missing; returns how many changes were applied (0: all there)."""
        changes = 0
        for v6, writer in self.writers.items():
            actions = plan_install(writer.read(), self.chain,
                                   chain_rules(self.sets[v6], self.outbound,
                                               self.net_sets[v6]))
            if actions:
                writer.apply(actions)
                changes += len(actions)
        return changes

    def remove(self) -> int:
        changes = 0
        for writer in self.writers.values():
            actions = plan_remove(writer.read(), self.chain)
            if actions:
                writer.apply(actions)
                changes += len(actions)
        return changes

    def describe(self) -> str:
        out = []
        for v6, writer in self.writers.items():
            state = writer.read()
            name = "ip6tables" if v6 else "iptables"
            out.append(f"{name} ({self.variant}, via {writer.via}):")
            jump = f"-j {self.chain}"
            for base in BASE_CHAINS:
                where = [str(i + 1) for i, r in enumerate(state.get(base, [])) if r == jump]
                out.append(f"  {base}: jump to {self.chain} at position "
                           f"{', '.join(where)}" if where else f"  {base}: no jump to {self.chain}")
            if self.chain in state:
                out.extend(f"  -A {self.chain} {r}" for r in state[self.chain])
            else:
                out.append(f"  chain {self.chain} not installed")
        return "\n".join(out) + "\n"
