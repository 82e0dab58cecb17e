"""Vectorized protocol decoding: one `Batch` of raw records to numpy columns.

Owns: IPv4 (options, fragments, TSO zero lengths), IPv6 (hop-by-hop,
routing, fragment, destination options and AH headers; jumbograms), TCP
(flags, sequence numbers, options on request), UDP, ICMP/ICMPv6 errors with
the flow they quote, and the first bytes of TLS records; the packet inside
tunnels (`netprobe.capture.tunnels` finds it), up to `tunnels.MAX_DEPTH`
deep: a packet's row describes the innermost IP packet, its outermost
tunnel's endpoints and VNI/key are in the `outer_*` and `vni` columns.
Must not: keep per-packet Python objects; every step is numpy fancy
indexing over offset arrays. Must not: decide about flows.
Decoding without TCP options has a compiled twin (`netprobe._native.decode`,
used when built); `_decode` is the reference it must equal.

Columns follow Wireshark's meaning where one exists: `seglen` is
`tcp.len` (from the IP length, not the captured length), `tls_hs` is the
handshake type of a TLS record starting the TCP payload.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from netprobe import _native
from netprobe.capture import linklayer, tunnels
from netprobe.capture.records import Batch, u16be, u32be, u64be

Columns = dict[str, npt.NDArray[Any]]  # columns of any dtype, used as numbers or strings

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
IPV6_EXT = np.array([0, 43, 44, 51, 60], dtype=np.uint8)
MAX_EXT_HEADERS = 8
ICMP_ERRORS = np.array([3, 4, 5, 11, 12], dtype=np.uint8)
ICMPV6_ERRORS = np.array([1, 2, 3, 4], dtype=np.uint8)
V4_MAPPED = np.uint64(0xFFFF00000000)

# name -> dtype, fill for "absent"; the contract of `decode`'s output.
CORE: dict[str, tuple[str, int | float]] = {
    "time": ("f8", 0.0),
    "interface": ("i4", 0),
    "ifindex": ("i8", -1),
    "frame_len": ("i4", 0),
    "unknown_link": ("?", 0),
    "ip": ("u1", 0),
    "src_hi": ("u8", 0),
    "src_lo": ("u8", 0),
    "dst_hi": ("u8", 0),
    "dst_lo": ("u8", 0),
    "ttl": ("i2", -1),
    "proto": ("i2", -1),
    "sport": ("i4", -1),
    "dport": ("i4", -1),
    "tcp": ("?", 0),
    "flags": ("u2", 0),
    "seq": ("u4", 0),
    "ack": ("u4", 0),
    "win": ("u2", 0),
    "hlen": ("u1", 0),
    "seglen": ("i4", -1),
    "tls_hs": ("i2", -1),
    "tls_alert": ("i2", -1),
    "icmp_type": ("i2", -1),
    "icmp_code": ("i2", -1),
    "q_ip": ("u1", 0),
    "q_src_hi": ("u8", 0),
    "q_src_lo": ("u8", 0),
    "q_dst_hi": ("u8", 0),
    "q_dst_lo": ("u8", 0),
    "q_proto": ("i2", -1),
    "q_sport": ("i4", -1),
    "q_dport": ("i4", -1),
    "q_seq": ("i8", -1),
    "tunnel": ("u1", 0),  # tunnels.KINDS index of the outermost tunnel (0: not tunnelled)
    "encrypted": ("u1", 0),  # tunnels.ENCRYPTED index: node-to-node traffic that cannot be read
    "outer_ip": ("u1", 0),
    "outer_src_hi": ("u8", 0),
    "outer_src_lo": ("u8", 0),
    "outer_dst_hi": ("u8", 0),
    "outer_dst_lo": ("u8", 0),
    "vni": ("i8", -1),  # VXLAN/Geneve VNI or GRE key of the outermost tunnel
}
QUOTED = tuple(k for k in CORE if k.startswith("q_"))
TUNNELLED = ("outer_ip", "outer_src_hi", "outer_src_lo", "outer_dst_hi", "outer_dst_lo", "vni")
DETAIL: dict[str, tuple[str, int | float]] = {
    "mss": ("i4", -1),
    "wscale": ("i2", -1),
    "sack_perm": ("?", 0),
    "sack_blocks": ("i2", 0),
    "tsval": ("i8", -1),
    "tsecr": ("i8", -1),
}


def empty(n: int, detail: bool) -> Columns:
    """Columns for `n` packets, every field at its 'absent' value."""
    spec = {**CORE, **DETAIL} if detail else CORE
    return {k: np.full(n, fill, dtype=dt) for k, (dt, fill) in spec.items()}


def decode(batch: Batch, detail: bool = False, native: bool | None = None) -> Columns:
    """Decode every packet of `batch` into columns (see `CORE`, `DETAIL`).

    Args:
        native: None: the compiled decoder when it is built, False: the numpy
            code, True: the compiled decoder (RuntimeError when it is not
            built). `detail` (TCP options) is always decoded by the numpy code.

    Returns:
        A dict of equal-length numpy arrays, one entry per packet.
    """
    compiled = _native.choose("decode", native)
    if compiled is not None and not detail:
        cols = _start(batch, detail, fill=False)  # the compiled decoder writes every item
        arrays = [np.ascontiguousarray(getattr(batch, name), dtype) for name, dtype in _INPUTS]
        if compiled.decode(*arrays, cols):
            return cols
        # Declined: a record reaches past the data (never from the readers),
        # where only the numpy code knows whether it raises.
    return _decode(batch, detail)


# The Batch fields the compiled decoder reads, in its argument order, with their dtypes.
_INPUTS = (("data", np.uint8), ("offset", np.int64), ("caplen", np.int64),
           ("origlen", np.int64), ("linktype", np.int32))


def _start(batch: Batch, detail: bool, fill: bool = True) -> Columns:
    """Columns with the fields every packet has (time, interface, frame_len), the
    others absent (`fill`) or not yet written."""
    if fill:
        cols = empty(len(batch), detail)
    else:
        spec = {**CORE, **DETAIL} if detail else CORE
        cols = {k: np.empty(len(batch), dtype=dt) for k, (dt, _) in spec.items()}
    cols["time"][:] = batch.time
    cols["interface"][:] = batch.interface
    cols["frame_len"][:] = np.minimum(batch.origlen, 2**31 - 1)
    return cols


def _decode(batch: Batch, detail: bool) -> Columns:
    """The numpy decoder: the reference the compiled one matches."""
    n = len(batch)
    cols = _start(batch, detail)
    net = linklayer.locate(batch)
    cols["ifindex"][:] = net.ifindex
    cols["unknown_link"][:] = net.unknown
    data = batch.data
    end = batch.offset + batch.caplen
    rep_end = batch.offset + batch.origlen
    l4 = np.full(n, -1, np.int64)  # transport header offset
    l4_len = np.zeros(n, np.int64)  # transport bytes per the IP length
    pos, version = net.pos, net.version
    _ask_version(data, np.flatnonzero(version == tunnels.VERSION_ASK), pos, version)
    _network(data, np.flatnonzero(pos >= 0), pos, version, end, rep_end, cols, l4, l4_len)
    _tunnels(data, pos, version, end, rep_end, cols, l4, l4_len)
    proto = cols["proto"]
    has = l4 >= 0
    _tcp(data, np.flatnonzero(has & (proto == TCP)), l4, l4_len, end, cols, detail)
    _udp(data, np.flatnonzero(has & (proto == UDP)), l4, end, cols)
    _icmp(data, np.flatnonzero(has & (proto == ICMP)), l4, end, cols, v6=False)
    _icmp(data, np.flatnonzero(has & (proto == ICMPV6)), l4, end, cols, v6=True)
    live = np.flatnonzero(has)
    cols["encrypted"][live] = tunnels.encrypted(data, live, proto, cols["sport"], cols["dport"],
                                                l4, end)
    return cols


def _ask_version(data, idx, pos, version) -> None:
    """Raw IP and some tunnels: the version nibble decides (4, 6, else not IP)."""
    nib = data[pos[idx]] >> 4
    version[idx] = np.where(nib == 4, 4, np.where(nib == 6, 6, 0))


def _network(data, idx, pos, version, end, rep_end, cols, l4, l4_len) -> None:
    """The IP headers of packets `idx` (a version of 4 or 6 at `pos`)."""
    v = version[idx]
    _ipv4(data, idx[v == 4], pos, end, rep_end, cols, l4, l4_len)
    _ipv6(data, idx[v == 6], pos, end, rep_end, cols, l4, l4_len)


def _tunnels(data, pos, version, end, rep_end, cols, l4, l4_len) -> None:
    """Replace each tunnelled packet by the one inside (its outermost tunnel kept aside)."""
    live = np.flatnonzero(l4 >= 0)
    for _ in range(tunnels.MAX_DEPTH):
        inner = tunnels.unwrap(data, live, cols["proto"], l4, l4_len, end)
        rows, at, rep = inner.rows, inner.pos, inner.rep
        stop = np.minimum(end[rows], rep)  # nothing past the tunnel's payload is the inner's
        v = inner.version.copy()
        ask = np.flatnonzero(v == tunnels.VERSION_ASK)
        _ask_version(data, ask, at, v)
        ok = _ip_header_ok(data, at, v, stop, rep)
        if not ok.any():
            return
        rows, first = rows[ok], ok & (cols["tunnel"][inner.rows] == 0)
        outer = inner.rows[first]
        cols["tunnel"][outer] = inner.kind[first]
        cols["vni"][outer] = inner.vni[first]
        cols["outer_ip"][outer] = cols["ip"][outer]
        for side in ("src", "dst"):
            for part in ("hi", "lo"):
                cols[f"outer_{side}_{part}"][outer] = cols[f"{side}_{part}"][outer]
        pos[rows], version[rows], end[rows], rep_end[rows] = at[ok], v[ok], stop[ok], rep[ok]
        l4[rows], l4_len[rows] = -1, 0
        _network(data, rows, pos, version, end, rep_end, cols, l4, l4_len)
        live = rows[l4[rows] >= 0]


def _ip_header_ok(data, pos, version, end, rep) -> np.ndarray:
    """Whether `_ipv4`/`_ipv6` decode the header at each `pos` (version 4 or 6)."""
    ok = np.zeros(len(pos), bool)
    v4 = np.flatnonzero(version == 4)
    ok[v4] = _ipv4_header(data, pos[v4], end[v4], rep[v4])[0]
    v6 = np.flatnonzero(version == 6)
    ok[v6] = (pos[v6] + 40 <= end[v6]) & ((data[pos[v6]] >> 4) == 6)
    return ok


def _ipv4_header(data, pos, end, rep):
    """Which IPv4 headers at `pos` are decoded, with their header and total lengths."""
    ok = (pos + 20 <= end) & ((data[pos] >> 4) == 4)
    ihl, total = np.zeros(len(pos), np.int64), np.zeros(len(pos), np.int64)
    i = np.flatnonzero(ok)
    ihl[i] = (data[pos[i]] & 0x0F).astype(np.int64) * 4
    total[i] = u16be(data, pos[i] + 2)
    # TSO/BIG TCP captures carry a zero total length: use what the frame holds.
    total[i] = np.where(total[i] == 0, rep[i] - pos[i], total[i])
    ok[i] &= (ihl[i] >= 20) & (total[i] >= ihl[i])
    return ok, ihl, total


def _ipv4(data, idx, pos_all, end_all, rep_all, cols, l4, l4_len) -> None:
    pos, end, rep = pos_all[idx], end_all[idx], rep_all[idx]
    ok, ihl, total = _ipv4_header(data, pos, end, rep)
    idx, pos, end, rep, ihl, total = idx[ok], pos[ok], end[ok], rep[ok], ihl[ok], total[ok]
    cols["ip"][idx] = 4
    cols["src_hi"][idx] = 0
    cols["dst_hi"][idx] = 0
    cols["src_lo"][idx] = u32be(data, pos + 12).astype(np.uint64) | V4_MAPPED
    cols["dst_lo"][idx] = u32be(data, pos + 16).astype(np.uint64) | V4_MAPPED
    cols["ttl"][idx] = data[pos + 8]
    cols["proto"][idx] = data[pos + 9]
    frag = u16be(data, pos + 6)
    whole = (frag & 0x3FFF) == 0  # neither MF nor an offset: not a fragment
    start = pos + ihl
    l4[idx] = np.where(whole & (start <= end), start, -1)
    l4_len[idx] = np.minimum(total, rep - pos) - ihl


def _ipv6(data, idx, pos_all, end_all, rep_all, cols, l4, l4_len) -> None:
    pos, end, rep = pos_all[idx], end_all[idx], rep_all[idx]
    ok = (pos + 40 <= end) & ((data[pos] >> 4) == 6)
    idx, pos, end, rep = idx[ok], pos[ok], end[ok], rep[ok]
    cols["ip"][idx] = 6
    cols["src_hi"][idx] = u64be(data, pos + 8)
    cols["src_lo"][idx] = u64be(data, pos + 16)
    cols["dst_hi"][idx] = u64be(data, pos + 24)
    cols["dst_lo"][idx] = u64be(data, pos + 32)
    cols["ttl"][idx] = data[pos + 7]
    plen = u16be(data, pos + 4).astype(np.int64)
    nh = data[pos + 6].copy()
    cur = pos + 40
    alive = np.ones(len(idx), bool)
    for _ in range(MAX_EXT_HEADERS):
        ext = alive & np.isin(nh, IPV6_EXT)
        if not ext.any():
            break
        alive &= ~ext | (cur + 8 <= end)
        ext &= alive
        e = np.flatnonzero(ext)
        c, h = cur[e], nh[e]
        size = np.where(h == 44, 8, np.where(h == 51, (data[c + 1].astype(np.int64) + 2) * 4,
                                             (data[c + 1].astype(np.int64) + 1) * 8))
        fo = u16be(data, c + 2)
        alive[e] &= ~((h == 44) & ((fo & 0xFFF9) != 0))  # a real fragment: no transport
        jumbo = (h == 0) & (plen[e] == 0) & (data[c + 2] == 0xC2) & (data[c + 3] == 4)
        plen[e] = np.where(jumbo, u32be(data, c + 4).astype(np.int64), plen[e])
        nh[e] = data[c]
        cur[e] = c + size
    # A zero payload length without a jumbo option stays zero (Wireshark 4.0
    # then finds no room for a transport header).
    cols["proto"][idx] = np.where(alive, nh.astype(np.int16), -1)
    l4[idx] = np.where(alive & (cur <= end), cur, -1)
    l4_len[idx] = np.minimum(plen + 40, rep - pos) - (cur - pos)


def _tcp(data, idx, l4_all, len_all, end_all, cols, detail) -> None:
    o, end, tlen = l4_all[idx], end_all[idx], len_all[idx]
    ok = (o + 20 <= end) & (tlen >= 20)
    idx, o, end, tlen = idx[ok], o[ok], end[ok], tlen[ok]
    cols["tcp"][idx] = True
    cols["sport"][idx] = u16be(data, o)
    cols["dport"][idx] = u16be(data, o + 2)
    cols["seq"][idx] = u32be(data, o + 4)
    cols["ack"][idx] = u32be(data, o + 8)
    cols["flags"][idx] = u16be(data, o + 12) & 0x0FFF
    cols["win"][idx] = u16be(data, o + 14)
    hlen = (data[o + 12] >> 4).astype(np.int64) * 4
    cols["hlen"][idx] = hlen
    seglen = tlen - hlen
    valid = (hlen >= 20) & (seglen >= 0)
    cols["seglen"][idx] = np.where(valid, np.minimum(seglen, 2**31 - 1), -1)
    p = o + hlen
    have = np.where(valid, np.minimum(seglen, end - p), 0)
    rec = have >= 6
    b0, b1, b2 = data[p], data[p + 1], data[p + 2]
    tls = rec & (b1 == 3) & (b2 <= 4)
    hs = tls & (b0 == 0x16)
    cols["tls_hs"][idx[hs]] = data[p[hs] + 5]
    alert = np.flatnonzero(tls & (b0 == 0x15))
    if len(alert):  # description when the record is a plaintext alert, else 256
        pa = p[alert]
        plain = (u16be(data, pa + 3) == 2) & (have[alert] >= 7)
        cols["tls_alert"][idx[alert]] = np.where(plain, data[pa + 6].astype(np.int16), 256)
    if detail:
        _tcp_options(data, idx, o + 20, np.minimum(o + hlen, end), cols)


def _tcp_options(data, idx, start, stop, cols) -> None:
    """MSS, window scale, SACK-permitted, SACK blocks and timestamps."""
    cur = start.copy()
    live = np.flatnonzero(cur < stop)
    for _ in range(40):
        if not len(live):
            break
        c = cur[live]
        kind = data[c]
        size = np.where(kind <= 1, 1, data[c + 1].astype(np.int64))
        fits = (kind <= 1) | ((size >= 2) & (c + size <= stop[live]))
        row = idx[live]
        for k, ln, name in ((2, 4, "mss"), (3, 3, "wscale")):
            m = fits & (kind == k) & (size == ln)
            getter = u16be if k == 2 else (lambda d, q: d[q])
            cols[name][row[m]] = getter(data, c[m] + 2)
        cols["sack_perm"][row[fits & (kind == 4)]] = True
        m = fits & (kind == 5)
        cols["sack_blocks"][row[m]] = (size[m] - 2) // 8
        m = fits & (kind == 8) & (size == 10)
        cols["tsval"][row[m]] = u32be(data, c[m] + 2)
        cols["tsecr"][row[m]] = u32be(data, c[m] + 6)
        cur[live] = c + size
        live = live[fits & (kind != 0) & (cur[live] < stop[live])]


def _udp(data, idx, l4_all, end_all, cols) -> None:
    o = l4_all[idx]
    ok = o + 8 <= end_all[idx]
    idx, o = idx[ok], o[ok]
    cols["sport"][idx] = u16be(data, o)
    cols["dport"][idx] = u16be(data, o + 2)


def _icmp(data, idx, l4_all, end_all, cols, v6: bool) -> None:
    o, end = l4_all[idx], end_all[idx]
    ok = o + 4 <= end
    idx, o, end = idx[ok], o[ok], end[ok]
    kind = data[o]
    cols["icmp_type"][idx] = kind
    cols["icmp_code"][idx] = data[o + 1]
    err = np.isin(kind, ICMPV6_ERRORS if v6 else ICMP_ERRORS)
    idx, q, end = idx[err], o[err] + 8, end[err]
    if v6:
        ok = (q + 40 <= end) & ((data[q] >> 4) == 6)
        idx, q, end = idx[ok], q[ok], end[ok]
        cols["q_ip"][idx] = 6
        for name, at in (("q_src_hi", 8), ("q_src_lo", 16), ("q_dst_hi", 24), ("q_dst_lo", 32)):
            cols[name][idx] = u64be(data, q + at)
        cols["q_proto"][idx] = data[q + 6]
        inner = q + 40
    else:
        ok = (q + 20 <= end) & ((data[q] >> 4) == 4) & ((data[q] & 0x0F) >= 5)
        idx, q, end = idx[ok], q[ok], end[ok]
        cols["q_ip"][idx] = 4
        cols["q_src_lo"][idx] = u32be(data, q + 12).astype(np.uint64) | V4_MAPPED
        cols["q_dst_lo"][idx] = u32be(data, q + 16).astype(np.uint64) | V4_MAPPED
        cols["q_proto"][idx] = data[q + 9]
        inner = q + (data[q] & 0x0F).astype(np.int64) * 4
    ports = inner + 4 <= end
    cols["q_sport"][idx[ports]] = u16be(data, inner[ports])
    cols["q_dport"][idx[ports]] = u16be(data, inner[ports] + 2)
    seq = ports & (inner + 8 <= end) & (cols["q_proto"][idx] == TCP)
    cols["q_seq"][idx[seq]] = u32be(data, inner[seq] + 4)
