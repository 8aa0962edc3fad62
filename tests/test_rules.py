"""The rule pack: its text, `suricata -T`, and real Suricata alerts on every scenario pcap."""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from pcaps import EVE_LINKTYPE, EVE_SAMPLES, HOME_NET, SCENARIOS

from scanguard_ids import suricata
from scanguard_ids.config import SID_FIRST, SID_LAST
from scanguard_ids.model import Kind

DATA = Path(__file__).resolve().parent / "data" / "eve"
KINDS = {k.value for k in Kind}
#: kind -> (EVE proto, icmp_type, icmp_code) of its alerts
SHAPE = {"tcp-rst": ("TCP", None, None), "icmp-port-unreachable": ("ICMP", 3, 3),
         "icmp6-port-unreachable": ("IPv6-ICMP", 1, 4)}
HOME = [ipaddress.ip_network(n) for n in HOME_NET]


def rule_lines(path: Path) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(path.read_text().splitlines(), 1)
            if line.strip() and not line.lstrip().startswith("#")]


def options(rule: str) -> list[tuple[str, str]]:
    """(keyword, value) pairs of a rule's options; ';' inside quotes is kept."""
    body = rule[rule.index("(") + 1:rule.rindex(")")]
    out, cur, quoted = [], "", False
    for ch in body:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            key, _, value = cur.strip().partition(":")
            out.append((key.strip(), value.strip()))
            cur = ""
        else:
            cur += ch
    assert not cur.strip(), f"unterminated option in {rule!r}"
    return out


def metadata(opts: list[tuple[str, str]]) -> dict[str, str]:
    items = [v for k, v in opts if k == "metadata"]
    assert len(items) == 1
    return dict(item.strip().split(" ", 1) for item in items[0].split(","))


def alerts(eve: Path) -> list[dict]:
    events = [orjson.loads(line) for line in eve.read_bytes().splitlines() if line.strip()]
    return [e for e in events if e["event_type"] == "alert"]


def norm(ip: str) -> str:
    return str(ipaddress.ip_address(ip))


# -- the text of the pack ------------------------------------------------------------------


def test_pack_text(rules_path: Path) -> None:
    rules = rule_lines(rules_path)
    sids = []
    kinds = Counter()
    for _n, rule in rules:
        header = rule[:rule.index("(")].split()
        assert header[0] == "alert" and header[2:] == ["$HOME_NET", "any", "->", "$EXTERNAL_NET",
                                                        "any"], rule
        opts = options(rule)
        keys = [k for k, _ in opts]
        for required in ("msg", "classtype", "metadata", "sid", "rev"):
            assert keys.count(required) == 1, (required, rule)
        assert dict(opts)["classtype"] == "attempted-recon"
        meta = metadata(opts)
        assert meta["mitre_tactic_id"] == "TA0043" and meta["mitre_technique_id"] == "T1046"
        assert meta["created_at"] <= meta["updated_at"]
        kind = meta["scanguard_kind"]
        assert kind in KINDS | {"helper"}, kind
        assert ("noalert" in keys) == (kind == "helper"), rule
        kinds[kind] += 1
        sids.append(int(dict(opts)["sid"]))
    assert len(sids) == len(set(sids)), "duplicate sid"
    assert all(SID_FIRST <= s <= SID_LAST for s in sids)
    assert {k: kinds[k] for k in KINDS} == dict.fromkeys(KINDS, 1), "one alerting rule per Kind"


# -- suricata -T ----------------------------------------------------------------------------


@pytest.mark.suricata
@pytest.mark.parametrize("home_net", [suricata.CHECK_HOME_NET, HOME_NET])
def test_pack_passes_suricata_check(rules_path: Path, home_net: tuple[str, ...]) -> None:
    started = time.monotonic()
    check = suricata.test_rules(rules_path, home_net)
    assert check.ok, check.errors
    assert check.errors == () and check.warnings == ()
    assert time.monotonic() - started < 10


