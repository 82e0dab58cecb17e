"""How packets are captured: the seam between netprobe and the capture tool.

Owns: the `Sniffer` and `CaptureBackend` protocols that the replay and the
capture agents use, and the default backend (tcpdump). A backend writes a
pcap file that the readers of this package understand; everything after the
file is the same whoever wrote it. Must not: parse packets.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Protocol


class Sniffer(Protocol):
    """One running capture; a context manager that starts it on entry."""

    path: Path

    def stop(self, grace: float = 0.0) -> None:
        """Waits GRACE seconds for late packets (RST, ICMP), then stops; safe to call twice."""

    def __enter__(self) -> Sniffer:
        """Starts capturing and returns once the filter is attached.

        Raises:
            MissingToolError, NotRootError, CaptureError.
        """

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Stops capturing; never leaves a process behind."""


class CaptureBackend(Protocol):
    """Makes sniffers."""

    def sniffer(self, path: Path, bpf: str, *, netns: str | None = None,
                interface: str = "any", snaplen: int = ...) -> Sniffer:
        """A sniffer writing the packets BPF selects on INTERFACE (in NETNS) to PATH."""


class Tcpdump:
    """The default backend: tcpdump, with the kernel filter attached before the first packet."""

    def sniffer(self, path: Path, bpf: str, *, netns: str | None = None,
                interface: str = "any", snaplen: int = 0) -> Sniffer:
        from netprobe.capture.tcpdump import SNAPLEN, TcpdumpCapture

        return TcpdumpCapture(path, bpf, netns=netns, interface=interface,
                              snaplen=snaplen or SNAPLEN)


TCPDUMP: CaptureBackend = Tcpdump()
