"""What the machine must have: root, and the system programs netprobe runs.

Owns: the tool -> Debian package map, the root check, and the one helper
that runs a system program and maps its failure to a `NetprobeError`.
Must not: install anything (the Makefile does) or decide about the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from netprobe.core import errors

PACKAGES = {
    "ip": "iproute2",
    "iptables-restore": "iptables",
    "iptables": "iptables",
    "tcpdump": "tcpdump",
    "tshark": "tshark",
    "nft": "nftables",
    "conntrack": "conntrack",
}
"""System program -> the Debian/Ubuntu package that provides it."""


def require_root(doing: str) -> None:
    """Raises NotRootError unless running as root (needed for network namespaces)."""
    if os.geteuid() != 0:
        raise errors.NotRootError(
            f"{doing}: needs root (network namespaces, iptables and raw capture); "
            "run it with sudo"
        )


def require_tools(*tools: str) -> None:
    """Raises MissingToolError naming the package of the first missing TOOL."""
    for tool in tools:
        if shutil.which(tool) is None:
            raise errors.MissingToolError(tool, PACKAGES.get(tool, tool))


def run(args: Sequence[str], *, doing: str, stdin: str | None = None,
        error: type[errors.NetprobeError] = errors.NetprobeError) -> str:
    """Runs a system program and returns its standard output.

    Raises:
        ERROR: the program failed; the message carries its standard error.
    """
    try:
        done = subprocess.run(list(args), input=stdin, capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        raise errors.MissingToolError(args[0], PACKAGES.get(args[0], args[0])) from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise error(f"{doing}: {args[0]} failed: {detail[-1] if detail else done.returncode}")
    return done.stdout


def process_alive(pid: int) -> bool:
    """True if PID runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
