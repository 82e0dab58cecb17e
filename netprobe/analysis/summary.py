"""A replay's capture, summarised: SYNs, resets, ICMP errors, TLS hellos, in a `PacketSummary`.

Owns: picking the call out of its capture (`CallIdentity`: the client's ports
before and after the node's SNAT, and the addresses the call can have; when NAT
hid the port, the first SYN towards one of those addresses after the call
dialled) and turning its packets into the facts the rule table reads
(`netprobe.core.model.PacketSummary`): the SYN per interface, who answered,
resets with their TTL, ICMP errors quoting the flow, ClientHello/ServerHello
and alerts, data retransmissions. It reads the same columns as the rest of
the analysis (one decoder for every capture). Must not: classify
(`netprobe.core.rules` does).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from netprobe.analysis import addresses
from netprobe.analysis.load import load
from netprobe.core.model import IcmpInfo, PacketSummary, RstInfo
from netprobe.core.packets import ACK, RST, SYN, join_address

TLS_HANDSHAKE_CLIENT_HELLO, TLS_HANDSHAKE_SERVER_HELLO = 1, 2
DIALLED_SLACK = 0.05
"""Seconds a SYN may precede the recorded dial time and still be the call's (clock reads)."""


@dataclass(frozen=True)
class CallIdentity:
    """What tells one call's packets from the rest of a capture."""

    ports: frozenset[int]
    """The client's port before NAT and, when known, after the node's SNAT."""
    peers: frozenset[tuple[str, int]] = frozenset()
    """Every (address, port) the call can have on the server's side: the dialled address
    and the endpoints the Service's NAT may pick. Empty: any."""
    dialled: float = 0.0
    """Epoch seconds the call dialled: finds its SYN when NAT changed its port."""
    local_ip: str = ""
    """The client's address before SNAT. With PEERS empty (the endpoints NAT may pick are
    unknown), the first SYN from it after DIALLED is the call's."""
ICMP_ERRORS = {1: (3, 11), 58: (1, 3)}
"""IP protocol -> ICMP types that quote a flow that could not get through."""


@dataclass
class _Tally:
    """Mutable tally while reading; frozen into a PacketSummary at the end."""

    ports: frozenset[int]
    packets: int = 0
    syn_seqs: Counter[tuple[str, int]] = field(default_factory=Counter)
    synack: list[tuple[str, int]] = field(default_factory=list)
    rst: list[RstInfo] = field(default_factory=list)
    icmp: list[IcmpInfo] = field(default_factory=list)
    data_seen: set[tuple[str, int, bool]] = field(default_factory=set)
    data_retrans: int = 0
    client_hello_end: int | None = None
    client_hello: int = 0
    client_hello_acked: bool = False
    server_hello: int = 0
    alerts: int = 0
    server_bytes: int = 0
    wire_destination: str | None = None
    wire_source: str | None = None
    left_host: bool = False
    interfaces: set[str] = field(default_factory=set)


def summarize(path: Path, call: CallIdentity | int,
              interfaces: dict[int, str] | None = None) -> PacketSummary:
    """What the capture at PATH shows about CALL (a `CallIdentity`, or the client's port).

    INTERFACES names the capture's interface indexes (SLL2 `any` captures);
    other link types give `?`.

    Raises:
        CaptureFormatError: the file cannot be read.
    """
    identity = call if isinstance(call, CallIdentity) else CallIdentity(frozenset({call}))
    cols = load(path, detail=True).cols  # dense q_* columns: a replay capture is small
    rows = _rows(cols, np.flatnonzero(cols["ip"] != 0), interfaces or {})
    identity = _behind_nat(rows, identity)
    tally = _Tally(identity.ports)
    times = []
    for row in rows:
        if not _belongs(row, identity):
            continue
        tally.packets += 1
        tally.interfaces.add(row["iface"])
        times.append(row["time"])
        if row["proto"] in ICMP_ERRORS:
            _icmp(tally, row)
        elif row["tcp"]:
            _tcp(tally, row)
    return _freeze(tally, min(times, default=None), max(times, default=None))


def _is_syn(row: dict[str, Any]) -> bool:
    return bool(row["tcp"] and row["flags"] & SYN and not row["flags"] & ACK)


def _behind_nat(rows: list[dict[str, Any]], identity: CallIdentity) -> CallIdentity:
    """IDENTITY, with the SNAT'd port of the call's first SYN when no SYN has a known port."""
    if any(_is_syn(r) and r["sport"] in identity.ports for r in rows):
        return identity
    if not identity.peers and not identity.local_ip:
        return identity
    found = [r for r in rows if _is_syn(r) and r["time"] >= identity.dialled - DIALLED_SLACK
             and ((r["dst"], r["dport"]) in identity.peers if identity.peers
                  else r["src"] == identity.local_ip)]
    if not found:
        return identity
    first = min(found, key=lambda r: r["time"])
    return dataclasses.replace(identity, ports=identity.ports | {first["sport"]})


