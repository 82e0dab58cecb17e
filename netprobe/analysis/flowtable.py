"""Per-flow facts from the packet table: one row per TCP stream.

Owns: aggregating packets into flows (handshake, who reset, SYN and data
retransmissions, ICMP errors quoting the flow, TLS hellos and alerts,
handshake RTT, request/response timing, the tunnel the flow crossed). Numpy only: a capture of a
million packets stays in numpy until the caller asks for a DataFrame.
The per-stream aggregates have a compiled twin (`netprobe._native.flows`,
used when built); `_aggregate` is the reference it must equal.
Must not: decide verdicts (`netprobe.core.rules` does), read files.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from netprobe import _native
from netprobe.analysis.tcp import conversation_keys
from netprobe.capture import decode
from netprobe.core.packets import ACK, FIN, RST, SYN

Table = dict[str, npt.NDArray[Any]]  # columns of any dtype, used as numbers or strings
# A client segment shorter than this after the TLS handshake is not a request
# (a TLS 1.3 close_notify record is 24 bytes).
MIN_REQUEST_BYTES = 32


NEEDED = ("stream", "from_client", "flags", "time", "seglen", "retransmission", "tls_hs",
          "ifindex")


def _first(stream: np.ndarray, mask: np.ndarray, values: np.ndarray, n: int,
           fill: float) -> np.ndarray:
    """Per stream: `values` at the first row with `mask` (rows sorted by stream, frame)."""
    out = np.full(n, fill, dtype=np.result_type(values.dtype, np.asarray(fill).dtype))
    s = stream[mask]
    if len(s):
        head = np.ones(len(s), bool)
        head[1:] = s[1:] != s[:-1]
        out[s[head]] = values[mask][head]
    return out


def _last(stream: np.ndarray, mask: np.ndarray, values: np.ndarray, n: int,
          fill: float) -> np.ndarray:
    """Per stream: `values` at the last row with `mask` (rows sorted by stream, frame)."""
    out = np.full(n, fill, dtype=np.result_type(values.dtype, np.asarray(fill).dtype))
    s = stream[mask]
    if len(s):
        tail = np.ones(len(s), bool)
        tail[:-1] = s[1:] != s[:-1]
        out[s[tail]] = values[mask][tail]
    return out


def _count(stream: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(stream[mask], minlength=n).astype(np.int64)


def _per_interface_max(stream: np.ndarray, ifindex: np.ndarray, mask: np.ndarray,
                       n: int) -> np.ndarray:
    """Per stream, the most MASK packets seen on any one interface.

    A capture on several interfaces (SLL2 `any`) sees one SYN once per interface it
    crosses; only sends on the same interface are real retransmissions to a verdict.
    """
    out = np.zeros(n, np.int64)
    if not mask.any():
        return out
    pairs = np.stack([stream[mask], ifindex[mask].astype(np.int64)], 1)
    keys, counts = np.unique(pairs, axis=0, return_counts=True)
    np.maximum.at(out, keys[:, 0], counts)
    return out


# What the compiled aggregation reads, with the dtypes it reads them as (decode.CORE's).
NATIVE_INPUTS: dict[str, type[np.generic]] = {
    "from_client": np.bool_, "retransmission": np.bool_, "flags": np.uint16,
    "time": np.float64, "seglen": np.int32, "tls_hs": np.int16, "tls_alert": np.int16,
    "ifindex": np.int64, "ttl": np.int16, "src_hi": np.uint64, "src_lo": np.uint64,
    "dst_hi": np.uint64, "dst_lo": np.uint64, "sport": np.int32, "dport": np.int32,
    "ip": np.uint8,
}
# What it fills, in the column order of `_aggregate` (after `stream`).
NATIVE_OUTPUTS: dict[str, type[np.generic]] = {
    "client_hi": np.uint64, "client_lo": np.uint64, "client_port": np.int64,
    "server_hi": np.uint64, "server_lo": np.uint64, "server_port": np.int64, "ip": np.int64,
    "first_time": np.float64, "last_time": np.float64,
    **dict.fromkeys(("packets", "client_bytes", "server_bytes", "syn", "syn_retransmissions",
                     "syn_sends", "synack", "data_retransmissions"), np.int64),
    "handshake_rtt": np.float64,
    **dict.fromkeys(("rst_client", "rst_server", "rst_ttl"), np.int64),
    "rst_time": np.float64, "fin_client": np.int64, "fin_server": np.int64,
    "client_close_time": np.float64, "server_close_time": np.float64,
    "client_hello": np.int64, "server_hello": np.int64,
    "client_hello_time": np.float64, "server_hello_time": np.float64,
    **dict.fromkeys(("tls_alerts", "alert_from_client", "alert_description"), np.int64),
    "last_request_time": np.float64, "last_server_data_time": np.float64,
}


def build(packets: Table, native: bool | None = None) -> Table:
    """Return the flow table (columns of equal length, one row per TCP stream).

    `native`: None uses the compiled aggregation when it is built, False the
    numpy reference, True the compiled one (RuntimeError when not available).
    """
    compiled = _native.choose("flows", native)
    f = _aggregate(packets) if compiled is None else _aggregate_native(compiled, packets)
    _icmp(f, packets, len(f["stream"]))
    _tunnel(f, packets, len(f["stream"]))
    return f


def _aggregate_native(compiled: ModuleType, packets: Table) -> Table:
    """`_aggregate` by the compiled module: one pass over the packets in frame order."""
    stream = packets["stream"]
    if stream.dtype not in (np.int32, np.int64):
        stream = stream.astype(np.int64)
    n = max(int(stream.max()) + 1, 0) if len(stream) else 0
    cols = {k: np.ascontiguousarray(packets[k], dtype=dt) for k, dt in NATIVE_INPUTS.items()}
    cols["stream"] = np.ascontiguousarray(stream)
    out = {k: np.empty(n, dt) for k, dt in NATIVE_OUTPUTS.items()}  # C writes every item
    compiled.build(cols, out, MIN_REQUEST_BYTES)
    return {"stream": np.arange(n), **out}


def _aggregate(packets: Table) -> Table:
    """The flow table without ICMP errors, in numpy (the reference of the compiled one)."""
    tcp = np.flatnonzero(packets["stream"] >= 0)
    order = np.argsort(packets["stream"][tcp], kind="stable")
    rows = tcp[order]
    p = {k: packets[k][rows] for k in NEEDED}
    p["row"] = rows
    st = p["stream"].astype(np.int64)
    n = int(st.max()) + 1 if len(st) else 0
    cl = p["from_client"].astype(bool)
    fl = p["flags"].astype(np.int64)
    t = p["time"]
    syn = (fl & (SYN | ACK)) == SYN
    synack = (fl & (SYN | ACK)) == (SYN | ACK)
    rst = (fl & RST) != 0
    fin = (fl & FIN) != 0
    data = p["seglen"] > 0
    retr = p["retransmission"].astype(bool)
    f: Table = {"stream": np.arange(n)}
    _endpoints(f, packets, p, st, cl, n)
    f["first_time"] = _first(st, np.ones(len(st), bool), t, n, np.nan)
    f["last_time"] = _last(st, np.ones(len(st), bool), t, n, np.nan)
    f["packets"] = _count(st, np.ones(len(st), bool), n)
    f["client_bytes"] = np.bincount(st, np.where(cl & data, p["seglen"], 0), n).astype(np.int64)
    f["server_bytes"] = np.bincount(st, np.where(~cl & data, p["seglen"], 0), n).astype(np.int64)
    f["syn"] = _count(st, syn & cl, n)
    f["syn_retransmissions"] = _count(st, syn & cl & retr, n)
    f["syn_sends"] = _per_interface_max(st, p["ifindex"], syn & cl, n)
    f["synack"] = _count(st, synack & ~cl, n)
    f["data_retransmissions"] = _count(st, retr & ~(fl & SYN).astype(bool), n)
    f["handshake_rtt"] = _handshake_rtt(st, syn & cl, synack & ~cl, t, n)
    f["rst_client"] = _count(st, rst & cl, n)
    f["rst_server"] = _count(st, rst & ~cl, n)
    f["rst_ttl"] = _gather(packets["ttl"], _first(st, rst & ~cl, p["row"], n, -1), -1)
    f["rst_time"] = _first(st, rst, t, n, np.nan)
    f["fin_client"] = _count(st, fin & cl, n)
    f["fin_server"] = _count(st, fin & ~cl, n)
    f["client_close_time"] = _first(st, (fin | rst) & cl, t, n, np.nan)
    f["server_close_time"] = _first(st, (fin | rst) & ~cl, t, n, np.nan)
    hs = p["tls_hs"]
    f["client_hello"] = _count(st, cl & (hs == 1), n)
    f["server_hello"] = _count(st, ~cl & (hs == 2), n)
    f["client_hello_time"] = _first(st, cl & (hs == 1), t, n, np.nan)
    f["server_hello_time"] = _first(st, ~cl & (hs == 2), t, n, np.nan)
    alert = packets["tls_alert"][rows] >= 0
    f["tls_alerts"] = _count(st, alert, n)
    f["alert_from_client"] = _first(st, alert, cl.astype(np.int64), n, -1)
    f["alert_description"] = _gather(packets["tls_alert"], _first(st, alert, p["row"], n, -1), -1)
    request = cl & (p["seglen"] >= MIN_REQUEST_BYTES) & (hs < 0) & ~retr
    f["last_request_time"] = _last(st, request, t, n, np.nan)
    f["last_server_data_time"] = _last(st, ~cl & data, t, n, np.nan)
    return f


def _gather(column: np.ndarray, rows: np.ndarray, fill: int) -> np.ndarray:
    """column[rows] as int64 where rows >= 0, else `fill`."""
    return np.where(rows >= 0, column[np.maximum(rows, 0)].astype(np.int64), fill)


def _endpoints(f: Table, packets: Table, p: Table, st: np.ndarray, cl: np.ndarray, n: int) -> None:
    """Client and server address/port per stream (from the first packet of each side)."""
    for side, mask in (("client", cl), ("server", ~cl)):
        own = _first(st, mask, p["row"], n, -1)  # first packet this side sent
        other = _first(st, ~mask, p["row"], n, -1)  # else: first packet sent to it
        have = own >= 0
        pick = np.maximum(np.where(have, own, other), 0)
        for part in ("hi", "lo"):
            f[f"{side}_{part}"] = np.where(have, packets[f"src_{part}"][pick],
                                           packets[f"dst_{part}"][pick]).astype(np.uint64)
        f[f"{side}_port"] = np.where(have, packets["sport"][pick],
                                     packets["dport"][pick]).astype(np.int64)
    f["ip"] = packets["ip"][np.maximum(_first(st, np.ones(len(st), bool), p["row"], n, 0), 0)]
    f["ip"] = f["ip"].astype(np.int64)


def _handshake_rtt(st: np.ndarray, syn: np.ndarray, synack: np.ndarray, t: np.ndarray,
                   n: int) -> np.ndarray:
    """Seconds from the last client SYN before the first SYN/ACK to that SYN/ACK."""
    sa_time = _first(st, synack, t, n, np.nan)
    before = syn & (t <= sa_time[st])
    syn_time = _last(st, before, t, n, np.nan)
    return np.asarray(sa_time - syn_time)


def _quoted(packets: Table) -> tuple[np.ndarray, Table]:
    """Rows of packets quoting a flow (ICMP errors) and the quoted fields for them."""
    if "quoted.row" in packets:
        return packets["quoted.row"], {k: packets[f"quoted.{k}"] for k in decode.QUOTED}
    rows = np.flatnonzero(packets["q_ip"] > 0)
    return rows, {k: packets[k][rows] for k in decode.QUOTED}


def _tunnelled(packets: Table) -> tuple[np.ndarray, Table]:
    """Rows of tunnelled packets and their outer-tunnel fields."""
    if "tunnelled.row" in packets:
        return packets["tunnelled.row"], {k: packets[f"tunnelled.{k}"] for k in decode.TUNNELLED}
    rows = np.flatnonzero(packets["tunnel"] > 0)
    return rows, {k: packets[k][rows] for k in decode.TUNNELLED}


def _tunnel(f: Table, packets: Table, n: int) -> None:
    """The tunnel of each flow's first tunnelled packet: kind, VNI/key, and its outer
    endpoints on the client's side and on the server's side (the nodes).

    The first tunnelled packet, not the first packet: a capture on every interface
    of a node sees a flow on the pod's veth before the NIC encapsulates it.
    """
    f["tunnel"] = np.zeros(n, np.int64)
    f["vni"] = np.full(n, -1, np.int64)
    f["outer_ip"] = np.zeros(n, np.int64)
    for name in ("outer_client_hi", "outer_client_lo", "outer_server_hi", "outer_server_lo"):
        f[name] = np.zeros(n, np.uint64)
    rows, t = _tunnelled(packets)
    stream = packets["stream"][rows]
    tcp = stream >= 0
    if not tcp.any():
        return
    stream, first = np.unique(stream[tcp], return_index=True)  # rows are in frame order
    pick = np.flatnonzero(tcp)[first]
    row = rows[pick]
    f["tunnel"][stream] = packets["tunnel"][row]
    f["vni"][stream] = t["vni"][pick]
    f["outer_ip"][stream] = t["outer_ip"][pick]
    client = packets["from_client"][row].astype(bool)
    for part in ("hi", "lo"):
        src, dst = t[f"outer_src_{part}"][pick], t[f"outer_dst_{part}"][pick]
        f[f"outer_client_{part}"][stream] = np.where(client, src, dst)
        f[f"outer_server_{part}"][stream] = np.where(client, dst, src)


def _icmp(f: Table, packets: Table, n: int) -> None:
    """Attach ICMP/ICMPv6 errors to the TCP stream whose packet they quote."""
    f["icmp_errors"] = np.zeros(n, np.int64)
    f["icmp_type"] = np.full(n, -1, np.int64)
    f["icmp_code"] = np.full(n, -1, np.int64)
    f["icmp_ttl"] = np.full(n, -1, np.int64)
    f["icmp_proto"] = np.full(n, -1, np.int64)
    f["icmp_from_hi"] = np.zeros(n, np.uint64)
    f["icmp_from_lo"] = np.zeros(n, np.uint64)
    rows, q = _quoted(packets)
    tcp = (q["q_proto"] == decode.TCP) & (q["q_sport"] >= 0)
    err = rows[tcp]
    if not len(err) or not n:
        return
    qkey, _ = conversation_keys(
        (q["q_src_hi"][tcp], q["q_src_lo"][tcp], q["q_sport"][tcp]),
        (q["q_dst_hi"][tcp], q["q_dst_lo"][tcp], q["q_dport"][tcp]),
    )
    fkey, _ = conversation_keys(
        (f["client_hi"], f["client_lo"], f["client_port"]),
        (f["server_hi"], f["server_lo"], f["server_port"]),
    )
    order = np.lexsort((f["first_time"], fkey))
    keys, starts = fkey[order], f["first_time"][order]
    for row, key in zip(err, qkey, strict=True):
        lo, hi = np.searchsorted(keys, key, "left"), np.searchsorted(keys, key, "right")
        if lo == hi:
            continue
        pick = lo + max(int(np.searchsorted(starts[lo:hi], packets["time"][row], "right")) - 1, 0)
        s = order[pick]
        if f["icmp_errors"][s] == 0:
            f["icmp_type"][s] = packets["icmp_type"][row]
            f["icmp_code"][s] = packets["icmp_code"][row]
            f["icmp_ttl"][s] = packets["ttl"][row]
            f["icmp_proto"][s] = packets["proto"][row]
            f["icmp_from_hi"][s] = packets["src_hi"][row]
            f["icmp_from_lo"][s] = packets["src_lo"][row]
        f["icmp_errors"][s] += 1
