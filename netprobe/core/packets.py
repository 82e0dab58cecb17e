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
