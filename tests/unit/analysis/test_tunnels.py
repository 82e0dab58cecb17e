"""Tunnels in `netprobe analyze`: the inner flows, their nodes and VNI, odd headers, and
encrypted node-to-node traffic reported instead of ignored."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

import netprobe.analysis as analysis
from netprobe.cli import cli
from tests import craft, tshark_reference

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark")


def _syn_and_refusal(sport: int = 41000, t: float = craft.T0) -> craft.Packets:
    out: craft.Packets = []
    craft.scenario_refused(out, sport=sport, t=t)
    return out


def _json(*paths: Path) -> list[dict]:
    result = CliRunner().invoke(cli, ["analyze", "-o", "json", *map(str, paths)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return json.loads(result.output)["captures"]


@pytest.mark.parametrize("kind", craft.TUNNELS)
def test_flows_carry_their_tunnel(tmp_path: Path, kind: str) -> None:
    path = craft.write_pcap(tmp_path / "t.pcap", craft.tunnel(craft.everything(), kind))
    flows = _json(path)[0]["flows"]
    nodes = ((craft.NODE6_A, craft.NODE6_B) if kind == "ip-in-ipv6"
             else (craft.NODE_A, craft.NODE_B))
    assert len(flows) == 12
    for f in flows:
        assert f["client"] in (craft.CLIENT, craft.CLIENT6), f
        assert (f["tunnel"], f["vni"]) == _expected_tunnel(kind, f["ip"])
        assert (f["outer_client"], f["outer_server"]) == nodes


def _expected_tunnel(kind: str, ip: int) -> tuple[str, int | None]:
    if kind in ("ip-in-ip", "ip-in-ipv6"):  # named after the protocol: 41 carries IPv6
        return ("ipv6-in-ip" if ip == 6 else "ip-in-ip"), None
    if kind in ("gre", "vxlan-in-gre"):  # the outermost: GRE without a key
        return "gre", None
    return {"vxlan-8472": "vxlan", "gre-key-ethernet": "gre"}.get(kind, kind), craft.VNI


def test_plain_flows_have_no_tunnel(tmp_path: Path) -> None:
    path = craft.write_pcap(tmp_path / "plain.pcap", craft.everything())
    report = _json(path)[0]
    assert report["encrypted"] == []
    for f in report["flows"]:
        assert (f["tunnel"], f["vni"], f["outer_client"], f["outer_server"]) == (None,) * 4


def test_a_flow_takes_its_first_tunnelled_packet(tmp_path: Path) -> None:
    """An `any` capture sees the SYN on the pod's veth before the NIC encapsulates it;
    the server's answer here is the first tunnelled packet: the nodes keep their sides."""
    syn, refusal = _syn_and_refusal()
    packets = [syn, (syn[0] + 1e-5, craft.encapsulate(syn[1], "geneve", vni=9)),
               (refusal[0], craft.encapsulate(refusal[1], "vxlan", vni=5)), refusal]
    flows = analysis.flows(analysis.read(craft.write_pcap(tmp_path / "any.pcap", packets)))
    assert len(flows) == 1
    f = flows.iloc[0]
    assert (f["tunnel"], f["vni"], f["outer_client"], f["outer_server"]) == (
        "geneve", 9, craft.NODE_A, craft.NODE_B)
    assert f["verdict"] == "connection-refused"


def test_packet_columns(tmp_path: Path) -> None:
    packets = _syn_and_refusal()
    path = craft.write_pcap(tmp_path / "gre.pcap", craft.tunnel(packets, "gre-key-ethernet"))
    frame = analysis.read(path)
    assert list(frame["src"]) == [craft.CLIENT, craft.SERVER]
    assert list(frame["outer_src"]) == [craft.NODE_A, craft.NODE_B]
    assert list(frame["outer_dst"]) == [craft.NODE_B, craft.NODE_A]
    assert list(frame["tunnel"]) == ["gre", "gre"] and list(frame["vni"]) == [craft.VNI] * 2
    assert list(frame["proto"]) == [6, 6] and list(frame["ttl"]) == [64, 64]
    # the DataFrame goes back to the same flows
    assert analysis.flows(frame).iloc[0]["outer_client"] == craft.NODE_A


def _odd_packets() -> craft.Packets:
    """Tunnels tshark has a well-defined view of: cut headers, ICMP errors quoting
    tunnelled packets, lengths that lie, tunnels inside tunnels."""
    syn, refusal = _syn_and_refusal()
    vxlan = craft.encapsulate(syn[1], "vxlan")
    t = craft.T0 + 1
    out: craft.Packets = [(t, vxlan), refusal]
    for quote in (vxlan[:28], vxlan):  # a router's short quote, and Linux's long one
        out.append((t + 0.1, bytes(IP(src="192.168.0.254", dst=craft.NODE_A)
                                   / ICMP(type=3, code=1) / Raw(quote))))
    inner_icmp = bytes(IP(src=craft.ROUTER, dst=craft.CLIENT) / ICMP(type=3, code=3)
                       / Raw(syn[1][:28]))
    out.append((t + 0.2, craft.encapsulate(inner_icmp, "geneve")))
    short = bytearray(vxlan)
    struct.pack_into(">H", short, 24, 30)  # a UDP length that ends inside the inner frame
    long = bytearray(vxlan)
    struct.pack_into(">H", long, 24, 4000)  # one past the IP payload: cut to it
    bad_geneve = bytearray(craft.encapsulate(syn[1], "geneve"))
    bad_geneve[28] = 0x3F  # options longer than the packet
    v6 = craft.encapsulate(craft.encapsulate(syn[1], "ip-in-ipv6"), "vxlan-in-gre")
    out += [(t + 0.3, bytes(short)), (t + 0.4, bytes(long)), (t + 0.5, bytes(bad_geneve)),
            (t + 0.6, v6),
            (t + 0.7, bytes(IP(src=craft.NODE_A, dst=craft.NODE_B, proto=47)
                            / Raw(b"\x00\x00\x88\xbe" + syn[1])))]  # ERSPAN: not decoded
    return out


