"""False positives of the kernel fast path, measured in namespaces (docs/fast-path.md).

    PYTHONPATH=$PWD:tests python scripts/fastpath_fp.py [BURST/RATE ...]

(default: 4/1 8/2 16/4 32/8). For each (burst, rate) it installs the table in detect mode in a fresh victim namespace and
replays one benign client per scenario from its own address; prints which would be blocked.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time

from nsutil import run_in_netns

from scanguard_ids.block.fastpath import FastPathLayout
from scanguard_ids.block.nlnft import SetReader
from scanguard_ids.lab.netns import victim_scanner

PORTS = [21, 22, 80, 443, 8080, 9100, 9101, 9102, 9115, 9187, *range(50000, 50040)]
SERVER = f"""
import socket, select, sys, time
ls = []
for p in {PORTS!r}:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", p)); s.listen(256); s.setblocking(False); ls.append(s)
end = time.monotonic() + 600
conns = []
while time.monotonic() < end:
    r, _, _ = select.select(ls + conns, [], [], 0.2)
    for s in r:
        if s in ls:
            c, _ = s.accept(); conns.append(c)
        else:
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            if not d:
                conns.remove(s); s.close(); continue
            size = int(d.split(b" ", 1)[0] or 100) if d[:1].isdigit() else 100
            try:
                s.sendall(b"y" * size)
            except OSError:
                pass
"""


def req(dst: str, port: int, send: int, want: int, src: str) -> None:
    with socket.create_connection((dst, port), timeout=3, source_address=(src, 0)) as s:
        s.sendall(f"{want} ".encode() + b"x" * max(0, send - 8))
        got = 0
        while got < want:
            d = s.recv(65536)
            if not d:
                break
            got += len(d)


def browser(dst: str, src: str) -> None:  # 40 connections to 80/443 within ~1 s
    for i in range(40):
        req(dst, 443 if i % 3 else 80, 600, 20_000, src)


def scraper(dst: str, src: str) -> None:  # 5 exporter ports within 100 ms, 3 rounds
    for _ in range(3):
        for p in (9100, 9101, 9102, 9115, 9187):
            req(dst, p, 150, 5000, src)
        time.sleep(2)


def ftp(dst: str, src: str) -> None:  # control + 40 passive data ports, 1 s apart per 4
    with socket.create_connection((dst, 21), timeout=3, source_address=(src, 0)) as ctl:
        for i in range(40):
            ctl.sendall(b"120 PASV RETR file")
            ctl.recv(65536)
            req(dst, 50000 + i, 60, 200_000, src)
            if i % 4 == 3:
                time.sleep(1)


def ssh_https(dst: str, src: str) -> None:
    req(dst, 22, 2000, 3000, src)
    for _ in range(10):
        req(dst, 443, 600, 20_000, src)


def nat(dst: str, src: str) -> None:  # 30 users: 80/443, some 8080 and 22, all at once
    for i in range(30):
        for p in (80, 443) + ((8080,) if i % 5 == 0 else ()) + ((22,) if i % 7 == 0 else ()):
            req(dst, p, 400, 8000, src)


SCENARIOS = {"browser": browser, "scraper": scraper, "passive-ftp": ftp,
             "ssh+https": ssh_https, "nat-many-users": nat}


def would(table: str) -> list[str]:
    r = SetReader(table)
    try:
        return [e.ip for e in r.elements("would_block4")]
    finally:
        r.close()


def main() -> None:
    args = sys.argv[1:] or ["4/1", "8/2", "16/4", "32/8"]
    configs = [(int(b), int(r)) for b, _, r in (a.partition("/") for a in args)]
    srcs = {name: f"192.0.2.{10 + i}" for i, name in enumerate(SCENARIOS)}
    print("scenario".ljust(16) + "".join(f"b{b}/r{r}".rjust(9) for b, r in configs))
    res: dict[str, list[str]] = {n: [] for n in SCENARIOS}
    for burst, rate in configs:
        lay = FastPathLayout(table="fpfp", mode="detect", burst=burst, rate=rate)
        with victim_scanner("fpq") as p:
            for a in srcs.values():
                p.scanner.run(["ip", "addr", "add", f"{a}/24", "dev", "scan0"])
            subprocess.run(p.victim.argv(["nft", "-f", "-"]), input=lay.install(),
                           text=True, check=True)
            srv = p.victim.popen([sys.executable, "-c", SERVER])
            try:
                time.sleep(0.5)
                for name, fn in SCENARIOS.items():
                    with contextlib.suppress(OSError):
                        run_in_netns(p.scanner.name, fn, p.victim4, srcs[name], timeout=120)
                hit = run_in_netns(p.victim.name, would, lay.table)
            finally:
                srv.kill()
                srv.wait(timeout=10)
        for name in SCENARIOS:
            res[name].append("TRIPS" if srcs[name] in hit else "ok")
    for name, row in res.items():
        print(name.ljust(16) + "".join(x.rjust(9) for x in row))


if __name__ == "__main__":
    main()
