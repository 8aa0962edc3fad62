"""The switched lab: real OVS and Faucet in namespaces, for the sdn-* backends' tests and lab.

* :mod:`ovs` - ovsdb-server + ovs-vswitchd in a namespace, every file in a work dir.
* :mod:`faucetproc` - one Faucet controller process beside them.
* :mod:`network` - bridges veth ends under Faucet or standalone (:func:`network.attach_switch`),
  or builds victim, scanner and switch namespaces for tests (:func:`network.switched_pair`).
* :mod:`probe` - ICMP echo probes run inside a namespace (``python -m``).
* :mod:`measure` - block() -> drop reaction time of both backends (``python -m``).

The backends themselves are in :mod:`scanguard_ids.block.sdn`. See docs/sdn.md.
"""
