"""The compiled TCP analysis gives, per packet, exactly the numpy streams, directions and marks."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netprobe.analysis import load, tcp
from netprobe.core import errors
from tests.unit.analysis.test_generated import _variants
from tests.unit.capture.test_corpus import FILES as CORPUS

ROOT = Path(__file__).resolve().parents[3]
CAPTURES = sorted(p for p in (ROOT / "captures").rglob("*") if p.suffix in (".pcap", ".pcapng"))
Columns = dict[str, np.ndarray]


def _per_packet(cols: Columns, native: bool) -> tuple[tcp.TcpView, Columns]:
    """The view, and its results scattered back per packet as pipeline.packet_table does."""
    view = tcp.analyse(cols, native=native)
    n = len(cols["tcp"])
    out = {"stream": np.full(n, -1, np.int64), "from_client": np.zeros(n, bool),
           "retransmission": np.zeros(n, bool)}
    for name, column in out.items():
        column[view.index] = getattr(view, name)
    return view, out


def _assert_same(cols: Columns) -> None:
    ref_view, ref = _per_packet(cols, native=False)
    got_view, got = _per_packet(cols, native=True)
    np.testing.assert_array_equal(np.sort(got_view.index), np.sort(ref_view.index))
    for name in ("index", "stream", "from_client", "retransmission"):
        assert getattr(got_view, name).dtype == getattr(ref_view, name).dtype, name
    for name in ref:
        np.testing.assert_array_equal(got[name], ref[name], err_msg=name)


def _columns_of(path: Path) -> Columns | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return load.load(path).cols
        except errors.CaptureFormatError:
            return None


def test_compiled_module_is_built() -> None:
    assert importlib.import_module("netprobe._native.tcp")


@pytest.mark.parametrize("path", CORPUS + CAPTURES, ids=[p.name for p in CORPUS + CAPTURES])
def test_files(path: Path) -> None:
    cols = _columns_of(path)
    if cols is not None:
        _assert_same(cols)


def test_generated_variants(tmp_path: Path) -> None:
    for path in _variants(tmp_path).values():
        cols = _columns_of(path)
        assert cols is not None and cols["tcp"].any()
        _assert_same(cols)


# ---- random packet columns ----

ENDPOINTS = [(0, 0xFFFF_0A00_0001), (0, 0xFFFF_0A00_0002), (0x2001_0DB8 << 32, 1),
             (2**64 - 1, 2**64 - 1)]
# a few conversations, so that packets share them, ports get reused and ISNs change
CONVERSATIONS = [((ENDPOINTS[0], 40000), (ENDPOINTS[1], 443)),
                 ((ENDPOINTS[0], 40001), (ENDPOINTS[1], 443)),
                 ((ENDPOINTS[2], 443), (ENDPOINTS[3], 80)),
                 ((ENDPOINTS[1], 443), (ENDPOINTS[1], 443))]  # both ends equal
# SYN, SYN/ACK, ACK, PSH/ACK, FIN/ACK, RST, RST/ACK
FLAGS = [0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14]
ISNS = [0, 1000, 2**31 - 1, 2**32 - 3]  # the last one wraps within a few segments
# seq relative to the next one expected in its direction: in order, retransmitted, a byte
# before (keep-alives), ahead (out of order); ack relative to the other direction's
SEQ_STEPS = [0, 0, 0, -1, -2, -100, -1448, 1, 100, 1448]
ACK_STEPS = [0, 0, -1, 1, -100, 100, 2**31, 2**31 + 100]
GAPS = [0.0, 2**-11, 2**-9, 2**-8, 0.0029, 0.003, 0.0031, 0.01, 1.0]  # powers of 2: exact ties


def _mostly(common: st.SearchStrategy, rare: st.SearchStrategy,
            one_in: int = 8) -> st.SearchStrategy:
    """`common`, and `rare` once in `one_in` draws (shrinks towards `common`)."""
    return st.integers(1, one_in).flatmap(lambda i: rare if i == one_in else common)


ports = st.sampled_from([0, 80, 443, 40000, 65535])
endpoint = st.tuples(st.sampled_from(ENDPOINTS), ports)
u32 = st.integers(0, 2**32 - 1)
seqs = _mostly(st.sampled_from(SEQ_STEPS).map(lambda d: ("next", d)),
               st.one_of(st.sampled_from(ISNS), u32).map(lambda v: ("raw", v)), one_in=4)
acks = _mostly(st.sampled_from(ACK_STEPS).map(lambda d: ("next", d)),
               st.one_of(st.sampled_from([0, 1]), u32).map(lambda v: ("raw", v)), one_in=4)
rows = st.tuples(
    st.integers(0, 7).map(bool),  # tcp: mostly True
    _mostly(st.sampled_from(CONVERSATIONS), st.tuples(endpoint, endpoint)),
    st.booleans(),  # direction
    _mostly(st.sampled_from(FLAGS), st.integers(0, 0xFFFF)),
    seqs, acks,
    _mostly(st.sampled_from([-1, 0, 0, 1, 2, 100, 100, 1448]), st.integers(-2**31, 2**31 - 1)),
    st.sampled_from(GAPS),
)
captures = st.tuples(st.sampled_from([0.0, 1_700_000_000.0]),
                     st.integers(0, 100).flatmap(lambda n: st.lists(rows, min_size=n, max_size=n)))


def _random_columns(packets: list[tuple], t: float = 0.0) -> Columns:
    """Columns of `packets`; a ("next", d) seq or ack is d after the next seq of its direction."""
    n = len(packets)
    cols = {k: np.zeros(n, dtype) for k, dtype in tcp.NATIVE_COLUMNS.items()}
    nxt: dict[tuple, int] = {}
    for i, (is_tcp, conv, back, flags, (smode, s), (amode, a), seglen, gap) in enumerate(packets):
        t += gap
        (src, sport), (dst, dport) = conv[::-1] if back else conv
        seq = (nxt.get((conv, back), ISNS[1]) + s if smode == "next" else s) % 2**32
        ack = (nxt.get((conv, not back), ISNS[2]) + a if amode == "next" else a) % 2**32
        nxt[(conv, back)] = seq + max(seglen, 0) + ((flags & 0x03) != 0)
        cols["tcp"][i] = is_tcp
        (cols["src_hi"][i], cols["src_lo"][i]), (cols["dst_hi"][i], cols["dst_lo"][i]) = src, dst
        cols["sport"][i], cols["dport"][i], cols["flags"][i] = sport, dport, flags
        cols["seq"][i], cols["ack"][i], cols["seglen"][i], cols["time"][i] = seq, ack, seglen, t
    return cols


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(capture=captures)
def test_random_columns(capture: tuple[float, list[tuple]]) -> None:
    t0, packets = capture
    _assert_same(_random_columns(packets, t0))


def test_sequence_numbers_drifting_far_from_their_start() -> None:
    """A stream whose unwrapped seq climbs past 2**41 does not leak into the next stream."""
    climb = [(True, CONVERSATIONS[0], False, 0x18, ("raw", i * (2**31 - 1) % 2**32), ("raw", 0), 0,
              1.0) for i in range(1100)]
    other = [(True, CONVERSATIONS[1], False, 0x18, ("raw", s), ("raw", 0), 100, 1.0)
             for s in (100, 200, 100)]
    cols = _random_columns(climb + other)
    _assert_same(cols)
    _, marks = _per_packet(cols, native=False)
    assert list(np.flatnonzero(marks["retransmission"])) == [1102]


def test_many_conversations() -> None:
    """Thousands of conversations (the compiled table grows several times), ports reused."""
    rng = np.random.default_rng(7)
    n = 30_000
    ends = np.array(ENDPOINTS, np.uint64)
    src, dst = ends[rng.integers(0, 3, n)], ends[rng.integers(0, 3, n)]

    def near_isn() -> np.ndarray:
        return ((rng.choice(ISNS, n) + rng.integers(0, 3, n) * 100) % 2**32).astype(np.uint32)

    cols = {
        "tcp": rng.random(n) < 0.95, "src_hi": src[:, 0], "src_lo": src[:, 1],
        "dst_hi": dst[:, 0], "dst_lo": dst[:, 1],
        "sport": rng.integers(0, 3000, n).astype(np.int32),
        "dport": rng.choice([80, 443], n).astype(np.int32),
        "flags": rng.choice(FLAGS, n).astype(np.uint16),
        "seq": near_isn(), "ack": near_isn(),
        "seglen": rng.choice([-1, 0, 1, 100], n).astype(np.int32),
        "time": np.cumsum(rng.choice(GAPS, n)),
    }
    _assert_same(cols)
    assert tcp.analyse(cols, native=True).stream.max() > 5000


@pytest.mark.parametrize(("handshake", "gap", "marked"), [
    (False, 0.003, True), (False, 0.0029, False),  # threshold 3 ms: out of order strictly below
    (True, 2**-9, True), (True, 2**-10, False),  # threshold = the initial RTT, 2**-9 s
])
def test_out_of_order_threshold_boundary(handshake: bool, gap: float, marked: bool) -> None:
    conv, raw = CONVERSATIONS[0], ("raw", 0)
    rows = [(True, conv, False, 0x02, ("raw", 999), raw, 0, 0.0),
            (True, conv, True, 0x12, ("raw", 5000), ("raw", 1000), 0, 2**-10),
            (True, conv, False, 0x10, ("raw", 1000), ("raw", 5001), 0, 2**-10)] if handshake else []
    rows += [(True, conv, False, 0x18, ("raw", 1000), raw, 100, 2**-8),  # sets nextseq 1100
             (True, conv, False, 0x18, ("raw", 1050), raw, 10, gap)]  # below it, `gap` later
    cols = _random_columns(rows)
    _assert_same(cols)
    assert bool(tcp.analyse(cols, native=True).retransmission[-1]) is marked


SYN_ROW = (True, CONVERSATIONS[0], False, 0x02, ("raw", 0), ("raw", 0), 0, 0.0)


def test_no_packets_and_no_tcp() -> None:
    _assert_same(_random_columns([]))
    cols = _random_columns([(False, *SYN_ROW[1:])] * 3)
    _assert_same(cols)
    assert len(tcp.analyse(cols, native=True).index) == 0


# ---- dispatch and the compiled function's own checks ----

def test_native_true_without_the_module_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    cols = _random_columns([SYN_ROW])
    monkeypatch.setenv("NETPROBE_NATIVE", "0")
    with pytest.raises(RuntimeError):
        tcp.analyse(cols, native=True)
    assert tcp.analyse(cols).stream.tolist() == [0]  # None falls back to numpy


def test_compiled_function_checks_its_arguments() -> None:
    compiled = importlib.import_module("netprobe._native.tcp")
    cols = _random_columns([SYN_ROW] * 4)
    ok = (np.full(4, -1, np.int64), np.zeros(4, bool), np.zeros(4, bool))
    with pytest.raises(ValueError):
        compiled.analyse(cols, np.full(3, -1, np.int64), ok[1], ok[2])
    with pytest.raises(TypeError):
        compiled.analyse(cols, np.full(4, -1, np.int32), ok[1], ok[2])
    with pytest.raises(KeyError):
        compiled.analyse({k: v for k, v in cols.items() if k != "seglen"}, *ok)
    with pytest.raises(ValueError):
        compiled.analyse({**cols, "seq": cols["seq"][:3]}, *ok)
    with pytest.raises(TypeError):
        compiled.analyse({**cols, "seq": cols["seq"].astype(np.uint64)}, *ok)
    compiled.analyse(cols, *ok)
    assert ok[0].tolist() == [0, 0, 0, 0]
