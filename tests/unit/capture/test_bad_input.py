"""Malformed captures: a clear message, what was read before the damage, exit 2."""

from __future__ import annotations

import gzip
import struct
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netprobe.analysis as analysis
from netprobe.analysis import pipeline
from netprobe.cli import cli
from netprobe.core import errors
from tests import craft

GOOD = craft.everything()[:12]


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["analyze", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture()
def good_pcap(tmp_path: Path) -> Path:
    return craft.write_pcap(tmp_path / "good.pcap", GOOD)


@pytest.fixture()
def good_pcapng(tmp_path: Path) -> Path:
    return craft.write_pcapng(tmp_path / "good.pcapng", [(1, 9, GOOD[:6]), (101, 6, GOOD[6:])])


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"GIF89a not a capture", "not a pcap or pcapng"),
    (b"\xd4\xc3\xb2\xa1\x02\x00", "truncated pcap file header"),
    (gzip.compress(b""), "empty"),
])
def test_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(errors.CaptureFormatError, match=message):
        analysis.read(path)
    code, output = _cli(str(path))
    assert code == 2 and message in output


def test_missing_file(tmp_path: Path) -> None:
    code, output = _cli(str(tmp_path / "nope.pcap"))
    assert code == 2 and "No such file" in output


def test_truncated_record_keeps_what_was_read(tmp_path: Path, good_pcap: Path) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(good_pcap.read_bytes()[:-10])
    with pytest.warns(analysis.CaptureDamageWarning, match="truncated record"):
        frame = analysis.read(cut)
    assert len(frame) == len(GOOD) - 1
    code, output = _cli(str(cut))
    assert code == 2 and "after 11 packets" in output and "packets=11" in output


def test_record_longer_than_snap_length(tmp_path: Path, good_pcap: Path) -> None:
    data = bytearray(good_pcap.read_bytes())
    struct.pack_into("<I", data, 24 + 8, 0x7FFFFFFF)  # first record's caplen
    bad = tmp_path / "huge.pcap"
    bad.write_bytes(bytes(data))
    capture = pipeline.load(bad)
    assert len(capture) == 0 and "exceeds the snap length" in capture.damage
    assert _cli(str(bad))[0] == 2


def test_pcapng_block_with_impossible_length(tmp_path: Path, good_pcapng: Path) -> None:
    data = bytearray(good_pcapng.read_bytes())
    shb_len = struct.unpack_from("<I", data, 4)[0]
    struct.pack_into("<I", data, shb_len + 4, 7)  # first IDB: length 7
    bad = tmp_path / "bad.pcapng"
    bad.write_bytes(bytes(data))
    with pytest.raises(errors.CaptureFormatError, match="impossible length 7"):
        analysis.read(bad)


def test_unknown_link_type_is_counted_and_reported(tmp_path: Path) -> None:
    path = craft.write_pcap(tmp_path / "x.pcap", GOOD, linktype=101)
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, 20, 147)  # LINKTYPE_USER0
    path.write_bytes(bytes(data))
    with pytest.warns(analysis.CaptureDamageWarning, match="link type 147 is not decoded"):
        frame = analysis.read(path)
    assert len(frame) == len(GOOD) and (frame["stream"] == -1).all()
    code, output = _cli(str(path))
    assert code == 2 and "link type 147" in output


def test_corrupt_gzip(tmp_path: Path, good_pcap: Path) -> None:
    packed = gzip.compress(good_pcap.read_bytes())
    bad = tmp_path / "bad.pcap.gz"
    bad.write_bytes(packed[:-30])
    code, output = _cli(str(bad))
    assert code == 2 and "corrupt compressed data" in output


def test_zstd_without_the_package_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.pcap.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 20)
    try:
        import zstandard  # noqa: F401
    except ImportError:
        with pytest.raises(errors.CaptureFormatError, match="zstandard"):
            analysis.read(path)
    else:
        with pytest.raises(errors.CaptureFormatError):
            analysis.read(path)


def test_exit_codes_ok_and_diagnosed(tmp_path: Path) -> None:
    ok: craft.Packets = []
    craft.scenario_ok(ok)
    assert _cli(str(craft.write_pcap(tmp_path / "ok.pcap", ok)))[0] == 0
    bad: craft.Packets = []
    craft.scenario_refused(bad)
    code, output = _cli(str(craft.write_pcap(tmp_path / "refused.pcap", bad)))
    assert code == 1 and "connection-refused" in output


def _mutate(data: bytes, cuts: list[tuple[int, int]], length: int) -> bytes:
    buf = bytearray(data)
    for pos, value in cuts:
        buf[pos % len(buf)] = value
    return bytes(buf[: max(length, 0)])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
       keep=st.integers(0, 4000), ng=st.booleans(), chunk=st.sampled_from([61, 4096, 1 << 20]))
def test_fuzz_reader_never_crashes(tmp_path: Path, cuts: list[tuple[int, int]], keep: int,
                                   ng: bool, chunk: int) -> None:
    source = tmp_path / ("seed.pcapng" if ng else "seed.pcap")
    if not source.exists():
        if ng:
            craft.write_pcapng(source, [(1, 9, GOOD[:6]), (276, 6, GOOD[6:])])
        else:
            craft.write_pcap(source, GOOD, vlans=(3,))
    path = tmp_path / "fuzz.bin"
    path.write_bytes(_mutate(source.read_bytes(), cuts, keep))
    try:
        capture = pipeline.load(path, chunk_bytes=chunk)
    except errors.CaptureFormatError as exc:
        assert str(exc)
        return
    packets = pipeline.packet_table(capture.cols)
    flows = pipeline.flow_table(packets)
    assert len(flows["verdict"]) == len(set(packets["stream"][packets["stream"] >= 0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis.totals(path)
