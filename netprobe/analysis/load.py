"""Loading a capture into packet columns: the file edge of the analysis.

Owns: running the container readers and the decoder over every chunk,
concatenating the columns, and turning damage into a value (`Capture.damage`)
so callers can report what was read before it.
Must not: decide about flows or print.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from netprobe.capture import decode, formats, linklayer
from netprobe.capture.records import Interface
from netprobe.core import errors


@dataclass
class Capture:
    """The decoded packets of one capture file."""

    path: Path
    cols: decode.Columns
    """Packet columns (see `netprobe.capture.decode.CORE`)."""
    interfaces: list[Interface] = field(default_factory=list)
    damage: str = ""
    """Why reading stopped early, or empty when the whole file was read."""
    notes: list[str] = field(default_factory=list)
    """Warnings that do not stop the analysis (undecoded link types)."""

    def __len__(self) -> int:
        return len(self.cols["time"])


# Prefixes of the sparse column groups (without `detail`): each has a `row` column.
SPARSE = ("quoted.", "tunnelled.")


def packet_columns(cols: decode.Columns) -> decode.Columns:
    """The columns that have one value per packet (not the sparse `quoted.*`, `tunnelled.*`)."""
    return {k: v for k, v in cols.items() if not k.startswith(SPARSE)}


def load(path: str | Path, detail: bool = False, chunk_bytes: int = formats.CHUNK_BYTES) -> Capture:
    """Read and decode the capture at `path`.

    Returns:
        A `Capture`; `damage` is set when the file broke after some packets.

    Raises:
        CaptureFormatError: the file cannot be read at all (missing, empty,
            wrong magic, damaged before the first packet).
    """
    reader = formats.CaptureFile(path, chunk_bytes)
    parts: list[decode.Columns] = []
    damage = ""
    try:
        for batch in reader:
            parts.append(_compact(decode.decode(batch, detail), detail))
    except errors.CaptureFormatError as exc:
        if reader.container is None or not reader.interfaces:
            raise  # nothing usable: not a capture, or broken before its first interface
        damage = str(exc)
    cols = _concatenate(parts, detail)
    capture = Capture(Path(path), cols, list(reader.interfaces), damage)
    capture.notes.extend(_undecoded(capture))
    return capture


def _compact(cols: decode.Columns, detail: bool) -> decode.Columns:
    """Without `detail`, keep the quoted-flow and outer-tunnel fields only for packets
    that quote a flow / were tunnelled.

    They become `quoted.row` (packet rows) and `quoted.q_*` instead of dense
    `q_*` columns, which would be a third of the per-packet memory (and
    `tunnelled.row`, `tunnelled.outer_*`, `tunnelled.vni` likewise).
    """
    if detail:
        return cols
    for prefix, keep, names in (("quoted.", cols["q_ip"] > 0, decode.QUOTED),
                                ("tunnelled.", cols["tunnel"] > 0, decode.TUNNELLED)):
        rows = np.flatnonzero(keep)
        cols[f"{prefix}row"] = rows
        for name in names:
            cols[f"{prefix}{name}"] = cols.pop(name)[rows]
    return cols


def _concatenate(parts: list[decode.Columns], detail: bool) -> decode.Columns:
    """Join per-batch columns, freeing each batch's column once copied."""
    if not parts:
        parts = [_compact(decode.empty(0, detail), detail)]
    base = np.cumsum([0] + [len(p["time"]) for p in parts[:-1]])
    if not detail:
        for p, b in zip(parts, base, strict=True):
            for prefix in SPARSE:
                p[f"{prefix}row"] = p[f"{prefix}row"] + b
    cols = {}
    for name in list(parts[0]):
        cols[name] = np.concatenate([p.pop(name) for p in parts])
    return cols


def _undecoded(capture: Capture) -> list[str]:
    """One note per link type netprobe counted but could not decode."""
    unknown = capture.cols["unknown_link"]
    if not unknown.any():
        return []
    types = Counter(
        capture.interfaces[i].linktype if i < len(capture.interfaces) else -1
        for i in capture.cols["interface"][unknown]
    )
    return [
        f"reading {capture.path}: link type {lt} is not decoded; its {n} packets are "
        "counted but not analysed"
        for lt, n in sorted(types.items())
        if lt not in linklayer.SUPPORTED or lt == linklayer.PKTAP
    ]
