"""The rule table: evidence in, verdict out (no sockets, no root)."""

from __future__ import annotations

import pytest

from netprobe.core import rules
from netprobe.core.model import (
    CertificateInfo,
    Evidence,
    Failure,
    HttpOutcome,
    IcmpInfo,
    PacketSummary,
    Phase,
    RstInfo,
)
from netprobe.core.verdicts import UNDECIDED, VerdictClass

DIALED = ("10.96.20.99", 443)


def _cert(reason: str | None, error: str | None, names=("svc",), subject="CN=x") -> CertificateInfo:
    return CertificateInfo(subject, "CN=ca", tuple(names), (), 0.0, 1.0, "00", "1", error, reason)


def _rst(ttl: int) -> PacketSummary:
    return PacketSummary(packets=2, syn=1, rst=(RstInfo("10.244.1.5", ttl, True, 1.0),),
                         wire_destination="10.244.1.5", left_host=True)


CASES = [
    ("ok", Evidence(None), "ok", None, "ok"),
    ("kube-proxy reject", Evidence(Failure.REFUSED, packets=PacketSummary(packets=1)),
     "no-endpoints", Phase.TCP, "kube-proxy-reject"),
    ("pod reset", Evidence(Failure.REFUSED, packets=_rst(62), destination_on_link=False),
     "connection-refused", Phase.TCP, "nothing-listening"),
    ("forged reset", Evidence(Failure.REFUSED, packets=_rst(64), destination_on_link=False),
     "connection-refused", Phase.TCP, "rst-from-middlebox"),
    ("on-link reset is the destination's",
     Evidence(Failure.REFUSED, packets=_rst(64), destination_on_link=True),
     "connection-refused", Phase.TCP, "nothing-listening"),
    ("local socket resets over lo", Evidence(Failure.REFUSED, packets=PacketSummary(
        packets=2, syn=1, rst=(RstInfo("10.0.0.10", 64, True, 1.0),)),
        destination_on_link=True), "connection-refused", Phase.TCP, "nothing-listening"),
    ("refused without capture", Evidence(Failure.REFUSED), "connection-refused", Phase.TCP,
     "refused"),
    ("icmp unreachable", Evidence(Failure.NO_ROUTE, packets=PacketSummary(
        icmp=(IcmpInfo("10.0.0.1", 3, 1, 1.0),))), "no-route", Phase.TCP, "icmp-unreachable"),
    ("arp gave up on an endpoint", Evidence(Failure.NO_ROUTE, endpoint_listed=True,
                                             packets=PacketSummary(syn=4, syn_retransmissions=3,
        icmp=(IcmpInfo("10.0.1.11", 3, 1, 3.0),))), "no-route", Phase.TCP, "stale-endpoint"),
    ("arp gave up on an address", Evidence(Failure.NO_ROUTE, packets=PacketSummary(
        syn=4, syn_retransmissions=3, icmp=(IcmpInfo("10.0.1.11", 3, 1, 3.0),))),
     "no-route", Phase.TCP, "neighbour-unreachable"),
    ("nd gave up on an endpoint (ICMPv6 address unreachable)", Evidence(
        Failure.NO_ROUTE, endpoint_listed=True, packets=PacketSummary(
            syn=4, syn_retransmissions=3, icmp=(IcmpInfo("fd00:10:0:1::11", 1, 3, 3.0),))),
     "no-route", Phase.TCP, "stale-endpoint"),
    ("ICMPv6 3/1 is a reassembly timeout, not ND giving up", Evidence(
        Failure.NO_ROUTE, endpoint_listed=True, packets=PacketSummary(
            syn=4, syn_retransmissions=3, icmp=(IcmpInfo("fd00:10:0:1::11", 3, 1, 3.0),))),
     "no-route", Phase.TCP, "icmp-unreachable"),
    ("an IPv6 router without a route: ICMPv6 no route, the second SYN aborts", Evidence(
        Failure.NET_UNREACHABLE, endpoint_listed=True, packets=PacketSummary(
            syn=2, syn_retransmissions=1, icmp=(IcmpInfo("fd00:10:0:1::1", 1, 0, 0.0),
                                                IcmpInfo("fd00:10:0:1::1", 1, 0, 1.0)))),
     "no-route", Phase.TCP, "icmp-unreachable"),
    ("a router without a route answers the first SYN", Evidence(
        Failure.NO_ROUTE, endpoint_listed=True, packets=PacketSummary(
            syn=1, icmp=(IcmpInfo("10.0.0.1", 3, 1, 0.0),))), "no-route", Phase.TCP,
     "icmp-unreachable"),
    ("syn dropped", Evidence(Failure.DIAL_STALL, early=True, packets=PacketSummary(
        syn=3, syn_retransmissions=2)), "io-timeout", Phase.TCP, "syn-dropped"),
    ("tls stall", Evidence(Failure.TLS_STALL, stall="clienthello-unanswered"),
     "tls-handshake-timeout", Phase.TLS, "no-tls-server"),
    ("not tls", Evidence(Failure.TLS_ERROR, errno_name="tls",
                         detail="tls: first record does not look like a TLS handshake"),
     "tls-handshake-timeout", Phase.TLS, "not-tls"),
    ("expired", Evidence(Failure.TLS_ERROR, errno_name="x509",
                         certificate=_cert("expired", "x509: certificate has expired")),
     "x509-expired", Phase.TLS, "expired-serving-cert"),
    ("kubelet", Evidence(Failure.TLS_ERROR, errno_name="x509", dialed=("10.0.3.33", 10250),
                         certificate=_cert("hostname", "x509: valid for ...",
                                           ("ip-10-0-3-33.eu-west-1.compute.internal",),
                                           "CN=ip-10-0-3-33.eu-west-1.compute.internal,O=system:nodes")),
     "x509-hostname-mismatch", Phase.TLS, "fargate-kubelet"),
    ("other host", Evidence(Failure.TLS_ERROR, errno_name="x509",
                            certificate=_cert("hostname", "x509: valid for a.example",
                                              ("a.example",))),
     "x509-hostname-mismatch", Phase.TLS, "wrong-serving-cert"),
    ("stale bundle", Evidence(Failure.TLS_ERROR, errno_name="x509", certificate=_cert(
        "unknown-authority", "x509: certificate signed by unknown authority (possibly because")),
     "x509-unknown-authority", Phase.TLS, "stale-ca-bundle"),
    ("empty bundle, system roots", Evidence(
        Failure.TLS_ERROR, errno_name="x509", system_roots=True,
        certificate=_cert("unknown-authority", "x509: certificate signed by unknown authority")),
     "x509-unknown-authority", Phase.TLS, "empty-ca-bundle"),
    ("bundle not PEM", Evidence(Failure.BAD_CA_BUNDLE, detail="not a PEM certificate bundle"),
     "x509-unknown-authority", Phase.TLS, "invalid-ca-bundle"),
    ("kubelet without a serving certificate", Evidence(
        Failure.TLS_ERROR, errno_name="tls", detail="remote error: tls: internal error"),
     "tls-internal-error", Phase.TLS, "no-serving-cert"),
    ("hung", Evidence(Failure.RESPONSE_STALL, early=True), "response-timeout", Phase.HTTP,
     "webhook-hung"),
    ("500", Evidence(Failure.HTTP_STATUS, http=HttpOutcome(500, False)), "http-error",
     Phase.HTTP, "http-500"),
    ("bad review", Evidence(Failure.BAD_REVIEW, http=HttpOutcome(200, False)), "http-error",
     Phase.HTTP, "invalid-review"),
    ("no such name", Evidence(Failure.DNS), "dns-failure", Phase.DNS, "unresolvable"),
]


