"""nmap XML parsing, the state mapping to the paper's columns, and the nmap command line."""

from __future__ import annotations

import pytest

from scanguard_ids.lab import scan

# Trimmed from a real nmap 7.93 run in the lab: extraports carry their port lists.
TCP_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -n -Pn -sS -p0-200 -oX - 192.0.2.1" version="7.93">
<scaninfo type="syn" protocol="tcp" numservices="201" services="0-200"/>
<host starttime="1795638063" endtime="1795638063"><status state="up" reason="arp-response"/>
<address addr="192.0.2.1" addrtype="ipv4"/>
<ports><extraports state="closed" count="198">
<extrareasons reason="reset" count="198" proto="tcp" ports="0-21,23-79,81-199"/>
</extraports>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack" reason_ttl="64"/></port>
<port protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="64"/></port>
<port protocol="tcp" portid="200"><state state="filtered" reason="no-response"/></port>
</ports>
</host>
<runstats><finished time="1795638063" elapsed="0.11" exit="success"/></runstats>
</nmaprun>
"""

UDP_XML = """<?xml version="1.0" encoding="UTF-8"?>
<nmaprun scanner="nmap" version="7.93">
<host><status state="up"/>
<ports><extraports state="open|filtered" count="40">
<extrareasons reason="no-response" count="40" proto="udp" ports="1-40"/>
</extraports>
<extraports state="closed" count="8">
<extrareasons reason="port-unreach" count="8" proto="udp" ports="41-48"/>
</extraports>
<port protocol="udp" portid="53"><state state="open" reason="udp-response"/></port>
<port protocol="tcp" portid="53"><state state="open" reason="syn-ack"/></port>
<port protocol="udp" portid="60"><state state="closed|filtered" reason="none"/></port>
</ports>
</host>
<runstats><finished elapsed="12.5" exit="success"/></runstats>
</nmaprun>
"""

NO_HOST_XML = """<?xml version="1.0"?><nmaprun><runstats><finished elapsed="1.0" exit="error"/>
</runstats></nmaprun>"""


def test_parse_tcp_expands_extraports() -> None:
    res = scan.parse_xml(TCP_XML, "tcp")
    assert len(res.states) == 201
    assert res.states[0] == "closed" and res.states[199] == "closed"
    assert res.ports_in("open") == {22, 80}
    assert res.ports_in("filtered") == {200}
    assert res.reasons == {"reset": 198, "syn-ack": 2, "no-response": 1}
    assert res.nmap_elapsed == pytest.approx(0.11)
    assert res.exit == "success"
    assert res.paper_counts() == {"open": 2, "closed": 198, "filtered": 1}


def test_parse_udp_maps_open_filtered_to_filtered_and_ignores_other_protocols() -> None:
    res = scan.parse_xml(UDP_XML, "udp")
    assert res.states[53] == "open"
    assert res.states[1] == "open|filtered"
    assert res.states[60] == "closed|filtered"
    assert res.paper_counts() == {"open": 1, "closed": 8, "filtered": 41}
    # Ports nmap did not report at all count as filtered (undetermined).
    assert res.paper_counts(range(1, 101)) == {"open": 1, "closed": 8, "filtered": 91}


def test_parse_without_host() -> None:
    res = scan.parse_xml(NO_HOST_XML, "tcp")
    assert res.states == {} and res.exit == "error"
    assert res.paper_counts([1, 2]) == {"open": 0, "closed": 0, "filtered": 2}


@pytest.mark.parametrize(("state", "paper"), [
    ("open", "open"), ("closed", "closed"), ("filtered", "filtered"),
    ("open|filtered", "filtered"), ("closed|filtered", "filtered"), ("unfiltered", "filtered"),
])
def test_state_mapping(state: str, paper: str) -> None:
    assert scan.PAPER_STATE[state] == paper


@pytest.mark.parametrize(("spec", "ports"), [
    ("", []), ("7", [7]), ("1-3,7", [1, 2, 3, 7]), ("0-2, 9", [0, 1, 2, 9]),
])
def test_parse_portspec(spec: str, ports: list[int]) -> None:
    assert scan.parse_portspec(spec) == ports


def test_nmap_argv() -> None:
    argv = scan.nmap_argv("192.0.2.1", "udp", [1, 2, 3, 80])
    assert argv[:4] == ["nmap", "-n", "-Pn", "-sU"]
    assert argv[argv.index("-p") + 1] == "1-3,80"
    assert argv[-3:] == ["-oX", "-", "192.0.2.1"]
    assert all(t in argv for t in scan.DEFAULT_TIMING)
    v6 = scan.nmap_argv("2001:db8::1", "tcp", "0-65535", timing=("-T3",))
    assert "-6" in v6 and "-sS" in v6 and "-T3" in v6 and "--min-rate" not in v6


@pytest.mark.parametrize("target", ["10.0.0.1", "8.8.8.8", "fd00::1"])
def test_nmap_argv_refuses_non_documentation_targets(target: str) -> None:
    with pytest.raises(ValueError):
        scan.nmap_argv(target, "tcp", [80])
