"""Capturing one flow with tcpdump inside a network namespace.

Owns: starting tcpdump with a kernel BPF filter (no Python-side filtering),
waiting until the filter is attached, stopping it after a grace period and
making sure it never outlives the capture (also on errors and Ctrl-C).
The file is created mode 0600 before tcpdump opens it (tcpdump keeps the
mode of an existing file). Must not: parse packets (packets.py does).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from netprobe.core import errors

SNAPLEN = 1024
"""Headers plus a whole ClientHello (SNI, ALPN: what Wireshark users look for) and
the ServerHello's start; certificates come from the TLS client, not the wire."""

START_TIMEOUT = 10.0


class TcpdumpCapture:
    """A running tcpdump; use as a context manager."""

    def __init__(self, path: Path, bpf: str, *, netns: str | None = None,
                 interface: str = "any", snaplen: int = SNAPLEN) -> None:
        self.path = path
        self._args = ["tcpdump", "-i", interface, "-n", "-U", "--immediate-mode", "-Z", "root",
                      "-s", str(snaplen), "-w", str(path), bpf]
        if netns:
            self._args = ["ip", "netns", "exec", netns, *self._args]
        self._child: subprocess.Popen[str] | None = None
        self.netns = netns

    def start(self) -> None:
        """Starts tcpdump and returns once its filter is attached.

        Raises:
            MissingToolError: tcpdump is not installed.
            NotRootError: no permission to capture.
            CaptureError: tcpdump failed to start.
        """
        if shutil.which("tcpdump") is None:
            raise errors.MissingToolError("tcpdump", "tcpdump")
        if os.geteuid() != 0:
            raise errors.NotRootError("capturing packets: needs root (CAP_NET_RAW); run with "
                                      "sudo, or pass --no-capture")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        self._child = subprocess.Popen(self._args, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       text=True)
        assert self._child.stderr is not None
        seen = []
        for line in self._child.stderr:  # tcpdump says "listening on" once the filter is attached
            seen.append(line)
            if "listening on" in line:
                return
        rest = self._stop(kill=True)
        said = (''.join(seen) + rest).strip() or 'no output'
        raise errors.CaptureError(f"starting tcpdump: {said}")

    def _stop(self, kill: bool = False) -> str:
        child, self._child = self._child, None
        if child is None:
            return ""
        if child.poll() is None:
            child.send_signal(signal.SIGKILL if kill else signal.SIGINT)
        try:
            _, err = child.communicate(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            _, err = child.communicate()
        return err or ""

    def stop(self, grace: float = 0.0) -> None:
        """Waits GRACE seconds for late packets (RST, ICMP), then stops tcpdump."""
        if grace > 0 and self._child is not None:
            time.sleep(grace)  # a capture window, not a wait for a condition
        self._stop()

    def __enter__(self) -> TcpdumpCapture:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop(kill=kind is not None and not issubclass(kind, Exception))
