"""The compiled decoder gives exactly the columns of the numpy decoder (detail=False)."""

from __future__ import annotations

import importlib
import struct
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netprobe.analysis import CaptureDamageWarning
from netprobe.capture import decode, formats, linklayer
from netprobe.capture.records import PAD, Batch
from netprobe.core import errors
from tests.unit.analysis.test_generated import _variants
from tests.unit.capture.test_corpus import FILES as CORPUS

ROOT = Path(__file__).resolve().parents[3]
CAPTURES = sorted(p for p in (ROOT / "captures").rglob("*") if p.suffix in (".pcap", ".pcapng"))
UNKNOWN_LINKS = [2, 127, 129, 281, 1000, -1, 2**31 - 1]
LINKS = sorted(linklayer.SUPPORTED) + UNKNOWN_LINKS


def _module() -> ModuleType:
    return importlib.import_module("netprobe._native.decode")


def padded(chunk: bytes) -> np.ndarray:
    """`chunk` as a uint8 array followed by `PAD` zero bytes, as the readers give it."""
    return np.concatenate([np.frombuffer(chunk, np.uint8), np.zeros(PAD, np.uint8)])


def _run(batch: Batch) -> tuple[bool, decode.Columns]:
    """The compiled decoder called directly: whether it decoded, and the columns.

    The columns it must write arrive poisoned, as `decode` hands them over
    unfilled: an item the decoder forgets shows up.
    """
    cols = decode._start(batch, detail=False, fill=False)
    for name in set(decode.CORE) - {"time", "interface", "frame_len"}:
        cols[name].view(np.uint8)[:] = 0x5A
    done = _module().decode(batch.data, batch.offset, batch.caplen, batch.origlen,
                            batch.linktype, cols)
    return done, cols


def _compiled(batch: Batch) -> decode.Columns:
    """The compiled columns of a batch it must not hand back to numpy."""
    done, cols = _run(batch)
    assert done, "the compiled decoder declined a batch whose records lie inside its data"
    return cols


def _assert_same(fast: decode.Columns, ref: decode.Columns) -> None:
    assert list(fast) == list(ref) == list(decode.CORE)
    for name, want in ref.items():
        assert fast[name].dtype == want.dtype, name
        np.testing.assert_array_equal(fast[name], want, err_msg=name)


def _batches(path: Path) -> list[Batch]:
    batches: list[Batch] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureDamageWarning)
        try:
            for batch in formats.CaptureFile(path):  # damaged files: what can be read
                batches.append(batch)
        except errors.CaptureFormatError:
            pass
    return batches


def test_compiled_decoder_is_built() -> None:
    assert _module()


@pytest.mark.parametrize("path", CORPUS + CAPTURES, ids=[p.name for p in CORPUS + CAPTURES])
def test_files(path: Path) -> None:
    for batch in _batches(path):
        ref = decode.decode(batch, native=False)
        _assert_same(_compiled(batch), ref)
        _assert_same(decode.decode(batch, native=True), ref)


def test_generated_variants(tmp_path: Path) -> None:
    packets = 0
    for path in _variants(tmp_path).values():
        for batch in _batches(path):
            _assert_same(_compiled(batch), decode.decode(batch, native=False))
            packets += len(batch)
    assert packets > 0


def test_detail_stays_numpy() -> None:
    batch = _batch([(1, _ether(_ipv4(_tcp(hlen=8, payload=b"\x02\x04\x05\xb4" + b"\x01" * 8))))])
    cols = decode.decode(batch, detail=True, native=True)
    assert cols["mss"][0] == 1460
    _assert_same({k: cols[k] for k in decode.CORE}, decode.decode(batch, native=False))


def test_native_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = _batch([(228, TCP_V4)])
    monkeypatch.setattr(_module(), "decode", None)  # a call would fail: numpy decodes
    _assert_same(decode.decode(batch, native=False), decode._decode(batch, detail=False))
    monkeypatch.setenv("NETPROBE_NATIVE", "0")
    assert decode.decode(batch)["tcp"][0]
    with pytest.raises(RuntimeError):
        decode.decode(batch, native=True)


