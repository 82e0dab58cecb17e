"""Crafted captures: totals equal tshark's, verdicts per scenario, packet columns.

The scenarios are also written inside every tunnel netprobe decodes: the inner
flows are the flows, so the totals are the plain capture's, and tshark's.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

import netprobe.analysis as analysis
from netprobe.analysis import pipeline
from tests import craft, tshark_reference

PACKETS = craft.everything()
HALF = len(PACKETS) // 2


def _variants(tmp: Path) -> dict[str, Path]:
    p = PACKETS
    return {
        "pcap-ethernet": craft.write_pcap(tmp / "eth.pcap", p),
        "pcap-qinq-big-endian-ns": craft.write_pcap(tmp / "qinq.pcap", p, big=True, nano=True,
                                                   vlans=(100, 200)),
        "pcap-vlan-fcs-bits": craft.write_pcap(tmp / "vlan.pcap", p, vlans=(5,),
                                               linkword_extra=0x10000000),
        "pcap-sll-gzip": craft.write_pcap(tmp / "sll.pcap.gz", p, linktype=113),
        "pcap-sll2": craft.write_pcap(tmp / "sll2.pcap", p, linktype=276),
        "pcap-raw": craft.write_pcap(tmp / "raw.pcap", p, linktype=101),
        "pcap-null": craft.write_pcap(tmp / "null.pcap", p, linktype=0),
        "pcapng-2-interfaces-ns": craft.write_pcapng(tmp / "two.pcapng",
                                                     [(1, 9, p[:HALF]), (276, 6, p[HALF:])]),
        "pcapng-big-endian": craft.write_pcapng(tmp / "be.pcapng",
                                                [(113, 6, p[::2]), (101, 9, p[1::2])], big=True),
        **{f"tunnel-{kind}": craft.write_pcap(tmp / f"{kind}.pcap", craft.tunnel(p, kind),
                                              linktype=TUNNEL_LINKS.get(kind, 1))
           for kind in craft.TUNNELS},
    }


TUNNEL_LINKS = {"geneve": 276, "ip-in-ipv6": 101}  # the others on Ethernet
# Wireshark does not decode UDP 8472 as VXLAN by default; netprobe does (Flannel's port).
TSHARK_OPTIONS = {"tunnel-vxlan-8472": ("-d", "udp.port==8472,vxlan")}


NAMES = ["pcap-ethernet", "pcap-qinq-big-endian-ns", "pcap-vlan-fcs-bits", "pcap-sll-gzip",
         "pcap-sll2", "pcap-raw", "pcap-null", "pcapng-2-interfaces-ns", "pcapng-big-endian",
         *(f"tunnel-{kind}" for kind in craft.TUNNELS)]

EXPECTED_VERDICTS = {
    40001: "ok",
    40002: "connection-refused",
    40012: "connection-refused",
    40003: "io-timeout",
    40004: "no-route",
    40014: "no-route",
    40005: "tls-handshake-timeout",
    40006: "response-timeout",
    40007: "ok",
    40020: "ok",
}


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _variants(tmp_path_factory.mktemp("crafted"))


@pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark")
@pytest.mark.parametrize("name", NAMES)
def test_totals_match_tshark(variants: dict[str, Path], name: str) -> None:
    expected = tshark_reference.totals(variants[name], TSHARK_OPTIONS.get(name, ()))
    assert expected is not None
    assert analysis.totals(variants[name]) == expected


@pytest.mark.parametrize("name", NAMES)
def test_same_totals_in_every_container_and_link(variants: dict[str, Path], name: str) -> None:
    assert analysis.totals(variants[name]) == {
        "packets": 67, "tcp_syn": 15, "tcp_synack": 6, "tcp_rst": 4, "tcp_retransmissions": 5,
        "tcp_syn_retransmissions": 3, "tls_client_hello": 4, "tls_server_hello": 3,
        "icmp_unreachable": 3, "tcp_streams": 12,
    }


@pytest.mark.parametrize("name", ["pcap-ethernet", "pcapng-2-interfaces-ns", "pcap-sll2"])
def test_verdicts_per_scenario(variants: dict[str, Path], name: str) -> None:
    flows = analysis.flows(analysis.read(variants[name]))
    by_port = dict(zip(flows["client_port"], flows["verdict"], strict=True))
    for port, verdict in EXPECTED_VERDICTS.items():
        assert by_port[port] == verdict, port
    reuse = flows[flows["client_port"] == 40008].sort_values("stream")
    assert list(reuse["verdict"]) == ["connection-refused", "inconclusive"]


def test_refusal_source_and_ttl(variants: dict[str, Path]) -> None:
    flows = analysis.flows(analysis.read(variants["pcap-ethernet"])).set_index("client_port")
    assert flows.loc[40002, "rst_ttl"] == 64
    assert flows.loc[40012, "rst_ttl"] == 58  # a middle hop: fewer hops left
    assert flows.loc[40003, "syn_retransmissions"] == 3
    assert flows.loc[40007, "data_retransmissions"] == 2
    assert flows.loc[40004, "icmp_from"] == craft.ROUTER
    assert flows.loc[40001, "handshake_rtt"] == pytest.approx(0.001, abs=2e-6)


def test_verdicts_sorted_suspicious_first(variants: dict[str, Path]) -> None:
    v = analysis.verdicts(analysis.flows(analysis.read(variants["pcap-ethernet"])))
    ok_rows = np.flatnonzero(v["verdict"] == "ok")
    fail_rows = np.flatnonzero(v["verdict"].isin(["connection-refused", "io-timeout"]))
    assert fail_rows.max() < ok_rows.min()


def test_packet_columns(variants: dict[str, Path]) -> None:
    df = analysis.read(variants["pcapng-2-interfaces-ns"])
    assert len(df) == len(PACKETS)
    assert set(df["interface"]) == {0, 1}
    assert np.allclose(df["time"], [t for t, _ in PACKETS], atol=1e-6)
    syn = df[(df["flag_names"] == "S") & (df["sport"] == 40001)].iloc[0]
    assert (syn["mss"], syn["wscale"], bool(syn["sack_perm"]), syn["tsval"]) == (1460, 7, True, 1)
    assert syn["src"] == craft.CLIENT and syn["dst"] == craft.SERVER and syn["ttl"] == 64
    sll2 = df[df["interface"] == 1]
    assert set(sll2["ifindex"]) == {7}
    icmp = df[(df["icmp_type"] == 3) & (df["q_proto"] == 6)].iloc[0]
    assert (icmp["q_src"], icmp["q_dst"], icmp["q_sport"], icmp["q_dport"]) == (
        craft.CLIENT, craft.SERVER, 40004, 443)
    hellos = df[df["tls_hs"] >= 0]
    assert sorted(set(hellos["tls_hs"])) == [1, 2]


def test_ipv6_extension_headers_are_skipped(variants: dict[str, Path]) -> None:
    df = analysis.read(variants["pcap-ethernet"])
    v6 = df[df["sport"].isin([40020]) | df["dport"].isin([40020])]
    assert len(v6) == 10 and (v6["proto"] == 6).all() and (v6["ip"] == 6).all()


def test_chunked_reading_gives_the_same_packets(variants: dict[str, Path]) -> None:
    for name in ("pcap-ethernet", "pcapng-big-endian", "pcap-sll-gzip"):
        whole = pipeline.load(variants[name])
        small = pipeline.load(variants[name], chunk_bytes=97)
        for key, column in whole.cols.items():
            assert np.array_equal(column, small.cols[key]), (name, key)


def test_gzip_detected_by_content_not_name(tmp_path: Path, variants: dict[str, Path]) -> None:
    hidden = tmp_path / "capture.pcapng"  # gzip bytes behind a misleading name
    hidden.write_bytes(gzip.compress(variants["pcap-ethernet"].read_bytes()))
    assert analysis.totals(hidden) == analysis.totals(variants["pcap-ethernet"])


def test_per_stream_passes_in_small_pieces_agree(variants: dict[str, Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from netprobe.analysis import tcp

    path = variants["pcap-ethernet"]
    whole = pipeline.packet_table(pipeline.load(path).cols)
    monkeypatch.setattr(tcp, "PIECE_ROWS", 5)
    pieces = pipeline.packet_table(pipeline.load(path).cols)
    for name in ("stream", "retransmission", "from_client"):
        assert np.array_equal(whole[name], pieces[name]), name
