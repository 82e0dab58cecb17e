"""Writing pcapng: several captures in one file, every interface named, comments on packets.

Owns: the block layout (a Section Header Block carrying the diagnosis as
section comments, one Interface Description Block per vantage-point
interface, Enhanced Packet Blocks with `opt_comment`s), and the merge of the
sources by time. Packets are streamed: memory stays at one reader chunk per
source, whatever the size of the captures.
Must not: decide what a comment says (`netprobe.annotate` does), or decode
protocols.

Interfaces: a Linux "any" capture (tcpdump `-i any`, link type SLL2) holds
every interface of a node in one pcap; its packets carry the interface
index. Each (source, interface index) becomes its own IDB named
`VANTAGE/IFNAME` (`worker-1/npeth0`; `VANTAGE/ifN` when the name is not
known), so Wireshark's `frame.interface_name` says where each copy of a
packet was seen. Other link types get one IDB per source interface.

Link type: packets are written byte for byte, with the link type they were
captured with; SLL2 is kept rather than stripped to the inner IP packet.
Wireshark decodes SLL2 completely, and its packet type field ("Sent by us",
"Unicast to us") is the direction of the packet at that hop, which raw IP
would lose; unchanged bytes also mean every dissector (and tshark's
packet count) sees exactly what tcpdump saw.

Timestamps: written with the resolution of the source interface
(microseconds for pcap, `if_tsresol` for pcapng). They come from netprobe's
float seconds, which are exact to the microsecond at today's epoch;
nanosecond sources keep about 0.25 microsecond.
"""

from __future__ import annotations

import heapq
import math
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from netprobe.capture import formats, linklayer
from netprobe.capture.records import Batch, Interface, u32be
from netprobe.core import errors

SHB_TYPE, IDB_TYPE, EPB_TYPE = 0x0A0D0D0A, 1, 6
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_END, OPT_COMMENT = 0, 1
IF_NAME, IF_DESCRIPTION, IF_TSRESOL = 2, 3, 9
SHB_USERAPPL = 4
MAX_OPTION = 65532  # an option's length is 16 bits; keep the padded length in range
NO_IFINDEX = -1


@dataclass(frozen=True)
class Source:
    """One capture file to include, and what to say about it."""

    path: Path
    vantage: str
    """Where it was captured (a node name); the prefix of its interface names."""
    ifnames: Mapping[int, str] = field(default_factory=dict)
    """SLL2 interface index -> interface name on that node."""
    descriptions: Mapping[int, str] = field(default_factory=dict)
    """SLL2 interface index -> what this interface is on the path (`if_description`)."""
    comments: Mapping[int, Sequence[str]] = field(default_factory=dict)
    """Packet number in the file (0-based, file order) -> comments for it."""


@dataclass(frozen=True)
class Written:
    """What `write_pcapng` wrote."""

    packets: int
    interfaces: tuple[str, ...]
    """The if_name of every interface block, in order."""
    comments: int
    """Packet comments written."""
    damage: tuple[str, ...] = ()
    """Why a source stopped early (what was read before the damage is written)."""


def _option(code: int, value: bytes) -> bytes:
    value = value[:MAX_OPTION]
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def section_header(comments: Sequence[str]) -> bytes:
    """An SHB (little endian, unknown section length) with the comments and our name."""
    options = b"".join(_option(OPT_COMMENT, c.encode()) for c in comments if c)
    options += _option(SHB_USERAPPL, b"netprobe") + _option(OPT_END, b"")
    return _block(SHB_TYPE, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + options)


def _tsresol_code(seconds: float) -> int:
    """The if_tsresol byte for a power-of-ten tick, else nanoseconds."""
    exponent = -math.log10(seconds) if seconds > 0 else 9
    return int(round(exponent)) if abs(exponent - round(exponent)) < 1e-9 else 9


def interface_block(linktype: int, name: str, description: str, tsresol_code: int) -> bytes:
    """An IDB: no snap length limit, the name, the description and the resolution."""
    options = _option(IF_NAME, name.encode()) + _option(IF_TSRESOL, bytes([tsresol_code]))
    if description:
        options += _option(IF_DESCRIPTION, description.encode())
    return _block(IDB_TYPE, struct.pack("<HHI", linktype, 0, 0) + options + _option(OPT_END, b""))


