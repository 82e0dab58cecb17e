"""The pcapng writer, checked by reading its output back with tshark and with netprobe."""

from __future__ import annotations

from pathlib import Path

import pytest

from netprobe import analysis
from netprobe.capture import pcapng_writer
from netprobe.core import errors
from tests import craft
from tests.unit.people.tshark_fields import comment_field, count, needs_tshark, rows

ROOT = Path(__file__).resolve().parents[3]
CAPTURES = ROOT / "captures"


def _sources(scenario: str) -> list[pcapng_writer.Source]:
    return [pcapng_writer.Source(p, p.stem) for p in sorted((CAPTURES / scenario).glob("*.pcap"))]


@needs_tshark
@pytest.mark.parametrize("scenario", ["ok", "connection-refused", "tls-handshake-timeout"])
def test_every_packet_kept_with_its_exact_time_and_interface(tmp_path: Path, scenario: str) -> None:
    sources = _sources(scenario)
    out = pcapng_writer.write_pcapng(tmp_path / "all.pcapng", sources)
    fields = ("frame.time_epoch", "sll.ifindex", "tcp.seq_raw", "frame.len")
    expected = sorted(tuple(r) for s in sources for r in rows(s.path, *fields))
    got = rows(tmp_path / "all.pcapng", *fields, "frame.interface_name")
    assert out.packets == len(expected) == len(got)
    assert sorted(tuple(r[:4]) for r in got) == expected  # same bytes, same times (µs)
    times = [float(r[0]) for r in got]
    assert times == sorted(times)  # merged by time across files
    for _, ifindex, _, _, name in got:  # each SLL2 ifindex has its own named interface
        assert name.endswith(f"/if{ifindex}")


@needs_tshark
def test_comments_names_and_descriptions(tmp_path: Path) -> None:
    cp = CAPTURES / "connection-refused" / "control-plane-1-replay-0.pcap"
    worker = CAPTURES / "connection-refused" / "worker-1-capture.pcap"
    sources = [
        pcapng_writer.Source(cp, "control-plane-1", {2: "npeth0"}, {2: "egress"},
                             {0: ["first, with a comma", "second"]}),
        pcapng_writer.Source(worker, "worker-1", {2: "npeth0"}, {}, {5: ["last of worker"]}),
    ]
    out = pcapng_writer.write_pcapng(tmp_path / "x.pcapng", sources, ["the verdict"])
    assert out.comments == 3
    assert out.interfaces == ("control-plane-1/npeth0", "worker-1/npeth0", "worker-1/if4",
                              "worker-1/if3")
    got = rows(tmp_path / "x.pcapng", "frame.interface_name", "frame.interface_description",
               comment_field())
    assert got[0] == ["control-plane-1/npeth0", "egress", "first, with a comma|second"]
    assert got[6] == ["worker-1/npeth0", "", "last of worker"]
    assert sum(1 for r in got if r[2]) == 2


def test_interfaces_of_two_files_with_one_name_are_one(tmp_path: Path) -> None:
    replays = sorted((CAPTURES / "ok").glob("*replay*.pcap"))
    out = pcapng_writer.write_pcapng(tmp_path / "x.pcapng", [
        pcapng_writer.Source(p, "control-plane-1", {2: "npeth0"}) for p in replays])
    assert out.interfaces == ("control-plane-1/npeth0",)
    assert out.packets == sum(len(analysis.read(p)) for p in replays)


@needs_tshark
def test_nanosecond_pcap_and_pcapng_sources(tmp_path: Path) -> None:
    packets: craft.Packets = []
    craft.scenario_ok(packets, t=craft.T0 + 0.123456789)
    ns = craft.write_pcap(tmp_path / "ns.pcap", packets, linktype=1, nano=True)
    ng = craft.write_pcapng(tmp_path / "in.pcapng", [(1, 9, packets[:3]), (101, 6, packets[3:])])
    out = pcapng_writer.write_pcapng(tmp_path / "out.pcapng", [
        pcapng_writer.Source(ns, "a"), pcapng_writer.Source(ng, "b")])
    assert out.interfaces == ("a/if0", "b/if0", "b/if1")
    got = rows(tmp_path / "out.pcapng", "frame.interface_name", "frame.time_epoch",
               "tcp.seq_raw")
    source = {"a": rows(ns, "frame.time_epoch", "tcp.seq_raw"),
              "b": rows(ng, "frame.time_epoch", "tcp.seq_raw")}
    for vantage, expected in source.items():
        mine = [r[1:] for r in got if r[0].startswith(vantage + "/")]
        assert [r[1] for r in mine] == [r[1] for r in expected]
        for (stamp, _), (want, _) in zip(mine, expected, strict=True):
            # float seconds keep about 0.25 µs at today's epoch; microseconds exactly
            assert abs(float(stamp) - float(want)) < 3e-7
            if len(want.split(".")[1].rstrip("0")) <= 6:
                assert stamp.rstrip("0") == want.rstrip("0")


@needs_tshark
def test_damaged_source_gives_what_was_read(tmp_path: Path) -> None:
    good = CAPTURES / "ok" / "worker-1-capture.pcap"
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(good.read_bytes()[:-50])
    out = pcapng_writer.write_pcapng(tmp_path / "x.pcapng", [pcapng_writer.Source(cut, "w")])
    assert out.damage and "truncated" in out.damage[0]
    assert out.packets == count(tmp_path / "x.pcapng") == len(analysis.read(good)) - 1


def test_not_a_capture_and_unwritable_output(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"hello world, not a capture")
    with pytest.raises(errors.CaptureFormatError):
        pcapng_writer.write_pcapng(tmp_path / "x.pcapng", [pcapng_writer.Source(junk, "j")])
    good = CAPTURES / "ok" / "worker-1-capture.pcap"
    with pytest.raises(errors.UsageError, match="writing .*missing/x.pcapng"):
        pcapng_writer.write_pcapng(tmp_path / "missing" / "x.pcapng",
                                   [pcapng_writer.Source(good, "w")])
