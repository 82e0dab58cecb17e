"""Following the replayed connection across vantage points, through NAT.

Owns: finding the replay's connection in every capture by its initial
sequence number (and TCP timestamp), which DNAT and SNAT leave alone, and
deciding per hop: seen, not seen, answered, refused (by whom), dropped.
Must not: read files or classify the failure (classify.py names it; this
module says where it happened).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from netprobe.core.packets import ACK, RST, SYN, join_address

MASK32 = 0xFFFFFFFF


@dataclass(frozen=True)
class FlowKey:
    """What identifies the replayed connection on any wire."""

    isn: int
    tsval: int | None = None


@dataclass(frozen=True)
class Encapsulation:
    """The overlay tunnel a capture saw the SYN in (VXLAN, Geneve, GRE, IP-in-IP)."""

    kind: str
    outer_source: str
    """The sending node's address (the outer packet's source)."""
    outer_destination: str
    vni: int | None
    """The VXLAN/Geneve VNI or GRE key."""
    interface: str
    """Where it was captured encapsulated (the node's NIC)."""

    def __str__(self) -> str:
        vni = f" VNI {self.vni}" if self.vni is not None else ""
        return f"{self.kind.upper()}{vni} {self.outer_source} -> {self.outer_destination}"


@dataclass(frozen=True)
class Sighting:
    """What one node's capture shows of the connection."""

    syn_interfaces: tuple[str, ...] = ()
    """Interfaces the SYN crossed, in the order it crossed them."""
    syn_count: int = 0
    synack_interfaces: tuple[str, ...] = ()
    resets: tuple[tuple[str, str, int], ...] = ()
    """(interface, source, TTL) of resets answering the SYN."""
    icmp: tuple[tuple[str, str, int, int], ...] = ()
    """(interface, reporter, type, code) of ICMP errors quoting the SYN."""
    destination: str | None = None
    """The SYN's destination address here."""
    addresses: str = ""
    """`SRC:PORT -> DST:PORT` of the SYN here (what NAT made of the connection so far)."""
    server_payload: bool = False
    observed: bool = True
    tunnel: Encapsulation | None = None
    """The SYN as an overlay carried it between nodes, when this capture saw it so."""

    @property
    def seen(self) -> bool:
        return bool(self.syn_interfaces)


UNOBSERVED = Sighting(observed=False)


def _names(frame: Any, ifnames: dict[str, str]) -> list[str]:
    return [ifnames.get(str(int(index)), f"if{int(index)}") for index in frame["ifindex"]]


def flow_key(frame: Any, client_ports: Iterable[int]) -> FlowKey | None:
    """The replayed SYN's ISN (and TSval) from the replay's own capture.

    CLIENT_PORTS: the socket's port and, when the node's SNAT changed it, the port the
    SYN left with (`ReplayResult.client_ports`): the capture holds the SYN after NAT.
    """
    if frame.empty or "proto" not in frame.columns:
        return None
    syn = frame[(frame["proto"] == 6) & frame["sport"].isin(list(client_ports))
                & ((frame["flags"] & (SYN | ACK)) == SYN)]
    if syn.empty:
        return None
    first = syn.iloc[0]
    tsval = int(first["tsval"]) if int(first["tsval"]) >= 0 else None
    return FlowKey(int(first["seq"]), tsval)


def sight(frame: Any, ifnames: dict[str, str], key: FlowKey, *,
          ignore_loopback: bool = True) -> Sighting:
    """What FRAME (one node's capture) shows of the connection KEY."""
    if frame.empty or "proto" not in frame.columns:
        return Sighting()
    if ignore_loopback:
        frame = frame[[name != "lo" for name in _names(frame, ifnames)]]
    tcp = frame[frame["proto"] == 6]
    flags, answer = tcp["flags"], (key.isn + 1) & MASK32
    syn = tcp[((flags & (SYN | ACK)) == SYN) & (tcp["seq"] == key.isn)]
    if key.tsval is not None and not syn.empty:
        syn = syn[(syn["tsval"] == key.tsval) | (syn["tsval"] < 0)]
    synack = tcp[((flags & (SYN | ACK)) == (SYN | ACK)) & (tcp["ack"] == answer)]
    resets = tcp[((flags & RST) != 0) & ((tcp["ack"] == answer) | (tcp["seq"] == answer))]
    quoted = frame[(frame["icmp_type"] >= 0) & (frame["q_seq"] == key.isn)]
    names = _order(syn, ifnames)
    server = _server_payload(tcp, syn)
    return Sighting(
        syn_interfaces=tuple(names),
        syn_count=int(syn.groupby("ifindex").size().max()) if not syn.empty else 0,
        synack_interfaces=tuple(_order(synack, ifnames)),
        resets=tuple((n, str(src), int(ttl)) for n, src, ttl in
                     zip(_names(resets, ifnames), resets["src"], resets["ttl"], strict=True)),
        icmp=tuple((n, str(src), int(t), int(c)) for n, src, t, c in
                   zip(_names(quoted, ifnames), quoted["src"], quoted["icmp_type"],
                       quoted["icmp_code"], strict=True)),
        destination=str(syn["dst"].iloc[0]) if not syn.empty else None,
        addresses=_addresses(syn),
        server_payload=server,
        tunnel=_encapsulation(syn, ifnames))


def _encapsulation(syn: Any, ifnames: dict[str, str]) -> Encapsulation | None:
    """The first tunnelled copy of the SYN (its row is the inner packet; the outer one's
    kind, addresses and VNI are in the `tunnel`, `outer_*` and `vni` columns)."""
    if syn.empty or "tunnel" not in syn.columns:
        return None
    tunnelled = syn[syn["tunnel"] != ""]
    if tunnelled.empty:
        return None
    first = tunnelled.sort_values("time", kind="stable").iloc[0]
    vni = int(first["vni"])  # -1: the tunnel has none (IP-in-IP)
    return Encapsulation(str(first["tunnel"]), str(first["outer_src"]), str(first["outer_dst"]),
                         vni if vni >= 0 else None, _names(tunnelled.iloc[:1], ifnames)[0])


def _addresses(syn: Any) -> str:
    if syn.empty:
        return ""
    first = syn.sort_values("time", kind="stable").iloc[0]
    return (f"{join_address(str(first['src']), int(first['sport']))} -> "
            f"{join_address(str(first['dst']), int(first['dport']))}")


def _order(rows: Any, ifnames: dict[str, str]) -> list[str]:
    """Interfaces in the order the packet first crossed them."""
    seen: list[str] = []
    for name in _names(rows.sort_values("time", kind="stable"), ifnames):
        if name not in seen:
            seen.append(name)
    return seen


def _server_payload(tcp: Any, syn: Any) -> bool:
    if syn.empty:
        return False
    client_port = int(syn["sport"].iloc[0])
    return bool(((tcp["dport"] == client_port) & (tcp["seglen"] > 0)).any())
