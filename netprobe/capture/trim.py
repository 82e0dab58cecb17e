"""Cutting a pcap down to a size budget, keeping the packets a diagnosis needs.

Owns: `trim`. Records are kept whole and in file order; when they do not all
fit, the ones that carry the path's story go first: SYNs, RSTs and
everything that is not TCP (ICMP errors), which correlation and the verdict
need; then FINs and TLS handshake records; then the others, each group
oldest first, while room is left. An agent
uses it so its result fits through pod logs (kubelet rotates them at 10 MiB).
Must not: do I/O.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from netprobe.capture import decode, pcap
from netprobe.capture.records import Batch, Interface
from netprobe.core.packets import FIN, RST, SYN

CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Trimmed:
    """A pcap cut to a budget."""

    data: bytes
    kept: int
    """Records kept."""
    total: int
    """Whole records in the original (up to any damage at its end)."""


def trim(data: bytes, budget: int) -> Trimmed:
    """The records of the classic pcap `data` that fit in `budget` bytes, story first.

    A file that is not a classic pcap, or already fits, comes back unchanged.
    """
    if len(data) <= budget or data[:4] not in pcap.MAGICS:
        return Trimmed(data, -1, -1)
    batches = _batches(data)
    sizes = np.concatenate([np.zeros(0, np.int64)]
                           + [b.caplen + pcap.RECORD_HEADER_LEN for b in batches])
    rank = np.concatenate([np.zeros(0, np.int64)] + [_rank(decode.decode(b)) for b in batches])
    keep = _choose(sizes, rank, budget - pcap.HEADER_LEN)
    parts, at = [data[: pcap.HEADER_LEN]], 0
    for batch in batches:
        for i in np.flatnonzero(keep[at: at + len(batch)]):
            start = int(batch.offset[i]) - pcap.RECORD_HEADER_LEN  # the record's header
            parts.append(batch.data[start: int(batch.offset[i] + batch.caplen[i])].tobytes())
        at += len(batch)
    return Trimmed(b"".join(parts), int(keep.sum()), len(keep))


def _batches(data: bytes) -> list[Batch]:
    batches: list[Batch] = []
    interfaces: list[Interface] = []
    try:
        for batch in pcap.walk(io.BytesIO(data), CHUNK_BYTES, interfaces):
            batches.append(batch)
    except pcap.Damage:
        pass  # cut short (its writer was killed): the whole records before the damage
    return batches


def _rank(cols: decode.Columns) -> np.ndarray:
    """Per packet, 0 (kept first) to 2: SYN, RST or not TCP; FIN or TLS handshake; others."""
    flags, tcp = cols["flags"], cols["tcp"].astype(bool)
    first = ~tcp | ((flags & (SYN | RST)) != 0)
    second = ((flags & FIN) != 0) | (cols["tls_hs"] >= 0)
    return np.where(first, 0, np.where(second, 1, 2)).astype(np.int64)


def _choose(sizes: np.ndarray, rank: np.ndarray, room: int) -> np.ndarray:
    """Which records to keep: by rank, each rank oldest first, within `room` bytes."""
    keep = np.zeros(len(sizes), bool)
    for level in range(3):
        group = np.flatnonzero(rank == level)
        fits = np.cumsum(sizes[group]) <= room
        keep[group[fits]] = True
        room -= int(sizes[group[fits]].sum())
    return keep
