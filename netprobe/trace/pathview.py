"""The replayed connection across vantage points: one table of every capture of a trace.

Owns: finding the replayed connection in each capture by its initial
sequence number (the key `correlate.flow_key` uses, which NAT leaves
alone), naming each capture's interfaces from the hops the trace found,
ordering the interfaces along the path ("lanes"), and giving every packet
an `instance` so the copies of one packet seen on several interfaces can
be told from retransmissions.
Must not: read files (callers pass `netprobe.analysis.read` DataFrames),
word comments (`netprobe.annotate`) or draw (`netprobe.plots`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netprobe.core.model import TraceResult
from netprobe.core.packets import ACK, FIN, RST, SYN
from netprobe.trace import correlate

if TYPE_CHECKING:
    import pandas as pd

REPLAY = "replay"
LOOPBACK_IFINDEX = 1
"""Linux gives `lo` index 1 in every network namespace."""


@dataclass(frozen=True)
class Lanes:
    """Interface names and what each interface is on the path, per capture."""

    names: tuple[dict[int, str], ...]
    """Per capture: interface index -> name (only the ones known)."""
    hops: tuple[dict[int, str], ...]
    """Per capture: interface index -> hop id (`cp-egress`, `worker-ingress`, `pod-veth`...)."""


def flow_key(result: TraceResult, frames: Sequence[pd.DataFrame],
             roles: Sequence[str]) -> correlate.FlowKey | None:
    """The replayed connection's ISN: its SYN in the replay capture, else an ICMP error quoting it.

    No SYN leaves the node when kube-proxy rejects the call, but the ICMP
    port unreachable it makes quotes the SYN's sequence number.
    """
    replay = result.replay
    if replay is None or not replay.local_address:
        return None
    ports = list(replay.client_ports)
    for frame, role in zip(frames, roles, strict=True):
        if role != REPLAY or frame.empty:
            continue
        key = correlate.flow_key(frame, ports)
        if key is not None:
            return key
        quoted = frame[(frame["icmp_type"] >= 0) & frame["q_sport"].isin(ports)
                       & (frame["q_seq"] >= 0)]
        if not quoted.empty:
            return correlate.FlowKey(int(quoted["q_seq"].iloc[0]))
    return None


def _syn_rows(frame: pd.DataFrame, key: correlate.FlowKey) -> pd.DataFrame:
    syn = frame[(frame["proto"] == 6) & ((frame["flags"] & (SYN | ACK)) == SYN)
                & (frame["seq"] == key.isn)]
    return syn.sort_values("time", kind="stable")


def lanes(result: TraceResult, frames: Sequence[pd.DataFrame], roles: Sequence[str],
          key: correlate.FlowKey | None,
          known: Sequence[Mapping[int, str]] = ()) -> Lanes:
    """Name each capture's interfaces from the hops: the SYN crosses them in path order.

    The replay capture's first SYN interface is the `cp-egress` hop's; an
    endpoint node's first is `worker-ingress` and its last the pod's veth
    (or the host socket). Names in `known` (from the agents) win.
    """
    hops = {hop.id: hop for hop in result.hops}
    names: list[dict[int, str]] = []
    kinds: list[dict[int, str]] = []
    for index, (frame, role) in enumerate(zip(frames, roles, strict=True)):
        named: dict[int, str] = {LOOPBACK_IFINDEX: "lo"}
        kind: dict[int, str] = {}
        order = [] if key is None or frame.empty else \
            list(dict.fromkeys(int(i) for i in _syn_rows(frame, key)["ifindex"]))
        endpoint_hop = "host-socket" if "host-socket" in hops else "pod-veth"
        if order and role == REPLAY and "cp-egress" not in hops:
            kind[order[-1]] = endpoint_hop  # the endpoint is on the replaying node
        elif order and role == REPLAY:
            kind[order[0]] = "cp-egress"
        elif order:
            kind[order[0]] = "worker-ingress"
            if len(order) > 1:
                kind[order[-1]] = endpoint_hop
        for ifindex, hop_id in kind.items():
            hop = hops.get(hop_id)
            if hop is not None and hop.interface:
                named[ifindex] = hop.interface
        named.update(known[index] if index < len(known) else {})
        names.append(named)
        kinds.append(kind)
    return Lanes(tuple(names), tuple(kinds))


def _connection(frame: pd.DataFrame, key: correlate.FlowKey | None) -> Any:
    """Rows of `frame` that belong to the replayed connection (a boolean Series)."""
    if key is None or frame.empty:
        return frame["time"] != frame["time"]  # all False, with the frame's index
    streams = set(_syn_rows(frame, key)["stream"].tolist()) - {-1}
    quoting = (frame["icmp_type"] >= 0) & (frame["q_seq"] == key.isn)
    return frame["stream"].isin(streams) | quoting


def packet_kind(row: Any) -> str:
    """A short name for a packet: SYN, SYN-ACK, RST, FIN, ClientHello, data 517 B, ICMP 3/1..."""
    if row["icmp_type"] >= 0:
        return f"ICMP {int(row['icmp_type'])}/{int(row['icmp_code'])}"
    if row["proto"] != 6:
        return f"IP proto {int(row['proto'])}"
    flags = int(row["flags"])
    if flags & SYN:
        return "SYN-ACK" if flags & ACK else "SYN"
    if flags & RST:
        return "RST"
    hello = {1: "ClientHello", 2: "ServerHello"}.get(int(row["tls_hs"]))
    if hello:
        return hello
    if row["seglen"] > 0:
        return f"data {int(row['seglen'])} B" + (" FIN" if flags & FIN else "")
    return "FIN" if flags & FIN else "ACK"


def path_packets(result: TraceResult, frames: Sequence[pd.DataFrame], nodes: Sequence[str],
                 roles: Sequence[str], known: Sequence[Mapping[int, str]] = ()) -> pd.DataFrame:
    """Every packet of every capture of one traced endpoint, in one table.

    Returns:
        The `netprobe.analysis.read` columns plus `capture` (index into
        `frames`), `row` (packet number in its file), `node`, `where`
        (`node/interface`), `hop` (the hop id of that interface, or ''),
        `lane` (0, 1, ... along the path), `conn` (part of the replayed
        connection), `kind` (SYN, RST, ClientHello...) and `instance` (the
        same number for the copies of one packet on several interfaces; -1
        outside the connection), sorted by time.
    """
    import pandas as pd

    key = flow_key(result, frames, roles)
    named = lanes(result, frames, roles, key, known)
    parts = []
    for index, frame in enumerate(frames):
        part = frame.copy()
        part["capture"], part["row"], part["node"] = index, range(len(part)), nodes[index]
        part["where"] = [f"{nodes[index]}/{named.names[index].get(int(i), f'if{int(i)}')}"
                         for i in part["ifindex"]]
        part["hop"] = [named.hops[index].get(int(i), "") for i in part["ifindex"]]
        part["conn"] = _connection(part, key)
        part["_role"] = 0 if roles[index] == REPLAY else 1
        parts.append(part)
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if table.empty:
        return table.assign(lane=[], kind=[], instance=[]).drop(columns="_role", errors="ignore")
    table = table.sort_values(["time", "capture", "row"], kind="stable", ignore_index=True)
    table["kind"] = [packet_kind(row) for _, row in table.iterrows()]
    table["lane"] = _lane_numbers(table)
    table["instance"] = _instances(table)
    return table.drop(columns="_role")


def _lane_numbers(table: pd.DataFrame) -> list[int]:
    """Lanes in path order: replay captures first, then by when the SYN (else anything) crossed."""
    syn = table[table["conn"] & (table["kind"] == "SYN")]
    first_syn = syn.groupby("where")["time"].min()
    first_any = table.groupby("where")["time"].min()
    role = table.groupby("where")["_role"].min()
    keys = {w: (role[w], 0 if w in first_syn else 1, first_syn.get(w, first_any[w]))
            for w in first_any.index}
    order = {w: i for i, w in enumerate(sorted(keys, key=lambda w: keys[w]))}
    return [order[w] for w in table["where"]]


def _instances(table: pd.DataFrame) -> list[int]:
    """Copies of one packet share a number: same header fields, same occurrence per lane."""
    ids: dict[tuple[Any, ...], int] = {}
    seen: dict[tuple[Any, ...], int] = {}
    out = []
    cols = ("from_client", "flags", "seq", "ack", "seglen", "tsval", "icmp_type", "q_seq", "kind")
    for row in table[["conn", "where", *cols]].itertuples(index=False):
        if not row.conn:
            out.append(-1)
            continue
        fields = tuple(row[2:])
        occurrence = seen.get((row.where, fields), 0)
        seen[(row.where, fields)] = occurrence + 1
        out.append(ids.setdefault((fields, occurrence), len(ids)))
    return out
