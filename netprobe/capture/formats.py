"""Opening capture files: decompression and container detection.

Owns: sniffing the first bytes of a file (never its extension) to pick the
decompressor (gzip, zstd) and the container (pcap, pcapng), and
`iter_batches`, the one entry point that walks any supported file.
Must not: decode protocols.
"""

from __future__ import annotations

import enum
import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from netprobe.capture import pcap, pcapng
from netprobe.capture.records import Batch, Interface
from netprobe.core import errors

CHUNK_BYTES = 16 * 1024 * 1024

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Container(enum.Enum):
    """The capture container formats netprobe reads."""

    PCAP = "pcap"
    PCAPNG = "pcapng"


def detect(head: bytes) -> Container:
    """Return the container whose magic starts `head`.

    Raises:
        CaptureFormatError: `head` is empty or starts with no known magic.
    """
    if not head:
        raise errors.CaptureFormatError("reading capture: the file is empty")
    if head[:4] in pcap.MAGICS:
        return Container.PCAP
    if head[:4] == pcapng.SHB_MAGIC:
        return Container.PCAPNG
    raise errors.CaptureFormatError(
        f"reading capture: not a pcap or pcapng file (starts with {head[:4].hex()})"
    )


def _decompressed(raw: BinaryIO, path: Path) -> BinaryIO:
    """Wrap `raw` in a decompressor if its first bytes say it is compressed."""
    head = raw.read(4)
    raw.seek(0)
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if head == ZSTD_MAGIC:
        return _zstd_reader(raw, path)
    return raw


def _zstd_reader(raw: BinaryIO, path: Path) -> BinaryIO:
    """A zstd stream: Python 3.14's compression.zstd, else the zstandard package (the
    `netprobe[zstd]` extra)."""
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python >= 3.14
    except ImportError:
        pass
    else:
        return zstd.ZstdFile(raw, mode="rb")
    try:
        import zstandard
    except ImportError:
        raise errors.CaptureFormatError(
            f"reading {path}: zstd-compressed; install netprobe[zstd] (pip install "
            "'netprobe[zstd]', the zstandard package) or decompress it first (zstd -d)"
        ) from None
    return zstandard.ZstdDecompressor().stream_reader(raw)


class CaptureFile:
    """A capture file being read chunk by chunk.

    Iterating yields `Batch`es; `interfaces` grows as pcapng IDBs are read.
    Damage found after some packets were read raises `CaptureFormatError`
    from the iterator once the good batches were yielded; `packets` tells
    how many records were read before it.
    """

    def __init__(self, path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path = Path(path)
        self.chunk_bytes = chunk_bytes
        self.interfaces: list[Interface] = []
        self.packets = 0
        self.container: Container | None = None

    def __iter__(self) -> Iterator[Batch]:
        try:
            raw = self.path.open("rb")
        except OSError as exc:
            raise errors.CaptureFormatError(
                f"opening {self.path}: {exc.strerror or exc}"
            ) from exc
        with raw:
            stream = _decompressed(raw, self.path)
            try:
                yield from self._walk(stream)
            except (OSError, EOFError, zlib.error) as exc:
                raise errors.CaptureFormatError(
                    f"reading {self.path}: corrupt compressed data after "
                    f"{self.packets} packets ({exc})"
                ) from exc

    def _walk(self, stream: BinaryIO) -> Iterator[Batch]:
        head = stream.read(4)
        try:
            self.container = detect(head)
        except errors.CaptureFormatError as exc:
            raise errors.CaptureFormatError(
                f"{exc}".replace("capture", str(self.path), 1)) from None
        walker = pcap.walk if self.container is Container.PCAP else pcapng.walk
        try:
            for batch in walker(_Prefixed(head, stream), self.chunk_bytes, self.interfaces):
                self.packets += len(batch)
                yield batch
        except pcap.Damage as exc:
            raise errors.CaptureFormatError(
                f"reading {self.path}: {exc} (after {self.packets} packets)"
            ) from None


class _Prefixed(io.RawIOBase):
    """A stream that first returns bytes already read from another stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            head, self._head = self._head, b""
            return head + self._rest.read()
        head, self._head = self._head[:size], self._head[size:]
        return head + self._rest.read(size - len(head)) if size > len(head) else head

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, view: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return self._rest.readinto(view)  # type: ignore[attr-defined]


def iter_batches(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Batch]:
    """Yield the record batches of the capture at `path`.

    Raises:
        CaptureFormatError: the file is missing, empty, not a capture, or damaged.
    """
    yield from CaptureFile(path, chunk_bytes)
