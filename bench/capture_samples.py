"""Capture real Suricata 7 EVE lines to model the benchmark corpus on (run once, by hand).

Builds a victim/scanner namespace pair (documentation addresses only), runs Suricata live on the
victim's interface with Debian's stock suricata.yaml (alert payload/packet/metadata switched on,
the bench rules below), and drives real traffic through it: HTTP with a file body (http +
fileinfo), TLS with SNI (tls), DNS (dns), nmap TCP and UDP scans over IPv4 and IPv6 (our alerts:
TCP RST, ICMP and ICMPv6 port unreachable), and a few malformed packets (anomaly). Stats events
come from the stock 8 s interval. Writes the EVE lines to bench/samples/suricata7-eve.jsonl,
which bench/corpus.py uses as its field-layout templates.

    .venv/bin/python -m bench.capture_samples
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from scanguard_ids.lab import procs
from scanguard_ids.lab.netns import victim_scanner

HERE = Path(__file__).resolve().parent
OUT = HERE / "samples" / "suricata7-eve.jsonl"
PY = sys.executable

RULES = """\
alert tcp $HOME_NET any -> any any (msg:"SCANGUARD TCP RST from a closed port"; flags:R+; \
classtype:attempted-recon; \
sid:9400001; rev:1;)
alert icmp $HOME_NET any -> any any (msg:"SCANGUARD ICMP port unreachable"; itype:3; icode:3; \
classtype:attempted-recon; sid:9400002; rev:1;)
alert ipv6 $HOME_NET any -> any any (msg:"SCANGUARD ICMPv6 port unreachable"; ip_proto:58; \
itype:1; icode:4; classtype:attempted-recon; sid:9400003; rev:1;)
"""

DNS_SERVER = """
import socket
from scapy.all import DNS, DNSRR
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.1", 53))
s.settimeout(30)
for _ in range(40):
    try:
        data, peer = s.recvfrom(4096)
    except TimeoutError:
        break
    q = DNS(data)
    name = q.qd.qname
    ans = DNS(id=q.id, qr=1, aa=1, rd=q.rd, ra=1, qd=q.qd,
              an=DNSRR(rrname=name, type="A", ttl=300, rdata="192.0.2.80")
              / DNSRR(rrname=name, type="A", ttl=300, rdata="192.0.2.81"))
    s.sendto(bytes(ans), peer)
"""

DNS_CLIENT = """
import socket, sys
from scapy.all import DNS, DNSQR
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for i, name in enumerate(sys.argv[1:]):
    s.sendto(bytes(DNS(id=4000 + i, rd=1, qd=DNSQR(qname=name, qtype="A"))), ("192.0.2.1", 53))
    try:
        s.recv(4096)
    except TimeoutError:
        pass
"""

MALFORMED = """
import time
from scapy.all import IP, TCP, UDP, Raw, send
for i in range(3):
    send(IP(dst="192.0.2.1", ihl=5) / TCP(dport=80 + i, dataofs=2) / Raw(b"x" * 8), verbose=0)
    send(IP(dst="192.0.2.1") / UDP(dport=53, len=4) / Raw(b"abcdefgh"), verbose=0)
    time.sleep(0.1)
