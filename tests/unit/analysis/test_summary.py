"""Summarising a replay's capture with the columnar decoder (pcaps crafted with scapy; no root)."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, IPerror, TCPerror
from scapy.layers.l2 import CookedLinuxV2
from scapy.utils import wrpcap

from netprobe.analysis import summary as packets

LOCAL, POD, PORT = "10.0.0.10", "10.244.1.5", 40123


def _out(flags: str, seq: int = 1000, ack: int = 0, load: bytes = b"", t: float = 0.0):
    pkt = CookedLinuxV2(ifindex=2) / IP(src=LOCAL, dst=POD) / TCP(sport=PORT, dport=10250,
                                                                 flags=flags, seq=seq, ack=ack)
    pkt = pkt / load if load else pkt
    pkt.time = 100.0 + t
    return pkt


def _in(flags: str, ttl: int = 62, seq: int = 5000, ack: int = 1001, t: float = 0.0):
    pkt = CookedLinuxV2(ifindex=2) / IP(src=POD, dst=LOCAL, ttl=ttl) / TCP(
        sport=10250, dport=PORT, flags=flags, seq=seq, ack=ack)
    pkt.time = 100.0 + t
    return pkt


def test_syn_retransmissions_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "syn.pcap"
    wrpcap(str(path), [_out("S", t=0), _out("S", t=1), _out("S", t=2)])
    summary = packets.summarize(path, PORT, interfaces={2: "npeth0"})
    assert (summary.syn, summary.syn_retransmissions, summary.synack) == (3, 2, 0)
    assert summary.left_host and summary.wire_destination == POD
    assert summary.interfaces == ("npeth0",)


def test_rst_source_and_ttl(tmp_path: Path) -> None:
    path = tmp_path / "rst.pcap"
    wrpcap(str(path), [_out("S"), _in("RA", ttl=64, t=0.001)])
    rst = packets.summarize(path, PORT).rst
    assert len(rst) == 1 and (rst[0].source, rst[0].ttl, rst[0].inbound) == (POD, 64, True)


def test_client_hello_acked_without_server_hello(tmp_path: Path) -> None:
    hello = b"\x16\x03\x01\x00\x40\x01" + b"\x00" * 63
    path = tmp_path / "tls.pcap"
    wrpcap(str(path), [_out("S"), _in("SA", ack=1001), _out("A", seq=1001, ack=5001),
                       _out("PA", seq=1001, ack=5001, load=hello),
                       _in("A", seq=5001, ack=1001 + len(hello))])
    summary = packets.summarize(path, PORT)
    assert summary.client_hello == 1 and summary.client_hello_acked
    assert summary.server_hello == 0 and summary.synack_ttl == 62


def test_icmp_error_quoting_the_flow(tmp_path: Path) -> None:
    icmp = (CookedLinuxV2(ifindex=2) / IP(src="10.0.0.1", dst=LOCAL) / ICMP(type=3, code=1)
            / IPerror(src=LOCAL, dst=POD) / TCPerror(sport=PORT, dport=10250, flags="S"))
    other = (CookedLinuxV2(ifindex=2) / IP(src="10.0.0.1", dst=LOCAL) / ICMP(type=3, code=1)
             / IPerror(src=LOCAL, dst=POD) / TCPerror(sport=PORT + 1, dport=10250, flags="S"))
    path = tmp_path / "icmp.pcap"
    wrpcap(str(path), [_out("S"), icmp, other])
    summary = packets.summarize(path, PORT)
    assert [(i.reporter, i.type, i.code) for i in summary.icmp] == [("10.0.0.1", 3, 1)]
