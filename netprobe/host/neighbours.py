"""Asking the kernel's neighbour table (ARP, NDP) whether an address answers.

Owns: one RTM_GETNEIGH dump (through pyroute2, inside a named network namespace)
turned into {address: state} for the addresses asked about (`incomplete`,
`reachable`, `stale`, `delay`, `probe`, `failed`...). A node whose entry for a
pod IP is `incomplete` or `failed` is asking ARP/ND and nobody answers: the pod
is gone. Must not: change the table, or fail the caller: no permission, no
pyroute2 or an address without an entry all mean "unknown" (left out).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from netprobe.host import nsenter

UNRESOLVED = frozenset({"incomplete", "failed"})
"""States of an address nobody answers ARP/ND for."""


def prepare() -> None:
    """Loads the netlink library now (e.g. while a capture waits), not when asked."""
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        pass


def _canonical(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


def states(addresses: Iterable[str], netns: str | None = None) -> dict[str, str]:
    """{address: neighbour state} in NETNS, for those of ADDRESSES that have an entry (ARP's
    for IPv4, NDP's for IPv6: one dump of both families; addresses compared in their
    canonical spelling, the key is the one asked)."""
    wanted = {_canonical(address): address for address in addresses}
    if not wanted:
        return {}
    try:
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError
        from pyroute2.netlink.rtnl import ndmsg
    except ImportError:
        return {}
    names = {value: name.removeprefix("NUD_").lower() for name, value in ndmsg.NUD_NAMES.items()}
    found: dict[str, str] = {}
    try:
        with nsenter.entered(netns), IPRoute() as route:
            for message in route.get_neighbours():
                asked = wanted.get(_canonical(str(message.get_attr("NDA_DST"))))
                if asked is not None:
                    state = int(message["state"])
                    found[asked] = names.get(state, f"0x{state:x}")
    except (NetlinkError, OSError):
        return {}
    return found
