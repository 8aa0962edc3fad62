"""The Faucet ACL file scanguard owns: rendered from the blocks, and read back (pure).

Faucet includes the file from its faucet.yaml (``include: [scanguard-acl.yaml]``)
and applies ACL ``<name>`` where the operator lists it (``acls_in`` of the ports or
VLANs, or ``dp_acls``). The file is JSON, which is YAML to Faucet's loader, under
a short comment header. Each drop rule carries the block's expiry in its
``description`` - a rule key Faucet accepts and ignores when it builds flows - so
the file alone is the backend's state: a restarted daemon reads the blocks and
their expiry times back from it, and a single rename replaces rules and state at
once. Faucet rules have no timeout: the backend removes expired rules itself.

Rules per blocked address: ``eth_type`` + ``ipv4_src``/``ipv6_src`` -> drop, and
with ``outbound`` the same for ``*_dst``. Then, with ``terminal_allow``, one rule
that lets everything else pass (an ACL that matches nothing drops). Without it the
ACL is meant to be followed by the operator's own ACL in the same ``acls_in`` list;
Faucet refuses an empty ACL, so with no blocks it then holds one harmless rule that
drops IPv4 from 255.255.255.255, a source address no valid packet has.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass

from scanguard_ids.block.common import normalize_ip
from scanguard_ids.errors import BackendError

MARK = "scanguard"
HEADER = (
    "# Written by scanguard (backend sdn-faucet); rewritten on every change: do not edit.\n"
    "# Faucet reads it through `include:` in faucet.yaml. Each rule's description holds\n"
    "# the block's expiry (epoch seconds); scanguard removes expired rules itself.\n"
)
ETH_TYPE = {4: 0x0800, 6: 0x86DD}
PLACEHOLDER = {"description": f"{MARK} placeholder (no blocks)", "eth_type": 0x0800,
               "ipv4_src": "255.255.255.255", "actions": {"allow": 0}}
TERMINAL = {"description": f"{MARK} end: everything else passes", "actions": {"allow": 1}}


class AclFormatError(BackendError):
    """The ACL file exists but was not written by scanguard (or is damaged)."""


@dataclass(frozen=True, slots=True)
class AclLayout:
    name: str = "scanguard"
    outbound: bool = True
    terminal_allow: bool = True

    def rules(self, blocks: Mapping[str, float]) -> list[dict[str, object]]:
        rules: list[dict[str, object]] = []
        order = sorted(blocks, key=lambda ip: (ipaddress.ip_address(ip).version,
                                               ipaddress.ip_address(ip)))
        dirs = ("src", "dst") if self.outbound else ("src",)
        for ip in order:
            addr = normalize_ip(ip)
            for d in dirs:
                rules.append({"rule": {
                    "description": f"{MARK} ip={addr} expires={blocks[ip]:.3f} dir={d}",
                    "eth_type": ETH_TYPE[addr.version],
                    f"ipv{addr.version}_{d}": str(addr),
                    "actions": {"allow": 0},
                }})
        if self.terminal_allow:
            rules.append({"rule": dict(TERMINAL)})
        elif not rules:
            rules.append({"rule": dict(PLACEHOLDER)})
        return rules

    def render(self, blocks: Mapping[str, float]) -> str:
        """The whole file: header + ``{"acls": {name: [rules]}}``, stable for equal input."""
        body = json.dumps({"acls": {self.name: self.rules(blocks)}}, indent=1)
        return HEADER + body + "\n"

    def parse(self, text: str) -> dict[str, float]:
        """Blocks (ip -> expiry) from a file render() wrote; AclFormatError otherwise."""
        body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
        if not text.startswith(HEADER.splitlines()[0]):
            raise AclFormatError("not written by scanguard (header missing)")
        try:
            doc = json.loads(body)
            rules = doc["acls"][self.name]
        except (ValueError, KeyError, TypeError) as exc:
            raise AclFormatError(f"no ACL {self.name!r} in it ({exc!r})") from None
        if not isinstance(rules, list):
            raise AclFormatError(f"ACL {self.name!r} is not a list of rules")
        blocks: dict[str, float] = {}
        for item in rules:
            rule = item.get("rule", item) if isinstance(item, dict) else None
            desc = rule.get("description") if isinstance(rule, dict) else None
            if not isinstance(desc, str) or not desc.startswith(f"{MARK} ip="):
                continue
            kv = dict(tok.split("=", 1) for tok in desc.split()[1:] if "=" in tok)
            try:
                ip = str(normalize_ip(kv["ip"]))
                expires = float(kv["expires"])
            except (KeyError, ValueError, BackendError):
                raise AclFormatError(f"damaged rule description {desc!r}") from None
            blocks[ip] = max(expires, blocks.get(ip, expires))
        return blocks


def faucet_yaml(acl_file: str, acl_name: str, ports: Mapping[int, str], dp_id: int,
                dp_name: str = "sw1", vid: int = 100) -> str:
    """A minimal faucet.yaml (JSON) for the lab and tests: one DP, one VLAN, every port
    with ``acls_in: [acl_name]`` and our file included. ``ports``: ofport -> port name
    (JSON keys are strings, and Faucet reads a string key as a name, so the number is
    given as ``number``)."""
    interfaces = {name: {"number": no, "native_vlan": "lab", "acls_in": [acl_name]}
                  for no, name in sorted(ports.items())}
    doc = {"include": [acl_file], "vlans": {"lab": {"vid": vid}},
           "dps": {dp_name: {"dp_id": dp_id, "hardware": "Open vSwitch",
                             "interfaces": interfaces}}}
    return json.dumps(doc, indent=1) + "\n"
