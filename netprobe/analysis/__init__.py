"""Packet-level analysis of captures: the public Python API.

`read(path)` gives one row per packet, `flows(packets)` one row per TCP
stream, `verdicts(flows)` the FAILURES.md class of each flow from packets
alone, `totals(path or packets)` the capture-wide counts defined as
tshark defines them, and `dissect(path, flows)` Wireshark's view of the
flows that are not `ok` (see docs/analyze.md).

Owns: the pandas surface. pandas is imported inside the functions so that
`netprobe analyze` (which uses `netprobe.analysis.pipeline`) starts fast.
"""

from __future__ import annotations

import ipaddress
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from netprobe.analysis import counts, pipeline
from netprobe.analysis.counts import TOTALS_FIELDS
from netprobe.capture import tunnels
from netprobe.core import errors, rules
from netprobe.core.settings import DISSECT_LIMIT, DISSECT_TIMEOUT

if TYPE_CHECKING:
    import pandas as pd

    from netprobe.analysis.wireshark import Dissection

__all__ = ["CaptureDamageWarning", "Dissection", "ExpertInfo", "HttpMessage", "TOTALS_FIELDS",
           "TlsAlert", "WiresharkView", "dissect", "flows", "read", "totals", "verdicts"]


class CaptureDamageWarning(UserWarning):
    """The capture is damaged; the result holds what was read before the damage."""


FLAG_LETTERS = ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "A"), (0x20, "U"),
                (0x40, "E"), (0x80, "C"))
_HIDDEN = {"unknown_link", "tcp", "outer_ip"}
_ADDRS = ("src", "dst", "q_src", "q_dst", "outer_src", "outer_dst")
_VERSION = {"src": "ip", "dst": "ip", "q_src": "q_ip", "q_dst": "q_ip", "outer_src": "outer_ip",
            "outer_dst": "outer_ip"}
# columns holding an index into a list of names, shown as the names
_NAMED = {"tunnel": tunnels.KINDS, "encrypted": tunnels.ENCRYPTED}


def addresses(hi: np.ndarray, lo: np.ndarray, version: np.ndarray) -> np.ndarray:
    """Render (hi, lo) address pairs as strings ('' where `version` is 0)."""
    if not version.any():  # e.g. the outer addresses of a capture without tunnels
        return np.full(len(version), "", dtype=object)
    hi, lo, version = (np.asarray(c, dtype=np.uint64) for c in (hi, lo, version))
    first, inverse = _distinct_rows(hi, lo, version)
    names = np.asarray([_address(int(hi[i]), int(lo[i]), int(version[i])) for i in first],
                       dtype=object)
    rendered: np.ndarray = names[inverse]
    return rendered


def _address(high: int, low: int, version: int) -> str:
    if version == 4:
        return str(ipaddress.IPv4Address(low & 0xFFFFFFFF))
    if version == 6:
        return str(ipaddress.IPv6Address((high << 64) | low))
    return ""


KEY_LIMIT = 2**62
"""`_distinct_rows` keeps its combined key below this (int64, never overflows)."""


