import time, cProfile, pstats
from prof.drain import server
from scanguard_ids.fleet.bus import Bus
from scanguard_ids.fleet.codec import FleetDecision
from scanguard_ids.model import Decision
srv, url, tmp = server()
try:
    bus = Bus(url, "m")
    now = time.time()
    fds = [FleetDecision.of(Decision(ts=now, action="block", ip=f"2001:db8::{i:x}", ttl=300, count=3, ports=(21,22,23), reason="3 responses on 3 ports in 60 s", strikes=1), "C", now, i) for i in range(3600)]
    for k in (1, 6, 50):
        c = time.process_time()
        for i in range(0, 3600, k):
            bus.publish_decisions(fds[i:i+k], now)
        print(f"batch {k}: {(time.process_time()-c)/3600*1e6:.1f} us CPU per decision")
    p = cProfile.Profile(); p.enable()
    for i in range(0, 3600, 6):
        bus.publish_decisions(fds[i:i+6], now)
    p.disable(); pstats.Stats(p).sort_stats("tottime").print_stats(12)
finally:
    srv.terminate(); srv.wait()

srv, url, tmp = server()
try:
    import hiredis
    bus = Bus(url, "m")
    r = bus.r
    pack = hiredis.pack_command
    for k in (6, 50):
        c = time.process_time()
        for i in range(0, 3600, k):
            cmds = []
            for fd in fds[i:i+k]:
                raw = fd.encode()
                cmds.append(pack(("SET", bus.block_prefix + fd.ip, raw, "PX", str(int((fd.expires - now) * 1000)))))
                cmds.append(pack(("XADD", bus.decisions, "MAXLEN", "~", str(bus.decisions_maxlen), "*", "d", raw, "n", fd.node)))
            conn = r.connection_pool.get_connection()
            try:
                conn.send_packed_command([b"".join(cmds)])
                for _ in cmds:
                    conn.read_response()
            finally:
                r.connection_pool.release(conn)
        print(f"raw batch {k}: {(time.process_time()-c)/3600*1e6:.1f} us CPU per decision")
finally:
    srv.terminate(); srv.wait()
