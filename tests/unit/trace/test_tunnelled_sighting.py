"""A replayed SYN that crossed a VXLAN overlay is found on the node's NIC by its inner flow."""

from __future__ import annotations

from pathlib import Path

from netprobe.trace import correlate
from netprobe.trace.frames import Frames
from tests import craft


def test_vxlan_encapsulated_syn_is_sighted(tmp_path: Path) -> None:
    plain: craft.Packets = []
    craft.scenario_refused(plain, sport=41000)
    replay = craft.write_pcap(tmp_path / "replay.pcap", plain)
    nic = craft.write_pcap(tmp_path / "worker.pcap", craft.tunnel(plain, "vxlan"), linktype=276)
    frames = Frames()
    key = correlate.flow_key(frames.get(replay), [41000])
    assert key is not None

    table = frames.get(nic)
    seen = correlate.sight(table, {"7": "eth0"}, key)

    assert seen.syn_interfaces == ("eth0",) and seen.syn_count == 1
    assert seen.destination == craft.SERVER
    assert seen.addresses == f"{craft.CLIENT}:41000 -> {craft.SERVER}:443"
    assert seen.resets == (("eth0", craft.SERVER, 64),)
    # the hop between the nodes, for whoever names it
    syn = table.iloc[0]
    assert (syn["tunnel"], syn["outer_src"], syn["outer_dst"], syn["vni"]) == (
        "vxlan", craft.NODE_A, craft.NODE_B, craft.VNI)
