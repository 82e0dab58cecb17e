"""Facts of the wire that every layer reads packets by.

Owns: TCP flag bits, the TTLs hosts start packets with, and how addresses are
written and told apart. Must not: import anything outside the standard library.
"""

from __future__ import annotations

import ipaddress

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
"""TCP flag bits (RFC 9293)."""

INITIAL_TTLS = (64, 128, 255)
"""What hosts and routers start TTLs at; a packet arriving with exactly one of
these was made on the local link, not routed."""


def ip_version(text: str | None) -> int | None:
    """4 or 6 when TEXT is an IP address (unbracketed), else None (a name, empty, None)."""
    try:
        return ipaddress.ip_address(text or "").version
    except ValueError:
        return None


def join_address(ip: str, port: int) -> str:
    """`IP:PORT`, or `[IPv6]:PORT` as Go and URLs write it."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def split_address(address: str) -> tuple[str, int]:
    """`IP:PORT` or `[IPv6]:PORT` -> (IP, PORT)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)
