"""Classic pcap: the file header and the record walk.

Owns: both byte orders, micro- and nanosecond magics, masking the FCS bits of
the link-type word, and the checks that stop at an impossible record.
Must not: decode packet bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from netprobe.capture.records import Batch, Damage, Interface, padded, u32

__all__ = ["MAGICS", "Damage", "walk"]

# magic bytes as they appear in the file -> (big endian, nanosecond)
MAGICS: dict[bytes, tuple[bool, bool]] = {
    b"\xd4\xc3\xb2\xa1": (False, False),
    b"\xa1\xb2\xc3\xd4": (True, False),
    b"\x4d\x3c\xb2\xa1": (False, True),
    b"\xa1\xb2\x3c\x4d": (True, True),
}

HEADER_LEN = 24
RECORD_HEADER_LEN = 16
# libpcap and wiretap refuse records above this unless the snap length is larger.
MAX_CAPLEN = 262_144
# Bits 16 and up of the link-type word carry FCS information, not the type.
LINKTYPE_MASK = 0xFFFF


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


def _walk_records(buf: bytes, big: bool, maxcap: int) -> tuple[list[int], int, str]:
    """Return record offsets in `buf`, where the walk stopped, and damage or ''.

    This is the one per-record Python loop of the reader: each record's
    length decides where the next starts, so the walk is inherently serial;
    everything else is vectorized over the offsets it returns.
    """
    unpack = struct.Struct(">I" if big else "<I").unpack_from
    offsets: list[int] = []
    append = offsets.append
    off = 0
    end = len(buf)
    while off + RECORD_HEADER_LEN <= end:
        caplen = unpack(buf, off + 8)[0]
        if caplen > maxcap:
            return offsets, off, f"record of {caplen} bytes exceeds the snap length {maxcap}"
        nxt = off + RECORD_HEADER_LEN + caplen
        if nxt > end:
            break
        append(off)
        off = nxt
    return offsets, off, ""


def _batch(buf: bytes | memoryview, offsets: list[int], big: bool, nano: bool, linktype: int) -> Batch:
    data = padded(buf)
    offs = np.asarray(offsets, dtype=np.int64)
    sec = u32(data, offs, big).astype(np.float64)
    frac = u32(data, offs + 4, big).astype(np.float64)
    n = len(offs)
    return Batch(
        data=data,
        offset=offs + RECORD_HEADER_LEN,
        caplen=u32(data, offs + 8, big).astype(np.int64),
        origlen=u32(data, offs + 12, big).astype(np.int64),
        time=sec + frac * (1e-9 if nano else 1e-6),
        interface=np.zeros(n, dtype=np.int32),
        linktype=np.full(n, linktype, dtype=np.int32),
    )


def walk(stream: BinaryIO, chunk_bytes: int, interfaces: list[Interface]) -> Iterator[Batch]:
    """Yield batches of the pcap file `stream`, appending its one interface.

    Raises:
        Damage: a truncated header or record, or an impossible record length.
    """
    header = _read_exact(stream, HEADER_LEN)
    if len(header) < HEADER_LEN:
        raise Damage(f"truncated pcap file header ({len(header)} of {HEADER_LEN} bytes)")
    big, nano = MAGICS[header[:4]]
    snaplen, linkword = struct.unpack_from(">II" if big else "<II", header, 16)
    linktype = linkword & LINKTYPE_MASK
    interfaces.append(Interface(linktype=linktype))
    maxcap = max(snaplen, MAX_CAPLEN)
    carry = b""
    while True:
        data = stream.read(chunk_bytes)
        buf = carry + data if carry else data
        offsets, end, damage = _walk_records(buf, big, maxcap)
        if offsets:
            yield _batch(memoryview(buf)[:end], offsets, big, nano, linktype)
        if damage:
            raise Damage(damage)
        carry = buf[end:]
        if not data:
            if carry:
                raise Damage(f"truncated record at the end of the file ({len(carry)} bytes)")
            return
