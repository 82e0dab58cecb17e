"""zstd-compressed captures (`.pcap.zst`, `.pcapng.zst`): read through the `netprobe[zstd]`
extra (zstandard) or Python 3.14's compression.zstd, found by their magic, not their name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import netprobe.analysis as analysis
from tests import craft

zstandard = pytest.importorskip("zstandard", reason="the netprobe[zstd] extra is not installed")


@pytest.fixture
def captures(tmp_path: Path) -> dict[str, Path]:
    packets: craft.Packets = []
    craft.scenario_refused(packets)
    craft.scenario_ok(packets)
    return {"pcap": craft.write_pcap(tmp_path / "c.pcap", packets),
            "pcapng": craft.write_pcapng(tmp_path / "c.pcapng", [(1, 9, packets)])}


@pytest.mark.parametrize("container", ["pcap", "pcapng"])
def test_a_zstd_capture_reads_as_the_plain_one(captures, tmp_path: Path, container) -> None:
    plain = captures[container]
    packed = tmp_path / f"{plain.name}.zst"
    packed.write_bytes(zstandard.ZstdCompressor(level=3).compress(plain.read_bytes()))
    odd_name = tmp_path / "capture.bin"  # the magic decides, not the name
    odd_name.write_bytes(packed.read_bytes())
    expected = analysis.read(plain)
    for path in (packed, odd_name):
        got = analysis.read(path)
        assert len(got) == len(expected) > 0
        assert got["seq"].tolist() == expected["seq"].tolist()


def test_without_a_zstd_library_the_error_says_what_to_install(captures, tmp_path) -> None:
    packed = tmp_path / "c.pcap.zst"
    packed.write_bytes(zstandard.ZstdCompressor().compress(captures["pcap"].read_bytes()))
    hide = ("import sys; sys.modules['zstandard'] = None; "
            "sys.modules['compression.zstd'] = None; from netprobe.cli import main; "
            "sys.argv = ['netprobe', 'analyze', sys.argv[1]]; main()")
    done = subprocess.run([sys.executable, "-c", hide, str(packed)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "netprobe[zstd]" in done.stderr and "Traceback" not in done.stderr
