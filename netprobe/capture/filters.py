"""Kernel capture filters (BPF, tcpdump's syntax) for the flows a trace follows.

Owns: what each vantage point captures. A replayed call is captured by what
NAT leaves recognisable: the socket's own port (before SNAT), and every
address the call can become (the ClusterIP:port before DNAT, each endpoint's
podIP:targetPort after it), since kube-proxy masquerades a host-network
client's call with a random source port. ICMP errors are captured whole:
they quote the flow after NAT, and the reader picks out the ones that quote
this call. On a node whose pods talk over a VXLAN overlay (Flannel, Calico,
Cilium) the same call also crosses the NIC inside UDP 8472 or 4789: those
datagrams are kept when the inner packet's address is one of the call's.
Must not: start captures (a `backend.CaptureBackend` does) or read
them.
"""

from __future__ import annotations

ICMP_ERRORS = ("(icmp and (icmp[0] == 3 or icmp[0] == 11)) or "
               "(icmp6 and (ip6[40] == 1 or ip6[40] == 3))")
"""Destination unreachable and time exceeded, ICMP and ICMPv6 (without IPv6 extension headers)."""
EVERY_TCP = "tcp"
"""A ClusterIP call whose endpoints are unknown may go anywhere after DNAT: all TCP is kept
for the call's few seconds, and the reader picks the call's packets out."""


VXLAN_PORTS = (4789, 8472)
"""IANA's VXLAN port, and the Linux kernel's default (Flannel's)."""
INNER_IPV4 = 8 + 8 + 14
"""Offset of a VXLAN datagram's inner IPv4 header from the UDP header: UDP 8, VXLAN 8,
inner Ethernet 14 (no VLAN tag)."""


def _hosts(peers: list[tuple[str, int]]) -> str:
    return " or ".join(f"(host {ip} and port {port})" for ip, port in peers)


def _encapsulated(peers: list[tuple[str, int]]) -> str | None:
    """VXLAN datagrams whose inner IPv4 source or destination is one of PEERS' addresses."""
    words = sorted({word for ip, _ in peers if (word := _ipv4_word(ip)) is not None})
    if not words:
        return None
    ports = " or ".join(f"udp port {port}" for port in VXLAN_PORTS)
    inner = " or ".join(f"udp[{INNER_IPV4 + 12}:4] == {w} or udp[{INNER_IPV4 + 16}:4] == {w}"
                        for w in words)
    return f"(ip and udp and ({ports}) and ({inner}))"


def _ipv4_word(address: str) -> str | None:
    parts = address.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        return None
    return "0x" + "".join(f"{int(p):02x}" for p in parts)


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
    tunnelled = _encapsulated(peers)
    return (f"(tcp and ({' or '.join(terms)})) or {ICMP_ERRORS}"
            + (f" or {tunnelled}" if tunnelled else ""))


def endpoints_filter(endpoints: list[tuple[str, int]]) -> str:
    """BPF for an endpoint's node: the connection after NAT (pod address and port), ICMP errors,
    and the connection inside VXLAN. Without ENDPOINTS, all TCP (as for unknown ones)."""
    if not endpoints:
        return f"{EVERY_TCP} or {ICMP_ERRORS}"
    tunnelled = _encapsulated(endpoints)
    return (f"(tcp and ({_hosts(endpoints)})) or {ICMP_ERRORS}"
            + (f" or {tunnelled}" if tunnelled else ""))