# ---- building records ----------------------------------------------------------

FIELDS = ("offset", "caplen", "origlen", "time", "interface", "linktype")


def _batch(packets: list[tuple[int, bytes]], caplens: list[int] | None = None,
           origlens: list[int] | None = None, gap: int = 0) -> Batch:
    """A Batch of (linktype, bytes) records laid out one after the other."""
    offsets, chunk = [], b""
    for _, raw in packets:
        offsets.append(len(chunk))
        chunk += raw + b"\xee" * gap
    sizes = [len(raw) for _, raw in packets]
    return _records(chunk, offsets, sizes if caplens is None else caplens,
                    sizes if origlens is None else origlens, [lt for lt, _ in packets])


def _records(chunk: bytes, offsets: list[int], caplens: list[int], origlens: list[int],
             links: list[int]) -> Batch:
    n = len(offsets)
    return Batch(padded(chunk), np.array(offsets, np.int64), np.array(caplens, np.int64),
                 np.array(origlens, np.int64), np.arange(n, dtype=np.float64),
                 np.zeros(n, np.int32), np.array(links, np.int32))


def _every_cut_is_same(packets: list[tuple[int, bytes]], gap: int = 0) -> None:
    """Each packet cut at every length, and with every reported length up to its
    size + 1: each bounds check at its edge. Records inside the data: decoded in C."""
    batch = _batch(packets, gap=gap)
    chunk = batch.data[:-PAD].tobytes()
    exact = list(zip(batch.offset.tolist(), batch.caplen.tolist(), batch.linktype.tolist(),
                     strict=True))
    rows = [(off, cap, size, lt) for off, size, lt in exact for cap in range(size + 1)]
    rows += [(off, size, orig, lt) for off, size, lt in exact for orig in range(size + 2)]
    cuts = _records(chunk, *(list(col) for col in zip(*rows, strict=True)))
    _assert_same(_compiled(cuts), decode.decode(cuts, native=False))


def _ether(payload: bytes, ethertype: int = 0x0800, tags: tuple[int, ...] = ()) -> bytes:
    vlan = b"".join(struct.pack(">HH", tpid, 5) for tpid in tags)
    return b"\x02" * 12 + vlan + struct.pack(">H", ethertype) + payload


def _tcp(hlen: int = 5, payload: bytes = b"", flags: int = 0x18) -> bytes:
    return struct.pack(">HHIIBBHHH", 40000, 443, 1, 2, hlen << 4, flags, 500, 0, 0) + payload


def _ipv4(payload: bytes, proto: int = 6, ihl: int = 5, total: int | None = None,
          frag: int = 0) -> bytes:
    size = ihl * 4 + len(payload) if total is None else total
    head = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, size & 0xFFFF, 0, frag, 64, proto, 0,
                       b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02")
    return head + b"\x00" * max(0, ihl * 4 - 20) + payload


def _ipv6(payload: bytes, nh: int = 6, plen: int | None = None) -> bytes:
    size = len(payload) if plen is None else plen
    return struct.pack(">IHBB", 0x60000000, size, nh, 64) + b"\xfd" + b"\x01" * 31 + payload


def _icmp(kind: int, quote: bytes) -> bytes:
    return bytes([kind, 1]) + b"\x00" * 6 + quote


def _udp(payload: bytes, dport: int, sport: int = 49152, length: int | None = None) -> bytes:
    size = 8 + len(payload) if length is None else length
    return struct.pack(">HHHH", sport, dport, size, 0) + payload


def _vxlan(inner: bytes, vni: int = 42, ethertype: int = 0x0800) -> bytes:
    return struct.pack(">II", 0x08000000, vni << 8) + _ether(inner, ethertype)


