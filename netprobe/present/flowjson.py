"""The flows of `netprobe analyze`: their fields, their order, and their JSON written from columns.

Owns: the flow fields and their order (`FLOW_FIELDS`), which absent values
are null, the order of the flows (suspicious first), the flows as dicts for
the text table (`flow_dicts`, also the reference the JSON is tested against),
and the `flows` array of `-o json` written straight from the columnar flow
table (`flow_json`): each column is encoded as a whole, a piece of flows at a
time (integers in C, floats by orjson a column at a time, strings by orjson
once per distinct value for the whole capture, other objects by orjson one
at a time) and the compiled `netprobe._native.jsonrows` lays the rows out
(`_join_rows` when it is switched off). No dict per flow: on 102k flows the
dicts took 0.54 s of a 1 s command; the columns take 0.06 s.
Must not: decide verdicts, print, or change a value: `flow_json` gives the
bytes orjson gives for `flow_dicts`.

A new field is one name in `FLOW_FIELDS` (plus `NULL_IF_NEGATIVE` or
`NULL_IF_EMPTY` when it has an absent value), given as a column by
`netprobe.analysis.flow_records`; its dtype chooses its encoding."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson

from netprobe import _native

Table = dict[str, np.ndarray]

FLOW_FIELDS = (
    "stream", "client", "client_port", "server", "server_port", "ip", "tunnel", "outer_client",
    "outer_server", "vni", "first_time",
    "last_time", "packets", "client_bytes", "server_bytes", "syn", "syn_retransmissions",
    "synack", "data_retransmissions", "handshake_rtt", "rst_client", "rst_server", "rst_ttl",
    "fin_client", "fin_server", "icmp_errors", "icmp_type", "icmp_code", "icmp_from",
    "icmp_ttl", "client_hello", "server_hello", "tls_alerts", "alert_description",
    "verdict", "reason",
)
NULL_IF_NEGATIVE = frozenset({"rst_ttl", "icmp_type", "icmp_code", "icmp_ttl", "alert_description",
                              "vni"})
"""Integer fields whose absent value is -1: null in JSON. Floats are null when NaN."""
NULL_IF_EMPTY = frozenset({"icmp_from", "tunnel", "outer_client", "outer_server"})
"""String fields whose absent value is '': null in JSON."""

ROWS_PER_PIECE = 4096
"""Flows written at a time: bounds memory on huge captures (about 2.5 MB of JSON)."""

# Column kinds of netprobe._native.jsonrows.rows
INT, OBJECTS, NUMBERS = 0, 1, 2
Column = tuple[bytes, int, Any, bool]
"""(b'"name":', kind, values, negative is null): see `jsonrows.rows`."""


def flow_order(flows: Table, limit: int = 0) -> np.ndarray:
    """Flow rows, suspicious first then by stream; only the first `limit` (0: all)."""
    from netprobe.core import rules

    return np.lexsort((flows["stream"], rules.severity(flows["verdict"])))[: limit or None]


def flow_dicts(flows: Table, order: np.ndarray,
               extra: Table | None = None) -> list[dict[str, Any]]:
    """The flows at rows `order` as dicts of JSON values (None for null), with EXTRA's
    fields (object columns, one value per flow row) after the others."""
    from netprobe.analysis import flow_records

    rec = flow_records({k: v[order] for k, v in flows.items()})
    rec.update({name: column[order] for name, column in (extra or {}).items()})
    fields = FLOW_FIELDS + tuple(extra or {})
    columns = []
    for name in fields:
        values = rec[name]
        if values.dtype.kind == "f":
            values = np.where(np.isnan(values), None, values.astype(object))
        elif name in NULL_IF_NEGATIVE:
            values = np.where(values < 0, None, values.astype(object))
        elif name in NULL_IF_EMPTY:
            values = np.where(values == "", None, values)
        columns.append(values.tolist())
    return [dict(zip(fields, row, strict=True)) for row in zip(*columns, strict=True)]


def flow_json(flows: Table, order: np.ndarray, native: bool | None = None,
              extra: Table | None = None) -> Iterator[bytes]:
    """The JSON objects of the flows at rows `order`, a piece at a time, and commas between.

    Joined, the pieces are the inside of the `flows` array: the bytes of
    `orjson.dumps(flow_dicts(flows, order, extra))` without its brackets.
    `native`: see `netprobe._native.choose`.
    """
    from netprobe.analysis import flow_records

    compiled = _native.choose("jsonrows", native)
    write = compiled.rows if compiled is not None else _join_rows
    rec = flow_records(flows)  # addresses rendered once; the other columns are the table's own
    rec.update(extra or {})
    fields = FLOW_FIELDS + tuple(extra or {})
    # the JSON of each distinct string, per field, encoded once for all pieces
    caches: dict[str, dict[Any, bytes]] = {
        name: {"": b"null"} if name in NULL_IF_EMPTY else {} for name in fields}
    for lo in range(0, len(order), ROWS_PER_PIECE):
        rows = order[lo: lo + ROWS_PER_PIECE]
        columns = [_column(name, rec[name][rows], caches[name]) for name in fields]
        if lo:
            yield b","  # its own piece: adding it to the next would copy that one
        yield write(columns, len(rows))


def _column(name: str, values: np.ndarray, cache: dict[Any, bytes]) -> Column:
    """One field of some flows, encoded for `jsonrows.rows`."""
    key = orjson.dumps(name) + b":"
    kind, size = values.dtype.kind, values.dtype.itemsize
    if kind == "i" or (kind == "u" and size < 8):
        return key, INT, np.ascontiguousarray(values, np.int64), name in NULL_IF_NEGATIVE
    if kind in "buf":  # by orjson, the whole column at once: NaN and inf are null
        array = np.ascontiguousarray(values, np.float64 if kind == "f" else None)
        return key, NUMBERS, orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1], False
    return key, OBJECTS, (values.tolist(), cache, orjson.dumps), False


def _tokens(values: list[Any], cache: dict[Any, bytes], encode: Any) -> list[bytes]:
    """Python twin of the object columns of `jsonrows.rows`: each value's JSON, from
    `cache` for strings and None (added when missing), else `encode`d every time."""
    distinct = _distinct_strings(values)
    if distinct is None:
        return [_encode_one(v, cache, encode) for v in values]
    for value in distinct - cache.keys():
        cache[value] = encode(value)
    return list(map(cache.__getitem__, values))


def _encode_one(value: Any, cache: dict[Any, bytes], encode: Any) -> bytes:
    if not isinstance(value, str) and value is not None:
        return bytes(encode(value))  # not cached: a dict keeps one of 1, 1.0 and True
    if value not in cache:
        cache[value] = encode(value)
    return cache[value]


def _distinct_strings(values: list[Any]) -> set[str | None] | None:
    """The distinct values when all are strings or None, else None (lists and dicts cannot
    be in a set, and a set keeps one of 1, 1.0 and True)."""
    try:
        distinct = set(values)
    except TypeError:
        return None
    return distinct if all(isinstance(v, str) or v is None for v in distinct) else None


def _join_rows(columns: list[Column], n: int) -> bytes:
    """Python twin of `netprobe._native.jsonrows.rows`: the same bytes, about 5 times slower."""
    width = 2 * len(columns) + 2
    parts: list[bytes] = [b""] * (n * width)
    parts[0::width] = [b",{"] * n
    for j, (key, kind, data, null_negative) in enumerate(columns):
        parts[1 + 2 * j::width] = [(b"," if j else b"") + key] * n
        parts[2 + 2 * j::width] = _values(kind, data, null_negative, n)
    parts[width - 1::width] = [b"}"] * n
    if n:
        parts[0] = b"{"
    return b"".join(parts)


def _values(kind: int, data: Any, null_negative: bool, n: int) -> list[bytes]:
    """The JSON text of each value of one column (see `Column`)."""
    if kind == OBJECTS:
        return _tokens(*data)
    if kind == NUMBERS:
        return data.split(b",") if n else []
    text = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",") if n else []
    if null_negative:
        for i in np.flatnonzero(data < 0).tolist():
            text[i] = b"null"
    return text
