"""The compiled record walks (pcap, pcapng) give exactly the batches of the Python walks."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netprobe.capture import formats
from netprobe.core import errors
from tests.unit.analysis.test_generated import _variants
from tests.unit.capture.test_corpus import FILES as CORPUS

ROOT = Path(__file__).resolve().parents[3]
CAPTURES = sorted(p for p in (ROOT / "captures").rglob("*") if p.suffix in (".pcap", ".pcapng"))
FIELDS = ("offset", "caplen", "origlen", "time", "interface", "linktype")


def test_compiled_walks_are_built() -> None:
    for name in ("pcap", "pcapng"):
        assert importlib.import_module(f"netprobe._native.{name}")


def _walk(path: Path, native: bool, chunk: int, monkeypatch: pytest.MonkeyPatch) -> tuple:
    monkeypatch.setenv("NETPROBE_NATIVE", "1" if native else "0")
    reader = formats.CaptureFile(path, chunk)
    batches, damage = [], None
    try:
        batches = list(reader)
    except errors.CaptureFormatError as exc:
        damage = str(exc)
    return batches, damage, reader.interfaces


def _same_walk(path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch) -> int:
    fast, fast_damage, fast_ifaces = _walk(path, True, chunk, monkeypatch)
    ref, ref_damage, ref_ifaces = _walk(path, False, chunk, monkeypatch)
    assert fast_damage == ref_damage
    assert fast_ifaces == ref_ifaces
    assert len(fast) == len(ref)
    for a, b in zip(fast, ref, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
        for name in FIELDS:
            x, y = getattr(a, name), getattr(b, name)
            assert x.dtype == y.dtype, name
            np.testing.assert_array_equal(x, y, err_msg=name)
    return sum(len(b) for b in ref)


@pytest.mark.parametrize("path", CORPUS + CAPTURES, ids=[p.name for p in CORPUS + CAPTURES])
def test_files(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _same_walk(path, formats.CHUNK_BYTES, monkeypatch)


def test_generated_variants_in_small_chunks(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for path in _variants(tmp_path).values():
        for chunk in (64, 1000, formats.CHUNK_BYTES):  # records and blocks cut by chunk ends
            assert _same_walk(path, chunk, monkeypatch) > 0


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.tuples(st.integers(0, 4000), st.binary(min_size=1, max_size=8)),
                     max_size=4),
       keep=st.integers(0, 4000), chunk=st.sampled_from([16, 100, 4096]),
       container=st.sampled_from(["pcap", "pcapng"]))
def test_damaged_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cuts: list,
                       keep: int, chunk: int, container: str) -> None:
    name = "pcap-ethernet" if container == "pcap" else "pcapng-2-interfaces-ns"
    source = _variants(tmp_path)[name]
    data = bytearray(source.read_bytes()[: max(keep, 24)])
    for at, junk in cuts:  # overwrite lengths, magics and bodies alike
        data[at: at + len(junk)] = junk
    path = tmp_path / f"damaged.{container}"
    path.write_bytes(bytes(data))
    _same_walk(path, chunk, monkeypatch)
