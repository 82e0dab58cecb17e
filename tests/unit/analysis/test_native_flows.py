"""The compiled flow table (netprobe._native.flows) equals the numpy one, column for column."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netprobe import _native
from netprobe.analysis import flowtable, pipeline
from netprobe.analysis.load import load
from netprobe.capture import decode
from netprobe.core import errors
from tests.unit.analysis.test_generated import NAMES, _variants

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / ".." / "shared" / "corpus" / "tcpdump" / "tests"
CORPUS_FILES = sorted(CORPUS.glob("*")) if CORPUS.is_dir() else []
CAPTURES = sorted(p for p in (ROOT / "captures").rglob("*") if p.suffix in (".pcap", ".pcapng"))


def assert_same_flows(packets: flowtable.Table) -> None:
    """build() gives the same columns, dtypes and values compiled and in numpy."""
    expected = flowtable.build(packets, native=False)
    got = flowtable.build(packets, native=True)
    assert list(got) == list(expected)
    for name, column in expected.items():
        assert got[name].dtype == column.dtype, name
        np.testing.assert_array_equal(got[name], column, err_msg=name)


def _packet_table(path: Path) -> flowtable.Table | None:
    try:
        return pipeline.packet_table(load(path).cols)
    except errors.CaptureFormatError:
        return None  # unreadable before its first packet: nothing to compare


def test_compiled_module_is_built() -> None:
    assert _native.module("flows") is not None, "run scripts/build_native.sh flows"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.name for p in CORPUS_FILES])
def test_corpus(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        packets = _packet_table(path)
    if packets is not None:
        assert_same_flows(packets)


@pytest.mark.parametrize("path", CAPTURES, ids=[str(p.relative_to(ROOT)) for p in CAPTURES])
def test_captures(path: Path) -> None:
    packets = _packet_table(path)
    assert packets is not None
    assert_same_flows(packets)


def test_crafted_variants(tmp_path: Path) -> None:
    variants = _variants(tmp_path)
    for name in NAMES:
        assert_same_flows(pipeline.packet_table(load(variants[name]).cols))


# Few distinct values, so streams, endpoints, times and interfaces collide.
ADDRESSES = [(0, 0xFFFF0A000001), (0, 0xFFFF0A60000A), (0xFD00 << 48, 1)]
PORTS = [-1, 443, 40001, 40002]
FLAGS = [0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01, 0x03, 0x06, 0x17, 0xFFFF, 0]
TIMES = [0.0, 0.5, 1.0, 1.0, 2.0, 3.25, -1.0, 1e9, float("nan")]
SEGLEN = [-1, 0, 1, 24, 31, 32, 33, 1448, 2**31 - 1]

row = st.fixed_dictionaries({
    "stream": st.integers(-2, 6),
    "from_client": st.booleans(),
    "retransmission": st.booleans(),
    "flags": st.one_of(st.sampled_from(FLAGS), st.integers(0, 0xFFFF)),
    "time": st.sampled_from(TIMES),
    "seglen": st.sampled_from(SEGLEN),
    "tls_hs": st.sampled_from([-1, -1, 0, 1, 2, 3]),
    "tls_alert": st.sampled_from([-1, -1, -1, 0, 40, 48]),
    "ifindex": st.sampled_from([-1, 0, 1, 2, 7, 2**62]),
    "ttl": st.integers(-1, 255),
    "ip": st.sampled_from([0, 4, 6]),
    "src": st.sampled_from(ADDRESSES),
    "dst": st.sampled_from(ADDRESSES),
    "sport": st.sampled_from(PORTS),
    "dport": st.sampled_from(PORTS),
    "quotes": st.booleans(),
})


def _table(rows: list[dict[str, object]], wide: bool) -> flowtable.Table:
    """A packet table of `rows`; a packet that quotes quotes its own reversed flow as TCP."""
    t = decode.empty(len(rows), detail=False)
    t["stream"] = np.array([r["stream"] for r in rows], np.int64 if wide else np.int32)
    t["from_client"] = np.array([r["from_client"] for r in rows], bool)
    t["retransmission"] = np.array([r["retransmission"] for r in rows], bool)
    for name in ("flags", "time", "seglen", "tls_hs", "tls_alert", "ifindex", "ttl", "ip",
                 "sport", "dport"):
        t[name] = np.array([r[name] for r in rows], dtype=t[name].dtype)
    for side in ("src", "dst"):
        t[f"{side}_hi"] = np.array([r[side][0] for r in rows], np.uint64)  # type: ignore[index]
        t[f"{side}_lo"] = np.array([r[side][1] for r in rows], np.uint64)  # type: ignore[index]
    q = np.array([bool(r["quotes"]) for r in rows], bool)
    t["q_ip"] = np.where(q, 4, 0).astype(np.uint8)
    t["q_proto"] = np.where(q, decode.TCP, -1).astype(np.int16)
    t["icmp_type"] = np.where(q, 3, -1).astype(np.int16)
    for a, b in (("src", "dst"), ("dst", "src")):
        t[f"q_{a}_hi"], t[f"q_{a}_lo"] = t[f"{b}_hi"].copy(), t[f"{b}_lo"].copy()
    t["q_sport"], t["q_dport"] = t["dport"].copy(), t["sport"].copy()
    return t


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row, max_size=60), st.booleans())
def test_random_packet_tables(rows: list[dict[str, object]], wide: bool) -> None:
    assert_same_flows(_table(rows, wide))


def _syns(streams: list[int], ifindex: list[int]) -> flowtable.Table:
    rows = [{**_SYN, "stream": s, "ifindex": i} for s, i in zip(streams, ifindex, strict=True)]
    return _table(rows, wide=False)


_SYN = {"from_client": True, "retransmission": False, "flags": 0x02, "time": 1.0, "seglen": 0,
        "tls_hs": -1, "tls_alert": -1, "ttl": 64, "ip": 4, "ifindex": 1, "src": ADDRESSES[0],
        "dst": ADDRESSES[1], "sport": 40001, "dport": 443, "quotes": False}


def test_syn_sends_over_many_interfaces() -> None:
    """Past a few SYNs a stream sorts its interfaces: the busiest one is still exact."""
    rng = np.random.default_rng(7)
    streams = list(rng.integers(0, 3, 400)) + [3] * 40 + [4] * 17
    ifindex = list(rng.integers(0, 9, 400)) + list(range(40)) + [5] * 9 + list(range(8))
    packets = _syns(streams, ifindex)
    assert_same_flows(packets)
    got = flowtable.build(packets, native=True)["syn_sends"]
    assert got[3] == 1 and got[4] == 10


def test_handshake_rtt_takes_syns_at_or_before_the_first_synack() -> None:
    """A SYN at the SYN/ACK's very time counts, and so does one logged after it (frame
    order) with an earlier time; a SYN later in time does not."""
    rows = [{**_SYN, "stream": 0, "time": t, "flags": f, "from_client": f == 0x02}
            for t, f in [(1.0, 0x02), (2.0, 0x02), (2.0, 0x12), (3.0, 0x12), (1.5, 0x02),
                         (2.5, 0x02)]]
    rows += [{**_SYN, "stream": 1, "time": t, "flags": 0x02} for t in (1.0, 2.0)]
    rows.append({**_SYN, "stream": 1, "time": 2.0, "flags": 0x12, "from_client": False})
    packets = _table(rows, wide=True)
    assert_same_flows(packets)
    np.testing.assert_array_equal(flowtable.build(packets, native=True)["handshake_rtt"],
                                  [0.5, 0.0])


def test_stream_numbers_beyond_the_flows_are_refused() -> None:
    packets = _syns([0, 5], [1, 1])
    module = _native.module("flows")
    assert module is not None
    cols = {k: packets[k] for k in (*flowtable.NATIVE_INPUTS, "stream")}
    out = {k: np.empty(3, dt) for k, dt in flowtable.NATIVE_OUTPUTS.items()}
    with pytest.raises(ValueError, match="stream number"):
        module.build(cols, out, flowtable.MIN_REQUEST_BYTES)
    out["ip"] = np.empty(3, np.int32)
    with pytest.raises(TypeError, match="ip"):
        module.build(cols, out, flowtable.MIN_REQUEST_BYTES)
    del cols["ttl"]
    with pytest.raises(KeyError, match="ttl"):
        module.build(cols, out, flowtable.MIN_REQUEST_BYTES)


def test_other_column_dtypes_are_converted() -> None:
    packets = _syns([0, 2, 2], [1, 1, 2])
    packets["stream"] = packets["stream"].astype(np.int16)
    packets["seglen"] = packets["seglen"].astype(np.int64)
    assert_same_flows(packets)


def test_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    packets = _syns([0, 1], [1, 1])
    monkeypatch.setenv("NETPROBE_NATIVE", "0")
    with pytest.raises(RuntimeError, match="not available"):
        flowtable.build(packets, native=True)
    np.testing.assert_array_equal(flowtable.build(packets)["syn"], [1, 1])
