"""Capture-wide counts, defined as tshark defines them.

Owns: `TOTALS_FIELDS` and `count`. Each count is the number of frames a
tshark display filter matches (see docs/analyze.md for the filters), so
tests can check them against tshark. TCP headers quoted inside ICMP errors
are not TCP packets here (tshark: `tcp && !icmp && !icmpv6`).
Must not: read files.
"""

from __future__ import annotations

import numpy as np

from netprobe.capture import decode
from netprobe.core.packets import ACK, RST, SYN

TOTALS_FIELDS = (
    "packets",
    "tcp_syn",
    "tcp_synack",
    "tcp_rst",
    "tcp_retransmissions",
    "tcp_syn_retransmissions",
    "tls_client_hello",
    "tls_server_hello",
    "icmp_unreachable",
    "tcp_streams",
)


def count(packets: dict[str, np.ndarray]) -> dict[str, int]:
    """Return the totals of `TOTALS_FIELDS` for a packet table.

    The table holds the decoded columns plus `stream` (-1 for non-TCP) and
    `retransmission` (see `netprobe.analysis.pipeline.packet_table`).
    """
    is_tcp = packets["tcp"].astype(bool)
    flags = packets["flags"]
    syn = is_tcp & ((flags & (SYN | ACK)) == SYN)
    synack = is_tcp & ((flags & (SYN | ACK)) == (SYN | ACK))
    retrans = packets["retransmission"].astype(bool)
    proto, icmp_type = packets["proto"], packets["icmp_type"]
    unreachable = ((proto == decode.ICMP) & (icmp_type == 3)) | (
        (proto == decode.ICMPV6) & (icmp_type == 1)
    )
    streams = packets["stream"]
    return {
        "packets": len(flags),
        "tcp_syn": int(syn.sum()),
        "tcp_synack": int(synack.sum()),
        "tcp_rst": int((is_tcp & ((flags & RST) != 0)).sum()),
        "tcp_retransmissions": int(retrans.sum()),
        "tcp_syn_retransmissions": int((syn & retrans).sum()),
        "tls_client_hello": int((is_tcp & (packets["tls_hs"] == 1)).sum()),
        "tls_server_hello": int((is_tcp & (packets["tls_hs"] == 2)).sum()),
        "icmp_unreachable": int(unreachable.sum()),
        "tcp_streams": int(np.count_nonzero(np.bincount(streams[streams >= 0]))),
    }