def _geneve(inner: bytes, proto: int = 0x6558, options: bytes = b"", vni: int = 7) -> bytes:
    head = struct.pack(">BBHI", len(options) // 4, 0, proto, vni << 8) + options
    return head + (_ether(inner) if proto == 0x6558 else inner)


def _gre(inner: bytes, proto: int = 0x0800, flags: int = 0, fields: bytes = b"") -> bytes:
    return struct.pack(">HH", flags, proto) + fields + inner


# ---- edge cases, one by one ----------------------------------------------------

CLIENT_HELLO = b"\x16\x03\x01\x00\x30\x01" + b"\x00" * 47
PLAIN_ALERT = b"\x15\x03\x03\x00\x02\x02\x30"
TCP_V4 = _ipv4(_tcp(payload=CLIENT_HELLO))
SLL2_V4 = struct.pack(">HHI12x", 0x0800, 0, 9)  # protocol, reserved, ifindex, the rest
SLL2_V6 = struct.pack(">HHI12x", 0x86DD, 0, 3)
EDGES: dict[str, tuple[int, bytes]] = {
    "ethernet, 3 tags": (1, _ether(TCP_V4, tags=(0x8100, 0x88A8, 0x9100))),
    "ethernet, 4 tags": (1, _ether(TCP_V4, tags=(0x8100,) * 4)),
    "sll, 1 tag": (113, b"\x00" * 14 + struct.pack(">HHH", 0x8100, 7, 0x0800) + TCP_V4),
    "sll2 + ifindex": (276, SLL2_V6 + _ipv6(_tcp(payload=PLAIN_ALERT))),
    "pktap -> sll2": (258, struct.pack("<Ii4x", 12, 276) + SLL2_V4 + TCP_V4),
    "pktap -> pktap": (258, struct.pack("<Ii", 8, 258) + TCP_V4),
    "null, swapped AF_INET6": (0, struct.pack(">I", 30) + _ipv6(_tcp())),
    "loop, AF_INET": (108, struct.pack(">I", 2) + TCP_V4),
    "ppp hdlc": (9, b"\xff\x03\x00\x21" + TCP_V4),
    "ppp ff 00": (50, b"\xff\x00\x00\x57" + _ipv6(_tcp())),
    "ipoib": (242, b"\x00" * 40 + b"\x86\xdd\x00\x00" + _ipv6(b"\x00" * 8, nh=17)),
    "raw, v6 nibble": (101, _ipv6(_tcp(payload=PLAIN_ALERT[:6]))),
    "tls record version 3.4": (14, _ipv4(_tcp(payload=b"\x16\x03\x04\x00\x01\x02"))),
    "raw, bad nibble": (12, b"\x50" + TCP_V4[1:]),
    "ipv4 options": (228, _ipv4(_tcp(hlen=15, payload=b"\x01" * 40), ihl=15)),
    "ipv4 fragment": (228, _ipv4(_tcp(), frag=0x2000)),
    "ipv4 DF": (228, _ipv4(_tcp(), frag=0x4000)),
    "ipv4 tso zero length": (228, _ipv4(_tcp(payload=b"\x17\x03\x03" + b"\x00" * 9), total=0)),
    "ipv6 first fragment": (229, _ipv6(bytes([6, 0, 0, 1]) + b"\x00" * 4 + _tcp(), nh=44)),
    "ipv6 atomic fragment": (229, _ipv6(bytes([6, 0, 0, 0]) + b"\x00" * 4 + _tcp(), nh=44)),
    "ipv6 jumbogram": (229, _ipv6(bytes([6, 0, 0xC2, 4, 0, 0, 0, 28]) + _tcp(payload=b"x" * 8),
                                  nh=0, plen=0)),
    "ipv6 jumbo option, nonzero length": (229, _ipv6(bytes([6, 0, 0xC2, 4, 0, 0, 0, 4]) + _tcp(),
                                                     nh=0)),
    "ipv6 ah + routing": (229, _ipv6(bytes([43, 1]) + b"\x00" * 10 + bytes([17, 0]) + b"\x00" * 6
                                     + b"\x00" * 8, nh=51)),
    "icmp unreachable": (228, _ipv4(_icmp(3, _ipv4(_tcp())[:28]), proto=1)),
    "icmp quote ihl 4": (228, _ipv4(_icmp(11, b"\x44" + _ipv4(_tcp())[1:]), proto=1)),
    "icmp quote ihl 6": (228, _ipv4(_icmp(12, _ipv4(_tcp(), ihl=6)), proto=1)),
    "icmp echo": (228, _ipv4(_icmp(8, b"\x00" * 20), proto=1)),
    "icmpv6 parameter problem": (229, _ipv6(_icmp(4, _ipv6(_tcp())), nh=58)),
    "icmpv6 quoting udp": (229, _ipv6(_icmp(1, _ipv6(b"\x00" * 8, nh=17)), nh=58)),
    "icmpv4 in ipv6": (229, _ipv6(_icmp(3, _ipv4(_tcp())), nh=1)),
    "tcp hlen 4": (228, _ipv4(_tcp(hlen=4, payload=b"\x00" * 8))),
    "vxlan 4789": (1, _ether(_ipv4(_udp(_vxlan(TCP_V4), 4789), proto=17))),
    "vxlan 8472, ipv6 inside": (228, _ipv4(_udp(_vxlan(_ipv6(_tcp()), ethertype=0x86DD), 8472),
                                         proto=17)),
    "vxlan, tagged inner frame": (1, _ether(_ipv4(_udp(
        struct.pack(">II", 0x08000000, 5 << 8) + _ether(TCP_V4, tags=(0x8100,)), 4789),
        proto=17))),
    "vxlan from port 4789, udp length short": (1, _ether(_ipv4(_udp(_vxlan(TCP_V4), 40000,
                                                                    sport=4789, length=40),
                                                               proto=17))),
    "vxlan, udp length 7": (228, _ipv4(_udp(_vxlan(TCP_V4), 4789, length=7), proto=17)),
    "geneve with options": (228, _ipv4(_udp(_geneve(TCP_V4, options=b"\x01" * 8), 6081),
                                       proto=17)),
    "geneve, ipv6 inside": (229, _ipv6(_udp(_geneve(_ipv6(_tcp()), proto=0x86DD), 6081), nh=17)),
    "geneve, options past the end": (228, _ipv4(_udp(b"\x3f\x00\x65\x58" + b"\0" * 4 + TCP_V4,
                                                     6081), proto=17)),
    "gre, ipv4 inside": (228, _ipv4(_gre(TCP_V4), proto=47)),
    "gre, checksum key sequence": (228, _ipv4(_gre(TCP_V4, flags=0xB000, fields=b"\x01" * 12),
                                              proto=47)),
    "gre, key, ethernet inside": (229, _ipv6(_gre(_ether(TCP_V4), 0x6558, 0x2000, b"\0\0\0\x09"),
                                             nh=47)),
    "gre version 1 ack": (228, _ipv4(_gre(TCP_V4, flags=0x3081, fields=b"\x02" * 12), proto=47)),
    "gre routing present": (228, _ipv4(_gre(TCP_V4, flags=0x4000, fields=b"\0" * 8), proto=47)),
    "gre, erspan": (228, _ipv4(_gre(TCP_V4, proto=0x88BE), proto=47)),
    "ip-in-ip, ipv6 inside": (228, _ipv4(_ipv6(_tcp()), proto=4)),
    "ipv6-in-ip": (229, _ipv6(_ipv6(_icmp(1, _ipv6(_tcp()))), nh=41)),
    "ipv6-in-ip carrying ipv4": (228, _ipv4(TCP_V4, proto=41)),
    "ip-in-ip, inner tso zero length": (228, _ipv4(_ipv4(_tcp(), total=0), proto=4)),
    "five tunnels deep": (228, _ipv4(_ipv4(_ipv4(_ipv4(_ipv4(TCP_V4, proto=4), proto=4),
                                                 proto=4), proto=4), proto=4)),
    "icmp quoting vxlan": (228, _ipv4(_icmp(3, _ipv4(_udp(_vxlan(TCP_V4), 4789), proto=17)),
                                      proto=1)),
    "wireguard": (228, _ipv4(_udp(b"\x04\0\0\0" + b"\x11" * 28, 51820, sport=51820), proto=17)),
    "esp": (229, _ipv6(b"\0\0\0\x05\0\0\0\x01" + b"\x22" * 16, nh=50)),
    "esp in udp": (228, _ipv4(_udp(b"\0\0\0\x05\0\0\0\x01", 4500, sport=4500), proto=17)),
    "ike on 4500": (228, _ipv4(_udp(b"\0\0\0\0\x01", 4500, sport=4500), proto=17)),
    "esp in gre": (228, _ipv4(_gre(_ipv4(b"\0\0\0\x05" * 4, proto=50)), proto=47)),
}


@pytest.mark.parametrize("name", EDGES)
def test_edge_cases(name: str) -> None:
    _every_cut_is_same([EDGES[name]])


def test_absent_values_are_the_documented_ones() -> None:
    """np.where(mask, uint8_array, -1) would cast -1 into the array's dtype (numpy 2,
    numpy issue 27006): a dead IPv6 header chain, an encrypted alert and a short SLL2
    record must still read as absent (-1, 256, -1) on both paths."""
    fragment = _ipv6(bytes([6, 0, 0, 8]) + b"\x00" * 4 + _tcp(), nh=44)
    alert = _ipv4(_tcp(payload=b"\x15\x03\x03\x00\x1a" + b"\x99" * 26))
    tso = _ipv4(_tcp(), total=0)
    batch = _batch([(229, fragment), (101, alert), (276, b"\x08\x00" * 5), (101, tso)],
                   origlens=[len(fragment), len(alert), 10, 2**40])
    ref = decode.decode(batch, native=False)
    _assert_same(_compiled(batch), ref)
    assert ref["proto"][0] == -1 and ref["tls_alert"][1] == 256 and ref["ifindex"][2] == -1
    assert ref["seglen"][3] == 2**31 - 1


def test_declines_where_numpy_reads_past_the_data() -> None:
    """A PKTAP record whose inner Ethernet header starts 15 bytes before the end of
    the data: numpy reads its next VLAN ethertype (past the end) because another
    Ethernet packet carries a tag, and raises; the compiled decoder hands it back."""
    tagged = _ether(TCP_V4, tags=(0x8100,))
    size = len(tagged) + 8 + PAD
    pktap = struct.pack("<Ii", size - 15 - len(tagged), 1)
    batch = _batch([(1, tagged), (258, pktap)], caplens=[len(tagged), 2**40])
    assert not _run(batch)[0]
    for native in (False, True):
        with pytest.raises(IndexError):
            decode.decode(batch, native=native)


def test_declines_without_the_pad() -> None:
    """Data not followed by PAD bytes: numpy peeks at a TLS record after a TCP
    header that ends the data, and raises; so must the compiled path."""
    batch = _batch([(228, _ipv4(_tcp()))])
    bare = Batch(batch.data[:-PAD].copy(), *(getattr(batch, f) for f in FIELDS))
    assert not _run(bare)[0]
    for native in (False, True):
        with pytest.raises(IndexError):
            decode.decode(bare, native=native)


# ---- hostile input -------------------------------------------------------------

U8 = st.integers(0, 255)
U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 2**32 - 1)


