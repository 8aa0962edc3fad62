"""The ipset backend (the default): hash:ip sets with kernel timeouts, driven over netlink.

Sets ``<set_name>4`` (inet) and ``<set_name>6`` (inet6) are created with ``timeout``
and ``maxelem = block.max_set_size``, so the kernel expires every block even if the
daemon dies. block/unblock/list talk to the kernel over netlink, no process per block:
the per-block add/delete on a hand-built raw netlink request (block/nlipset.py, ~20 us),
the list on a raw LIST dump (its own socket, so a block never waits for a list),
everything else - and any request the raw path fails - with pyroute2's IPSet.
Requests go without NLM_F_EXCL - ipset's ``-exist`` - so an add of a present entry
refreshes its timeout and a delete of a missing one succeeds; a create of a present set
succeeds when its type and parameters match.

Prefix blocks ("2001:db8:1:2::/64") go to companion hash:net sets ``<set_name>4n`` /
``<set_name>6n`` with the same parameters and their own iptables rules. The address
sets stay hash:ip: one hash lookup per packet, a host with the sets of an older version
keeps them as they are, and a block of a single address takes the same path as before.
Conntrack entries of a blocked prefix are not cleared (the clearer works per address);
the drop rules sit above "accept established", so those flows stop all the same.
The iptables rules that reference the sets live in iptables.py.
"""

from __future__ import annotations

import builtins
import errno
import logging
import socket
import threading
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError as PyrouteNetlinkError

from scanguard_ids.block.base import BackendInfo
from scanguard_ids.block.common import (
    IPAddress,
    Runner,
    check_ttl,
    normalize_ip,
    normalize_target,
    run_argv,
)
from scanguard_ids.block.conntrack import ConntrackClearer
from scanguard_ids.block.iptables import IptablesRules, chain_name
from scanguard_ids.block.nlipset import NetlinkError, RawIpset
from scanguard_ids.clock import Clock, SystemClock
from scanguard_ids.config import BlockConfig
from scanguard_ids.errors import BackendError
from scanguard_ids.model import Block, IPNetwork

log = logging.getLogger(__name__)

IPSET_ERR_BUSY = 4100
IPSET_ERR_REFERENCED = 4108
IPSET_ERR_HASH_FULL = 4352  # IPSET_ERR_TYPE_SPECIFIC: "hash is full"
IPSET_FLAG_LIST_HEADER = 1 << 2
_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
_ADDR_ATTR = {4: "IPSET_ATTR_IPADDR_IPV4", 6: "IPSET_ATTR_IPADDR_IPV6"}


#: What the kernel boundary raises: pyroute2's NetlinkError (IPSetError, NoSuchObject are
#: subclasses, with the netlink error in ``code``) or an OSError from the socket itself.
KernelError = (PyrouteNetlinkError, OSError)


def _code(exc: PyrouteNetlinkError | OSError) -> int | None:
    """The netlink / errno code of a kernel-boundary error."""
    return exc.code if isinstance(exc, PyrouteNetlinkError) else exc.errno


def member_text(ip: str, cidr: int | None, version: int) -> str:
    """A set member as Block.ip: the address, or "net/len" for a hash:net prefix."""
    return ip if cidr is None or cidr == (32 if version == 4 else 128) else f"{ip}/{cidr}"


def parse_members(msgs: Any, version: int, now: float) -> list[Block]:
    """Blocks from IPSET_CMD_LIST replies; an entry's timeout is the seconds it has left."""
    blocks = []
    for msg in msgs:
        adt = msg.get_attr("IPSET_ATTR_ADT")
        if not adt:
            continue
        for data in adt.get_attrs("IPSET_ATTR_DATA"):
            ip_from = data.get_attr("IPSET_ATTR_IP_FROM")
            ip = ip_from.get_attr(_ADDR_ATTR[version]) if ip_from else None
            if not ip:
                continue
            left = data.get_attr("IPSET_ATTR_TIMEOUT")
            blocks.append(Block(member_text(ip, data.get_attr("IPSET_ATTR_CIDR"), version),
                                now + left if left else None))
    return blocks


