"""Crafted captures for the analysis tests (scapy builds the IP packets).

Scenarios return `(time, ip_packet_bytes)` lists; `tunnel` puts them in a
tunnel between two nodes (VXLAN, Geneve, GRE, IP-in-IP, IPv6-in-IP, or one
inside another); writers wrap them in a link layer (Ethernet with optional
VLAN tags, SLL, SLL2, raw IP, BSD null) and a container (pcap in either
byte order and resolution, pcapng with several interfaces and `if_tsresol`,
gzip).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import GRE, Ether
from scapy.layers.tls.all import TLS, TLSClientHello, TLSServerHello
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

Packets = list[tuple[float, bytes]]
T0 = 1_700_000_000.0
CLIENT, SERVER, ROUTER = "10.0.0.1", "10.96.0.10", "10.0.0.254"
CLIENT6, SERVER6, ROUTER6 = "fd00::1", "fd00::10", "fd00::fe"
CLIENT_HELLO = bytes(TLS(msg=[TLSClientHello()]))
SERVER_HELLO = bytes(TLS(msg=[TLSServerHello()]))
REQUEST = b"\x17\x03\x03\x01\x00" + b"\xaa" * 256


class Conn:
    """A TCP connection whose packets are appended to a shared list."""

    def __init__(self, out: Packets, sport: int, dport: int = 443, v6: bool = False,
                 isn: int = 1000, server_isn: int = 5000, ip_ext: Sequence[object] = ()) -> None:
        self.out, self.sport, self.dport, self.v6 = out, sport, dport, v6
        self.cseq, self.sseq = isn, server_isn
        self.ip_ext = ip_ext

    def _ip(self, from_client: bool, ttl: int):  # type: ignore[no-untyped-def]
        a, b = (CLIENT6, SERVER6) if self.v6 else (CLIENT, SERVER)
        src, dst = (a, b) if from_client else (b, a)
        if self.v6:
            pkt = IPv6(src=src, dst=dst, hlim=ttl)
            for ext in self.ip_ext:
                pkt = pkt / ext
            return pkt
        return IP(src=src, dst=dst, ttl=ttl)

    def send(self, t: float, from_client: bool, flags: str, payload: bytes = b"",
             ttl: int = 64, seq: int | None = None, advance: bool = True) -> bytes:
        sport, dport = (self.sport, self.dport) if from_client else (self.dport, self.sport)
        mine = self.cseq if from_client else self.sseq
        theirs = self.sseq if from_client else self.cseq
        s = mine if seq is None else seq
        tcp = TCP(sport=sport, dport=dport, flags=flags, seq=s, ack=theirs if "A" in flags else 0,
                  options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)),
                           ("WScale", 7)] if "S" in flags else
                  [("NOP", None), ("NOP", None), ("Timestamp", (2, 1))])
        raw = bytes(self._ip(from_client, ttl) / tcp / payload)
        self.out.append((t, raw))
        if advance and seq is None:
            step = len(payload) + (1 if ("S" in flags or "F" in flags) else 0)
            if from_client:
                self.cseq += step
            else:
                self.sseq += step
        return raw

    def handshake(self, t: float, rtt: float = 0.001) -> float:
        self.send(t, True, "S")
        self.send(t + rtt, False, "SA")
        self.send(t + rtt * 1.1, True, "A")
        return t + rtt * 1.1


def scenario_ok(out: Packets, sport: int = 40001, t: float = T0, v6: bool = False,
                ip_ext: Sequence[object] = ()) -> None:
    c = Conn(out, sport, v6=v6, ip_ext=ip_ext)
    t = c.handshake(t)
    c.send(t + 0.001, True, "PA", CLIENT_HELLO)
    c.send(t + 0.002, False, "PA", SERVER_HELLO)
    c.send(t + 0.003, True, "PA", REQUEST)
    c.send(t + 0.010, False, "PA", b"\x17\x03\x03\x00\x40" + b"\xbb" * 64)
    c.send(t + 0.011, True, "FA")
    c.send(t + 0.012, False, "FA")
    c.send(t + 0.013, True, "A")


def scenario_refused(out: Packets, sport: int = 40002, t: float = T0, ttl: int = 64) -> None:
    c = Conn(out, sport)
    c.send(t, True, "S")
    c.send(t + 0.0005, False, "RA", ttl=ttl)


def scenario_io_timeout(out: Packets, sport: int = 40003, t: float = T0) -> None:
    c = Conn(out, sport)
    syn = c.send(t, True, "S", advance=False)
    for delay in (1.0, 3.0, 7.0):
        out.append((t + delay, syn))
    c.cseq += 1


def scenario_no_route(out: Packets, sport: int = 40004, t: float = T0) -> None:
    c = Conn(out, sport)
    syn = c.send(t, True, "S")
    quoted = IP(syn)
    icmp = IP(src=ROUTER, dst=CLIENT, ttl=63) / ICMP(type=3, code=1) / bytes(quoted)[:28]
    out.append((t + 0.002, bytes(icmp)))


def scenario_no_route_v6(out: Packets, sport: int = 40014, t: float = T0) -> None:
    c = Conn(out, sport, v6=True)
    syn = c.send(t, True, "S")
    icmp = IPv6(src=ROUTER6, dst=CLIENT6, hlim=63) / ICMPv6DestUnreach(code=0) / syn
    out.append((t + 0.002, bytes(icmp)))


def scenario_tls_timeout(out: Packets, sport: int = 40005, t: float = T0) -> None:
    c = Conn(out, sport)
    t = c.handshake(t)
    c.send(t + 0.001, True, "PA", CLIENT_HELLO)
    c.send(t + 0.002, False, "A")
    c.send(t + 10.001, True, "FA")
    c.send(t + 10.002, False, "A")


def scenario_response_timeout(out: Packets, sport: int = 40006, t: float = T0) -> None:
    c = Conn(out, sport)
    t = c.handshake(t)
    c.send(t + 0.001, True, "PA", CLIENT_HELLO)
    c.send(t + 0.002, False, "PA", SERVER_HELLO)
    c.send(t + 0.003, True, "PA", REQUEST)
    c.send(t + 0.004, False, "A")
    c.send(t + 30.0, True, "FA")
    c.send(t + 30.001, False, "A")


def scenario_retransmissions(out: Packets, sport: int = 40007, t: float = T0) -> None:
    """Data retransmitted after an RTO, plus a keep-alive (not a retransmission)."""
    c = Conn(out, sport, dport=8443)
    t = c.handshake(t, rtt=0.002)
    first = c.cseq
    c.send(t + 0.001, True, "PA", b"x" * 100)
    c.send(t + 0.210, True, "PA", b"x" * 100, seq=first)  # RTO retransmission
    c.send(t + 0.215, False, "A")
    c.send(t + 0.300, True, "PA", b"y" * 50)
    c.send(t + 5.0, True, "A", b"", seq=c.cseq - 1)  # keep-alive
    c.send(t + 6.0, False, "PA", b"z" * 10)
    c.send(t + 6.5, False, "PA", b"z" * 10, seq=c.sseq - 10)  # server retransmits
    c.send(t + 6.6, True, "A")


def scenario_port_reuse(out: Packets, sport: int = 40008, t: float = T0) -> None:
    scenario_refused(out, sport, t)
    c = Conn(out, sport, isn=900_000)
    c.handshake(t + 2.0)
    c.send(t + 2.1, True, "RA")


def scenario_udp(out: Packets, t: float = T0) -> None:
    out.append((t, bytes(IP(src=CLIENT, dst="10.96.0.53") / UDP(sport=5353, dport=53) / b"q")))
    quoted = bytes(IP(src=CLIENT, dst="10.96.0.53") / UDP(sport=5353, dport=53) / b"q")
    icmp = IP(src="10.96.0.53", dst=CLIENT) / ICMP(type=3, code=3) / quoted
    out.append((t + 0.001, bytes(icmp)))


def everything(t: float = T0) -> Packets:
    """All scenarios, interleaved in time, one flow each (plus port reuse)."""
    out: Packets = []
    scenario_ok(out, t=t)
    scenario_refused(out, t=t + 0.1)
    scenario_refused(out, sport=40012, t=t + 0.2, ttl=58)
    scenario_io_timeout(out, t=t + 0.3)
    scenario_no_route(out, t=t + 0.4)
    scenario_no_route_v6(out, t=t + 0.45)
    scenario_tls_timeout(out, t=t + 0.5)
    scenario_response_timeout(out, t=t + 0.6)
    scenario_retransmissions(out, t=t + 0.7)
    scenario_port_reuse(out, t=t + 0.8)
    scenario_udp(out, t=t + 0.9)
    scenario_ok(out, sport=40020, t=t + 1.0, v6=True,
                ip_ext=[IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(),
                        IPv6ExtHdrRouting(addresses=["fd00::99"], segleft=0)])
    out.sort(key=lambda p: p[0])
    return out


# -- tunnels ------------------------------------------------------------------

NODE_A, NODE_B = "192.168.0.1", "192.168.0.2"  # the client's node, the server's node
NODE6_A, NODE6_B = "fd01::a", "fd01::b"
VNI = 4242
TUNNELS = ("vxlan", "vxlan-8472", "geneve", "gre", "gre-key-ethernet", "ip-in-ip", "ip-in-ipv6",
           "vxlan-in-gre")


def _towards_client(ip: bytes) -> bool:
    dst = IPv6(ip).dst if ip[0] >> 4 == 6 else IP(ip).dst
    return dst in (CLIENT, CLIENT6)


def _inner_frame(ip: bytes) -> Packet:
    return Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b", type=_ethertype(ip)) / Raw(ip)


def _udp_tunnel(ip: bytes, port: int, header: Packet) -> Packet:
    # Like Linux: a source port hashed from the inner flow, above the tunnel's port (tshark
    # tries the low port first).
    sport = 49152 + zlib.crc32(ip[:24]) % 16384
    return UDP(sport=sport, dport=port) / header / _inner_frame(ip)


def encapsulate(ip: bytes, kind: str, vni: int = VNI) -> bytes:
    """The IP packet `ip` inside a tunnel of `kind` (see TUNNELS) between the two nodes."""
    v6 = ip[0] >> 4 == 6
    back = _towards_client(ip)
    if kind == "vxlan-in-gre":
        return encapsulate(encapsulate(ip, "vxlan", vni), "gre", vni + 1)
    if kind == "ip-in-ipv6":  # an IPv6 underlay: protocol 41 for IPv6 inside, 4 for IPv4
        a, b = (NODE6_B, NODE6_A) if back else (NODE6_A, NODE6_B)
        return bytes(IPv6(src=a, dst=b, nh=41 if v6 else 4) / Raw(ip))
    payload: Packet
    if kind in ("vxlan", "vxlan-8472"):
        payload = _udp_tunnel(ip, 8472 if kind == "vxlan-8472" else 4789, VXLAN(vni=vni))
    elif kind == "geneve":
        option = GeneveOptions(classid=0x0102, type=1, data=b"node")
        payload = _udp_tunnel(ip, 6081, GENEVE(vni=vni, proto=0x6558, options=[option]))
    elif kind == "gre":  # checksum and sequence number, the inner IP directly
        payload = GRE(chksum_present=1, seqnum_present=1, sequence_number=7,
                      proto=_ethertype(ip)) / Raw(ip)
    elif kind == "gre-key-ethernet":
        payload = GRE(key_present=1, key=vni, proto=0x6558) / _inner_frame(ip)
    elif kind == "ip-in-ip":
        payload = Raw(ip)
    else:
        raise ValueError(kind)
    a, b = (NODE_B, NODE_A) if back else (NODE_A, NODE_B)
    proto = {"ip-in-ip": 41 if v6 else 4}.get(kind)
    return bytes(IP(src=a, dst=b, ttl=64, **({"proto": proto} if proto else {})) / payload)


def tunnel(packets: Packets, kind: str) -> Packets:
    """Every packet inside a tunnel of `kind` (see `encapsulate`)."""
    return [(t, encapsulate(ip, kind)) for t, ip in packets]


# -- link layers -------------------------------------------------------------

ETH_SRC, ETH_DST = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def _ethertype(ip: bytes) -> int:
    return 0x86DD if ip[0] >> 4 == 6 else 0x0800


def link(ip: bytes, linktype: int, vlans: Sequence[int] = (), ifindex: int = 7) -> bytes:
    """Wrap an IP packet for `linktype` (1 Ethernet, 113 SLL, 276 SLL2, 101/228/229 raw, 0 null)."""
    et = _ethertype(ip)
    if linktype == 1:
        tags = b""
        tpids = [0x88A8] + [0x8100] * (len(vlans) - 1) if len(vlans) > 1 else [0x8100] * len(vlans)
        for tpid, vid in zip(tpids, vlans, strict=True):
            tags += struct.pack(">HH", tpid, vid)
        return ETH_DST + ETH_SRC + tags + struct.pack(">H", et) + ip
    if linktype == 113:
        return struct.pack(">HHH8sH", 0, 1, 6, ETH_SRC + b"\0\0", et) + ip
    if linktype == 276:
        return struct.pack(">HHIHBB8s", et, 0, ifindex, 1, 0, 6, ETH_SRC + b"\0\0") + ip
    if linktype in (101, 228, 229, 12, 14):
        return ip
    if linktype == 0:
        return struct.pack("<I", 2 if et == 0x0800 else 24) + ip
    raise ValueError(linktype)


# -- containers --------------------------------------------------------------


def write_pcap(path: Path, packets: Packets, linktype: int = 1, big: bool = False,
               nano: bool = False, vlans: Sequence[int] = (), snaplen: int = 65535,
               linkword_extra: int = 0, cut: Sequence[int] = ()) -> Path:
    """`cut`: per packet, the bytes captured of it (the rest are lost, as with a snap length)."""
    e = ">" if big else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    body = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype | linkword_extra)]
    for k, (t, ip) in enumerate(packets):
        frame = link(ip, linktype, vlans)
        sec = int(t)
        frac = round((t - sec) * (1e9 if nano else 1e6))
        kept = frame[: cut[k]] if k < len(cut) else frame
        body.append(struct.pack(e + "IIII", sec, frac, len(kept), len(frame)) + kept)
    data = b"".join(body)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def _block(btype: int, body: bytes, e: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def _option(code: int, value: bytes, e: str = "<") -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def write_pcapng(path: Path, packets_per_iface: Sequence[tuple[int, int, Packets]],
                 big: bool = False, comment: str = "netprobe test") -> Path:
    """Write `(linktype, tsresol, packets)` per interface; records merged by time.

    A second section repeats the first interface, to test multiple sections.
    """
    e = ">" if big else "<"
    out = [_block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1)
                  + _option(1, comment.encode(), e) + _option(0, b"", e), e)]
    merged = []
    for i, (lt, resol, pkts) in enumerate(packets_per_iface):
        opts = _option(9, bytes([resol]), e) + _option(2, f"if{i}".encode(), e) + _option(0, b"", e)
        out.append(_block(1, struct.pack(e + "HHI", lt, 0, 0) + opts, e))
        merged += [(t, i, lt, resol, ip) for t, ip in pkts]
    out.append(_block(0x80000001, b"local-use block to skip", e))
    for t, i, lt, resol, ip in sorted(merged):
        frame = link(ip, lt)
        ticks = round(t * 10**resol)
        out.append(_block(6, struct.pack(e + "IIIII", i, ticks >> 32, ticks & 0xFFFFFFFF,
                                          len(frame), len(frame)) + frame
                          + b"\0" * (-len(frame) % 4) + _option(1, b"pkt", e)
                          + _option(0, b"", e), e))
    path.write_bytes(b"".join(out))
    return path