def _mostly(usual: st.SearchStrategy, other: st.SearchStrategy) -> st.SearchStrategy:
    """`usual` seven times in eight: valid headers reach the deeper layers."""
    return st.integers(0, 7).flatmap(lambda k: other if k == 0 else usual)


@st.composite
def _tls(draw: st.DrawFn) -> bytes:
    kind = draw(_mostly(st.sampled_from([0x16, 0x15]), U8))
    version = draw(_mostly(st.sampled_from([b"\x03\x00", b"\x03\x03", b"\x03\x04", b"\x03\x05"]),
                           st.binary(min_size=2, max_size=2)))
    length = draw(_mostly(st.sampled_from([2, 1, 512]), U16))
    rest = draw(_mostly(st.binary(min_size=1, max_size=3), st.binary(max_size=1)))
    return bytes([kind]) + version + struct.pack(">H", length) + rest


@st.composite
def _transport(draw: st.DrawFn, proto: int, depth: int) -> bytes:
    if proto == 6:
        hlen = draw(_mostly(st.sampled_from([5, 6, 8]), st.integers(0, 15)))
        room = max(0, hlen * 4 - 20)
        opts = draw(_mostly(st.binary(min_size=room, max_size=room), st.binary(max_size=room)))
        payload = draw(_mostly(_tls(), st.binary(max_size=12)))
        head = struct.pack(">HHIIBBHHH", draw(U16), draw(U16), draw(U32), draw(U32),
                           hlen << 4 | draw(st.integers(0, 15)), draw(U8), draw(U16), 0, 0)
        return head + opts + payload
    if proto == 17:
        port = draw(_mostly(st.sampled_from([4789, 8472, 6081, 51820, 4500]), U16))
        payload = draw(_tunnelled(port, depth))
        ulen = draw(_mostly(st.just(8 + len(payload)), U16))
        ports = [port, draw(_mostly(st.integers(32768, 65535), U16))]
        if draw(st.booleans()):
            ports.reverse()
        return struct.pack(">HHHH", *ports, ulen, 0) + payload
    if proto == 47:
        flags = draw(_mostly(st.sampled_from([0, 0x2000, 0xB000, 0x8000, 0x1000, 0x3081, 0x4000]),
                             U16))
        fields = draw(st.binary(min_size=12, max_size=12))[: draw(st.sampled_from([0, 4, 8, 12]))]
        et = draw(_mostly(st.sampled_from([0x6558, 0x0800, 0x86DD]), U16))
        return struct.pack(">HH", flags, et) + fields + draw(_inside(et, depth))
    if proto in (4, 41):
        return draw(_inside(0x0800, depth))
    if proto in (1, 58):
        kinds = [3, 4, 5, 11, 12] if proto == 1 else [1, 2, 3, 4]
        kind = draw(_mostly(st.sampled_from(kinds), U8))
        quote = (draw(_network(MAX_FUZZ_DEPTH)) if depth < MAX_FUZZ_DEPTH
                 else draw(st.binary(max_size=48)))
        return bytes([kind, draw(U8)]) + b"\x00" * 6 + quote
    return draw(st.binary(max_size=24))


