"""Capture-wide counts, defined as tshark defines them.

Owns: `TOTALS_FIELDS` and `count`. Each count is the number of frames a
tshark display filter matches (see docs/analyze.md for the filters), so
tests can check them against tshark. TCP headers quoted inside ICMP errors
are not TCP packets here (tshark: `tcp && !icmp && !icmpv6`).
Must not: read files.
"""

from __future__ import annotations

import numpy as np

from netprobe.analysis.tcp import ACK, RST, SYN, TcpView
from netprobe.capture import decode

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


def count(cols: decode.Columns, tcp: TcpView) -> dict[str, int]:
    """Return the totals of `TOTALS_FIELDS` for decoded packets and their TCP view."""
    is_tcp = cols["tcp"]
    flags = cols["flags"]
    syn = is_tcp & ((flags & (SYN | ACK)) == SYN)
    synack = is_tcp & ((flags & (SYN | ACK)) == (SYN | ACK))
    retrans_rows = tcp.index[tcp.retransmission]
    proto, icmp_type = cols["proto"], cols["icmp_type"]
    unreachable = ((proto == decode.ICMP) & (icmp_type == 3)) | (
        (proto == decode.ICMPV6) & (icmp_type == 1)
    )
    return {
        "packets": len(flags),
        "tcp_syn": int(syn.sum()),
        "tcp_synack": int(synack.sum()),
        "tcp_rst": int((is_tcp & ((flags & RST) != 0)).sum()),
        "tcp_retransmissions": len(retrans_rows),
        "tcp_syn_retransmissions": int(syn[retrans_rows].sum()),
        "tls_client_hello": int((is_tcp & (cols["tls_hs"] == 1)).sum()),
        "tls_server_hello": int((is_tcp & (cols["tls_hs"] == 2)).sum()),
        "icmp_unreachable": int(unreachable.sum()),
        "tcp_streams": len(np.unique(tcp.stream)),
    }
