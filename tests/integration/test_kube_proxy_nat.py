"""kube-proxy's real masquerade on the apiserver's path, in each mode the lab builds.

kube-proxy (iptables and nftables modes alike) marks a call to a ClusterIP from
outside the cluster CIDR for masquerade, and SNATs it `--random-fully` / `fully-random`:
the apiserver's call from the control-plane node's host network leaves with a new,
random source port. The rules in the kernel are checked with iptables-save / nft
(outside netprobe), the SNAT with tshark on the replay's own capture, and the trace
must still see its connection at every hop and name the same culprit as without NAT.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.wire import run_cli, tshark_rows

pytestmark = pytest.mark.lab

MODES = ("iptables", "nftables")
CLUSTER_CIDR, CLUSTER_IP, POD_IP = "10.244.0.0/16", "10.96.20.99", "10.244.1.5"
SYN = "tcp.flags.syn==1 && tcp.flags.ack==0"


def _in_cp(*args: str) -> str:
    return subprocess.run(["ip", "netns", "exec", "np-cp", *args], capture_output=True,
                          text=True, check=True, timeout=30).stdout


@pytest.fixture(params=MODES)
def traced(request: pytest.FixtureRequest, tmp_path: Path):
    mode = request.param
    run_cli("lab", "up", "connection-refused", "--proxy-mode", mode)
    try:
        snapshot = tmp_path / "snapshot.yaml"
        snapshot.write_text(run_cli("lab", "snapshot").stdout)
        rules = (_in_cp("iptables-save", "-t", "nat") if mode == "iptables"
                 else _in_cp("nft", "list", "table", "ip", "kube-proxy"))
        done = run_cli("trace", "webhook", "validating/cert-manager-webhook", "--snapshot",
                       str(snapshot), "--netns-map", run_cli("lab", "netns-map").stdout.strip(),
                       "--pcap-dir", str(tmp_path / "pcaps"), "-o", "json", check=False)
        assert done.returncode == 1, done.stderr
        yield mode, rules, json.loads(done.stdout)["results"][0]
    finally:
        run_cli("lab", "down")


def test_the_node_masquerades_off_cluster_calls_fully_random(traced) -> None:
    mode, rules, _ = traced
    if mode == "iptables":
        assert f"! -s {CLUSTER_CIDR} -d {CLUSTER_IP}/32" in rules
        assert "-j MASQUERADE --random-fully" in rules
    else:
        assert f"ip daddr {CLUSTER_IP} ip saddr != {CLUSTER_CIDR} jump mark-for-masquerade" in rules
        assert "masquerade fully-random" in rules


def test_the_replay_capture_holds_the_snatted_syn(traced) -> None:
    _, _, result = traced
    replay = result["replay"]
    local_port = replay["local_address"][1]
    pcap = next(Path(p) for p in result["captures"] if "-replay-" in p)
    rows = tshark_rows(pcap, SYN, ["ip.dst", "tcp.srcport"])
    assert rows, "the replay's capture holds no SYN: the filter lost the call after NAT"
    assert {row[0] for row in rows} == {POD_IP}  # after DNAT
    wire_ports = {int(row[1]) for row in rows}
    assert local_port not in wire_ports  # after SNAT: another port on the wire
    assert replay["packets"]["wire_source"] in {f"10.0.0.10:{port}" for port in wire_ports}


def test_every_hop_sees_the_call_and_the_culprit_is_the_pod(traced) -> None:
    mode, _, result = traced
    hops = {hop["id"]: hop for hop in result["hops"]}
    for hop_id in ("apiserver", "service", "cp-egress", "network", "worker-ingress", "pod-veth"):
        assert hops[hop_id]["status"] == "ok", (hop_id, hops[hop_id])
    assert (result["verdict"]["class"], result["verdict"]["cause"]) == \
        ("connection-refused", "nothing-listening")
    assert result["verdict"]["culprit"]["hop"] == "webhook"
    assert f"kube-proxy {mode} DNAT" in hops["service"]["label"]
    assert "SNAT 10.0.0.10:" in hops["service"]["detail"]
    before, after = hops["apiserver"]["addresses"], hops["service"]["addresses"]
    assert before.endswith(f"-> {CLUSTER_IP}:443") and after.endswith(f"-> {POD_IP}:10250")
    assert before.split(" -> ")[0] != after.split(" -> ")[0]
    assert hops["worker-ingress"]["addresses"] == after
