"""Tunnels: where the packet carried inside an encapsulation starts.

Owns: VXLAN (UDP 4789, and 8472, the Linux kernel's and Flannel's default),
Geneve (UDP 6081, with its options), GRE (checksum, key and sequence
fields, PPTP's acknowledgment; inner Ethernet 0x6558, IPv4, IPv6),
IP-in-IP (IP protocol 4, inner IPv4 or IPv6) and IPv6-in-IP (41); and
recognising encrypted node-to-node traffic whose inside cannot be read:
WireGuard (UDP 51820), ESP (IP protocol 50) and ESP in UDP (4500, NAT-T).
Vectorized over the packets of a batch; `netprobe/_native/decode.c` has the
same rules packet by packet.
Must not: decode the inner IP packet (decode.py decodes it with the code
that decodes outer ones) or keep per-packet Python objects.

The rules are Wireshark 4.0's, so the counts stay tshark's: a UDP port is
tried low port first (only among the ports below), a UDP length under 8
stops the dissection and one past the IP payload is cut to it; Geneve's
version and VXLAN's flags are not checked; GRE's flags that add a field
are honoured (the acknowledgment only in version 1), a routing-present GRE
packet (obsolete, RFC 2784) is not decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from netprobe.capture import linklayer
from netprobe.capture.records import u16be, u32be

Array = npt.NDArray[np.int64]

# The `tunnel` column: the outermost tunnel a packet was found in (0: none).
NONE, VXLAN, GENEVE, GRE, IPIP, IPV6IP = 0, 1, 2, 3, 4, 5
KINDS = ("", "vxlan", "geneve", "gre", "ip-in-ip", "ipv6-in-ip")
# The `encrypted` column: the packet is node-to-node traffic whose inside cannot be read.
WIREGUARD, ESP, ESP_IN_UDP = 1, 2, 3
ENCRYPTED = ("", "wireguard", "esp", "esp-in-udp")

VXLAN_PORTS = (4789, 8472)
GENEVE_PORT = 6081
WIREGUARD_PORT = 51820
NAT_T_PORT = 4500
# UDP port -> what is on it; a port's meaning is looked up low port first.
UDP_PORTS = {4789: VXLAN, 8472: VXLAN, GENEVE_PORT: GENEVE, WIREGUARD_PORT: -WIREGUARD,
             NAT_T_PORT: -ESP_IN_UDP}
P_IPIP, P_GRE, P_IPV6, P_ESP, P_UDP = 4, 47, 41, 50, 17
TUNNEL_PROTOCOLS = np.array([P_IPIP, P_GRE, P_IPV6, P_UDP], np.int16)
ETH_BRIDGE = 0x6558  # transparent Ethernet bridging: an Ethernet frame follows
MAX_DEPTH = 4  # tunnels inside tunnels decoded at most; deeper ones stay as they are
VERSION_ASK = 7  # the inner header's version nibble decides (4 or 6), as for raw IP


@dataclass(frozen=True, slots=True)
class Inner:
    """The packets found inside a tunnel, one entry per row of `rows`."""

    rows: Array
    """Rows (packets of the batch) that carry an inner packet."""
    pos: Array
    """Offset of the inner network header."""
    version: npt.NDArray[np.uint8]
    """4, 6 or VERSION_ASK."""
    rep: Array
    """Where the inner packet ends per the outer lengths (the tunnel's payload end)."""
    kind: npt.NDArray[np.uint8]
    """The tunnel (`KINDS` index)."""
    vni: Array
    """VXLAN/Geneve VNI or GRE key, -1 if none."""


def udp_port(sport: np.ndarray, dport: np.ndarray) -> npt.NDArray[np.int64]:
    """What `UDP_PORTS` says of each packet, its low port first (0: none of them)."""
    lo, hi = np.minimum(sport, dport), np.maximum(sport, dport)
    out = np.zeros(len(lo), np.int64)
    for port, meaning in UDP_PORTS.items():
        out = np.where((out == 0) & (hi == port), meaning, out)
    for port, meaning in UDP_PORTS.items():  # the low port wins: applied last
        out = np.where(lo == port, meaning, out)
    return out


def unwrap(data: npt.NDArray[np.uint8], rows: Array, proto: np.ndarray, l4: Array,
           l4_len: Array, end: Array) -> Inner:
    """The inner packets of the `rows` whose transport (`l4`, `l4_len` bytes) is a tunnel.

    `proto`, `l4`, `l4_len` and `end` are per-packet arrays of the batch; only
    `rows` (packets with a transport header, `l4 >= 0`) are looked at.
    """
    rows = rows[np.isin(proto[rows], TUNNEL_PROTOCOLS)]  # a plain capture stops here
    o, p, e = l4[rows], proto[rows].astype(np.int64), end[rows]
    payload_end = o + l4_len[rows]
    parts = [_ip_in_ip(rows, o, p, payload_end),
             _gre(data, rows[p == P_GRE], o[p == P_GRE], payload_end[p == P_GRE], e[p == P_GRE])]
    udp = p == P_UDP
    parts.append(_udp(data, rows[udp], o[udp], payload_end[udp], e[udp]))
    return Inner(*(np.concatenate([getattr(part, f) for part in parts]) for f in Inner.__slots__))


def encrypted(data: npt.NDArray[np.uint8], rows: Array, proto: np.ndarray, sport: np.ndarray,
              dport: np.ndarray, l4: Array, end: Array) -> npt.NDArray[np.uint8]:
    """`ENCRYPTED` index of each of `rows` (packets with a transport header)."""
    out = np.zeros(len(rows), np.uint8)
    maybe = np.flatnonzero((proto[rows] == P_ESP) | (proto[rows] == P_UDP))
    out[maybe] = _encrypted(data, rows[maybe], proto, sport, dport, l4, end)
    return out


def _encrypted(data: npt.NDArray[np.uint8], rows: Array, proto: np.ndarray, sport: np.ndarray,
               dport: np.ndarray, l4: Array, end: Array) -> npt.NDArray[np.uint8]:
    p = proto[rows]
    out = np.where(p == P_ESP, ESP, 0).astype(np.uint8)
    udp = np.flatnonzero((p == P_UDP) & (sport[rows] >= 0))
    meaning = udp_port(sport[rows[udp]], dport[rows[udp]])
    out[udp[meaning == -WIREGUARD]] = WIREGUARD
    nat_t = udp[meaning == -ESP_IN_UDP]
    spi_at = l4[rows[nat_t]] + 8
    # A zero "non-ESP marker" is IKE, a single 0xff byte a NAT keep-alive: not ESP.
    fits = spi_at + 4 <= end[rows[nat_t]]
    nat_t, spi_at = nat_t[fits], spi_at[fits]
    out[nat_t[u32be(data, spi_at) != 0]] = ESP_IN_UDP
    return out


def _found(rows: Array, pos: Array, version: np.ndarray, rep: Array, kind: int,
           vni: Array) -> Inner:
    keep = version != 0
    return Inner(rows[keep], pos[keep], version[keep].astype(np.uint8), rep[keep],
                 np.full(int(keep.sum()), kind, np.uint8), vni[keep])


def _ip_in_ip(rows: Array, o: Array, p: np.ndarray, payload_end: Array) -> Inner:
    """Protocol 4 carries IPv4 or IPv6 (Wireshark's IP dissector hands a version 6
    header on); protocol 41 carries IPv6 only."""
    sel = (p == P_IPIP) | (p == P_IPV6)
    version = np.where(p[sel] == P_IPIP, VERSION_ASK, 6).astype(np.uint8)
    kind = np.where(p[sel] == P_IPIP, IPIP, IPV6IP).astype(np.uint8)
    n = int(sel.sum())
    return Inner(rows[sel], o[sel], version, payload_end[sel], kind, np.full(n, -1, np.int64))


def _gre(data: npt.NDArray[np.uint8], rows: Array, o: Array, payload_end: Array,
         e: Array) -> Inner:
    stop = np.minimum(e, payload_end)
    fits = o + 4 <= stop
    rows, o, payload_end, stop = rows[fits], o[fits], payload_end[fits], stop[fits]
    flags = u16be(data, o).astype(np.int64)
    size = (4 + 4 * ((flags & 0xC000) != 0) + 4 * ((flags & 0x2000) != 0)
            + 4 * ((flags & 0x1000) != 0) + 4 * (((flags & 7) == 1) & ((flags & 0x0080) != 0)))
    ok = ((flags & 0x4000) == 0) & (o + size <= stop)
    rows, o, payload_end, stop, flags, size = (a[ok] for a in (rows, o, payload_end, stop, flags,
                                                               size))
    keyed = (flags & 0x2000) != 0
    key_at = o + 4 + 4 * ((flags & 0x8000) != 0)
    vni = np.where(keyed, u32be(data, np.where(keyed, key_at, o)).astype(np.int64), -1)
    pos, version = _by_ethertype(data, u16be(data, o + 2), o + size, stop)
    return _found(rows, pos, version, payload_end, GRE, vni)


def _udp(data: npt.NDArray[np.uint8], rows: Array, o: Array, payload_end: Array,
         e: Array) -> Inner:
    """VXLAN and Geneve: the UDP length (at least 8) bounds the tunnel's payload."""
    fits = o + 8 <= e
    rows, o, payload_end, e = rows[fits], o[fits], payload_end[fits], e[fits]
    kind = udp_port(u16be(data, o), u16be(data, o + 2))
    ulen = u16be(data, o + 4).astype(np.int64)
    ok = ((kind == VXLAN) | (kind == GENEVE)) & (ulen >= 8)
    rows, o, kind, e = rows[ok], o[ok], kind[ok], e[ok]
    payload_end = np.minimum(payload_end[ok], o + ulen[ok])
    stop = np.minimum(e, payload_end)
    h = o + 8
    ok = h + 8 <= stop
    rows, h, kind, payload_end, stop = rows[ok], h[ok], kind[ok], payload_end[ok], stop[ok]
    vni = (u32be(data, h + 4) >> 8).astype(np.int64)
    vx = kind == VXLAN
    pos, version = _ethernet(data, h[vx] + 8, stop[vx])
    parts = [_found(rows[vx], pos, version, payload_end[vx], VXLAN, vni[vx])]
    g = ~vx
    size = 8 + (data[h[g]] & 0x3F).astype(np.int64) * 4
    ok = h[g] + size <= stop[g]
    gi = np.flatnonzero(g)[ok]
    pos, version = _by_ethertype(data, u16be(data, h[gi] + 2), h[gi] + size[ok], stop[gi])
    parts.append(_found(rows[gi], pos, version, payload_end[gi], GENEVE, vni[gi]))
    return Inner(*(np.concatenate([getattr(part, f) for part in parts]) for f in Inner.__slots__))


def _by_ethertype(data: npt.NDArray[np.uint8], et: np.ndarray, at: Array,
                  stop: Array) -> tuple[Array, npt.NDArray[np.uint8]]:
    """GRE's and Geneve's protocol type: Ethernet, IPv4 (any version nibble) or IPv6."""
    pos, version = at.copy(), np.zeros(len(at), np.uint8)
    version[et == linklayer.ETH_IPV4] = VERSION_ASK
    version[et == linklayer.ETH_IPV6] = 6
    eth = np.flatnonzero(et == ETH_BRIDGE)
    pos[eth], version[eth] = _ethernet(data, at[eth], stop[eth])
    return pos, version


def _ethernet(data: npt.NDArray[np.uint8], at: Array,
              stop: Array) -> tuple[Array, npt.NDArray[np.uint8]]:
    """An inner Ethernet frame (VLAN tags skipped): the IP header's offset and version."""
    pos, version = np.full(len(at), -1, np.int64), np.zeros(len(at), np.uint8)
    fits = np.flatnonzero(at + 14 <= stop)
    a = at[fits]
    et, pos[fits] = linklayer.vlan_tags(data, u16be(data, a + 12), a + 14, stop[fits])
    version[fits] = linklayer.ethertype_version(et)
    return pos, version