@pytest.mark.suricata
def test_check_names_failing_sid_and_line(rules_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.rules"
    bad.write_text(rules_path.read_text() + "\n".join([
        'alert tcp $HOME_NET any -> $EXTERNAL_NET any (msg:"a\\;b"; flagz:RA; sid:9400090; rev:1;)',
        'alert tcp $HOME_NET any -> $NOPE_NET any (msg:"x"; sid:9400091; rev:1;)',
        'alert tcp any any -> any any (msg:"dup"; flags:R; sid:9400000; rev:1;)',
    ]) + "\n")
    n = len(rules_path.read_text().splitlines())
    check = suricata.test_rules(bad)
    assert not check.ok and check.returncode != 0
    assert [(e.sid, e.line) for e in check.errors] == [(9400090, n + 1), (9400091, n + 2),
                                                       (9400000, n + 3)]
    assert "flagz" in check.errors[0].message
    assert "NOPE_NET" in check.errors[1].message
    assert "Duplicate" in check.errors[2].message
    assert all(e.file and e.file.endswith("bad.rules") for e in check.errors)


def test_parse_check_output_without_suricata() -> None:
    def line(level: str, message: str) -> str:
        return orjson.dumps({"log_level": level, "event_type": "engine",
                             "engine": {"message": message, "module": "detect"}}).decode()

    out = "\n".join([
        line("Notice", "This is Suricata"),
        line("Warning", "signature sid:9400006 uses unknown classtype"),
        line("Error", "invalid flow option \"to_cliant\""),
        line("Error", 'error parsing signature "alert tcp any any -> any any (msg:\"x\"; '
                      'flow:to_cliant; sid:9400005; rev:1;)" from file /r/x.rules at line 4'),
        line("Error", "Loading signatures failed."),
        "not json at all",
    ])
    check = suricata.parse_check_output(out, 1)
    assert not check.ok and check.failed_sids == {9400005}
    err = check.errors[0]
    assert (err.file, err.line, err.message) == ("/r/x.rules", 4, 'invalid flow option "to_cliant"')
    assert check.warnings == ("signature sid:9400006 uses unknown classtype",)
    assert not suricata.parse_check_output(line("Error", "boom"), 1).ok


@pytest.mark.parametrize("bad", ['192.0.2.0/24"\nfoo: 1', "any", "", "$HOME_NET"])
def test_home_net_is_validated(bad: str) -> None:
    with pytest.raises(suricata.SuricataError):
        suricata.address_group([bad])


def test_config_carries_the_given_home_net(tmp_path: Path) -> None:
    conf = suricata.write_config(tmp_path, tmp_path / "x.rules", ["2001:db8::1", "192.0.2.0/24"],
                                 tmp_path / "log").read_text()
    assert 'HOME_NET: "[2001:db8::1/128,192.0.2.0/24]"' in conf
    assert '"!$HOME_NET"' in conf and "metadata: yes" in conf and "- flow" not in conf
    assert "app-layer" not in conf
    lean = suricata.render_config("x.rules", ["192.0.2.1"], "/l", "/c/cls", app_layer=False)
    assert "    dns:\n      enabled: no" in lean


@pytest.mark.suricata
def test_run_pcap_refuses_a_non_pcap_at_once(tmp_path: Path, rules_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"hello world, no pcap here")
    started = time.monotonic()
    with pytest.raises(suricata.SuricataError, match="not a pcap"):
        suricata.run_pcap(junk, rules_path, HOME_NET, tmp_path / "log")
    assert time.monotonic() - started < 5


# -- real alerts on the scenario pcaps ----------------------------------------------------


@pytest.mark.suricata
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_alerts(name: str, suricata_runner, rules_path: Path) -> None:
    scenario = SCENARIOS[name]
    sid_kind = {int(dict(options(r))["sid"]): metadata(options(r))["scanguard_kind"]
                for _n, r in rule_lines(rules_path)}
    got: Counter[tuple[str, str]] = Counter()
    for a in alerts(suricata_runner.eve(name)):
        kind = a["alert"]["metadata"]["scanguard_kind"][0]
        assert sid_kind[a["alert"]["signature_id"]] == kind != "helper"
        # The response goes from our host (src) to the prober (dest); target:src_ip names them.
        assert any(ipaddress.ip_address(a["src_ip"]) in net for net in HOME)
        assert a["alert"]["source"]["ip"] == a["dest_ip"]
        assert a["alert"]["target"]["ip"] == a["src_ip"]
        assert (a["proto"], a.get("icmp_type"), a.get("icmp_code")) == SHAPE[kind]
        assert a["packet_info"]["linktype"] == EVE_LINKTYPE[scenario.link]
        assert a.get("vlan", []) == [vid for _tpid, vid in scenario.vlans]
        got[(norm(a["dest_ip"]), kind)] += 1
    want = Counter({(norm(ip), kind): n for ip, kinds in scenario.expect_alerts.items()
                    for kind, n in kinds.items()})
    assert got == want


def _stable(event: dict) -> dict:
    return {k: v for k, v in event.items() if k != "flow_id"}


@pytest.mark.suricata
@pytest.mark.parametrize("name", EVE_SAMPLES)
def test_eve_samples_match_a_fresh_run(name: str, suricata_runner) -> None:
    sample = DATA / f"{name}.eve.json"
    fresh = [_stable(e) for e in alerts(suricata_runner.eve(name))]
    kept = [_stable(e) for e in alerts(sample)]
    assert fresh == kept, f"{sample} is stale: regenerate it (see {DATA / 'README.md'})"
    expect = orjson.loads((DATA / f"{name}.expect.json").read_bytes())
    assert expect["blocked"] == sorted(SCENARIOS[name].expect_blocked)
