"""Asking the kernel's connection tracker what NAT made of a connection.

Owns: one ctnetlink GET (through pyroute2, inside a named network namespace)
that turns a socket's own tuple (local address -> the address it dialled) into
the tuple the wire carries after the node's DNAT (kube-proxy's Service NAT)
and SNAT (kube-proxy's masquerade, `--random-fully` included). Must not:
change conntrack's table, or fail the caller: no entry, no permission, no
`nf_conntrack` or no pyroute2 all mean "unknown" (None).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from netprobe.host import nsenter


@dataclass(frozen=True)
class Translation:
    """A connection as the wire carries it (conntrack's reply tuple, turned around)."""

    source: tuple[str, int]
    """The client after SNAT: the address and port the server sees."""
    destination: tuple[str, int]
    """The server after DNAT: the endpoint the connection really goes to."""


def translated(netns: str | None, local: tuple[str, int], remote: tuple[str, int],
               protocol: int = socket.IPPROTO_TCP) -> Translation | None:
    """What conntrack in NETNS says the connection LOCAL -> REMOTE is on the wire.

    Returns None when conntrack has no such entry (nothing was sent, or the SYN was
    rejected before conntrack confirmed it) or cannot be asked.
    """
    try:
        from pyroute2 import Conntrack
        from pyroute2.netlink.exceptions import NetlinkError
        from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple
    except ImportError:
        return None
    family = socket.AF_INET6 if ":" in local[0] else socket.AF_INET
    wanted = NFCTAttrTuple(family=family, saddr=local[0], daddr=remote[0], proto=protocol,
                           sport=local[1], dport=remote[1])
    try:
        with nsenter.entered(netns):  # the netlink socket belongs to the namespace it opens in
            tracker = Conntrack()
            try:
                entry = tracker.entry("get", tuple_orig=wanted)
            finally:
                tracker.close()
    except (NetlinkError, OSError):
        return None
    return _reply(entry, family)


def _reply(entry: object, family: int) -> Translation | None:
    get = getattr(entry, "get_attr", None)
    reply = get("CTA_TUPLE_REPLY") if get else None
    if reply is None:
        return None
    version = "V6" if family == socket.AF_INET6 else "V4"
    addresses = reply.get_attr("CTA_TUPLE_IP")
    ports = reply.get_attr("CTA_TUPLE_PROTO")
    server = (str(addresses.get_attr(f"CTA_IP_{version}_SRC")),
              int(ports.get_attr("CTA_PROTO_SRC_PORT")))
    client = (str(addresses.get_attr(f"CTA_IP_{version}_DST")),
              int(ports.get_attr("CTA_PROTO_DST_PORT")))
    return Translation(source=client, destination=server)