PROTOS = _mostly(st.sampled_from([6, 6, 6, 17, 1, 58, 47, 4, 41, 50]), U8)
MAX_FUZZ_DEPTH = 5  # one more tunnel than decode follows


@st.composite
def _inside(draw: st.DrawFn, ethertype: int, depth: int) -> bytes:
    """A tunnel's payload: an inner packet (in an Ethernet frame for 0x6558) or bytes."""
    inner = draw(_network(depth + 1)) if depth < MAX_FUZZ_DEPTH else draw(st.binary(max_size=40))
    if ethertype == 0x6558:
        return _tagged(draw, b"\x02" * 14, 12) + inner
    return inner


@st.composite
def _tunnelled(draw: st.DrawFn, port: int, depth: int) -> bytes:
    """A UDP payload: a VXLAN/Geneve header and what it carries, or a few bytes."""
    if port in (4789, 8472):
        head = bytes([draw(U8), 0, 0, 0]) + draw(st.binary(min_size=4, max_size=4))
        return head + draw(_inside(0x6558, depth))
    if port == 6081:
        units = draw(_mostly(st.integers(0, 3), st.integers(0, 63)))
        et = draw(_mostly(st.sampled_from([0x6558, 0x0800, 0x86DD]), U16))
        opts = draw(_mostly(st.binary(min_size=units * 4, max_size=units * 4),
                            st.binary(max_size=12)))
        head = struct.pack(">BBH", draw(st.integers(0, 3)) << 6 | units, 0, et)
        return head + draw(st.binary(min_size=4, max_size=4)) + opts + draw(_inside(et, depth))
    return draw(st.binary(max_size=12))