@pytest.mark.parametrize("name,evidence,cls,phase,cause", CASES, ids=[case[0] for case in CASES])
def test_rule_table(name: str, evidence: Evidence, cls: str, phase: Phase | None,
                    cause: str) -> None:
    verdict = rules.classify(evidence)
    assert (verdict.cls, verdict.phase, verdict.cause) == (cls, phase, cause)
    assert verdict.explanation


def test_early_flag_is_carried() -> None:
    verdict = rules.classify(Evidence(Failure.DIAL_STALL, early=True))
    assert verdict.early
    assert not rules.classify(Evidence(Failure.DIAL_STALL)).early


def test_every_verdict_class_is_a_contract_name() -> None:
    contract = {c for c in VerdictClass if c not in UNDECIDED}
    assert {rules.classify(case[1]).cls for case in CASES} <= contract


def test_icmpv6_is_named_so() -> None:
    verdict = rules.classify(Evidence(Failure.NET_UNREACHABLE, packets=PacketSummary(
        icmp=(IcmpInfo("fd00:10:0:1::1", 1, 0, 0.0),))))
    assert verdict.explanation.startswith("ICMPv6 type 1 code 0 from fd00:10:0:1::1")


def test_nd_failure_is_worded_for_ipv6() -> None:
    verdict = rules.classify(Evidence(Failure.NO_ROUTE, endpoint_listed=True, packets=PacketSummary(
        syn=4, syn_retransmissions=3, icmp=(IcmpInfo("fd00:10:0:1::11", 1, 3, 3.0),),
        wire_destination="fd00:10:244:1::5")))
    assert "answered ICMPv6 address unreachable" in verdict.explanation


def test_a_pods_call_rejected_on_its_node_is_no_endpoints() -> None:
    """From a konnectivity agent's pod the SYN leaves the pod before kube-proxy's REJECT on
    its node answers: only the node's own capture says the node refused it."""
    from netprobe.core.model import Evidence, Failure, IcmpInfo, PacketSummary
    from netprobe.core.verdicts import Cause, VerdictClass

    packets = PacketSummary(syn=1, left_host=True, icmp=(IcmpInfo("10.244.2.1", 3, 3, 0.0),))
    seen_from_pod = rules.classify(Evidence(Failure.REFUSED, packets=packets))
    assert seen_from_pod.cls is not VerdictClass.NO_ENDPOINTS
    with_node = rules.classify(Evidence(Failure.REFUSED, packets=packets, rejected_on_node="w2"))
    assert (with_node.cls, with_node.cause) == (VerdictClass.NO_ENDPOINTS, Cause.KUBE_PROXY_REJECT)
    assert "not its node, w2" in with_node.explanation


@pytest.mark.parametrize("text, version", [("10.0.1.11", 4), ("fd00:10:96::1463", 6),
                                           ("worker-1", None), ("[fd00::1]", None), ("", None),
                                           (None, None), ("10.0.1.256", None)])
def test_ip_version_tells_addresses_from_names(text: str | None, version: int | None) -> None:
    from netprobe.core.packets import ip_version

    assert ip_version(text) == version