class IpsetBackend:
    def __init__(self, cfg: BlockConfig | None = None, clock: Clock | None = None, *,
                 iptables: str = "auto", default_timeout: int = 300, runner: Runner = run_argv,
                 conntrack: ConntrackClearer | None = None) -> None:
        self.cfg = cfg or BlockConfig()
        self.clock: Clock = clock or SystemClock()
        self.sets = {4: f"{self.cfg.set_name}4", 6: f"{self.cfg.set_name}6"}
        self.net_sets = {4: f"{self.cfg.set_name}4n", 6: f"{self.cfg.set_name}6n"}
        self.chain = chain_name(self.cfg.set_name)
        self.default_timeout = check_ttl(default_timeout)
        self._variant = iptables
        self._run = runner
        self._rules: IptablesRules | None = None
        self._sock: Any = None
        self._lock = threading.Lock()  # the pyroute2 socket
        self._raw: RawIpset | None = None  # has its own lock: a block never waits for a list
        self._raw_off = False
        self._lister: RawIpset | None = None  # another raw socket, for list()
        self._lister_off = False
        self._conntrack = conntrack if conntrack is not None else (
            ConntrackClearer(runner=runner) if self.cfg.clear_conntrack else None)
        self.info = BackendInfo("ipset", f"ipset sets {self.sets[4]}/{self.sets[6]}, "
                                f"chain {self.chain}")

    # -- handles -----------------------------------------------------------
    def _ipset(self) -> Any:
        if self._sock is None:
            try:
                from pyroute2.ipset import IPSet

                self._sock = IPSet()
            except KernelError as exc:  # no ip_set netlink on this host
                raise BackendError(f"ipset netlink unavailable: {exc!r}") from exc
        return self._sock

    def rules(self) -> IptablesRules:
        if self._rules is None:
            self._rules = IptablesRules(self.sets[4], self.sets[6], self.chain,
                                        self.cfg.block_outbound, self._variant, self._run,
                                        net4=self.net_sets[4], net6=self.net_sets[6])
            self.info = BackendInfo("ipset", f"ipset sets {self.sets[4]}/{self.sets[6]}, "
                                    f"chain {self.chain}, iptables {self._rules.variant} via "
                                    f"{self._rules.via}")
        return self._rules

    # -- setup -------------------------------------------------------------
    def _all_sets(self) -> builtins.list[tuple[int, str, str]]:
        """(family version, set name, set type) of every set, address sets first."""
        return [*((v, n, "hash:ip") for v, n in self.sets.items()),
                *((v, n, "hash:net") for v, n in self.net_sets.items())]

    def start(self) -> None:
        with self._lock:
            sock = self._ipset()
            for v, name, stype in self._all_sets():
                try:
                    sock.create(name, stype=stype, family=_FAMILY[v], exclusive=False,
                                timeout=self.default_timeout, maxelem=self.cfg.max_set_size)
                except KernelError as exc:
                    if _code(exc) != errno.EEXIST:
                        raise BackendError(f"creating ipset {name}: {exc}") from exc
                    self._adopt(sock, name, v, stype)
        rules = self.rules()
        changes = rules.install()
        log.info("action=install backend=ipset sets=%s,%s maxelem=%d timeout=%d chain=%s "
                 "iptables=%s rules_via=%s outbound=%s changes=%d", self.sets[4], self.sets[6],
                 self.cfg.max_set_size, self.default_timeout, self.chain, rules.variant,
                 rules.via, self.cfg.block_outbound, changes)

    def _header(self, sock: Any, name: str) -> dict[str, Any] | None:
        try:
            msgs = list(sock.list(name, flags=IPSET_FLAG_LIST_HEADER))
        except KernelError as exc:
            if _code(exc) == errno.ENOENT:
                return None
            raise BackendError(f"reading ipset {name}: {exc}") from exc
        if not msgs:
            return None
        msg = msgs[0]
        data = msg.get_attr("IPSET_ATTR_DATA")
        return {
            "type": msg.get_attr("IPSET_ATTR_TYPENAME"),
            "family": msg.get_attr("IPSET_ATTR_FAMILY"),
            "timeout": data.get_attr("IPSET_ATTR_TIMEOUT") if data else None,
            "maxelem": data.get_attr("IPSET_ATTR_MAXELEM") if data else None,
            "elements": data.get_attr("IPSET_ATTR_ELEMENTS") if data else None,
            "references": data.get_attr("IPSET_ATTR_REFERENCES") if data else None,
        }

    def _adopt(self, sock: Any, name: str, v: int, stype: str = "hash:ip") -> None:
        """A set of that name exists with other parameters: keep it if it can serve."""
        head = self._header(sock, name) or {}
        if head.get("type") != stype or head.get("family") != _FAMILY[v] \
                or head.get("timeout") is None:
            raise BackendError(f"ipset {name} exists but is not a {stype} "
                               f"{'inet6' if v == 6 else 'inet'} set with timeout ({head}); "
                               "remove it or choose another block.set_name")
        log.warning("action=adopt backend=ipset set=%s maxelem=%s timeout=%s wanted_maxelem=%d "
                    "wanted_timeout=%d hint=%s", name, head.get("maxelem"), head.get("timeout"),
                    self.cfg.max_set_size, self.default_timeout,
                    "'scanguard firewall remove' re-creates it")

    # -- per block ---------------------------------------------------------
    def _fail(self, what: str, addr: IPAddress | IPNetwork, exc: PyrouteNetlinkError | OSError,
              name: str | None = None) -> BackendError:
        name, code = name or self.sets[addr.version], _code(exc)
        if code == IPSET_ERR_HASH_FULL:
            return BackendError(f"{what} {addr}: ipset {name} is full "
                                f"(maxelem {self.cfg.max_set_size})")
        if code == errno.ENOENT:
            return BackendError(f"{what} {addr}: ipset {name} does not exist; "
                                "run `scanguard firewall install`")
        return BackendError(f"{what} {addr}: ipset {name}: {exc}")

    def _raw_request(self, addr: IPAddress, name: str, ttl: int | None,
                     cidr: int | None = None) -> bool:
        """Add (ttl given) or delete on the raw socket; False: pyroute2 must do it.

        A refusal by the kernel (no such set, set full...) is asked again through pyroute2,
        whose answer the caller gets, exactly as without this path; a failing socket turns
        the raw path off for good.
        """
        if self._raw_off:
            return False
        try:
            if self._raw is None:
                with self._lock:  # made once, in the namespace of the first block
                    if self._raw is None:
                        self._raw = RawIpset()
            if cidr is not None:  # a prefix, in a hash:net set
                if ttl is None:
                    self._raw.delete(name, addr.packed, cidr)
                else:
                    self._raw.add(name, addr.packed, ttl, cidr)
            elif ttl is None:
                self._raw.delete(name, addr.packed)
            else:
                self._raw.add(name, addr.packed, ttl)
            return True
        except NetlinkError as exc:
            log.debug("ipset raw request refused ip=%s set=%s error=%s", addr, name, exc)
            return False
        except (OSError, ValueError) as exc:
            log.warning("action=ipset-raw-off error=%r; pyroute2 does every request now", exc)
            self._raw_off = True
            self._close_raw()
            return False

    def _close_raw(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            raw.close()

    def _close_lister(self) -> None:
        lister, self._lister = self._lister, None
        if lister is not None:
            lister.close()

    def block(self, ip: str, ttl: int) -> None:
        if "/" in ip:
            target = normalize_target(ip)
            if isinstance(target, IPNetwork):
                self._block_net(target, ttl)
                return
            ip = str(target)
        addr = normalize_ip(ip)
        ttl = check_ttl(ttl)
        name = self.sets[addr.version]
        if not self._raw_request(addr, name, ttl):
            with self._lock:
                sock = self._ipset()
                try:
                    sock.add(name, str(addr), family=_FAMILY[addr.version], exclusive=False,
                             timeout=ttl)
                except KernelError as exc:
                    raise self._fail("block", addr, exc) from exc
        log.debug("action=block ip=%s ttl=%d backend=ipset set=%s", addr, ttl, name)
        if self._conntrack is not None:
            self._conntrack.submit(str(addr))

    def unblock(self, ip: str) -> None:
        if "/" in ip:
            target = normalize_target(ip)
            if isinstance(target, IPNetwork):
                self._unblock_net(target)
                return
            ip = str(target)
        addr = normalize_ip(ip)
        name = self.sets[addr.version]
        if not self._raw_request(addr, name, None):
            with self._lock:
                sock = self._ipset()
                try:
                    sock.delete(name, str(addr), family=_FAMILY[addr.version],
                                exclusive=False)
                except KernelError as exc:
                    if _code(exc) != errno.ENOENT:  # no set: nothing is blocked
                        raise self._fail("unblock", addr, exc) from exc
        log.debug("action=unblock ip=%s backend=ipset set=%s", addr, name)

    def _block_net(self, net: IPNetwork, ttl: int) -> None:
        ttl = check_ttl(ttl)
        name, base = self.net_sets[net.version], net.network_address
        if not self._raw_request(base, name, ttl, net.prefixlen):
            with self._lock:
                sock = self._ipset()
                try:
                    sock.add(name, str(net), family=_FAMILY[net.version], exclusive=False,
                             timeout=ttl, etype="net")
                except KernelError as exc:
                    raise self._fail("block", net, exc, name) from exc
        log.info("action=block ip=%s ttl=%d backend=ipset set=%s", net, ttl, name)

    def _unblock_net(self, net: IPNetwork) -> None:
        name, base = self.net_sets[net.version], net.network_address
        if not self._raw_request(base, name, None, net.prefixlen):
            with self._lock:
                sock = self._ipset()
                try:
                    sock.delete(name, str(net), family=_FAMILY[net.version], exclusive=False,
                                etype="net")
                except KernelError as exc:
                    if _code(exc) != errno.ENOENT:  # no set: nothing is blocked
                        raise self._fail("unblock", net, exc, name) from exc
        log.info("action=unblock ip=%s backend=ipset set=%s", net, name)

    # -- state -------------------------------------------------------------
    def list(self) -> list[Block]:
        if not self._lister_off:
            listed = self._raw_list()
            if listed is not None:
                return listed
        blocks: list[Block] = []
        with self._lock:
            sock = self._ipset()
            now = self.clock.now()
            for v, name, _stype in self._all_sets():
                try:
                    msgs = list(sock.list(name))
                except KernelError as exc:
                    if _code(exc) == errno.ENOENT:
                        continue  # not installed: nothing is blocked
                    raise BackendError(f"listing ipset {name}: {exc}") from exc
                blocks.extend(parse_members(msgs, v, now))
        return blocks

    def _raw_list(self) -> builtins.list[Block] | None:
        """Both sets' members through raw LIST dumps; None: pyroute2 must list them.

        A missing set lists as empty, as on the pyroute2 path. Any other refusal is asked
        again through pyroute2; a failing socket turns this path off for good.
        """
        try:
            with self._lock:  # made once, in the namespace of the first list
                if self._lister is None:
                    self._lister = RawIpset()
                lister = self._lister
            now = self.clock.now()
            blocks: builtins.list[Block] = []
            for v, name, _stype in self._all_sets():
                try:
                    members = lister.list(name)
                except NetlinkError as exc:
                    if exc.errno == errno.ENOENT:
                        continue  # not installed: nothing is blocked
                    log.debug("ipset raw list refused set=%s error=%s", name, exc)
                    return None
                family = _FAMILY[v]
                blocks.extend(
                    Block(member_text(socket.inet_ntop(family, packed), cidr, v),
                          now + left if left else None)
                    for packed, left, cidr in members
                )
            return blocks
        except (OSError, ValueError) as exc:
            log.warning("action=ipset-raw-list-off error=%r; pyroute2 lists the sets now", exc)
            self._lister_off = True
            self._close_lister()
            return None

    def show(self) -> str:
        lines = []
        with self._lock:
            sock = self._ipset()
            for _v, name, _stype in self._all_sets():
                head = self._header(sock, name)
                if head is None:
                    lines.append(f"ipset {name}: not installed")
                else:
                    lines.append(f"ipset {name}: {head['elements']} entries (maxelem "
                                 f"{head['maxelem']}, default timeout {head['timeout']}s, "
                                 f"{head['references']} references)")
        return "\n".join(lines) + "\n" + self.rules().describe()

    def stop(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
            self._sock = None
        self._close_raw()
        self._close_lister()
        if self._conntrack is not None:
            self._conntrack.close()

    def remove(self) -> None:
        """Rules first (they reference the sets), then the sets."""
        changes = self.rules().remove()
        with self._lock:
            sock = self._ipset()
            for _v, name, _stype in self._all_sets():
                try:
                    sock.destroy(name)
                except KernelError as exc:
                    if _code(exc) == errno.ENOENT:
                        continue
                    if _code(exc) in (IPSET_ERR_BUSY, IPSET_ERR_REFERENCED):
                        raise BackendError(f"ipset {name} is still referenced by other "
                                           "rules; remove those first") from exc
                    raise BackendError(f"destroying ipset {name}: {exc}") from exc
        log.info("action=remove backend=ipset sets=%s,%s,%s,%s chain=%s rule_changes=%d",
                 self.sets[4], self.sets[6], self.net_sets[4], self.net_sets[6], self.chain,
                 changes)
        self.stop()
