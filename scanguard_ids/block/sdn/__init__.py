"""Blocks enforced on OpenFlow switches: the ``sdn-faucet`` and ``sdn-openflow`` backends.

Backends (picked by name in :mod:`scanguard_ids.block.registry`):

* :mod:`faucet` - drop rules in an ACL file that Faucet includes (:mod:`acl` renders
  and reads it back), applied by a config reload (:mod:`reload`), batched, expired
  by scanguard itself.
* :mod:`openflow` - drop flows with a hard timeout written straight to the switch,
  over an OpenFlow 1.3 connection (:mod:`ofconn`, :mod:`ofp13`) or ``ovs-ofctl``.

Only what a daemon loads to enforce lives here; the rigs that build and measure real
switches (OVS and Faucet in namespaces) are in :mod:`scanguard_ids.lab.sdn`.
See docs/sdn.md.
"""