def _belongs(row: dict[str, Any], identity: CallIdentity) -> bool:
    """ROW is one of the call's segments, or an ICMP error quoting one."""
    peers = identity.peers
    if row["proto"] in ICMP_ERRORS:
        return row["q_proto"] == 6 and row["q_sport"] in identity.ports and (
            not peers or (row["q_dst"], row["q_dport"]) in peers)
    if not row["tcp"]:
        return False
    if row["sport"] in identity.ports:
        return not peers or (row["dst"], row["dport"]) in peers
    return row["dport"] in identity.ports and (not peers or (row["src"], row["sport"]) in peers)


def _rows(cols: dict[str, Any], keep: np.ndarray, names: dict[int, str]) -> list[dict[str, Any]]:
    picked = {k: cols[k][keep] for k in ("time", "ifindex", "ttl", "proto", "tcp", "sport", "dport",
                                          "flags", "seq", "ack", "seglen", "tls_hs", "tls_alert",
                                          "icmp_type", "icmp_code", "q_proto", "q_sport",
                                          "q_dport")}
    picked["src"] = addresses(cols["src_hi"][keep], cols["src_lo"][keep], cols["ip"][keep])
    picked["dst"] = addresses(cols["dst_hi"][keep], cols["dst_lo"][keep], cols["ip"][keep])
    picked["q_dst"] = addresses(cols["q_dst_hi"][keep], cols["q_dst_lo"][keep],
                                cols["q_ip"][keep])
    lists = {k: v.tolist() for k, v in picked.items()}
    lists["iface"] = ["?" if i < 0 else names.get(i, f"if{i}") for i in lists["ifindex"]]
    return [dict(zip(lists, values, strict=True)) for values in zip(*lists.values(), strict=True)]


def _tcp(tally: _Tally, row: dict[str, Any]) -> None:
    outbound = row["sport"] in tally.ports
    flags, iface = row["flags"], row["iface"]
    if flags & SYN and not flags & ACK and outbound:
        tally.syn_seqs[(iface, row["seq"])] += 1
        if iface != "lo":
            tally.left_host = True
            tally.wire_destination = row["dst"]
            tally.wire_source = join_address(row["src"], row["sport"])
    elif flags & SYN and flags & ACK and not outbound:
        tally.synack.append((row["src"], row["ttl"]))
    if flags & RST:
        tally.rst.append(RstInfo(row["src"], row["ttl"], not outbound, row["time"]))
    if row["seglen"] > 0:
        key = (iface, row["seq"], outbound)
        tally.data_retrans += key in tally.data_seen
        tally.data_seen.add(key)
        _tls(tally, row, outbound)
    if not outbound and tally.client_hello_end is not None and flags & ACK:
        if row["ack"] - tally.client_hello_end >= 0:
            tally.client_hello_acked = True


def _tls(tally: _Tally, row: dict[str, Any], outbound: bool) -> None:
    if not outbound:
        tally.server_bytes += row["seglen"]
    if row["tls_hs"] == TLS_HANDSHAKE_CLIENT_HELLO and outbound:
        tally.client_hello += 1
        tally.client_hello_end = (row["seq"] + row["seglen"]) & 0xFFFFFFFF
    elif row["tls_hs"] == TLS_HANDSHAKE_SERVER_HELLO and not outbound:
        tally.server_hello += 1
    elif row["tls_alert"] >= 0:
        tally.alerts += 1


def _icmp(tally: _Tally, row: dict[str, Any]) -> None:
    if row["icmp_type"] not in ICMP_ERRORS[row["proto"]] or row["q_proto"] != 6:
        return
    if row["q_sport"] not in tally.ports:
        return
    tally.icmp.append(IcmpInfo(row["src"], row["icmp_type"], row["icmp_code"], row["time"]))


def _freeze(tally: _Tally, first: float | None, last: float | None) -> PacketSummary:
    per_interface = Counter(iface for iface, _seq in tally.syn_seqs.elements())
    syns = max(per_interface.values(), default=0)
    synack_source, synack_ttl = tally.synack[0] if tally.synack else (None, None)
    return PacketSummary(
        packets=tally.packets, syn=syns, syn_retransmissions=max(0, syns - 1),
        synack=len(tally.synack), synack_ttl=synack_ttl, synack_source=synack_source,
        rst=tuple(tally.rst), icmp=tuple(tally.icmp), data_retransmissions=tally.data_retrans,
        client_hello=tally.client_hello, client_hello_acked=tally.client_hello_acked,
        server_hello=tally.server_hello, tls_alerts=tally.alerts, server_bytes=tally.server_bytes,
        wire_destination=tally.wire_destination, wire_source=tally.wire_source,
        left_host=tally.left_host,
        first_time=first, last_time=last, interfaces=tuple(sorted(tally.interfaces)))
