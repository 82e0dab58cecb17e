"""Hops, the culprit, correlation across NAT and the hop graph (pure; crafted captures)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import networkx as nx
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import CookedLinuxV2
from scapy.utils import wrpcap

from netprobe import analysis
from netprobe.agents.spec import AgentResult, decode_result, encode_result
from netprobe.core import errors, rules
from netprobe.core.model import (
    ApiserverError,
    CallTarget,
    Evidence,
    Failure,
    HopStatus,
    PacketSummary,
    Phase,
    PhaseResult,
    ReplayResult,
    RstInfo,
    Status,
)
from netprobe.present import graph
from netprobe.trace import correlate, hops

FACTS = hops.PathFacts("control-plane-1", False, "cert-manager/cert-manager-webhook",
                       "10.96.20.99", 443, "10.244.1.5", 10250, "worker-1", "pod-a", False)


def _replay(evidence: Evidence) -> ReplayResult:
    target = CallTarget("https://s.ns.svc:443/validate", "s.ns.svc", 443, "/validate")
    return ReplayResult(target, (), rules.classify(evidence), ApiserverError("m"),
                        packets=evidence.packets)


SEEN_CP = correlate.Sighting(("npeth0",), 3, destination="10.244.1.5")


@pytest.mark.parametrize("evidence,cp,worker,hop,status", [
    (Evidence(Failure.REFUSED, packets=PacketSummary(packets=1)), correlate.Sighting(),
     correlate.UNOBSERVED, "service", HopStatus.REFUSED),
    (Evidence(Failure.DIAL_STALL), SEEN_CP, correlate.Sighting(), "network", HopStatus.DROPPED),
    (Evidence(Failure.DIAL_STALL), SEEN_CP, correlate.Sighting(("eth0",), 3),
     "pod-veth", HopStatus.DROPPED),
    (Evidence(Failure.REFUSED, packets=PacketSummary(left_host=True)),
     correlate.Sighting(("npeth0",), 1, resets=(("npeth0", "10.244.1.5", 64),)),
     correlate.Sighting(), "network", HopStatus.REFUSED),
    (Evidence(Failure.REFUSED, packets=PacketSummary(left_host=True, rst=(
        RstInfo("10.244.1.5", 62, True, 0.0),))), SEEN_CP,
     correlate.Sighting(("eth0", "veth1"), 1, resets=(("veth1", "10.244.1.5", 64),)),
     "webhook", HopStatus.REFUSED),
])
def test_culprit_is_where_the_flow_stopped(evidence, cp, worker, hop, status) -> None:
    path = hops.build_hops(FACTS, _replay(evidence), cp, worker)
    culprit = hops.culprit(path, FACTS)
    assert culprit is not None and culprit.hop == hop
    assert next(h for h in path if h.id == hop).status is status
    assert [h.id for h in path][:3] == ["apiserver", "service", "cp-egress"] or hop == "service"


def test_no_culprit_when_the_call_went_through() -> None:
    path = hops.build_hops(FACTS, _replay(Evidence(None)), SEEN_CP,
                           correlate.Sighting(("eth0", "veth1"), 1))
    assert hops.culprit(path, FACTS) is None
    assert all(h.status is HopStatus.OK for h in path)


@pytest.mark.parametrize("failure, culprit", [(None, None), (Failure.TLS_STALL, "webhook")])
def test_a_connection_the_worker_capture_missed_blames_no_network(failure, culprit) -> None:
    """The handshake completed, so the SYN arrived: a worker capture that saw nothing missed
    it (another interface, an eBPF datapath); the network is not the culprit."""
    connected = PhaseResult(Phase.TCP, Status.OK, 0.0, 0.001, "connected")
    replay = dataclasses.replace(_replay(Evidence(failure)), phases=(connected,))
    path = hops.build_hops(FACTS, replay, SEEN_CP, correlate.Sighting())
    status = {h.id: h.status for h in path}
    assert status["network"] is status["worker-ingress"] is HopStatus.UNOBSERVABLE
    assert "did not see the SYN" in next(h for h in path if h.id == "network").detail
    found = hops.culprit(path, FACTS)
    assert (found.hop if found else None) == culprit


def test_unobserved_worker_is_said_so() -> None:
    path = hops.build_hops(FACTS, _replay(Evidence(Failure.DIAL_STALL)), SEEN_CP,
                           correlate.UNOBSERVED)
    assert {h.id: h.status for h in path}["worker-ingress"] is HopStatus.UNOBSERVABLE


@pytest.mark.parametrize("cls,hop,codes,cause", [
    ("io-timeout", "network", {"gke-firewall-port"}, "gke-private-firewall"),
    ("io-timeout", "network", {"eks-overlay-pod-ip"}, "eks-custom-cni"),
    ("io-timeout", "pod-veth", set(), "dropped-at-pod"),
    ("connection-refused", "network", set(), "rst-from-middlebox"),
    ("connection-refused", "webhook", set(), "nothing-listening")])
def test_refine_with_the_path(cls: str, hop: str, codes: set[str], cause: str) -> None:
    failure = Failure.DIAL_STALL if cls == "io-timeout" else Failure.REFUSED
    verdict = rules.classify(Evidence(failure, early=True))
    refined = rules.refine(verdict, hop, codes)
    assert (refined.cls, refined.cause) == (cls, cause)
    assert refined.early == verdict.early


def _pkt(src, dst, sport, dport, flags, seq, ack=0, ifindex=2, t=0.0, ttl=64, tsval=None):
    options = [("Timestamp", (tsval, 0))] if tsval else []
    packet = CookedLinuxV2(ifindex=ifindex) / IP(src=src, dst=dst, ttl=ttl) / TCP(
        sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, options=options)
    packet.time = 1000.0 + t
    return packet


def test_isn_follows_the_flow_through_dnat(tmp_path: Path) -> None:
    # The control plane dialled the ClusterIP; the worker sees the pod's address, same ISN.
    cp = tmp_path / "cp.pcap"
    wrpcap(str(cp), [_pkt("10.0.0.10", "10.244.1.5", 40000, 10250, "S", 777, tsval=55),
                     _pkt("10.0.0.10", "10.244.1.5", 40000, 10250, "S", 777, t=1, tsval=56)])
    worker = tmp_path / "w.pcap"
    wrpcap(str(worker), [
        _pkt("10.0.0.10", "10.244.1.5", 40000, 10250, "S", 999, ifindex=2, tsval=1),  # another
        _pkt("10.0.0.10", "10.244.1.5", 40000, 10250, "S", 777, ifindex=2, t=0.001, tsval=55),
        _pkt("10.0.0.10", "10.244.1.5", 40000, 10250, "S", 777, ifindex=5, t=0.002, tsval=55),
        _pkt("10.244.1.5", "10.0.0.10", 10250, 40000, "RA", 0, ack=778, ifindex=5, t=0.003)])
    key = correlate.flow_key(analysis.read(cp), [40000])
    assert key == correlate.FlowKey(777, 55)
    seen = correlate.sight(analysis.read(worker), {"2": "eth0", "5": "veth9"}, key)
    assert seen.syn_interfaces == ("eth0", "veth9")
    assert seen.resets == (("veth9", "10.244.1.5", 64),)


def test_hop_graph_marks_the_culprit_and_exports(tmp_path: Path) -> None:
    path = hops.build_hops(FACTS, _replay(Evidence(Failure.DIAL_STALL)), SEEN_CP,
                           correlate.Sighting())
    blame = hops.culprit(path, FACTS)
    hop_graph = graph.build_hop_graph(path, blame)
    assert list(nx.topological_sort(hop_graph))[0] == "apiserver"
    assert hop_graph.nodes["network"]["culprit"] is True
    assert hop_graph.graph["culprit"] == "network"
    for suffix in (".json", ".graphml", ".dot"):
        graph.write_graph(hop_graph, tmp_path / f"g{suffix}")
    assert json.loads((tmp_path / "g.json").read_text())["graph"]["culprit"] == "network"
    assert nx.read_graphml(tmp_path / "g.graphml").nodes["network"]["status"] == "dropped"
    assert "color=red" in (tmp_path / "g.dot").read_text()
    with pytest.raises(ValueError):
        graph.write_graph(hop_graph, tmp_path / "g.png.txt")


def test_agent_result_framing_rejects_damage() -> None:
    result = AgentResult("run", "worker-1", "capture", True, captures=[b"\xd4\xc3\xb2\xa1" * 100],
                         interfaces={"2": "eth0"})
    text = encode_result(result)
    assert decode_result("log line\n" + text) == result
    header, payload, _ = text.split("\n")
    damaged = header + "\n" + payload[:-4] + "AAAA\n"
    with pytest.raises(errors.AgentError, match="checksum"):
        decode_result(damaged)
    with pytest.raises(errors.AgentError, match="no result"):
        decode_result("nothing here\n")


LOCAL = dataclasses.replace(FACTS, endpoint_ip="10.244.0.5", endpoint_node="control-plane-1")
LOCAL_HOST = dataclasses.replace(LOCAL, endpoint_ip="10.0.0.10", pod_in_node_netns=True)
BRIDGED = correlate.Sighting(("npbr0", "npv-pod-a"), 1, destination="10.244.0.5")


@pytest.mark.parametrize("facts,evidence,cp,culprit,status", [
    (LOCAL, Evidence(None), BRIDGED, None, HopStatus.OK),
    (LOCAL_HOST, Evidence(None), correlate.Sighting(("lo",), 1), None, HopStatus.OK),
    (LOCAL, Evidence(Failure.DIAL_STALL), correlate.Sighting(("npbr0",), 3),
     "pod-veth", HopStatus.DROPPED),
    (LOCAL, Evidence(Failure.REFUSED, packets=PacketSummary(syn=1, left_host=True, rst=(
        RstInfo("10.244.0.5", 64, True, 0.0),)), destination_on_link=True),
     dataclasses.replace(BRIDGED, resets=(("npv-pod-a", "10.244.0.5", 64),)),
     "webhook", HopStatus.OK),
])
def test_an_endpoint_on_the_replaying_node_has_no_network_hops(facts, evidence, cp, culprit,
                                                                status) -> None:
    """Topologies of kube-proxy's issue (#10, item 4): a pod on the control-plane node, or a
    hostNetwork one there: the SYN never leaves the node, so there is no cp-egress, network
    or worker-ingress hop; the replay's own capture is the endpoint's."""
    path = hops.build_hops(facts, _replay(evidence), cp, cp)
    endpoint_hop = "host-socket" if facts.pod_in_node_netns else "pod-veth"
    assert [h.id for h in path] == ["apiserver", "service", endpoint_hop, "webhook"]
    assert path[2].status is status
    blame = hops.culprit(path, facts)
    assert (blame.hop if blame else None) == culprit
    if culprit == "webhook":
        assert path[3].status is HopStatus.REFUSED


def test_a_local_syn_the_capture_never_saw_is_not_seen_and_skips_the_webhook() -> None:
    path = hops.build_hops(LOCAL, _replay(Evidence(Failure.DIAL_STALL)), correlate.Sighting(),
                           correlate.Sighting())
    assert [(h.id, h.status) for h in path[2:]] == [("pod-veth", HopStatus.NOT_SEEN),
                                                    ("webhook", HopStatus.SKIPPED)]


def test_a_local_endpoint_behind_a_rejecting_service_is_skipped() -> None:
    evidence = Evidence(Failure.REFUSED, packets=PacketSummary(packets=1))
    path = hops.build_hops(LOCAL, _replay(evidence), correlate.Sighting(), correlate.Sighting())
    assert path[1].status is HopStatus.REFUSED
    assert [(h.id, h.status) for h in path[2:]] == [("pod-veth", HopStatus.SKIPPED),
                                                    ("webhook", HopStatus.SKIPPED)]
