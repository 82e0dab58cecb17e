"""The only code that opens probe sockets.

Owns: creating the replay's TCP socket inside a named network namespace
(the socket keeps that namespace for its life), binding it first so its
local port is known before the SYN (the capture filter needs it), the
non-blocking connect, and the kernel's own view of the connection
(TCP_INFO: SYN retransmissions, unacknowledged bytes). Must not: decide.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from dataclasses import dataclass

from netprobe.host import nsenter

_TCP_INFO_LEN = 104


@dataclass(frozen=True)
class TcpInfo:
    """The kernel's state of a TCP socket (a subset of `struct tcp_info`)."""

    state: int
    retransmits: int
    """Consecutive unanswered retransmissions (SYN or data)."""
    unacked: int
    """Segments sent and not yet acknowledged."""
    total_retrans: int


def open_socket(netns: str | None, address: str) -> socket.socket:
    """Returns a non-blocking TCP socket in NETNS, bound to an ephemeral port."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    with nsenter.entered(netns):
        sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
    except OSError:
        sock.close()
        raise
    return sock


def start_connect(sock: socket.socket, address: str, port: int) -> int:
    """Starts the handshake; returns 0 or EINPROGRESS, else the errno of the failure."""
    code = sock.connect_ex((address, port))
    return errno.EINPROGRESS if code == errno.EINPROGRESS else code


def pending_error(sock: socket.socket) -> int:
    """The errno a finished connect ended with (0: connected)."""
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


def tcp_info(sock: socket.socket) -> TcpInfo:
    """Reads TCP_INFO."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    state, _ca, retransmits = struct.unpack_from("BBB", raw, 0)
    unacked = struct.unpack_from("I", raw, 24)[0]
    total = struct.unpack_from("I", raw, 100)[0] if len(raw) >= 104 else 0
    return TcpInfo(state, retransmits, unacked, total)


def resolve(netns: str | None, host: str) -> str | None:
    """Looks HOST up with the namespace's resolver; None if it does not resolve."""
    try:
        with nsenter.entered(netns):
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return None
    return str(infos[0][4][0]) if infos else None


def local_addresses(netns: str | None) -> dict[int, str]:
    """Interface index -> name in NETNS (to name the interfaces of an `any` capture)."""
    with nsenter.entered(netns):
        return dict(socket.if_nameindex())


def on_link(netns: str | None, address: str) -> bool | None:
    """True if ADDRESS is zero hops away from NETNS: on a directly connected network (no
    gateway), or one of its own addresses (a hostNetwork endpoint on this node).

    None when the route cannot be read.
    """
    import subprocess  # the route lookup is a system call of its own kind

    args = ["ip"] + (["-n", netns] if netns else []) + ["route", "get", address]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return " via " not in f" {done.stdout} "
