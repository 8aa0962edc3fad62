"""`scanguard firewall install|show|remove` inside a namespace of the test's own."""

from __future__ import annotations

import sys

import pytest
from blocklab import need_root

from scanguard_ids.lab.netns import namespaces

pytestmark = pytest.mark.root
SCANGUARD = [sys.executable, "-m", "scanguard_ids.cli"]


@pytest.mark.parametrize(("backend", "listing"), [("ipset", ["ipset", "list", "-n"]),
                                                  ("nftables", ["nft", "list", "tables"])])
def test_install_show_remove(backend: str, listing: list[str]) -> None:
    need_root()
    with namespaces("sgf") as (ns,):
        def sg(*args: str) -> str:
            res = ns.run([*SCANGUARD, "firewall", *args, "--backend", backend,
                          "--set-name", "sgfw"], check=False)
            assert res.returncode == 0, res.stderr
            return res.stdout

        assert "installed" in sg("install")
        sg("install")  # idempotent
        assert "sgfw" in ns.run(listing).stdout
        assert "sgfw" in sg("show")
        sg("remove")
        assert "sgfw" not in ns.run(listing).stdout
        sg("remove")  # idempotent