@st.composite
def _v4(draw: st.DrawFn, depth: int) -> bytes:
    proto = draw(PROTOS)
    odd = st.sampled_from([0, 4, 15]) | st.integers(0, 15)
    ihl = draw(_mostly(st.sampled_from([5, 5, 6]), odd))
    frag = draw(_mostly(st.sampled_from([0, 0x4000]), U16))
    body = draw(_transport(proto, depth))
    total = draw(_mostly(st.sampled_from([None, None, 0]), U16))
    head = _ipv4(body, proto, ihl=max(ihl, 5), total=total, frag=frag)
    return bytes([0x40 | ihl]) + head[1:12] + draw(st.binary(min_size=8, max_size=8)) + head[20:]


@st.composite
def _ext(draw: st.DrawFn, kind: int, nxt: int) -> bytes:
    if kind == 44:  # fragment: offset and M flag decide
        offset = draw(_mostly(st.sampled_from([0, 1, 6, 8]), U16))
        return bytes([nxt, 0]) + struct.pack(">H", offset) + b"\0" * 4
    if kind == 0 and draw(st.booleans()):  # hop-by-hop with a jumbo payload option
        return bytes([nxt, 0, 0xC2, 4]) + struct.pack(">I", draw(_mostly(st.integers(0, 99), U32)))
    units = draw(st.integers(0, 2))
    size = (units + 2) * 4 if kind == 51 else (units + 1) * 8
    return bytes([nxt, units]) + draw(st.binary(min_size=size - 2, max_size=size - 2))


