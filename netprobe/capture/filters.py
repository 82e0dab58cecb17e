"""Kernel capture filters (BPF, tcpdump's syntax) for the flows a trace follows.

Owns: what each vantage point captures. Must not: start captures (a
`backend.CaptureBackend` does) or read them.
"""

from __future__ import annotations


def flow_filter(local_port: int) -> str:
    """BPF for the replayed flow: its TCP segments and ICMP errors quoting it.

    An ICMP error quotes the original IP header (20 bytes without options)
    and the first 8 bytes of TCP: the source port sits at icmp[28:2].
    """
    return (f"(tcp port {local_port}) or "
            f"(icmp and (icmp[0] == 3 or icmp[0] == 11) and icmp[28:2] == {local_port}) or "
            f"(icmp6 and ip6[40] == 1)")


def endpoints_filter(endpoints: list[tuple[str, int]]) -> str:
    """BPF for a worker: the connection after NAT (pod address and port) and ICMP errors."""
    hosts = " or ".join(f"(host {ip} and port {port})" for ip, port in endpoints)
    return f"(tcp and ({hosts})) or (icmp and icmp[0] == 3) or (icmp6 and ip6[40] == 1)"
