"""Kernel capture filters (BPF, tcpdump's syntax) for the flows a trace follows.

Owns: what each vantage point captures. A replayed call is captured by what
NAT leaves recognisable: the socket's own port (before SNAT), and every
address the call can become (the ClusterIP:port before DNAT, each endpoint's
podIP:targetPort after it), since kube-proxy masquerades a host-network
client's call with a random source port. ICMP errors are captured whole:
they quote the flow after NAT, and the reader picks out the ones that quote
this call. Must not: start captures (a `backend.CaptureBackend` does) or read
them.
"""

from __future__ import annotations

ICMP_ERRORS = ("(icmp and (icmp[0] == 3 or icmp[0] == 11)) or "
               "(icmp6 and (ip6[40] == 1 or ip6[40] == 3))")
"""Destination unreachable and time exceeded, ICMP and ICMPv6 (without IPv6 extension headers)."""
EVERY_TCP = "tcp"
"""A ClusterIP call whose endpoints are unknown may go anywhere after DNAT: all TCP is kept
for the call's few seconds, and the reader picks the call's packets out."""


def _hosts(peers: list[tuple[str, int]]) -> str:
    return " or ".join(f"(host {ip} and port {port})" for ip, port in peers)


def call_filter(local_port: int, peers: list[tuple[str, int]], *,
                endpoints_known: bool = True) -> str:
    """BPF for one replayed call: LOCAL_PORT, or any of PEERS, and ICMP errors.

    PEERS are the dialled address and every address the Service's NAT may send the
    call to. Without ENDPOINTS_KNOWN (a ClusterIP whose endpoints nobody told), all TCP
    is kept: the call is seen whatever the node's NAT made of it.
    """
    if not endpoints_known:
        return f"{EVERY_TCP} or {ICMP_ERRORS}"
    terms = [f"port {local_port}"] + ([_hosts(peers)] if peers else [])
    return f"(tcp and ({' or '.join(terms)})) or {ICMP_ERRORS}"


def endpoints_filter(endpoints: list[tuple[str, int]]) -> str:
    """BPF for an endpoint's node: the connection after NAT (pod address and port), ICMP errors."""
    return f"(tcp and ({_hosts(endpoints)})) or {ICMP_ERRORS}"
