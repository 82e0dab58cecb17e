"""Invariants between the replay and the hops, over generated per-hop evidence (hypothesis).

One consistent story per call (#11): a later phase that succeeded proves the earlier
hops, so a connected call never has a hop that did not see or dropped the SYN; every
failed verdict names a culprit; a call that went through names none; TLS and HTTP
failures blame the webhook. The evidence is generated: whatever a capture misses or a
new classifier rule decides, these must hold.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from netprobe.core import rules
from netprobe.core.model import (
    ApiserverError,
    CallTarget,
    CertificateInfo,
    Evidence,
    Failure,
    HopStatus,
    HttpOutcome,
    IcmpInfo,
    PacketSummary,
    Phase,
    PhaseResult,
    ReplayResult,
    RstInfo,
    Status,
)
from netprobe.trace import correlate, hops

FACTS = hops.PathFacts("control-plane-1", False, "cert-manager/cert-manager-webhook",
                       "10.96.20.99", 443, "10.244.1.5", 10250, "worker-1", "pod-a", False)
TARGET = CallTarget("https://s.ns.svc:443/validate", "s.ns.svc", 443, "/validate")
UNKNOWN_CA = CertificateInfo("CN=x", "CN=ca", ("s.ns.svc",), (), 0.0, 1.0, "00", "1",
                             "x509: certificate signed by unknown authority",
                             "unknown-authority")
PROVEN = (HopStatus.NOT_SEEN, HopStatus.DROPPED)
"""What a hop before the webhook can never be once TCP connected."""

# What the replay itself saw: (evidence, whether TCP connected).
CALLS = [
    (Evidence(None), True),
    (Evidence(Failure.TLS_STALL, stall="clienthello-unanswered"), True),
    (Evidence(Failure.TLS_ERROR, errno_name="x509", certificate=UNKNOWN_CA), True),
    (Evidence(Failure.TLS_ERROR, errno_name="x509", certificate=UNKNOWN_CA,
              system_roots=True), True),
    (Evidence(Failure.RESPONSE_STALL, early=True), True),
    (Evidence(Failure.HTTP_STATUS, http=HttpOutcome(500, False)), True),
    (Evidence(Failure.DIAL_STALL, early=True, packets=PacketSummary(
        syn=3, syn_retransmissions=2, left_host=True)), False),
    (Evidence(Failure.REFUSED, packets=PacketSummary(syn=1, left_host=True, rst=(
        RstInfo("10.244.1.5", 62, True, 0.1),))), False),
    (Evidence(Failure.REFUSED, packets=PacketSummary(packets=1)), False),
    (Evidence(Failure.NO_ROUTE, packets=PacketSummary(syn=1, left_host=True, icmp=(
        IcmpInfo("10.0.0.1", 3, 1, 0.0),))), False),
    (Evidence(Failure.NO_ROUTE, endpoint_listed=True, packets=PacketSummary(
        syn=4, syn_retransmissions=3, left_host=True,
        icmp=(IcmpInfo("10.0.1.11", 3, 1, 3.0),))), False),
]

interfaces = st.lists(st.sampled_from(["npeth0", "flannel.1", "npbr0", "veth1", "lo"]),
                      max_size=4, unique=True).map(tuple)
VXLAN = correlate.Encapsulation("vxlan", "10.0.0.10", "10.0.1.11", 1, "npeth0")
resets = st.lists(st.tuples(st.just("npeth0"), st.sampled_from(["10.244.1.5", "10.0.0.1"]),
                            st.sampled_from([62, 64])), max_size=1).map(tuple)
icmps = st.lists(st.tuples(st.just("npeth0"), st.just("10.0.0.1"), st.just(3), st.just(1)),
                 max_size=1).map(tuple)
sightings = st.one_of(
    st.just(correlate.UNOBSERVED),
    st.builds(correlate.Sighting, syn_interfaces=interfaces, syn_count=st.integers(0, 3),
              resets=resets, icmp=icmps, tunnel=st.one_of(st.none(), st.just(VXLAN))))


def _replay(evidence: Evidence, connected: bool) -> ReplayResult:
    tcp = PhaseResult(Phase.TCP, Status.OK if connected else Status.FAILED, 0.0, 0.001)
    return ReplayResult(TARGET, (tcp,), rules.classify(evidence), ApiserverError("m"),
                        packets=evidence.packets)


@settings(max_examples=400, deadline=None)
@given(call=st.sampled_from(CALLS), cp=sightings, worker=sightings,
       local=st.booleans(), host_network=st.booleans())
def test_the_hops_never_contradict_the_replay(call, cp, worker, local, host_network) -> None:
    evidence, connected = call
    facts = dataclasses.replace(FACTS, pod_in_node_netns=host_network,
                                endpoint_node="control-plane-1" if local else "worker-1")
    replay = _replay(evidence, connected)
    path = hops.build_hops(facts, replay, cp, cp if local else worker)
    blame = hops.culprit(path, facts, replay)
    verdict = replay.verdict
    if connected:
        before_webhook = [h for h in path if h.id not in ("webhook",)]
        assert not [h for h in before_webhook if h.status in PROVEN], path
        if cp.observed and not cp.seen:  # the capture missed what the handshake proves
            assert hops.disagreements(path), path
    if verdict.cls.failed:
        assert blame is not None, (verdict, path)
    else:
        assert blame is None, (verdict, path)
        assert all(h.status in (HopStatus.OK, HopStatus.UNOBSERVABLE) for h in path), path
    if verdict.phase in (Phase.TLS, Phase.HTTP):
        assert blame is not None and blame.hop == "webhook", (verdict, path)


def _seen(*names: str, tunnel: correlate.Encapsulation | None = None) -> correlate.Sighting:
    return correlate.Sighting(syn_interfaces=names, syn_count=1, tunnel=tunnel,
                              destination="10.244.1.5")


def test_the_overlay_is_a_hop_and_its_device_is_not_the_pods_veth() -> None:
    stalled = _replay(Evidence(Failure.DIAL_STALL, early=True, packets=PacketSummary(
        syn=3, syn_retransmissions=2, left_host=True)), False)
    cp = _seen("flannel.1", "npeth0", tunnel=VXLAN)
    # Decapsulated on flannel.1, never forwarded to the bridge: dropped before the pod.
    dropped = hops.build_hops(FACTS, stalled, cp, _seen("npeth0", "flannel.1", tunnel=VXLAN))
    by_id = {hop.id: hop for hop in dropped}
    assert [h.id for h in dropped][2:4] == ["cp-egress", "overlay"]
    assert by_id["overlay"].label == "overlay (VXLAN VNI 1 10.0.0.10 -> 10.0.1.11)"
    assert "control-plane-1's npeth0" in by_id["overlay"].detail
    assert by_id["pod-veth"].status is HopStatus.DROPPED
    assert hops.culprit(dropped, FACTS, stalled).hop == "pod-veth"
    delivered = hops.build_hops(FACTS, stalled, cp,
                                _seen("npeth0", "flannel.1", "npbr0", "veth1", tunnel=VXLAN))
    assert {h.id: h for h in delivered}["pod-veth"].status is HopStatus.OK
    plain = hops.build_hops(FACTS, stalled, _seen("npeth0"), _seen("npeth0"))
    assert "overlay" not in {h.id for h in plain}
