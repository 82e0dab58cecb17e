"""The record batch every container reader yields.

Owns: `Batch` (one chunk of a capture file with the offsets of its records)
and `Interface`. Must not: parse any container or protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

# Bytes of zeros appended to each chunk so fixed-size gathers past the end of
# the last packet never index out of range; validity comes from lengths.
PAD = 128


@dataclass(frozen=True, slots=True)
class Interface:
    """One capture interface (pcap has one; pcapng one per IDB per section)."""

    linktype: int
    """LINKTYPE_* value, FCS bits masked off."""
    name: str = ""
    """if_name option, or empty."""
    tsresol: float = 1e-6
    """Seconds per timestamp tick (pcap: 1e-6 or 1e-9; pcapng: `if_tsresol`), so a
    writer can give the times back exactly."""


@dataclass(frozen=True, slots=True)
class Batch:
    """A chunk of a capture: the raw bytes and where each record's packet sits."""

    data: npt.NDArray[np.uint8]
    """The chunk's bytes followed by `PAD` zero bytes."""
    offset: npt.NDArray[np.int64]
    """Start of each packet's bytes in `data`."""
    caplen: npt.NDArray[np.int64]
    """Captured length of each packet."""
    origlen: npt.NDArray[np.int64]
    """Length of each packet on the wire."""
    time: npt.NDArray[np.float64]
    """Epoch seconds of each packet."""
    interface: npt.NDArray[np.int32]
    """Index into the reader's interface list."""
    linktype: npt.NDArray[np.int32]
    """Link type of each packet (from its interface)."""

    def __len__(self) -> int:
        return len(self.offset)


class Reader(Protocol):
    """The binary stream a container walker reads: a file, a decompressor, or both
    behind the bytes already read to detect the format."""

    def read(self, size: int = -1, /) -> bytes: ...
    def readinto(self, buffer: memoryview, /) -> int | None: ...


def read_chunk(stream: Reader, carry: npt.NDArray[np.uint8],
               chunk_bytes: int) -> tuple[npt.NDArray[np.uint8], int, int]:
    """`carry` followed by up to `chunk_bytes` read from `stream`, then `PAD` zero bytes.

    The bytes are read straight into the array (a batch needs no copy of its
    chunk). Returns the array, how many bytes it holds before the padding, and
    how many were read (0: the end of the stream).
    """
    buf = np.empty(len(carry) + chunk_bytes + PAD, np.uint8)
    buf[: len(carry)] = carry
    view, got = buf.data[len(carry): len(carry) + chunk_bytes], 0
    while got < len(view):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    size = len(carry) + got
    buf[size: size + PAD] = 0
    return buf, size, got


class Damage(Exception):
    """A container walker met bytes it cannot trust; the message says where."""


def u8(data: npt.NDArray[np.uint8], pos: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    """Bytes of `data` at `pos`."""
    return data[pos]


def _view(data: npt.NDArray[np.uint8], dtype: str, size: int) -> npt.NDArray[np.generic]:
    """An overlapping unaligned view: element i is the `dtype` starting at byte i."""
    return np.ndarray(shape=(len(data) - size + 1,), dtype=dtype, buffer=data, strides=(1,))


def u16be(data: npt.NDArray[np.uint8], pos: npt.NDArray[np.int64]) -> npt.NDArray[np.uint16]:
    """Big-endian uint16 of `data` at each of `pos`.

    Two byte gathers and a shift: about 2.5 times faster than gathering from an
    unaligned byte-swapped view, and decoding calls this a few hundred times per
    million packets.
    """
    out = data[pos].astype(np.uint16)
    out <<= 8
    out |= data[pos + 1]
    return out


def u32be(data: npt.NDArray[np.uint8], pos: npt.NDArray[np.int64]) -> npt.NDArray[np.uint32]:
    """Big-endian uint32 of `data` at each of `pos`."""
    return _view(data, ">u4", 4)[pos].astype(np.uint32)


def u64be(data: npt.NDArray[np.uint8], pos: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """Big-endian uint64 of `data` at each of `pos`."""
    return _view(data, ">u8", 8)[pos].astype(np.uint64)


def u32(
    data: npt.NDArray[np.uint8], pos: npt.NDArray[np.int64], big: bool
) -> npt.NDArray[np.uint32]:
    """uint32 of `data` at each of `pos`, in the given byte order."""
    return _view(data, ">u4" if big else "<u4", 4)[pos].astype(np.uint32)
