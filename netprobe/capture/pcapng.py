"""pcapng: sections, interfaces and packet blocks.

Owns: the block walk (SHB, IDB, EPB, SPB, the obsolete PB; every other block
type is skipped), per-section byte order, per-interface link type, snap
length and timestamp resolution (`if_tsresol`, `if_tsoffset`).
Must not: decode packet bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from netprobe import _native
from netprobe.capture.records import PAD, Batch, Damage, Interface, Reader, read_chunk

SHB_MAGIC = b"\x0a\x0d\x0d\x0a"
SHB = 0x0A0D0D0A
IDB = 1
OPB = 2  # obsolete Packet Block
SPB = 3
EPB = 6
BOM = 0x1A2B3C4D
# wiretap refuses blocks above 16 MiB; nothing legitimate is that large.
MAX_BLOCK = 16 * 1024 * 1024 + 4096
PACKET_BLOCKS = (EPB, SPB, OPB)
BLOCK_WORDS = 7  # block type and length, then the packet block's fixed fields


@dataclass
class _Section:
    big: bool
    base: int  # index of this section's first interface in the global list
    resol: list[float] = field(default_factory=list)  # seconds per tick, per interface
    tsoffset: list[float] = field(default_factory=list)
    snaplen: list[int] = field(default_factory=list)


def _ts_resolution(value: int) -> float:
    """Seconds per timestamp tick for an `if_tsresol` option byte."""
    if value & 0x80:
        return float(2.0 ** -(value & 0x7F))
    return float(10.0 ** -(value & 0x7F))


def _options(body: bytes, big: bool) -> Iterator[tuple[int, bytes]]:
    """Yield (code, value) for each option in `body`, stopping at damage."""
    fmt = ">HH" if big else "<HH"
    pos = 0
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(fmt, body, pos)
        if code == 0:
            return
        value = body[pos + 4 : pos + 4 + length]
        if len(value) < length:
            return
        yield code, value
        pos += 4 + ((length + 3) & ~3)


def _interface(block: bytes, section: _Section, interfaces: list[Interface]) -> None:
    big = section.big
    if len(block) < 20:
        raise Damage("interface description block shorter than 20 bytes")
    linktype, _, snaplen = struct.unpack_from(">HHI" if big else "<HHI", block, 8)
    resol, tsoffset, name = 1e-6, 0.0, ""
    for code, value in _options(block[16:-4], big):
        if code == 9 and value:
            resol = _ts_resolution(value[0])
        elif code == 14 and len(value) == 8:
            tsoffset = float(struct.unpack(">q" if big else "<q", value)[0])
        elif code == 2:
            name = value.decode("utf-8", "replace")
    section.resol.append(resol)
    section.tsoffset.append(tsoffset)
    section.snaplen.append(snaplen)
    interfaces.append(Interface(linktype=linktype, name=name, tsresol=resol))


class _Walker:
    """State of one pcapng walk: the current section and the packet blocks found."""

    def __init__(self, interfaces: list[Interface]) -> None:
        self.interfaces = interfaces
        self.section: _Section | None = None
        self.offsets: list[int] = []
        self.kinds: list[int] = []
        self.pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        """(offsets, kinds, block words) found by the compiled scan, in file order."""
        self.sections: list[_Section] = []
        self.native = _native.module("pcapng")

    @property
    def found(self) -> bool:
        """Packet blocks were recorded since the last batch."""
        return bool(self.offsets) or any(len(o) for o, _, _ in self.pieces)

    def section_header(self, buf: bytes | memoryview, off: int) -> bool:
        """Start a section at `off`; return its byte order."""
        if off + 12 > len(buf):
            raise Damage("truncated section header block")
        bom = bytes(buf[off + 8 : off + 12])
        if bom == BOM.to_bytes(4, "little"):
            big = False
        elif bom == BOM.to_bytes(4, "big"):
            big = True
        else:
            raise Damage(f"section header with a bad byte-order magic {bom.hex()}")
        self.section = _Section(big=big, base=len(self.interfaces))
        return big

    def walk(self, buf: bytes | memoryview, start: int) -> int:
        """Record packet blocks from `start`; return where the walk stopped.

        The per-block Python loop is the serial part of reading (a block's
        length says where the next starts); it only records offsets.
        """
        off = start
        end = len(buf)
        section = self.section
        unpack = struct.Struct(">II" if section and section.big else "<II").unpack_from
        tag = self._tag(section)
        offsets, kinds = self.offsets, self.kinds
        while off + 12 <= end:
            if self.native is not None and section is not None:
                off = self._scan(buf, off, end, section)
                if off + 12 > end:
                    break
            btype, blen = unpack(buf, off)
            if btype == SHB:
                big = self.section_header(buf, off)
                section = self.section
                unpack = struct.Struct(">II" if big else "<II").unpack_from
                btype, blen = unpack(buf, off)
                tag = -1
            elif section is None:
                raise Damage("pcapng block before the first section header")
            if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                raise Damage(f"block of type {btype:#x} with impossible length {blen}")
            if off + blen > end:
                break
            if btype in PACKET_BLOCKS:
                if tag < 0:
                    tag = self._tag(section)
                offsets.append(off)
                kinds.append(btype | tag)
            elif btype == IDB:
                assert section is not None
                _interface(bytes(buf[off : off + blen]), section, self.interfaces)
            off += blen
        return off

    def _scan(self, buf: bytes | memoryview, off: int, end: int, section: _Section) -> int:
        """Let the compiled scan record the packet blocks from `off`; return where it stopped.

        It stops at the blocks the loop of `walk` handles itself (section
        headers, interface descriptions, damage, the end of the buffer).
        """
        native = self.native
        assert native is not None
        cap = (end - off) // 12 + 1
        offsets, kinds = np.empty(cap, np.int64), np.empty(cap, np.int64)
        words = np.empty((cap, BLOCK_WORDS), np.int64)
        n, stop = native.scan(buf, off, end, section.big, self._tag(section), offsets, kinds,
                              words)
        if n:
            self.pieces.append((offsets[:n], kinds[:n], words[:n]))
        return int(stop)

    def _tag(self, section: _Section | None) -> int:
        """The section index of `section` in this batch, shifted past the block type."""
        if section is None:
            return -1
        if not self.sections or self.sections[-1] is not section:
            self.sections.append(section)
        return (len(self.sections) - 1) << 8

    def batch(self, data: np.ndarray) -> Batch:
        """Turn the packet blocks found into a batch over `data` (which ends with PAD
        zero bytes) and reset."""
        offs = np.concatenate([np.asarray(self.offsets, np.int64), *(p[0] for p in self.pieces)])
        tags = np.concatenate([np.asarray(self.kinds, np.int64), *(p[1] for p in self.pieces)])
        # the compiled scan read the block words; then it found every packet block
        words = np.concatenate([p[2] for p in self.pieces]) if self.pieces else None
        kinds, sec_index = tags & 0xFF, tags >> 8
        n = len(offs)
        caplen = np.zeros(n, np.int64)
        origlen = np.zeros(n, np.int64)
        time = np.zeros(n, np.float64)
        iface = np.zeros(n, np.int32)
        start = np.zeros(n, np.int64)
        for s, section in enumerate(self.sections):
            sel = np.flatnonzero(sec_index == s)
            w = _block_words(data, offs[sel], section.big) if words is None else words[sel]
            _fill(data, offs, kinds, sel, w, section, (caplen, origlen, time, iface, start))
        linktypes = np.array([i.linktype for i in self.interfaces] or [0], dtype=np.int32)
        batch = Batch(data, start, caplen, origlen, time, iface, linktypes[iface])
        self.offsets, self.kinds, self.pieces = [], [], []
        self.sections = self.sections[-1:]
        return batch


def _block_words(data: np.ndarray, offs: np.ndarray, big: bool) -> np.ndarray:
    """The first seven 32-bit words of each block at `offs`, as int64 (n x 7).

    One 28-byte gather per block: the blocks are scattered over the chunk, so
    touching each once is several times faster than a gather per field. The
    chunk's zero padding covers a short block at its end.
    """
    rows = np.lib.stride_tricks.as_strided(data, shape=(len(data) - BLOCK_WORDS * 4 + 1,
                                                        BLOCK_WORDS * 4), strides=(1, 1))
    return rows[offs].view(">u4" if big else "<u4").astype(np.int64)


def _fill(
    data: np.ndarray,
    offs: np.ndarray,
    kinds: np.ndarray,
    sel: np.ndarray,
    words: np.ndarray,
    section: _Section,
    out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Fill the per-packet columns for the blocks `sel` of one section (`words`: theirs)."""
    caplen, origlen, time, iface, start = out
    big = section.big
    o = offs[sel]
    k = kinds[sel]
    late = np.flatnonzero(o + BLOCK_WORDS * 4 > len(data) - PAD)
    if len(late):  # a block shorter than its fixed fields ends the batch: read as zeros after
        words[late] = _block_words(data, o[late], big)
    blen = words[:, 1]
    n_if = len(section.resol)
    epb, spb = k == EPB, k == SPB
    # EPB: if(4) ts_hi(4) ts_lo(4) caplen(4) len(4) data; OPB: if(2) drops(2) ...
    if_raw = np.where(epb, words[:, 2], 0)
    if big:
        opb_if = (data[o + 8].astype(np.int64) << 8) | data[o + 9]
    else:
        opb_if = (data[o + 9].astype(np.int64) << 8) | data[o + 8]
    if_local = np.where(k == OPB, opb_if, if_raw)
    if np.any(if_local >= n_if):
        raise Damage(f"packet block names interface {int(if_local.max())} of {n_if}")
    ts = (words[:, 3].astype(np.uint64) << np.uint64(32)) | words[:, 4].astype(np.uint64)
    cap, orig, spb_orig = words[:, 5], words[:, 6], words[:, 2]
    snap = np.asarray(section.snaplen or [0], dtype=np.int64)[if_local]
    spb_cap = np.minimum(spb_orig, blen - 16)
    spb_cap = np.where(snap > 0, np.minimum(spb_cap, snap), spb_cap)
    cap = np.where(spb, spb_cap, cap)
    orig = np.where(spb, spb_orig, orig)
    body = np.where(spb, 12, 28)
    if np.any(cap > blen - body - 4):
        raise Damage("packet block whose captured length exceeds the block")
    resol = np.asarray(section.resol or [1e-6])[if_local]
    tsoff = np.asarray(section.tsoffset or [0.0])[if_local]
    caplen[sel] = cap
    origlen[sel] = orig
    time[sel] = np.where(spb, 0.0, ts.astype(np.float64) * resol + tsoff)
    iface[sel] = section.base + if_local
    start[sel] = o + body


def walk(stream: Reader, chunk_bytes: int, interfaces: list[Interface]) -> Iterator[Batch]:
    """Yield batches of the pcapng file `stream`, appending its interfaces.

    Raises:
        Damage: a truncated or impossible block, or a bad section header.
    """
    walker = _Walker(interfaces)
    carry = np.zeros(0, np.uint8)
    while True:
        buf, size, got = read_chunk(stream, carry, chunk_bytes)
        try:
            end = walker.walk(buf.data[:size], 0)
        except Damage:
            if walker.found:
                yield walker.batch(buf[: size + PAD])
            raise
        carry = buf[end:size].copy()
        if walker.found:
            buf[end: end + PAD] = 0  # the carry was copied out; the batch ends at `end`
            yield walker.batch(buf[: end + PAD])
        if not got:
            if len(carry):
                raise Damage(f"truncated block at the end of the file ({len(carry)} bytes)")
            return
