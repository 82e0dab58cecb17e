"""The capture filters, compiled and run by tcpdump (libpcap) on crafted packets."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6Unknown, IPv6
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


def test_a_node_keeps_an_ipv6_call_inside_vxlan_over_ipv6(tmp_path: Path) -> None:
    """flannel-v6.1: IPv6 pods' packets inside VXLAN between the nodes' IPv6 addresses."""
    def vxlan6(inner_dst: str) -> Ether:
        inner = Ether() / IPv6(src="fd00:10:244::", dst=inner_dst) / TCP(dport=10250,
                                                                          flags="S")
        return Ether() / IPv6(src="fd00:10::10", dst="fd00:10:0:1::11") / \
            UDP(sport=51000, dport=8472) / VXLAN(vni=1) / inner

    bpf = filters.endpoints_filter([("fd00:10:244:1::5", 10250)])
    assert _matched(tmp_path, bpf, [vxlan6("fd00:10:244:1::5")]) == 1
    assert _matched(tmp_path, bpf, [vxlan6("fd00:10:244:1::6")]) == 0


def _syn6(src: str, dst: str, sport: int, dport: int) -> Ether:
    return Ether() / IPv6(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="S")


def test_ipv6_peers_are_captured_before_and_after_dnat(tmp_path: Path) -> None:
    bpf = filters.call_filter(40000, [("fd00:10:96::1463", 443), ("fd00:10:244:1::5", 10250)])
    kept = [_syn6("fd00:10::10", "fd00:10:96::1463", 40000, 443),  # the socket's own SYN
            _syn6("fd00:10::10", "fd00:10:244:1::5", 51234, 10250)]  # after DNAT and SNAT
    other = [_syn6("fd00:10::10", "fd00:10:244:2::6", 51234, 10250),  # another pod
             _syn6("fd00:10::10", "fd00:10:244:1::5", 51234, 9443)]  # another port
    assert _matched(tmp_path, bpf, kept) == 2
    assert _matched(tmp_path, bpf, other) == 0


@pytest.mark.parametrize("kind,code,kept", [
    (1, 0, 1),  # no route (a provider's unreachable route)
    (1, 3, 1),  # address unreachable (ND gave up)
    (1, 4, 1),  # port unreachable (kube-proxy's REJECT)
    (3, 0, 1),  # hop limit exceeded
    (2, 0, 0),  # packet too big: path MTU, not a failure of the call
])
def test_icmpv6_errors_are_captured(tmp_path: Path, kind: int, code: int, kept: int) -> None:
    quoted = IPv6(src="fd00:10::10", dst="fd00:10:244:1::5") / TCP(sport=40000, dport=10250)
    error = Ether() / IPv6(src="fd00:10:0:1::11", dst="fd00:10::10") / ICMPv6Unknown(
        type=kind, code=code) / bytes(quoted)
    bpf = filters.endpoints_filter([("fd00:10:244:1::5", 10250)])
    assert _matched(tmp_path, bpf, [error]) == kept


def test_no_endpoint_to_watch_keeps_every_tcp_packet(tmp_path: Path) -> None:
    bpf = filters.endpoints_filter([])
    syn = Ether() / IP(src="10.244.2.20", dst="10.96.20.99") / TCP(dport=443, flags="S")
    assert _matched(tmp_path, bpf, [syn]) == 1
