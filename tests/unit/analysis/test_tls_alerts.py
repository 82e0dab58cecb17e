"""Packet-only verdicts from TLS alerts, on captures crafted with scapy (`netprobe analyze`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

CLIENT, SERVER = ("10.0.0.10", 40000), ("10.0.1.11", 10250)
CLIENT_HELLO = bytes([0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00])
"""A TLS record of type handshake holding a (truncated) ClientHello."""


def _alert(description: int) -> bytes:
    return bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description])


def _capture(path: Path, server_says: bytes, client_closes: bool = False) -> Path:
    c, s = CLIENT, SERVER

    def pkt(src, dst, flags, seq, ack, payload=b"", t=0.0):
        packet = Ether() / IP(src=src[0], dst=dst[0], ttl=64) / \
            TCP(sport=src[1], dport=dst[1], flags=flags, seq=seq, ack=ack) / payload
        packet.time = 1_790_000_000.0 + t
        return packet

    packets = [pkt(c, s, "S", 100, 0, t=0.0), pkt(s, c, "SA", 500, 101, t=0.001),
               pkt(c, s, "A", 101, 501, t=0.002),
               pkt(c, s, "PA", 101, 501, CLIENT_HELLO, t=0.003),
               pkt(s, c, "PA", 501, 101 + len(CLIENT_HELLO), server_says, t=0.004),
               pkt(s, c, "FA", 501 + len(server_says), 101 + len(CLIENT_HELLO), t=0.005)]
    if client_closes:  # the client answers the alert by closing first (Go's tls.Conn does)
        packets.insert(5, pkt(c, s, "FA", 101 + len(CLIENT_HELLO), 501 + len(server_says),
                              t=0.0045))
    wrpcap(str(path), packets)
    return path


@pytest.mark.parametrize("client_closes", [False, True])
@pytest.mark.parametrize("description, verdict", [(80, "tls-internal-error"),
                                                   (40, "unknown")])
def test_a_servers_alert_names_the_failure(tmp_path: Path, description: int,
                                           verdict: str, client_closes: bool) -> None:
    """A kubelet whose serving-certificate CSR is pending answers with internal_error (80);
    another alert after the ClientHello (handshake_failure, 40) names no class. Whoever
    closes first, an alert is an answer, never a handshake timeout."""
    pcap = _capture(tmp_path / "alert.pcap", _alert(description), client_closes)
    done = subprocess.run([sys.executable, "-m", "netprobe", "analyze", str(pcap), "-o", "json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    flows = json.loads(done.stdout)["captures"][0]["flows"]
    assert [flow["verdict"] for flow in flows] == [verdict], flows
