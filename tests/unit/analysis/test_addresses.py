"""`addresses` renders the flow and packet addresses exactly as one `ipaddress` call per row."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netprobe.analysis as analysis

V4 = [0xFFFF0A000001, 0xFFFF0A60000A, 0, 0xFFFFFFFFFFFF]
HIGH = [0, 0xFD00 << 48, 2**64 - 1]
row = st.tuples(st.one_of(st.sampled_from(HIGH), st.integers(0, 2**64 - 1)),
                st.one_of(st.sampled_from(V4), st.integers(0, 2**64 - 1)),
                st.sampled_from([0, 4, 6]))


def _one_by_one(rows: list[tuple[int, int, int]]) -> list[str]:
    names = {4: lambda hi, lo: str(ipaddress.IPv4Address(lo & 0xFFFFFFFF)),
             6: lambda hi, lo: str(ipaddress.IPv6Address((hi << 64) | lo)),
             0: lambda hi, lo: ""}
    return [names[v](hi, lo) for hi, lo, v in rows]


def _render(rows: list[tuple[int, int, int]]) -> list[str]:
    hi, lo, ver = (np.array([r[k] for r in rows], np.uint64) for k in range(3))
    out = analysis.addresses(hi, lo, ver.astype(np.uint8))
    assert out.dtype == object and out.shape == (len(rows),)
    return list(out)


@settings(max_examples=200, deadline=None)
@given(st.lists(row, max_size=40))
def test_same_as_one_row_at_a_time(rows: list[tuple[int, int, int]]) -> None:
    assert _render(rows) == _one_by_one(rows)


@settings(max_examples=50, deadline=None)
@given(st.lists(row, min_size=1, max_size=40))
def test_a_key_that_would_overflow_is_renumbered(rows: list[tuple[int, int, int]]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(analysis, "KEY_LIMIT", 3)  # renumber after every column
        assert _render(rows) == _one_by_one(rows)