@needs_tshark
def test_odd_tunnels_match_tshark(tmp_path: Path) -> None:
    path = craft.write_pcap(tmp_path / "odd.pcap", _odd_packets())
    expected = tshark_reference.totals(path)
    assert analysis.totals(path) == expected
    assert expected is not None and expected["tcp_syn"] == 3  # vxlan, the long UDP length, v6


@needs_tshark
def test_cut_tunnel_headers_match_tshark(tmp_path: Path) -> None:
    """Each tunnelled SYN captured up to every length of its headers, the inner TCP
    header whole or not at all (a TCP header cut short is not about tunnels: tshark
    then reads the flags it has and skips the sequence analysis, netprobe does not
    decode it)."""
    syn = _syn_and_refusal()[0]
    tcp_size = len(syn[1]) - 20
    packets, cut = [], []
    for kind in ("vxlan", "geneve", "gre", "gre-key-ethernet", "ip-in-ip", "vxlan-in-gre"):
        frame = craft.encapsulate(syn[1], kind)
        for size in [*range(14, 14 + len(frame) - tcp_size + 1), 14 + len(frame)]:
            packets.append((syn[0] + len(packets), frame))
            cut.append(size)
    path = craft.write_pcap(tmp_path / "cut.pcap", packets, cut=cut)
    assert analysis.totals(path) == tshark_reference.totals(path)


def test_deeper_than_decoded_stays_the_tunnel(tmp_path: Path) -> None:
    """Five tunnels deep: the fourth tunnel's packet is the row (tshark goes on)."""
    ip = _syn_and_refusal()[0][1]
    for _ in range(5):
        ip = craft.encapsulate(ip, "ip-in-ip")
    frame = analysis.read(craft.write_pcap(tmp_path / "deep.pcap", [(craft.T0, ip)]))
    row = frame.iloc[0]
    assert (row["proto"], row["tunnel"], row["outer_src"]) == (4, "ip-in-ip", craft.NODE_A)


def _encrypted_packets() -> craft.Packets:
    node_c = "192.168.0.3"
    out: craft.Packets = []
    for k in range(3):
        out.append((craft.T0 + k, bytes(IP(src=craft.NODE_B, dst=craft.NODE_A)
                                        / UDP(sport=51820, dport=51820)
                                        / Raw(b"\x04\0\0\0" + b"\x11" * 40))))
    out.append((craft.T0 + 3, bytes(IP(src=craft.NODE_A, dst=node_c, proto=50)
                                    / Raw(b"\0\0\1\0\0\0\0\1" + b"\x22" * 32))))
    out.append((craft.T0 + 4, bytes(IPv6(src=craft.NODE6_A, dst=craft.NODE6_B)
                                    / UDP(sport=4500, dport=4500)
                                    / Raw(b"\0\0\1\0\0\0\0\1" + b"\x33" * 32))))
    out.append((craft.T0 + 5, bytes(IP(src=craft.NODE_A, dst=node_c) / UDP(sport=4500, dport=4500)
                                    / Raw(b"\0\0\0\0" + b"\x44" * 32))))  # IKE: not ESP
    return out + craft.tunnel(_syn_and_refusal(t=craft.T0 + 6), "vxlan")


def test_encrypted_traffic_is_reported(tmp_path: Path) -> None:
    path = craft.write_pcap(tmp_path / "enc.pcap", _encrypted_packets())
    report = _json(path)[0]
    assert report["encrypted"] == [
        {"kind": "wireguard", "endpoints": [craft.NODE_A, craft.NODE_B], "packets": 3},
        {"kind": "esp", "endpoints": [craft.NODE_A, "192.168.0.3"], "packets": 1},
        {"kind": "esp-in-udp", "endpoints": [craft.NODE6_A, craft.NODE6_B], "packets": 1},
    ]
    assert report["warnings"] == [] and report["flow_count"] == 1
    text = CliRunner().invoke(cli, ["analyze", str(path)]).output.splitlines()
    assert text[2].startswith("  note: wireguard between 192.168.0.1 and 192.168.0.2: 3 "
                              "encrypted packets; the flows inside cannot be seen")
    assert sum(line.startswith("  note: ") for line in text) == 3
    header = text[5].split()
    assert header[-1] == "tunnel"
    assert text[7].split()[-2:] == [f"vxlan/{craft.VNI}", f"{craft.NODE_A}>{craft.NODE_B}"]


@needs_tshark
def test_encrypted_totals_match_tshark(tmp_path: Path) -> None:
    path = craft.write_pcap(tmp_path / "enc.pcap", _encrypted_packets())
    assert analysis.totals(path) == tshark_reference.totals(path)


def test_plain_text_has_no_tunnel_column(tmp_path: Path) -> None:
    path = craft.write_pcap(tmp_path / "plain.pcap", _syn_and_refusal())
    text = CliRunner().invoke(cli, ["analyze", str(path)]).output.splitlines()
    assert "tunnel" not in text[2] and "note:" not in "".join(text)
