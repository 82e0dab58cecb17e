"""Cutting a capture to a budget keeps whole records, in order, handshakes and errors first."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import netprobe.analysis as analysis
from netprobe.capture import trim
from tests import craft


def _capture(tmp_path: Path, copies: int = 30) -> Path:
    packets: craft.Packets = []
    for k in range(copies):  # many ok connections (data-heavy) and one of each failure
        craft.scenario_ok(packets, sport=20000 + k, t=craft.T0 + k * 0.01)
    craft.scenario_refused(packets, t=craft.T0 + 1)
    craft.scenario_no_route(packets, t=craft.T0 + 2)
    return craft.write_pcap(tmp_path / "busy.pcap", sorted(packets, key=lambda p: p[0]))


def test_a_capture_that_fits_is_unchanged(tmp_path: Path) -> None:
    data = _capture(tmp_path).read_bytes()
    assert trim.trim(data, len(data)).data == data


def test_cut_keeps_the_story_first(tmp_path: Path) -> None:
    path = _capture(tmp_path)
    data = path.read_bytes()
    before = analysis.read(path)
    handshake = ((before["flags"] & 0x07) != 0) | (before["stream"] < 0) | (before["tls_hs"] >= 0)
    story_bytes = int((before[handshake]["frame_len"] + 16).sum())
    budget = 24 + story_bytes + 300  # the story and a few other records
    assert budget < len(data)
    cut = trim.trim(data, budget)
    assert len(cut.data) <= budget and cut.total == len(before) and cut.kept < cut.total
    out = tmp_path / "cut.pcap"
    out.write_bytes(cut.data)
    after = analysis.read(out)  # a valid capture, no damage warning (warnings are errors)
    assert len(after) == cut.kept
    assert after["time"].is_monotonic_increasing  # file order kept
    assert set(before[handshake]["time"]) <= set(after["time"])  # SYN/RST/FIN, hellos, ICMP
    assert cut.kept > handshake.sum()  # then other records, while room is left
    assert analysis.totals(out)["tcp_syn"] == analysis.totals(path)["tcp_syn"]
    assert analysis.totals(out)["icmp_unreachable"] == 1
    if shutil.which("tshark"):
        done = subprocess.run(["tshark", "-r", str(out)], capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0 and len(done.stdout.splitlines()) == cut.kept


def test_tiny_budget_keeps_whole_records_only(tmp_path: Path) -> None:
    data = _capture(tmp_path).read_bytes()
    cut = trim.trim(data, 200)
    assert len(cut.data) <= 200 and cut.kept >= 1
    assert cut.data[:24] == data[:24]


@pytest.mark.parametrize("data", [b"\x0a\x0d\x0d\x0a" + b"\x00" * 400, b"not a capture" * 40])
def test_other_formats_come_back_unchanged(data: bytes) -> None:
    assert trim.trim(data, 100).data == data