@st.composite
def _v6(draw: st.DrawFn, depth: int) -> bytes:
    proto = draw(PROTOS)
    chain = draw(_mostly(st.lists(st.sampled_from([0, 43, 44, 51, 60]), max_size=2),
                         st.lists(st.sampled_from([0, 43, 44, 51, 60]), max_size=10)))
    kinds = chain + [proto]
    ext = b"".join(draw(_ext(kinds[k], kinds[k + 1])) for k in range(len(chain)))
    body = ext + draw(_transport(proto, depth))
    plen = draw(_mostly(st.sampled_from([len(body), 0]), U16))
    head = struct.pack(">IHBB", 0x60000000, plen, kinds[0], draw(U8))
    return head + draw(st.binary(min_size=32, max_size=32)) + body


def _network(depth: int = 0) -> st.SearchStrategy[bytes]:
    return _mostly(_v4(depth) | _v6(depth), st.binary(max_size=60))


ETHERTYPES = _mostly(st.sampled_from([0x0800, 0x86DD]), U16)
TPIDS = st.sampled_from([0, 0, 0, 1, 1, 2, 3, 4]).flatmap(
    lambda n: st.lists(st.sampled_from([0x8100, 0x88A8, 0x9100]), min_size=n, max_size=n))


def _tagged(draw: st.DrawFn, head: bytes, at: int) -> bytes:
    """`head` with its ethertype field at `at`, then VLAN tags (each a TCI and the next type)."""
    types = draw(TPIDS) + [draw(ETHERTYPES)]
    tags = b"".join(struct.pack(">HH", draw(U16), t) for t in types[1:])
    return head[:at] + struct.pack(">H", types[0]) + head[at + 2:] + tags


