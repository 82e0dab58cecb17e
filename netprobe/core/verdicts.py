"""The verdict vocabulary: every class and cause netprobe can name.

Owns: `VerdictClass` (the contract of shared/FAILURES.md, plus the two
packet-only answers `inconclusive` and `unknown`) and `Cause` (stable cause
ids, documented in README). Their string values are what JSON carries;
renaming a member's value is a breaking change. Must not: decide anything
(`netprobe.core.rules` does) or import outside the standard library.
"""

from __future__ import annotations

import enum


class VerdictClass(enum.StrEnum):
    """What failed, in the words of FAILURES.md."""

    OK = "ok"
    CONNECTION_REFUSED = "connection-refused"
    NO_ENDPOINTS = "no-endpoints"
    IO_TIMEOUT = "io-timeout"
    NO_ROUTE = "no-route"
    TLS_HANDSHAKE_TIMEOUT = "tls-handshake-timeout"
    TLS_INTERNAL_ERROR = "tls-internal-error"
    """The server aborted the handshake with a TLS internal_error alert (no certificate to
    serve: a kubelet whose serving-certificate CSR is not approved)."""
    RESPONSE_TIMEOUT = "response-timeout"
    X509_UNKNOWN_AUTHORITY = "x509-unknown-authority"
    X509_EXPIRED = "x509-expired"
    X509_HOSTNAME_MISMATCH = "x509-hostname-mismatch"
    DNS_FAILURE = "dns-failure"
    SERVICE_NOT_FOUND = "service-not-found"
    NO_TUNNEL_AGENT = "no-tunnel-agent"
    """The apiserver reaches the cluster through konnectivity and no agent is connected to
    konnectivity-server: the dial fails with "No agent available", no packet is sent."""
    HTTP_ERROR = "http-error"
    INCONCLUSIVE = "inconclusive"
    """Packets only: not enough was captured to tell."""
    UNKNOWN = "unknown"
    """Packets only: something happened that no class describes."""

    @property
    def failed(self) -> bool:
        """A failure of the call (not ok, not undecided)."""
        return self not in UNDECIDED and self is not VerdictClass.OK


UNDECIDED = frozenset({VerdictClass.INCONCLUSIVE, VerdictClass.UNKNOWN})


class Cause(enum.StrEnum):
    """Why, as a stable id: one class has one or more causes."""

    OK = "ok"
    NOTHING_LISTENING = "nothing-listening"
    RST_FROM_MIDDLEBOX = "rst-from-middlebox"
    REFUSED = "refused"
    KUBE_PROXY_REJECT = "kube-proxy-reject"
    SYN_DROPPED = "syn-dropped"
    GKE_PRIVATE_FIREWALL = "gke-private-firewall"
    EKS_CUSTOM_CNI = "eks-custom-cni"
    DROPPED_AT_POD = "dropped-at-pod"
    DROPPED_IN_NETWORK = "dropped-in-network"
    ICMP_UNREACHABLE = "icmp-unreachable"
    NO_LOCAL_ROUTE = "no-local-route"
    STALE_ENDPOINT = "stale-endpoint"
    NEIGHBOUR_UNREACHABLE = "neighbour-unreachable"
    NO_TLS_SERVER = "no-tls-server"
    CLIENTHELLO_LOST = "clienthello-lost"
    NOT_TLS = "not-tls"
    TLS_ABORTED = "tls-aborted"
    NO_SERVING_CERT = "no-serving-cert"
    WEBHOOK_HUNG = "webhook-hung"
    STALE_CA_BUNDLE = "stale-ca-bundle"
    EMPTY_CA_BUNDLE = "empty-ca-bundle"
    INVALID_CA_BUNDLE = "invalid-ca-bundle"
    UNKNOWN_ISSUER = "unknown-issuer"
    EXPIRED_SERVING_CERT = "expired-serving-cert"
    CLOCK_SKEW = "clock-skew"
    FARGATE_KUBELET = "fargate-kubelet"
    WRONG_SERVING_CERT = "wrong-serving-cert"
    UNRESOLVABLE = "unresolvable"
    SERVICE_NOT_FOUND = "service-not-found"
    KONNECTIVITY_NO_AGENT = "konnectivity-no-agent"
    INVALID_REVIEW = "invalid-review"
    BROKEN_RESPONSE = "broken-response"

    @staticmethod
    def http_status(status: int) -> str:
        """The cause of an HTTP answer that is not a review: `http-NNN`."""
        return f"http-{status}"