"""


def _config(tmp: Path, logdir: Path) -> Path:
    text = Path("/etc/suricata/suricata.yaml").read_text()
    text = text.replace(
        "        - alert:\n",
        "        - alert:\n            payload: yes\n            packet: yes\n"
        "            metadata: yes\n",
        1,
    )
    text = text.replace(
        'HOME_NET: "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"',
        'HOME_NET: "[192.0.2.1,2001:db8::1]"',
        1,
    )
    rules = tmp / "bench.rules"
    rules.write_text(RULES)
    text = text.replace(
        "default-rule-path: /var/lib/suricata/rules", f"default-rule-path: {tmp}", 1
    )
    text = text.replace("  - suricata.rules\n", "  - bench.rules\n", 1)
    text = text.replace("default-log-dir: /var/log/suricata/", f"default-log-dir: {logdir}/", 1)
    conf = tmp / "suricata.yaml"
    conf.write_text(text)
    return conf


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="sg-capture-"))
    logdir = tmp / "log"
    logdir.mkdir()
    www = tmp / "www"
    www.mkdir()
    (www / "index.html").write_text("<html><body>" + "hello " * 200 + "</body></html>\n")
    (www / "report.pdf").write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 64)
    conf = _config(tmp, logdir)
    started = []
    try:
        with victim_scanner("sgcap") as pair:
            v, s = pair.victim, pair.scanner
            v.run(
                [
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=www.example.com",
                    "-keyout",
                    str(tmp / "key.pem"),
                    "-out",
                    str(tmp / "cert.pem"),
                ]
            )
            suri = procs.spawn(
                v.argv(
                    [
                        "suricata",
                        "-c",
                        str(conf),
                        "-i",
                        "victim0",
                        "-k",
                        "none",
                        "--set",
                        "logging.outputs.0.console.enabled=no",
                        "--pidfile",
                        str(tmp / "suri.pid"),
                    ]
                )
            )
            started.append(suri)
            eve = logdir / "eve.json"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (logdir / "stats.log").exists():
                time.sleep(0.5)
            time.sleep(3)
            started.append(
                procs.spawn(
                    v.argv(
                        [
                            PY,
                            "-m",
                            "http.server",
                            "80",
                            "--bind",
                            "192.0.2.1",
                            "--directory",
                            str(www),
                        ]
                    )
                )
            )
            started.append(
                procs.spawn(
                    v.argv(
                        [
                            "openssl",
                            "s_server",
                            "-accept",
                            "443",
                            "-www",
                            "-cert",
                            str(tmp / "cert.pem"),
                            "-key",
                            str(tmp / "key.pem"),
                            "-quiet",
                        ]
                    )
                )
            )
            started.append(procs.spawn(v.argv([PY, "-c", DNS_SERVER])))
            time.sleep(1.5)
            names = ["www.example.com", "mail.example.org", "cdn.example.net", "api.example.com"]
            s.run([PY, "-c", DNS_CLIENT, *names], timeout=30)
            for path in ("/", "/report.pdf", "/missing"):
                s.run(
                    [
                        "curl",
                        "-s",
                        "-o",
                        "/dev/null",
                        "--resolve",
                        "www.example.org:80:192.0.2.1",
                        "-A",
                        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                        f"http://www.example.org{path}",
                    ],
                    check=False,
                    timeout=30,
                )
            for _ in range(2):
                s.run(
                    [
                        "curl",
                        "-s",
                        "-k",
                        "-o",
                        "/dev/null",
                        "--resolve",
                        "www.example.com:443:192.0.2.1",
                        "https://www.example.com/",
                    ],
                    check=False,
                    timeout=30,
                )
            s.run(["nmap", "-n", "-Pn", "-sS", "-p", "20-30", "192.0.2.1"], timeout=120)
            s.run(["nmap", "-n", "-Pn", "-sU", "-p", "160-163", "192.0.2.1"], timeout=120)
            s.run(["nmap", "-6", "-n", "-Pn", "-sU", "-p", "160-163", "2001:db8::1"], timeout=120)
            s.run(["nmap", "-6", "-n", "-Pn", "-sS", "-p", "20-24", "2001:db8::1"], timeout=120)
            s.run([PY, "-c", MALFORMED], timeout=60)
            time.sleep(20)  # flows time out / stats intervals pass
            for p in reversed(started):
                procs.stop(p)
            started.clear()
        OUT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(eve, OUT)
        print(f"wrote {OUT} ({sum(1 for _ in OUT.open('rb'))} lines)")
    finally:
        for p in reversed(started):
            procs.stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
