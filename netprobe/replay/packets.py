"""A replay's capture file, summarised: SYNs, resets, ICMP errors, TLS hellos.

Owns: reading the (small) capture of one replayed flow with scapy's layers
and turning it into a `PacketSummary`. scapy objects never leave this
module. Must not: classify (classify.py does) or read large captures
(netprobe.analysis has the fast reader).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, TCPerror
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinuxV2
from scapy.packet import Packet
from scapy.utils import PcapReader

from netprobe.core.model import IcmpInfo, PacketSummary, RstInfo

_SYN, _ACK, _RST = 0x02, 0x10, 0x04


@dataclass
class _Flow:
    """Mutable tally while reading; frozen into a PacketSummary at the end."""

    local_port: int
    packets: int = 0
    syn_seqs: Counter[tuple[str, int]] = field(default_factory=Counter)
    synack: list[tuple[str, int]] = field(default_factory=list)
    rst: list[RstInfo] = field(default_factory=list)
    icmp: list[IcmpInfo] = field(default_factory=list)
    data_seen: dict[tuple[str, int, bool], int] = field(default_factory=dict)
    data_retrans: int = 0
    client_hello_end: int | None = None
    client_hello: int = 0
    client_hello_acked: bool = False
    server_hello: int = 0
    alerts: int = 0
    server_bytes: int = 0
    wire_destination: str | None = None
    left_host: bool = False
    times: list[float] = field(default_factory=list)
    interfaces: set[str] = field(default_factory=set)


def _interface(packet: Packet, names: dict[int, str]) -> str:
    if CookedLinuxV2 in packet:
        index = int(packet[CookedLinuxV2].ifindex)
        return names.get(index, f"if{index}")
    return "?"


def _ip(packet: Packet) -> Packet | None:
    if IP in packet:
        return packet[IP]
    if IPv6 in packet:
        return packet[IPv6]
    return None


def _ttl(ip: Packet) -> int:
    return int(ip.ttl) if hasattr(ip, "ttl") else int(ip.hlim)


def _tcp(flow: _Flow, ip: Packet, tcp: Packet, iface: str, when: float) -> None:
    outbound = int(tcp.sport) == flow.local_port
    flags = int(tcp.flags)
    payload = bytes(tcp.payload)
    if flags & _SYN and not flags & _ACK and outbound:
        flow.syn_seqs[(iface, int(tcp.seq))] += 1
        if iface != "lo":
            flow.left_host = True
            flow.wire_destination = str(ip.dst)
    elif flags & _SYN and flags & _ACK and not outbound:
        flow.synack.append((str(ip.src), _ttl(ip)))
    if flags & _RST:
        flow.rst.append(RstInfo(str(ip.src), _ttl(ip), not outbound, when))
    if payload:
        key = (iface, int(tcp.seq), outbound)
        if key in flow.data_seen:
            flow.data_retrans += 1
        flow.data_seen[key] = len(payload)
        _tls(flow, payload, int(tcp.seq), outbound)
    if not outbound and flow.client_hello_end is not None and flags & _ACK:
        if int(tcp.ack) - flow.client_hello_end >= 0:
            flow.client_hello_acked = True


def _tls(flow: _Flow, payload: bytes, seq: int, outbound: bool) -> None:
    if not outbound:
        flow.server_bytes += len(payload)
    if len(payload) >= 6 and payload[0] == 0x16 and payload[1] == 0x03:
        if payload[5] == 1 and outbound:
            flow.client_hello += 1
            flow.client_hello_end = (seq + len(payload)) & 0xFFFFFFFF
        elif payload[5] == 2 and not outbound:
            flow.server_hello += 1
    elif len(payload) >= 2 and payload[0] == 0x15 and payload[1] == 0x03:
        flow.alerts += 1


def _icmp(flow: _Flow, ip: Packet, packet: Packet, when: float) -> None:
    icmp = packet[ICMP]
    if int(icmp.type) not in (3, 11) or TCPerror not in packet:
        return
    if int(packet[TCPerror].sport) != flow.local_port:
        return
    flow.icmp.append(IcmpInfo(str(ip.src), int(icmp.type), int(icmp.code), when))


def summarize(path: Path, local_port: int,
              interfaces: dict[int, str] | None = None) -> PacketSummary:
    """Returns what the capture at PATH shows about the flow from LOCAL_PORT."""
    flow = _Flow(local_port)
    names = interfaces or {}
    with PcapReader(str(path)) as reader:
        for packet in reader:
            ip = _ip(packet)
            if ip is None:
                continue
            when = float(packet.time)
            iface = _interface(packet, names)
            flow.packets += 1
            flow.times.append(when)
            flow.interfaces.add(iface)
            if ICMP in packet:
                _icmp(flow, ip, packet, when)
            elif TCP in packet:
                _tcp(flow, ip, packet[TCP], iface, when)
    return _freeze(flow)


def _freeze(flow: _Flow) -> PacketSummary:
    per_interface = Counter(iface for iface, _seq in flow.syn_seqs.elements())
    syns = max(per_interface.values(), default=0)
    synack_source, synack_ttl = flow.synack[0] if flow.synack else (None, None)
    return PacketSummary(
        packets=flow.packets, syn=syns, syn_retransmissions=max(0, syns - 1),
        synack=len(flow.synack), synack_ttl=synack_ttl, synack_source=synack_source,
        rst=tuple(flow.rst), icmp=tuple(flow.icmp), data_retransmissions=flow.data_retrans,
        client_hello=flow.client_hello, client_hello_acked=flow.client_hello_acked,
        server_hello=flow.server_hello, tls_alerts=flow.alerts, server_bytes=flow.server_bytes,
        wire_destination=flow.wire_destination, left_host=flow.left_host,
        first_time=min(flow.times, default=None), last_time=max(flow.times, default=None),
        interfaces=tuple(sorted(flow.interfaces)),
    )