def _distinct_rows(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A row of each distinct tuple of `columns`, and each row's tuple number.

    One 1-D `np.unique` per column, combined into one int64 key: about 40
    times faster than `np.unique(axis=0)`, which compares rows as raw bytes.
    """
    key = np.zeros(len(columns[0]), np.int64)
    span = 1
    for column in columns:
        values, inverse = np.unique(column, return_inverse=True)
        if span * len(values) >= KEY_LIMIT:  # renumber the key first: it stays below n * n
            key = np.unique(key, return_inverse=True)[1].astype(np.int64)
            span = int(key.max()) + 1
        key = key * len(values) + inverse.ravel()
        span *= max(len(values), 1)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse.ravel()


def split_addresses(names: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of `addresses`: strings to (hi, lo, version) arrays."""
    uniq, inv = np.unique(np.asarray(names, dtype=str), return_inverse=True)
    hi: list[int] = []
    lo: list[int] = []
    ver: list[int] = []
    for name in uniq:
        if not name:
            parts = (0, 0, 0)
        else:
            a = ipaddress.ip_address(name)
            if a.version == 4:
                parts = (0, int(a) | 0xFFFF00000000, 4)
            else:
                parts = (int(a) >> 64, int(a) & (2**64 - 1), 6)
        hi.append(parts[0])
        lo.append(parts[1])
        ver.append(parts[2])
    pick = inv.ravel()
    return (np.asarray(hi, np.uint64)[pick], np.asarray(lo, np.uint64)[pick],
            np.asarray(ver, np.uint8)[pick])


def names(codes: np.ndarray, table: tuple[str, ...]) -> np.ndarray:
    """`table[code]` for each code, as strings."""
    return np.asarray(table, dtype=object)[codes.astype(np.int64)]


def codes(values: Any, table: tuple[str, ...]) -> np.ndarray:
    """Inverse of `names`."""
    uniq, inv = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    return np.asarray([table.index(name) for name in uniq], np.uint8)[inv.ravel()]


def _flag_names(flags: np.ndarray) -> np.ndarray:
    uniq, inv = np.unique(flags, return_inverse=True)
    names = ["".join(c for bit, c in FLAG_LETTERS if int(f) & bit) for f in uniq]
    return np.asarray(names, dtype=object)[inv.ravel()]


def _frame(table: dict[str, np.ndarray]) -> pd.DataFrame:
    import pandas as pd

    out: dict[str, Any] = {}
    for k, v in table.items():
        if k in _HIDDEN or k.endswith(("_hi", "_lo")):
            continue
        out[k] = v
    for name in _ADDRS:
        out[name] = addresses(table[f"{name}_hi"], table[f"{name}_lo"], table[_VERSION[name]])
    for name, table_of_names in _NAMED.items():
        out[name] = names(table[name], table_of_names)
    out["flag_names"] = np.where(table["tcp"], _flag_names(table["flags"]), "")
    return pd.DataFrame(out)


def read(path: str | Path) -> pd.DataFrame:
    """Read a pcap/pcapng (optionally gzip/zstd) capture into one row per packet.

    Returns:
        A DataFrame: time (epoch s), interface, ifindex (SLL2), frame_len,
        ip, src, dst, ttl, proto, sport, dport, flags, flag_names, seq, ack,
        win, hlen, seglen, mss, wscale, sack_perm, sack_blocks, tsval, tsecr,
        tls_hs, tls_alert, icmp_type, icmp_code, q_* (the flow an ICMP error
        quotes), tunnel, outer_src, outer_dst, vni (the outermost tunnel of
        a packet decoded inside one; its other columns are the inner
        packet's), encrypted, stream (tcp.stream, -1 if not TCP),
        retransmission, from_client. See docs/analyze.md.

    Raises:
        CaptureFormatError: the file cannot be read at all. A file damaged
            after some packets gives those packets and a
            `CaptureDamageWarning`.
    """
    from netprobe.analysis.load import load

    capture = load(path, detail=True)
    if capture.damage:
        warnings.warn(capture.damage, CaptureDamageWarning, stacklevel=2)
    for note in capture.notes:
        warnings.warn(note, CaptureDamageWarning, stacklevel=2)
    return _frame(pipeline.packet_table(capture.cols))


def _table(packets: pd.DataFrame) -> dict[str, np.ndarray]:
    """The numpy packet table behind a `read()` DataFrame."""
    table = {k: packets[k].to_numpy() for k in packets.columns if k not in _ADDRS}
    for name in _ADDRS:
        table[f"{name}_hi"], table[f"{name}_lo"], version = split_addresses(packets[name])
        if name == "outer_src":
            table["outer_ip"] = version
    for name, table_of_names in _NAMED.items():
        table[name] = codes(packets[name], table_of_names)
    table["tcp"] = packets["stream"].to_numpy() >= 0
    return table


def flows(packets: pd.DataFrame) -> pd.DataFrame:
    """One row per TCP stream of a `read()` DataFrame (see docs/analyze.md)."""
    import pandas as pd

    f = pipeline.flow_table(_table(packets))
    return pd.DataFrame(flow_records(f))


def flow_records(f: dict[str, np.ndarray]) -> dict[str, Any]:
    """Flow table columns with addresses rendered and internal columns dropped."""
    out: dict[str, Any] = {}
    for k, v in f.items():
        if k.endswith(("_hi", "_lo")) or k in ("icmp_proto", "outer_ip"):
            continue
        out[k] = v
    ip = f["ip"]
    out["client"] = addresses(f["client_hi"], f["client_lo"], ip)
    out["server"] = addresses(f["server_hi"], f["server_lo"], ip)
    out["tunnel"] = names(f["tunnel"], tunnels.KINDS)
    for side in ("outer_client", "outer_server"):
        out[side] = addresses(f[f"{side}_hi"], f[f"{side}_lo"], f["outer_ip"])
    icmp_ver = np.where(f["icmp_errors"] > 0, np.where(f["icmp_proto"] == 58, 6, 4), 0)
    out["icmp_from"] = addresses(f["icmp_from_hi"], f["icmp_from_lo"], icmp_ver)
    return out


def verdicts(flow_frame: pd.DataFrame) -> pd.DataFrame:
    """The verdict and its reason per flow, suspicious flows first."""
    cols = ["stream", "client", "client_port", "server", "server_port", "verdict", "reason"]
    out = flow_frame[cols].copy()
    out["_sev"] = rules.severity(out["verdict"].to_numpy())
    return out.sort_values(["_sev", "stream"]).drop(columns="_sev").reset_index(drop=True)


def totals(source: str | Path | pd.DataFrame) -> dict[str, int]:
    """Capture-wide counts (`TOTALS_FIELDS`) of a capture file or a `read()` DataFrame."""
    if isinstance(source, (str, Path)):
        from netprobe.analysis.load import load

        capture = load(source)
        if capture.damage:
            warnings.warn(capture.damage, CaptureDamageWarning, stacklevel=2)
        return counts.count(pipeline.packet_table(capture.cols))
    if not hasattr(source, "columns"):
        raise errors.UsageError("totals: expected a path or a DataFrame from read()")
    return counts.count(_table(source))


def dissect(capture: str | Path, flow_table: pd.DataFrame | dict[str, np.ndarray], *,
            limit: int = DISSECT_LIMIT, timeout: float = DISSECT_TIMEOUT) -> Dissection:
    """Wireshark's view of the flows of FLOW_TABLE whose verdict is not `ok`.

    One tshark run over CAPTURE (through pyshark), with a display filter
    selecting those flows' address and port pairs, gives per flow Wireshark's
    expert info, TLS alerts, HTTP responses and HTTP/2 RST_STREAM/GOAWAY
    frames (`Dissection.views`, by tcp.stream). FLOW_TABLE is `flows(read(capture))`
    or `netprobe.analysis.pipeline.analyse(capture).flows`. At most LIMIT flows,
    most suspicious first (`Dissection.capped` says how many were left out);
    tshark is stopped after TIMEOUT seconds (`Dissection.timed_out`). tshark is
    `NETPROBE_TSHARK`, else `tshark` on PATH. Safe to call from Jupyter (tshark
    runs on a private event loop) and never leaves a tshark process behind.

    Returns:
        A `Dissection`; a tshark that failed on the file says so in `error`.

    Raises:
        MissingToolError: tshark is not installed.
        UsageError: `NETPROBE_TSHARK` names no executable, or LIMIT < 1 or TIMEOUT <= 0.
    """
    from netprobe.analysis import wireshark

    if limit < 1 or not timeout > 0:
        raise errors.UsageError(f"dissecting {capture}: limit must be >= 1 and timeout > 0")
    table: dict[str, np.ndarray] = (
        {k: flow_table[k].to_numpy() for k in flow_table.columns}
        if not isinstance(flow_table, dict) else dict(flow_table))
    rows = wireshark.suspicious_rows(table["verdict"], table["stream"])
    chosen = {k: v[rows[:limit]] for k, v in table.items()}
    if "client" not in chosen:  # the pipeline's table: addresses not rendered yet
        chosen = flow_records(chosen)
    return wireshark.dissect(capture, chosen, len(rows), limit, timeout)


def __getattr__(name: str) -> Any:
    """`Dissection` and its parts, loaded on first use (`netprobe analyze` starts faster)."""
    if name in ("Dissection", "WiresharkView", "ExpertInfo", "TlsAlert", "HttpMessage"):
        from netprobe.analysis import wireshark

        return getattr(wireshark, name)
    raise AttributeError(f"module 'netprobe.analysis' has no attribute {name!r}")
