"""TCP conversations, streams and Wireshark's retransmission marking, vectorized.

Owns: the conversation key (both endpoints, any interface or VLAN, as
Wireshark 4.0 keys `tcp.stream`), splitting a conversation into streams when
a SYN reuses the ports with a new initial sequence number, and the
`tcp.analysis.retransmission` rule of `tcp_analyze_sequence_number`
(packet-tcp.c):

- a segment that carries data, SYN or FIN and whose sequence number is
  below the highest `nextseq` seen in its direction ("not advanced");
- except a keep-alive (0 or 1 byte at `nextseq - 1`) and a segment of more
  than one byte starting at `nextseq - 1`;
- except an out-of-order segment: it arrives within the initial RTT (3 ms
  before the handshake's ACK was seen) of the segment that set `nextseq`
  and does not end exactly at `nextseq`;
- plus the "spurious" case: data entirely below the last ACK the other
  direction sent.

Not modelled (rare, documented in docs/analyze.md): zero-window probes,
fast retransmissions that would otherwise be out-of-order, the 1000
unacked-segment cap.

The numpy code here is the reference; `analyse` uses the compiled module
`netprobe._native.tcp` (one serial pass in frame order) when it is built,
which gives the same stream, direction and mark for every packet.
Must not: read files or build DataFrames.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import numpy.typing as npt

from netprobe import _native
from netprobe.core.packets import ACK, FIN, RST, SYN

OOO_DEFAULT = 0.003  # seconds, Wireshark's threshold before an initial RTT is known
Array = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class TcpView:
    """Per-TCP-packet results, aligned with the `index` of the packets analysed."""

    index: Array
    """Row of each TCP packet in the packet columns."""
    stream: Array
    """Stream number, in order of first appearance (like `tcp.stream`)."""
    from_client: npt.NDArray[np.bool_]
    """Sent by the stream's client (the side that sent the first SYN, else the first packet)."""
    retransmission: npt.NDArray[np.bool_]
    """Wireshark would mark `tcp.analysis.retransmission`."""


def _mix(h: npt.NDArray[np.uint64], v: npt.NDArray[np.generic]) -> npt.NDArray[np.uint64]:
    """One round of a 64-bit multiplicative hash (collisions ~ n**2 / 2**65)."""
    h = (h ^ v.astype(np.uint64)) * np.uint64(0x9E3779B97F4A7C15)
    return h ^ (h >> np.uint64(29))


