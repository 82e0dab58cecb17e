"""Encrypted node-to-node traffic: what a capture cannot show, said out loud.

Owns: `summarize`, one `EncryptedLink` per kind (WireGuard, ESP, ESP in UDP)
and pair of endpoints, so that `netprobe analyze` reports that pod traffic
may hide there instead of finding no flows and saying nothing.
Must not: read files, print, or guess what is inside.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import numpy as np

from netprobe.capture import tunnels


@dataclass(frozen=True, slots=True)
class EncryptedLink:
    """Encrypted packets between two endpoints (nodes), either way."""

    kind: str
    """`wireguard`, `esp` or `esp-in-udp`."""
    endpoints: tuple[str, str]
    """The two outer addresses, lower first."""
    packets: int

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "endpoints": list(self.endpoints), "packets": self.packets}


def summarize(packets: dict[str, np.ndarray]) -> list[EncryptedLink]:
    """The encrypted links of a packet table, most packets first."""
    rows = np.flatnonzero(packets["encrypted"] > 0)
    if not len(rows):
        return []
    src = np.stack([packets["src_hi"][rows], packets["src_lo"][rows]], 1)
    dst = np.stack([packets["dst_hi"][rows], packets["dst_lo"][rows]], 1)
    swap = (src[:, 0] > dst[:, 0]) | ((src[:, 0] == dst[:, 0]) & (src[:, 1] > dst[:, 1]))
    low, high = np.where(swap[:, None], dst, src), np.where(swap[:, None], src, dst)
    kind = packets["encrypted"][rows].astype(np.uint64)[:, None]
    version = packets["ip"][rows].astype(np.uint64)[:, None]
    keys, counts = np.unique(np.hstack([kind, version, low, high]), axis=0, return_counts=True)
    links = [EncryptedLink(tunnels.ENCRYPTED[int(k[0])],
                           (_name(k[2], k[3], k[1]), _name(k[4], k[5], k[1])), int(n))
             for k, n in zip(keys, counts, strict=True)]
    return sorted(links, key=lambda link: -link.packets)


def _name(hi: np.uint64, lo: np.uint64, version: np.uint64) -> str:
    if int(version) == 4:
        return str(ipaddress.IPv4Address(int(lo) & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address((int(hi) << 64) | int(lo)))
