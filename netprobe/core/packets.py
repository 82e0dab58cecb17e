"""Facts of the wire that every layer reads packets by.

Owns: TCP flag bits and the TTLs hosts start packets with. Must not: import
anything outside the standard library.
"""

from __future__ import annotations

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
"""TCP flag bits (RFC 9293)."""

INITIAL_TTLS = (64, 128, 255)
"""What hosts and routers start TTLs at; a packet arriving with exactly one of
these was made on the local link, not routed."""


def join_address(ip: str, port: int) -> str:
    """`IP:PORT`, or `[IPv6]:PORT` as Go and URLs write it."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def split_address(address: str) -> tuple[str, int]:
    """`IP:PORT` or `[IPv6]:PORT` -> (IP, PORT)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)