def conversation_keys(
    src: tuple[np.ndarray, np.ndarray, np.ndarray], dst: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """Hash of the unordered endpoint pair, and whether src is the 'higher' endpoint."""
    (sh, sl, sp), (dh, dl, dp) = src, dst
    swap = (sh > dh) | ((sh == dh) & ((sl > dl) | ((sl == dl) & (sp > dp))))
    lo = [np.where(swap, d, s) for s, d in ((sh, dh), (sl, dl), (sp, dp))]
    hi = [np.where(swap, s, d) for s, d in ((sh, dh), (sl, dl), (sp, dp))]
    h = np.full(len(sh), 0x243F6A8885A308D3, dtype=np.uint64)
    for part in (*lo, *hi):
        h = _mix(h, part)
    return h, swap


def _group_starts(group: Array) -> Array:
    """For rows sorted by `group`, the row index where each row's group starts."""
    n = len(group)
    first = np.ones(n, bool)
    first[1:] = group[1:] != group[:-1]
    return np.maximum.accumulate(np.where(first, np.arange(n), 0))


def _last_where(mask: npt.NDArray[np.bool_], starts: Array, inclusive: bool) -> Array:
    """Index of the last row j (< i, or <= i) in i's group with mask[j], else -1."""
    n = len(mask)
    j = np.where(mask, np.arange(n), -1)
    if not inclusive:
        j = np.concatenate(([-1], j[:-1]))
    j = np.maximum.accumulate(j)
    return np.where(j >= starts, j, -1)


def _streams(conv: Array, flags: Array, seq: Array, ack: Array, swap: np.ndarray) -> Array:
    """Split conversations (rows sorted by conversation, then frame) into streams.

    Wireshark starts a new stream when a SYN without ACK arrives whose
    sequence number differs from the base sequence number already known for
    its direction (the first seq seen that way, or the reverse ACK - 1).
    """
    n = len(conv)
    starts = _group_starts(conv)
    new = np.zeros(n, bool)
    new[starts] = True
    syn = (flags & (SYN | ACK)) == SYN
    cand = np.flatnonzero(syn & ~new)
    # A SYN repeating the conversation's opening SYN never splits it; only
    # conversations with another SYN need the serial walk below.
    head = starts[cand]
    same = syn[head] & (swap[head] == swap[cand]) & (seq[head] == seq[cand])
    busy = np.isin(conv[cand], conv[cand[~same]])
    for i in cand[busy]:
        s = _current_start(new, starts[i], i)
        base = _base_seq(flags[s:i], seq[s:i], ack[s:i], swap[s:i], swap[i])
        if base is not None and base != seq[i]:
            new[i] = True
    return np.cumsum(new) - 1


def _current_start(new: np.ndarray, lo: int, i: int) -> int:
    return lo + int(np.flatnonzero(new[lo:i])[-1])


def _base_seq(flags: Array, seq: Array, ack: Array, swap: np.ndarray, d: bool) -> int | None:
    """The base sequence number Wireshark knows for direction `d`, or None."""
    fwd = np.flatnonzero(swap == d)
    rev = np.flatnonzero((swap != d) & ((flags & ACK) != 0))
    first_fwd = int(fwd[0]) if len(fwd) else len(flags)
    first_rev = int(rev[0]) if len(rev) else len(flags)
    if first_fwd == first_rev == len(flags):
        return None
    if first_fwd < first_rev:
        j = first_fwd
        return int(seq[j]) if flags[j] & SYN else (int(seq[j]) - 1) & 0xFFFFFFFF
    return (int(ack[first_rev]) - 1) & 0xFFFFFFFF


def _unwrap(seq: Array, starts: Array) -> Array:
    """Sequence numbers made monotonic-comparable within each group (no 2**32 wrap)."""
    d = np.diff(seq, prepend=seq[:1])
    d = ((d + 2**31) % 2**32) - 2**31
    d[starts == np.arange(len(seq))] = 0
    c = np.cumsum(d)
    return np.asarray(c - c[starts] + seq[starts], dtype=np.int64)


def _seq_lt(a: Array, b: Array) -> npt.NDArray[np.bool_]:
    """Wireshark's LT_SEQ: a precedes b modulo 2**32."""
    return ((a - b) & 0xFFFFFFFF) >= 2**31


def _retransmissions(
    stream: Array, direction: np.ndarray, t: np.ndarray,
    flags: Array, seq: Array, ack: Array, seglen: Array, first_rtt: np.ndarray,
) -> npt.NDArray[np.bool_]:
    """Mark retransmissions; rows sorted by (stream, frame).

    Each direction is handled on its own subset of rows, which stays
    grouped by stream and in frame order, so no sort is needed.
    """
    n = len(stream)
    out = np.zeros(n, bool)
    rev_ack = _reverse_last_ack(stream, direction, ack)
    for d in (False, True):
        sel = np.flatnonzero(direction == d)
        if len(sel):
            out[sel] = _one_direction(stream[sel], t[sel], flags[sel], seq[sel], seglen[sel],
                                      first_rtt[sel], rev_ack[sel])
    return out


def _one_direction(
    g: Array, t: np.ndarray, fl: Array, s: Array, sl: Array, thres: np.ndarray, rev_ack: Array,
) -> npt.NDArray[np.bool_]:
    """Retransmission marks for the rows of one direction, grouped by stream."""
    n = len(g)
    gs = _group_starts(g)
    synfin = ((fl & (SYN | FIN)) != 0).astype(np.int64)
    useq = _unwrap(s, gs)
    nxt = useq + sl + synfin
    # exclusive running max of nextseq per stream, and when it was last raised
    offset = _stacking_offsets(nxt, gs)
    run = np.maximum.accumulate(nxt + offset)
    prev = np.empty(n, np.int64)
    prev[0] = np.iinfo(np.int64).min
    prev[1:] = run[:-1]
    is_set = np.arange(n) > gs
    prev_next = np.where(is_set, prev - offset, 0)
    raised = np.ones(n, bool)
    raised[1:] = run[1:] > run[:-1]
    setter = _last_where(raised, gs, inclusive=False)
    next_time = np.where(setter >= 0, t[np.maximum(setter, 0)], -np.inf)
    candidate = (sl > 0) | (synfin > 0)
    not_adv = is_set & (useq < prev_next)
    keepalive = is_set & (sl <= 1) & (useq == prev_next - 1) & ((fl & (SYN | FIN | RST)) == 0)
    not_adv &= ~((sl > 1) & (useq == prev_next - 1))
    ooo = not_adv & ((t - next_time) < thres) & (prev_next != useq + sl + synfin)
    # spurious: all data at or below the last ACK the other direction sent
    end = (s + sl) & 0xFFFFFFFF
    spurious = (sl > 0) & (rev_ack > 0) & ~_seq_lt(rev_ack, end)
    return np.asarray(candidate & ~keepalive & (spurious | (not_adv & ~ooo)), dtype=np.bool_)


def _stacking_offsets(v: Array, starts: Array) -> Array:
    """Per row, an offset that moves each group's values above all earlier groups' values.

    One running max over `v + offset` is then a running max per group, for
    any values (a fixed stride per group would not hold unwrapped sequence
    numbers that drift far from 2**32 over many packets).
    """
    head = starts == np.arange(len(v))
    heads = np.flatnonzero(head)
    lo = np.minimum.reduceat(v, heads)
    span = np.maximum.reduceat(v, heads) - lo + 1
    return np.asarray((np.cumsum(span) - span - lo)[np.cumsum(head) - 1], dtype=np.int64)


def _reverse_last_ack(stream: Array, direction: np.ndarray, ack: Array) -> Array:
    """For rows sorted by (stream, frame): the ack of the last earlier row of the other
    direction."""
    starts = _group_starts(stream)
    out = np.zeros(len(stream), np.int64)
    for d in (False, True):
        j = _last_where(direction == d, starts, inclusive=False)
        mine = (direction != d) & (j >= 0)
        out[mine] = ack[j[mine]]
    return out


def _first_rtt(stream: Array, flags: Array, t: np.ndarray) -> np.ndarray:
    """Out-of-order threshold per row: the stream's initial RTT once known, else 3 ms.

    Wireshark measures it from the most recent SYN to the first later
    segment with ACK and without SYN (rows sorted by stream, frame).
    """
    n = len(stream)
    starts = _group_starts(stream)
    syn = (flags & (SYN | ACK)) == SYN
    pure_ack = (flags & (SYN | ACK)) == ACK
    last_syn = _last_where(syn, starts, inclusive=False)
    cand = pure_ack & (last_syn >= 0)
    rtt = np.where(cand, t - t[np.maximum(last_syn, 0)], np.nan)
    # the first candidate of each stream fixes the RTT for the rows after it
    first = _first_where(cand, starts)
    thres = np.full(n, OOO_DEFAULT)
    known = (first >= 0) & (np.arange(n) > first)
    thres[known] = rtt[first[known]]
    return thres


def _first_where(mask: npt.NDArray[np.bool_], starts: Array) -> Array:
    """Index of the first row of each row's group with mask set (-1 if none)."""
    n = len(mask)
    if n == 0:
        return np.zeros(0, np.int64)
    heads = np.flatnonzero(starts == np.arange(n))
    first = np.minimum.reduceat(np.where(mask, np.arange(n), n), heads)
    per_row = first[np.cumsum(starts == np.arange(n)) - 1]
    return np.where(per_row < n, per_row, -1)


PIECE_ROWS = 1 << 18  # rows per slice of the per-stream passes: bounds temporary memory


def _keys(cols: dict[str, np.ndarray], index: Array) -> tuple[npt.NDArray[np.uint64], np.ndarray]:
    """Conversation keys and directions, computed slice by slice."""
    key = np.empty(len(index), np.uint64)
    swap = np.empty(len(index), bool)
    for lo in range(0, len(index), PIECE_ROWS):
        i = index[lo: lo + PIECE_ROWS]
        key[lo: lo + len(i)], swap[lo: lo + len(i)] = conversation_keys(
            (cols["src_hi"][i], cols["src_lo"][i], cols["sport"][i]),
            (cols["dst_hi"][i], cols["dst_lo"][i], cols["dport"][i]),
        )
    return key, swap


def _pieces(group: Array) -> list[tuple[int, int]]:
    """Slices of about PIECE_ROWS rows that never split a stream."""
    n = len(group)
    cuts = [0]
    while cuts[-1] < n:
        at = min(cuts[-1] + PIECE_ROWS, n)
        if at < n:  # move the cut back to the start of the stream it falls in
            at = int(np.searchsorted(group, group[at], "left"))
            if at <= cuts[-1]:  # one stream longer than a piece: take it whole
                at = int(np.searchsorted(group, group[cuts[-1]], "right"))
        cuts.append(at)
    return list(itertools.pairwise(cuts))


def analyse(cols: dict[str, np.ndarray], native: bool | None = None) -> TcpView:
    """Streams, directions and retransmissions of the TCP packets in `cols`.

    `native`: None uses the compiled module when it is available, False the
    numpy code, True the compiled module (RuntimeError when it is not built or
    NETPROBE_NATIVE=0). Both give the same result per packet; the numpy view
    lists the packets by conversation, the compiled one in frame order.
    """
    compiled = _native.choose("tcp", native)
    if compiled is not None:
        return _analyse_compiled(compiled, cols)
    return _analyse_numpy(cols)


# the columns the compiled module reads, with the dtypes it expects
NATIVE_COLUMNS = {
    "tcp": np.bool_, "src_hi": np.uint64, "src_lo": np.uint64, "dst_hi": np.uint64,
    "dst_lo": np.uint64, "sport": np.int32, "dport": np.int32, "flags": np.uint16,
    "seq": np.uint32, "ack": np.uint32, "seglen": np.int32, "time": np.float64,
}


def _analyse_compiled(compiled: ModuleType, cols: dict[str, np.ndarray]) -> TcpView:
    """`analyse` in one compiled pass over the packets (netprobe/_native/tcp.c)."""
    arrays: dict[str, np.ndarray] = {k: np.ascontiguousarray(cols[k], dtype=t)
                                     for k, t in NATIVE_COLUMNS.items()}
    n = len(arrays["tcp"])
    stream = np.full(n, -1, np.int64)
    client = np.zeros(n, bool)
    retrans = np.zeros(n, bool)
    compiled.analyse(arrays, stream, client, retrans)
    index = np.flatnonzero(arrays["tcp"])
    return TcpView(index, stream[index], client[index], retrans[index])


def _analyse_numpy(cols: dict[str, np.ndarray]) -> TcpView:
    """The reference: sort by conversation, then per-stream scans."""
    index = np.flatnonzero(cols["tcp"])
    key, swap = _keys(cols, index)
    order = np.argsort(key, kind="stable")  # by conversation, then frame
    rows = index[order]
    del index
    k = key[order]
    del key
    head = np.ones(len(k), bool)
    head[1:] = k[1:] != k[:-1]
    del k
    conv = np.cumsum(head) - 1
    del head
    sw = swap[order]
    del swap, order
    flags = cols["flags"][rows].astype(np.int64)
    seq = cols["seq"][rows].astype(np.int64)
    ack = cols["ack"][rows].astype(np.int64)
    group = _streams(conv, flags, seq, ack, sw)  # increasing along rows
    del conv
    client = np.zeros(len(rows), bool)
    retrans = np.zeros(len(rows), bool)
    for lo, hi in _pieces(group):
        sl = slice(lo, hi)
        client[sl] = sw[sl] == _client_side(group[sl], flags[sl], sw[sl])
        retrans[sl] = _piece_retransmissions(cols, rows[sl], group[sl], flags[sl], seq[sl],
                                             ack[sl], sw[sl])
    # public numbers in order of first appearance, like tcp.stream
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else group
    rank = np.empty(len(starts), np.int64)
    rank[np.argsort(rows[starts], kind="stable")] = np.arange(len(starts))
    return TcpView(rows, rank[group] if len(group) else group, client, retrans)


def _piece_retransmissions(
    cols: dict[str, np.ndarray], rows: Array, group: Array, flags: Array, seq: Array,
    ack: Array, sw: np.ndarray,
) -> npt.NDArray[np.bool_]:
    """Retransmission marks for whole streams `rows` (sorted by stream, frame)."""
    seglen = cols["seglen"][rows].astype(np.int64)
    out = np.zeros(len(rows), bool)
    a = np.flatnonzero(seglen >= 0)  # Wireshark skips segments shorter than their header
    if len(a):
        g, t = group[a], cols["time"][rows[a]]
        thres = _first_rtt(g, flags[a], t)
        out[a] = _retransmissions(g, sw[a], t, flags[a], seq[a], ack[a], seglen[a], thres)
    return out


def _client_side(stream: Array, flags: Array, swap: np.ndarray) -> np.ndarray:
    """Per row: the `swap` value of the stream's client (first SYN sender, else first sender)."""
    starts = _group_starts(stream)
    syn = (flags & (SYN | ACK)) == SYN
    first_syn = _first_where(syn, starts)
    who = np.where(first_syn >= 0, swap[np.maximum(first_syn, 0)], swap[starts])
    return who
