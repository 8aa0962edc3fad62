"""Full-range nmap TCP and UDP scans against a victim with the fast path (block mode).

    PYTHONPATH=$PWD python scripts/fastpath_nmap.py BURST RATE
"""
import subprocess
import sys
import time

from scanguard_ids.block.fastpath import FastPathLayout
from scanguard_ids.lab.netns import victim_scanner
from scanguard_ids.lab.scan import DEFAULT_TIMING

lay = FastPathLayout(mode="block", burst=int(sys.argv[1]), rate=int(sys.argv[2]))
with victim_scanner("fpf") as p:
    subprocess.run(p.victim.argv(["nft","-f","-"]), input=lay.install(["127.0.0.0/8"]), text=True, check=True)
    ports = [22,25,53,80,110,143,443,445,993,3306,5432,8080,8443] + list(range(20000,20087))
    code = "import socket,time\nss=[socket.create_server(('0.0.0.0',x)) for x in %r]\nus=[socket.socket(socket.AF_INET,socket.SOCK_DGRAM) for _ in range(1)]\nus[0].bind(('0.0.0.0',53))\ntime.sleep(900)" % ports
    l = p.victim.popen(["python3","-c",code]); time.sleep(0.5)
    for proto, flag in (("tcp","-sS"),("udp","-sU")):
        t=time.monotonic()
        r = p.scanner.run(["nmap","-n","-Pn",flag,"-p-",*DEFAULT_TIMING,"192.0.2.1"], check=False, timeout=900)
        lines=[x for x in r.stdout.splitlines() if "/"+proto in x]
        print(proto, f"{time.monotonic()-t:.0f}s", "open:", sum(" open " in x for x in lines), "closed:", sum(" closed " in x for x in lines), [x.split()[0] for x in lines][:12], flush=True)
        subprocess.run(p.victim.argv(["nft","-f","-"]), input=lay.remove()+lay.install(["127.0.0.0/8"]), text=True, check=True)
    l.kill()
