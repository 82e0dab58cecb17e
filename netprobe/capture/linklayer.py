"""Link layers: where the IP header starts in each packet.

Owns: Ethernet (802.1Q/802.1ad/QinQ tags), Linux cooked SLL and SLL2 (with
its interface index), raw IP (101, 12, 14, 228, 229), BSD null and LOOP,
PPP, IPoIB and PKTAP (its inner Ethernet). Vectorized per link type.
Must not: look past the network-layer offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from netprobe.capture.records import Batch, u16be, u32, u32be

ETHERNET = 1
PPP = 9
PPP_HDLC = 50
RAW = (12, 14, 101)
IPV4 = 228
IPV6 = 229
NULL = 0
LOOP = 108
SLL = 113
SLL2 = 276
IPOIB = 242
PKTAP = 258

SUPPORTED = frozenset(
    {ETHERNET, PPP, PPP_HDLC, *RAW, IPV4, IPV6, NULL, LOOP, SLL, SLL2, IPOIB, PKTAP})
NAMES = {
    ETHERNET: "Ethernet", SLL: "Linux cooked", SLL2: "Linux cooked v2", 101: "raw IP",
    IPV4: "raw IPv4", IPV6: "raw IPv6", NULL: "BSD null", LOOP: "OpenBSD loop", PPP: "PPP",
}

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
VLAN_TPIDS = np.array([0x8100, 0x88A8, 0x9100], dtype=np.uint16)
AF_INET6 = np.array([10, 24, 28, 30], dtype=np.uint32)
MAX_VLAN_TAGS = 3


@dataclass(frozen=True, slots=True)
class Network:
    """Where each packet's network layer starts and what it is."""

    pos: npt.NDArray[np.int64]
    """Offset of the network header in the batch's data (-1: none)."""
    version: npt.NDArray[np.uint8]
    """4 or 6 when the link layer says IPv4/IPv6, 0 otherwise (7: ask the header)."""
    ifindex: npt.NDArray[np.int64]
    """SLL2 interface index, -1 for other link types."""
    unknown: npt.NDArray[np.bool_]
    """The packet's link type is not one netprobe decodes."""


def ethertype_version(et: npt.NDArray[np.uint16]) -> npt.NDArray[np.uint8]:
    return np.where(et == ETH_IPV4, 4, np.where(et == ETH_IPV6, 6, 0)).astype(np.uint8)


def vlan_tags(data: np.ndarray, et: np.ndarray, pos: np.ndarray,
          end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Skip up to three VLAN tags; return the inner ethertype and payload offset."""
    for _ in range(MAX_VLAN_TAGS):
        tagged = np.isin(et, VLAN_TPIDS) & (pos + 4 <= end)
        if not tagged.any():
            break
        et = np.where(tagged, u16be(data, pos + 2), et)
        pos = pos + 4 * tagged
    return et, pos


def locate(batch: Batch) -> Network:
    """Return where each packet of `batch` has its network layer."""
    n = len(batch)
    data, off = batch.data, batch.offset
    end = off + batch.caplen
    pos = np.full(n, -1, dtype=np.int64)
    version = np.zeros(n, dtype=np.uint8)
    ifindex = np.full(n, -1, dtype=np.int64)
    linktype = batch.linktype.copy()
    start = off.copy()
    pk = np.flatnonzero((linktype == PKTAP) & (off + 8 <= end))
    if len(pk):  # PKTAP: a little-endian header length and the inner DLT
        hdr = u32(data, off[pk], False).astype(np.int64)
        start[pk] = np.minimum(off[pk] + hdr, end[pk])
        linktype[pk] = u32(data, off[pk] + 4, False).astype(np.int32)
    for lt in np.unique(linktype):
        idx = np.flatnonzero(linktype == lt)
        o, e = start[idx], end[idx]
        p, v = _one_link(int(lt), data, o, e, ifindex, idx)
        ok = (p >= 0) & (p <= e)
        pos[idx] = np.where(ok, p, -1)
        version[idx] = np.where(ok, v, 0)
    unknown = ~np.isin(linktype, np.fromiter(SUPPORTED, dtype=np.int32))
    return Network(pos, version, ifindex, unknown)


def _one_link(
    lt: int, data: np.ndarray, o: np.ndarray, e: np.ndarray, ifindex: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Network offset and IP version for packets of one link type."""
    none = (np.full(len(o), -1, np.int64), np.zeros(len(o), np.uint8))
    if lt == ETHERNET:
        et, p = vlan_tags(data, u16be(data, o + 12), o + 14, e)
        return np.where(o + 14 <= e, p, -1), ethertype_version(et)
    if lt == SLL:
        et, p = vlan_tags(data, u16be(data, o + 14), o + 16, e)
        return np.where(o + 16 <= e, p, -1), ethertype_version(et)
    if lt == SLL2:
        has = o + 20 <= e
        ifindex[idx] = np.where(has, u32be(data, o + 4).astype(np.int64), -1)
        et, p = vlan_tags(data, u16be(data, o), o + 20, e)
        return np.where(has, p, -1), ethertype_version(et)
    if lt in RAW:
        return o, np.full(len(o), 7, np.uint8)
    if lt in (IPV4, IPV6):
        return o, np.full(len(o), 4 if lt == IPV4 else 6, np.uint8)
    if lt in (NULL, LOOP):
        fam = u32(data, o, lt == LOOP)
        swapped = fam.byteswap()
        fam = np.where((fam & 0xFFFF0000) != 0, swapped, fam)
        v = np.where(fam == 2, 4, np.where(np.isin(fam, AF_INET6), 6, 0)).astype(np.uint8)
        return np.where(o + 4 <= e, o + 4, -1), v
    if lt in (PPP, PPP_HDLC):
        hdlc = (data[o] == 0xFF) & (data[o + 1] == 0x03)
        p = o + 2 * hdlc
        proto = u16be(data, p)
        v = np.where(proto == 0x0021, 4, np.where(proto == 0x0057, 6, 0)).astype(np.uint8)
        return np.where(p + 2 <= e, p + 2, -1), v
    if lt == IPOIB:  # 40 bytes of destination address, then type and reserved
        return np.where(o + 44 <= e, o + 44, -1), ethertype_version(u16be(data, o + 40))
    return none