@st.composite
def _link(draw: st.DrawFn, lt: int, payload: bytes, depth: int = 0) -> bytes:
    """A link header of type `lt` in front of `payload`."""
    if lt == linklayer.ETHERNET:
        return _tagged(draw, b"\x02" * 14, 12) + payload
    if lt == linklayer.SLL:
        return _tagged(draw, b"\x00" * 16, 14) + payload
    if lt == linklayer.SLL2:
        return _tagged(draw, struct.pack(">4xI12x", draw(U32)), 0) + payload
    if lt in (linklayer.NULL, linklayer.LOOP):
        fam = draw(_mostly(st.sampled_from([2, 10, 24, 28, 30]), U32))
        return struct.pack(draw(st.sampled_from(["<I", ">I"])), fam) + payload
    if lt in (linklayer.PPP, linklayer.PPP_HDLC):
        hdlc = draw(st.sampled_from([b"", b"\xff\x03", b"\xff\x00", b"\xfe\x03"]))
        return hdlc + struct.pack(">H", draw(_mostly(st.sampled_from([0x21, 0x57]), U16))) + payload
    if lt == linklayer.IPOIB:
        return b"\x00" * 40 + struct.pack(">HH", draw(ETHERTYPES), 0) + payload
    if lt == linklayer.PKTAP and depth == 0:
        inner = draw(st.sampled_from(LINKS))
        extra = draw(st.binary(max_size=12))
        hdr = draw(_mostly(st.just(8 + len(extra)), U32))
        body = draw(_link(inner, payload, depth + 1))
        return struct.pack("<Ii", hdr, inner) + extra + body
    return payload


@st.composite
def _packet(draw: st.DrawFn) -> tuple[int, bytes]:
    lt = draw(_mostly(st.sampled_from(sorted(linklayer.SUPPORTED)), st.sampled_from(LINKS)))
    raw = bytearray(draw(_link(lt, draw(_network()))))
    flips = draw(_mostly(st.just([]), st.lists(st.tuples(st.integers(0, 200), U8), max_size=3)))
    for at, byte in flips:
        if at < len(raw):  # a few bytes anywhere
            raw[at] = byte
    return lt, bytes(raw)


LENGTHS = (st.sampled_from([0, 1, 3, 13, 19, 20, 39, 40, 59, 60, 2**31, 2**32 - 1, 2**62,
                            2**63 - 1]) | st.integers(0, 400))


def _same_or_same_error(batch: Batch) -> None:
    try:
        ref = decode.decode(batch, native=False)
    except (IndexError, ValueError) as exc:  # reads past the data: numpy's own answer
        with pytest.raises(type(exc)):
            decode.decode(batch, native=True)
        return
    _assert_same(decode.decode(batch, native=True), ref)


SLOW = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(packets=st.lists(_packet(), min_size=1, max_size=8), gap=st.integers(0, 3),
       lengths=st.data())
def test_crafted_hostile_packets(packets: list[tuple[int, bytes]], gap: int,
                                 lengths: st.DataObject) -> None:
    _every_cut_is_same(packets, gap)
    # Any lengths: negative, past the data, wrapping 64-bit sums.
    n = len(packets)
    caps = lengths.draw(st.lists(LENGTHS | st.integers(-3, -1), min_size=n, max_size=n))
    origs = lengths.draw(st.lists(LENGTHS, min_size=n, max_size=n))
    _same_or_same_error(_batch(packets, caps, origs, gap))
    # Data without the PAD bytes: numpy's reads past a record's end may leave it.
    batch = _batch(packets, gap=gap)
    _same_or_same_error(Batch(batch.data[:-PAD].copy(), *(getattr(batch, f) for f in FIELDS)))


@SLOW
@given(chunk=st.binary(max_size=600), data=st.data())
def test_random_bytes(chunk: bytes, data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 12))
    offsets = data.draw(st.lists(st.integers(0, len(chunk)), min_size=n, max_size=n))
    caps = data.draw(st.lists(st.integers(0, len(chunk)) | LENGTHS, min_size=n, max_size=n))
    origs = data.draw(st.lists(LENGTHS, min_size=n, max_size=n))
    links = data.draw(st.lists(st.sampled_from(LINKS), min_size=n, max_size=n))
    batch = Batch(padded(chunk), np.array(offsets, np.int64), np.array(caps, np.int64),
                  np.array(origs, np.int64), np.zeros(n), np.zeros(n, np.int32),
                  np.array(links, np.int32))
    _same_or_same_error(batch)
    inside = np.minimum(batch.caplen, len(chunk) - batch.offset)  # what a reader would give
    clipped = Batch(batch.data, batch.offset, inside, batch.origlen, batch.time,
                    batch.interface, batch.linktype)
    _assert_same(_compiled(clipped), decode.decode(clipped, native=False))
