"""bench/fastpath.py's pure parts: the SYN frames its sender writes, the addresses it uses.

The measurement itself needs root, namespaces and ~3 min (`python -m bench.run --only
fastpath`, `--quick` ~1 min); it is not run here.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest

from bench import fastpath
from scanguard_ids.lab.netns import check_doc_address


def test_syn_frames_are_valid_syns_with_right_checksums() -> None:
    frames = fastpath.syn_frames("02:00:00:00:00:02", "02:00:00:00:00:01", "192.0.2.2",
                                 "192.0.2.1", range(1, 65_536, 4_099))
    assert len(frames) == 16
    for frame, port in zip(frames, range(1, 65_536, 4_099), strict=True):
        assert frame[:6] == bytes.fromhex("020000000001") and frame[12:14] == b"\x08\x00"
        ip, tcp = frame[14:34], frame[34:]
        assert fastpath.checksum(ip) == 0  # a header with its checksum sums to 0xffff
        assert socket.inet_ntoa(ip[12:16]) == "192.0.2.2"
        pseudo = ip[12:20] + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
        assert fastpath.checksum(pseudo + tcp) == 0
        sport, dport, _seq, _ack, _off, flags = struct.unpack("!HHIIBB", tcp[:14])
        assert (sport, dport, flags) == (40_000, port, 0x02)


def test_poll_addresses_are_documentation_addresses() -> None:
    addrs = fastpath._addresses(500)
    assert len(set(addrs)) == 500
    for a in addrs:
        check_doc_address(a)
        assert ipaddress.ip_address(a).version == 4
    with pytest.raises(ValueError):
        fastpath._addresses(509)


def test_registered_in_bench_run() -> None:
    from bench.run import BENCHMARKS

    assert BENCHMARKS["fastpath"] == "bench.fastpath"
