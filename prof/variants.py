"""Which part of the threaded drain costs what: the bench's _drain with one thing toggled.

    PYTHONPATH=$PWD python prof/variants.py [N] [variant ...]
variants: base, nopub (engine.dry_run: nothing published), noflush (decisions queued, the
publisher wakes but sends nothing), switch5 (default switch interval), direct.
"""

from __future__ import annotations

import shutil
import sys

from prof.drain import server


def main() -> None:
    n = int(sys.argv[1])
    import scanguard_ids
    from bench import fleet as bf

    print(f"# {scanguard_ids.__file__} {bf.__file__}", flush=True)

    srv, url, tmp = server()
    try:
        for v in sys.argv[2:]:
            if v == "direct":
                got = bf._drain(url, n, False, "corpus")
            else:
                orig = bf._node
                if v == "nopub":
                    def node(engine, cfg, url, name, _o=orig):  # type: ignore[no-untyped-def]
                        nd = _o(engine, cfg, url, name)
                        engine.dry_run = True
                        return nd
                    bf._node = node
                elif v == "noflush":  # decisions queued for the fleet, never sent
                    def node(engine, cfg, url, name, _o=orig):  # type: ignore[no-untyped-def]
                        nd = _o(engine, cfg, url, name)
                        nd._flush_decisions = lambda: nd._outbox.clear()
                        return nd
                    bf._node = node
                got = bf._drain(url, n, True, "corpus", 0.005 if v == "switch5" else 0.0)
                bf._node = orig
            print(f"{v:8} {got['n']} events {got['n'] / got['seconds']:,.0f}/s wall "
                  f"{got['n'] / got['cpu']:,.0f}/CPU-s blocks={got['blocks']} "
                  f"published={got.get('published')}", flush=True)
    finally:
        srv.terminate()
        srv.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
