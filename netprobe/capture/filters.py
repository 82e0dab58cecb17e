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

import ipaddress

from netprobe.core.packets import ip_version

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


INNER_IPV6 = 40 + 8 + 8 + 14
"""Offset of the inner IPv6 header of a VXLAN datagram carried over IPv6 (as flannel-v6.1
carries it) from the outer IPv6 header: no extension headers, no VLAN tag."""


def _encapsulated(peers: list[tuple[str, int]]) -> str | None:
    """VXLAN datagrams whose inner source or destination is one of PEERS' addresses: IPv4
    inside IPv4, IPv6 inside IPv6 (libpcap reads no `udp[]` over IPv6: `ip6[]` offsets)."""
    addresses = {ipaddress.ip_address(ip) for ip, _ in peers if ip_version(ip)}
    ports = " or ".join(f"udp port {port}" for port in VXLAN_PORTS)
    terms = []
    v4 = sorted(a for a in addresses if a.version == 4)
    if v4:
        inner = " or ".join(f"udp[{INNER_IPV4 + 12}:4] == {_word(a.packed)} or "
                            f"udp[{INNER_IPV4 + 16}:4] == {_word(a.packed)}" for a in v4)
        terms.append(f"(ip and udp and ({ports}) and ({inner}))")
    v6 = sorted(a for a in addresses if a.version == 6)
    if v6:
        inner = " or ".join(f"({_ip6_equals(INNER_IPV6 + 8, a)}) or "
                            f"({_ip6_equals(INNER_IPV6 + 24, a)})" for a in v6)
        terms.append(f"(ip6 and udp and ({ports}) and ({inner}))")
    return " or ".join(terms) or None


def _ip6_equals(offset: int, address: ipaddress.IPv6Address | ipaddress.IPv4Address) -> str:
    packed = address.packed
    return " and ".join(f"ip6[{offset + i}:4] == {_word(packed[i:i + 4])}" for i in (0, 4, 8, 12))


def _word(four: bytes) -> str:
    return "0x" + four.hex()


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
