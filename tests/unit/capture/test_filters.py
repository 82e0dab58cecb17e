"""The capture filters, compiled and run by tcpdump (libpcap) on crafted packets."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap, wrpcap

from netprobe.capture import filters

ENDPOINT = ("10.244.1.5", 10250)


def _matched(tmp_path: Path, bpf: str, packets: list) -> int:
    pcap, kept = tmp_path / "in.pcap", tmp_path / "kept.pcap"
    wrpcap(str(pcap), packets)
    subprocess.run(["tcpdump", "-r", str(pcap), "-w", str(kept), bpf], capture_output=True,
                   timeout=30, check=True)
    return len(rdpcap(str(kept)))


def _vxlan(port: int, inner_dst: str) -> Ether:
    inner = Ether() / IP(src="10.244.0.0", dst=inner_dst) / TCP(sport=40000, dport=10250,
                                                                 flags="S")
    return Ether() / IP(src="10.0.0.10", dst="10.0.1.11") / UDP(sport=51000, dport=port) / \
        VXLAN(vni=1) / inner


@pytest.mark.parametrize("port", [8472, 4789])
def test_a_node_keeps_the_call_inside_vxlan(tmp_path: Path, port: int) -> None:
    bpf = filters.endpoints_filter([ENDPOINT])
    assert _matched(tmp_path, bpf, [_vxlan(port, ENDPOINT[0])]) == 1
    assert _matched(tmp_path, bpf, [_vxlan(port, "10.244.2.6")]) == 0  # another pod's
    assert _matched(tmp_path, bpf, [_vxlan(6081, ENDPOINT[0])]) == 0  # not VXLAN


def test_the_replay_keeps_its_call_inside_vxlan_after_dnat(tmp_path: Path) -> None:
    bpf = filters.call_filter(40000, [("10.96.20.99", 443), ENDPOINT, ("fd00::5", 10250)])
    assert _matched(tmp_path, bpf, [_vxlan(8472, ENDPOINT[0])]) == 1


def test_ipv6_peers_add_no_vxlan_term() -> None:
    assert "udp" not in filters.endpoints_filter([("fd00::5", 10250)])