def packet_block(interface: int, ticks: int, data: bytes, origlen: int,
                 comments: Sequence[str] = ()) -> bytes:
    """An EPB with one `opt_comment` per comment."""
    options = b"".join(_option(OPT_COMMENT, c.encode()) for c in comments)
    if options:
        options += _option(OPT_END, b"")
    head = struct.pack("<IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), origlen)
    return _block(EPB_TYPE, head + data + b"\0" * (-len(data) % 4) + options)


@dataclass(frozen=True, slots=True)
class _Packet:
    time: float
    source: int
    row: int
    interface: int
    """Index into the source reader's interface list."""
    ifindex: int
    data: bytes
    origlen: int


def _sll2_ifindex(batch: Batch) -> np.ndarray:
    """The SLL2 interface index of each packet, NO_IFINDEX for other link types."""
    sll2 = (batch.linktype == linklayer.SLL2) & (batch.caplen >= 20)
    out = np.full(len(batch), NO_IFINDEX, np.int64)
    if sll2.any():
        out[sll2] = u32be(batch.data, batch.offset[sll2] + 4).astype(np.int64)
    return out


def _packets(reader: formats.CaptureFile, source: int) -> Iterator[_Packet]:
    row = 0
    for batch in reader:
        ifindex = _sll2_ifindex(batch).tolist()
        times = batch.time.tolist()
        offsets, caplens = batch.offset.tolist(), batch.caplen.tolist()
        origlens, interfaces = batch.origlen.tolist(), batch.interface.tolist()
        raw = batch.data.tobytes() if len(batch) else b""
        for i in range(len(batch)):
            yield _Packet(times[i], source, row, interfaces[i], ifindex[i],
                          raw[offsets[i]: offsets[i] + caplens[i]], origlens[i])
            row += 1


class _Interfaces:
    """Output interface ids, allocated (and their IDBs written) on first use."""

    def __init__(self, out: BinaryIO, sources: Sequence[Source],
                 readers: Sequence[formats.CaptureFile]) -> None:
        self.out, self.sources, self.readers = out, sources, readers
        self.ids: dict[tuple[int, int, int], int] = {}
        self.names: list[str] = []
        self.by_name: dict[tuple[str, int, int], int] = {}
        self.resolution: list[float] = []

    def id_for(self, packet: _Packet) -> int:
        key = (packet.source, packet.interface, packet.ifindex)
        found = self.ids.get(key)
        if found is not None:
            return found
        source = self.sources[packet.source]
        iface: Interface = self.readers[packet.source].interfaces[packet.interface]
        if packet.ifindex != NO_IFINDEX:
            local = source.ifnames.get(packet.ifindex) or f"if{packet.ifindex}"
            description = source.descriptions.get(packet.ifindex, "")
        else:
            local = iface.name or f"if{packet.interface}"
            description = ""
        name = f"{source.vantage}/{local}" if source.vantage else local
        code = _tsresol_code(iface.tsresol)
        same = self.by_name.get((name, iface.linktype, code))
        if same is not None:  # one interface captured in two files (two replays from one node)
            self.ids[key] = same
            return same
        self.by_name[(name, iface.linktype, code)] = len(self.names)
        self.out.write(interface_block(iface.linktype, name, description, code))
        self.ids[key] = len(self.names)
        self.names.append(name)
        self.resolution.append(10.0 ** -code)
        return self.ids[key]


def write_pcapng(path: str | Path, sources: Sequence[Source],
                 section_comments: Sequence[str] = ()) -> Written:
    """Write the packets of every source into one pcapng at `path`, merged by time.

    Packets keep their file order within a source; across sources the
    earlier packet comes first (ties: the earlier source).

    Returns:
        `Written`: packets, interface names and comments written.

    Raises:
        CaptureFormatError: a source cannot be read (a source damaged after
            some packets contributes those packets).
        UsageError: `path` cannot be written.
    """
    readers = [formats.CaptureFile(s.path) for s in sources]
    target = Path(path)
    try:
        out = target.open("wb")
    except OSError as exc:
        raise errors.UsageError(f"writing {target}: {exc.strerror or exc}") from None
    with out:
        try:
            return _write(out, sources, readers, section_comments)
        except OSError as exc:
            raise errors.UsageError(f"writing {target}: {exc.strerror or exc}") from None


def _write(out: BinaryIO, sources: Sequence[Source], readers: Sequence[formats.CaptureFile],
           section_comments: Sequence[str]) -> Written:
    out.write(section_header(section_comments))
    interfaces = _Interfaces(out, sources, readers)
    damage: list[str] = []
    streams = [_tolerant(reader, index, damage) for index, reader in enumerate(readers)]
    packets = comments = 0
    for packet in heapq.merge(*streams, key=lambda p: p.time):
        interface = interfaces.id_for(packet)
        notes = sources[packet.source].comments.get(packet.row, ())
        ticks = int(round(packet.time / interfaces.resolution[interface]))
        out.write(packet_block(interface, ticks, packet.data, packet.origlen, notes))
        packets += 1
        comments += len(notes)
    return Written(packets, tuple(interfaces.names), comments, tuple(damage))


def _tolerant(reader: formats.CaptureFile, index: int, damage: list[str]) -> Iterator[_Packet]:
    """The packets of one source up to any damage, which is noted in `damage`.

    As in `netprobe.analysis.load`, a file that is not a capture at all, or
    broken before its first interface, raises.
    """
    try:
        yield from _packets(reader, index)
    except errors.CaptureFormatError as exc:
        if reader.container is None or not reader.interfaces:
            raise
        damage.append(str(exc))
