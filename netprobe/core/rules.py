"""All verdict logic: one rule table for replays and for captured flows.

Rule 1: every decision about *what failed and why* lives in this file, in
the `RULES` table, tried in order; the first rule whose test holds names
the verdict. A rule may test a replay's `Evidence` (`replay=`), a table of
captured flows (`flows=`, vectorised over numpy columns), or both; the
packet-only verdicts of `netprobe analyze` are the rules with a `flows`
test. `refine` then names the cause more precisely once the trace knows the
culprit hop (`PATH_RULES`).
Rule 2: inputs are values (`Evidence`, flow columns); nothing here does I/O.
Classes and causes come from `netprobe.core.verdicts` (the JSON contract of
FAILURES.md and README); timers from `netprobe.core.settings`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from netprobe.core.model import Evidence, Failure, IcmpInfo, Phase, RstInfo, Verdict
from netprobe.core.packets import INITIAL_TTLS
from netprobe.core.settings import DEFAULT_TIMEOUT_SECONDS, TIMERS
from netprobe.core.verdicts import UNDECIDED, Cause, VerdictClass

FlowTable = dict[str, npt.NDArray[Any]]
"""Columns of `netprobe.analysis.flowtable.build` (one row per TCP stream)."""
Mask = npt.NDArray[np.bool_]

# TLS alert descriptions (RFC 8446 6.2) that name a certificate problem.
ALERT_UNKNOWN_CA = 48
ALERT_CERT_EXPIRED = 45
ALERT_INTERNAL_ERROR = 80
ICMP_PORT_UNREACHABLE = ((1, 3, 3), (58, 1, 4))  # (proto, type, code)
NEIGHBOUR_GAVE_UP = {4: (3, 1), 6: (1, 3)}
"""(type, code) a last hop answers when ARP (host unreachable) or ND (ICMPv6 address
unreachable) found nobody: RFC 4861 7.2.2, Linux's ndisc_error_report."""


@dataclass(frozen=True)
class ReplayTest:
    """The replay side of a rule: when TEST holds for a replay, DIAGNOSE words the verdict."""

    test: Callable[[Evidence], bool]
    diagnose: Callable[[Evidence], Verdict]


@dataclass(frozen=True)
class FlowTest:
    """The packet side of a rule: the flows where TEST holds get CLS, for REASON."""

    test: Callable[[FlowTable], Mask]
    cls: VerdictClass
    reason: str


@dataclass(frozen=True)
class Rule:
    """One line of the table."""

    name: str
    replay: ReplayTest | None = None
    flows: FlowTest | None = None


def _inbound_rst(ev: Evidence) -> RstInfo | None:
    if ev.packets is None:
        return None
    return next((rst for rst in ev.packets.rst if rst.inbound), None)


def _hops(ttl: int) -> int:
    start = next(value for value in INITIAL_TTLS if value >= ttl)
    return start - ttl


def _rst_forged(ev: Evidence) -> bool:
    """A reset at hop distance 0 for a destination that is not on our link."""
    rst = _inbound_rst(ev)
    return rst is not None and _hops(rst.ttl) == 0 and ev.destination_on_link is False


def _dest(ev: Evidence) -> str:
    if ev.packets and ev.packets.wire_destination:
        return ev.packets.wire_destination
    return ev.dialed[0] if ev.dialed else "the webhook"


def _ok(ev: Evidence) -> Verdict:
    return Verdict(VerdictClass.OK, None, Cause.OK,
                   "The call went through like the apiserver's: TCP, TLS with the caBundle and "
                   "the service name, and a valid review came back.", "")


def _no_endpoints(ev: Evidence) -> Verdict:
    where = (f"the SYN left the pod but not its node, {ev.rejected_on_node}, whose own rules "
             "answered it with an ICMP error" if ev.rejected_on_node
             else "without a packet leaving this host: the node's own rules rejected the SYN")
    return Verdict(
        VerdictClass.NO_ENDPOINTS, Phase.TCP, Cause.KUBE_PROXY_REJECT,
        f"The connection was refused {where}. kube-proxy installs such a REJECT for a Service "
        "that has no ready endpoints, so the webhook pod is not Ready (or does not exist).",
        "Check `kubectl get endpointslices` for the Service; make the pod Ready: compare "
        "the readiness probe's port with the port the webhook serves healthz on "
        "(e.g. --healthz-port), check its logs; if endpoints never update, check etcd's quota.")


def _refused_by_middlebox(ev: Evidence) -> Verdict:
    rst = _inbound_rst(ev)
    assert rst is not None
    return Verdict(
        VerdictClass.CONNECTION_REFUSED, Phase.TCP, Cause.RST_FROM_MIDDLEBOX,
        f"The SYN was answered by a TCP reset claiming to come from {rst.source}, but it "
        f"arrived with TTL {rst.ttl}: it was made on the local link, while {rst.source} is "
        "routed at least one hop away. A firewall on the path rejects with "
        "tcp-reset; the webhook never saw the connection.",
        "Find the firewall between the control plane and the node (cloud firewall, security "
        "group, NetworkPolicy engine, host firewall) and allow the webhook's port.")


def _refused_by_destination(ev: Evidence) -> Verdict:
    rst = _inbound_rst(ev)
    hops = f" (TTL {rst.ttl}: {_hops(rst.ttl)} routed hops away)" if rst else ""
    return Verdict(
        VerdictClass.CONNECTION_REFUSED, Phase.TCP, Cause.NOTHING_LISTENING,
        f"{_dest(ev)} answered the SYN with a reset{hops}: the host is reachable but nothing "
        "listens on the target port. The webhook is not started yet, listens on another "
        "port, or the Service's targetPort points to the wrong containerPort.",
        "Compare the Service's targetPort, the pod's containerPort and the webhook's "
        "--secure-port; right after install, wait for leader election and serving "
        "certificate generation, then retry.")


def _refused_unobserved(ev: Evidence) -> Verdict:
    return Verdict(
        VerdictClass.CONNECTION_REFUSED, Phase.TCP, Cause.REFUSED,
        "The connection was refused. Without a capture netprobe cannot tell whether the "
        "node's kube-proxy rejected it (no endpoints), a firewall forged a reset, or the "
        "pod has nothing listening.", "Run again as root so netprobe can capture.")


def _icmp_text(ev: Evidence) -> str:
    if ev.packets and ev.packets.icmp:
        icmp = ev.packets.icmp[0]
        name = "ICMPv6" if _icmp_version(icmp) == 6 else "ICMP"
        return f"{name} type {icmp.type} code {icmp.code} from {icmp.reporter}"
    return ""


def _icmp_version(icmp: IcmpInfo) -> int:
    """4 or 6: an ICMPv6 error comes from an IPv6 reporter (the type numbers overlap)."""
    return 6 if ":" in icmp.reporter else 4


def _neighbour_failed(ev: Evidence) -> bool:
    """Host unreachable (ICMPv6: address unreachable) after the SYN was retransmitted: not a
    router without a route (that answers the first SYN) but the last hop giving up on ARP/ND
    for the destination (Linux: 3 probes 1 s apart, while the SYN and its retransmission wait
    in its queue)."""
    packets = ev.packets
    if packets is None or packets.syn_retransmissions < 1:
        return False
    return not packets.icmp or any(
        (i.type, i.code) == NEIGHBOUR_GAVE_UP[_icmp_version(i)] for i in packets.icmp)


def gave_up_answer(address: str) -> str:
    """What a last hop answers for ADDRESS when ARP/ND finds nobody, in people's words."""
    return "ICMPv6 address unreachable" if ":" in address else "ICMP host unreachable"


def _stale_endpoint(ev: Evidence) -> Verdict:
    packets = ev.packets
    answer = gave_up_answer(_dest(ev))
    if ev.neighbour_unresolved is not None:
        how = (f"its node, {ev.neighbour_unresolved}, still asks and holds the SYN; its "
               f"kernel gives up after its probes (3 s) and answers {answer}")
    else:
        reporter = packets.icmp[0].reporter if packets and packets.icmp else "this host"
        how = (f"its last hop ({reporter}) held the SYN while it resolved the address, gave "
               f"up after its probes (3 s) and answered {answer}")
    if ev.endpoint_listed:
        return Verdict(
            VerdictClass.NO_ROUTE, Phase.TCP, Cause.STALE_ENDPOINT,
            f"Nobody answers ARP/ND for {_dest(ev)}: {how}. {_dest(ev)} is still an endpoint "
            "of the Service, so its pod is gone (deleted, evicted, its node restarted) while "
            "the EndpointSlice still lists it.",
            "Compare `kubectl get endpointslices -l kubernetes.io/service-name=SERVICE -o "
            "wide` with the pods; check kube-controller-manager's endpointslice controller and "
            "the node's kubelet (a NotReady node keeps its pods' endpoints until eviction); "
            "restart or delete the stale pod.")
    return Verdict(
        VerdictClass.NO_ROUTE, Phase.TCP, Cause.NEIGHBOUR_UNREACHABLE,
        f"Nobody answers ARP/ND for {_dest(ev)}: {how}. No EndpointSlice lists the address: "
        "it belongs to no running pod or host.",
        "Check what should own the address (a pod IP that was reused or a node that is down); "
        "fix the URL or the Service's endpoints.")


def _no_route(ev: Evidence) -> Verdict:
    icmp = _icmp_text(ev)
    if icmp:
        return Verdict(
        VerdictClass.NO_ROUTE, Phase.TCP, Cause.ICMP_UNREACHABLE,
            f"{icmp} answered the SYN to {_dest(ev)}: that router has no way to the "
            "destination. The node's InternalIP or the pod CIDR is not routed from the "
            "control plane.",
            "Check routes to the node (kubelet --node-ip, cloud route tables, CNI routes) and "
            "host firewalls that reject with icmp-host-prohibited.")
    return Verdict(
        VerdictClass.NO_ROUTE, Phase.TCP, Cause.NO_LOCAL_ROUTE,
        f"This host has no route to {_dest(ev)}: the SYN was never sent.",
        "Add the route to the pod/node network on the control-plane host.")


def _io_timeout(ev: Evidence) -> Verdict:
    retrans = ev.packets.syn_retransmissions if ev.packets else None
    seen = (f"The SYN to {_dest(ev)} was sent and retransmitted {retrans} times without an "
            "answer" if retrans is not None else f"The SYN to {_dest(ev)} was never answered")
    return Verdict(
        VerdictClass.IO_TIMEOUT, Phase.TCP, Cause.SYN_DROPPED,
        f"{seen}: something on the path drops it silently (a cloud firewall or security "
        "group that only opens 443/10250 from the control plane, a NetworkPolicy without an "
        "allow rule, or a control plane that is not on the pod overlay network).",
        "Open the webhook's containerPort from the control plane (GKE private clusters: add "
        "a firewall rule or use 443/10250; EKS: security groups); with an overlay CNI on "
        "EKS, run the webhook with hostNetwork: true on a free port such as 10260.",
        early=ev.early)


def _tls_stall(ev: Evidence) -> Verdict:
    if ev.stall == "clienthello-not-acked":
        return Verdict(
        VerdictClass.TLS_HANDSHAKE_TIMEOUT, Phase.TLS, Cause.CLIENTHELLO_LOST,
            "TCP connected but the ClientHello was never acknowledged: data packets are "
            "dropped after the handshake (MTU black hole, asymmetric firewall).",
            "Check MTU/MSS clamping and stateful firewalls on the path.", early=ev.early)
    return Verdict(
        VerdictClass.TLS_HANDSHAKE_TIMEOUT, Phase.TLS, Cause.NO_TLS_SERVER,
        "TCP connected and the ClientHello was acknowledged, but no ServerHello came: "
        "whatever owns the port is not the webhook's TLS server (a plain TCP/HTTP "
        "listener, a proxy, a stuck process).",
        "Find who owns the port on the pod or node (ss -ltnp) and point the Service's "
        "targetPort at the webhook's TLS port.", early=ev.early)


INTERNAL_ERROR_TEXT = "remote error: tls: internal error"
"""Go's words for a received internal_error alert (crypto/tls alert.go)."""


def _tls_internal_error(ev: Evidence) -> Verdict:
    return Verdict(
        VerdictClass.TLS_INTERNAL_ERROR, Phase.TLS, Cause.NO_SERVING_CERT,
        "The server answered the ClientHello with a TLS internal_error alert: it has no "
        "certificate to serve. A kubelet with serverTLSBootstrap (--rotate-server-"
        "certificates) does this until its serving-certificate CSR is approved, so kubectl "
        "logs and exec fail with 'remote error: tls: internal error'.",
        "List pending CSRs (kubectl get csr --field-selector "
        "spec.signerName=kubernetes.io/kubelet-serving) and approve the node's (kubectl "
        "certificate approve NAME), or run an approver (kubelet-csr-approver); for another "
        "server, check that it loads its certificate.")


def _tls_broken(ev: Evidence) -> Verdict:
    cause = (Cause.NOT_TLS if "does not look like a TLS handshake" in ev.detail
             else Cause.TLS_ABORTED)
    return Verdict(
        VerdictClass.TLS_HANDSHAKE_TIMEOUT, Phase.TLS, cause,
        f"The TLS handshake did not complete: {ev.detail}. The port is not served by the "
        "webhook's TLS server, or the server aborted the handshake.",
        "Check which process owns the port and the webhook's TLS configuration and logs.")


def _is_kubelet(ev: Evidence) -> bool:
    cert = ev.certificate
    if cert is None:
        return False
    return ("O=system:nodes" in cert.subject
            or any(name.endswith(".compute.internal") for name in cert.dns_names)
            or (ev.dialed is not None and ev.dialed[1] == 10250 and bool(cert.dns_names)
                and not any(".svc" in name for name in cert.dns_names)))


def _x509(ev: Evidence) -> Verdict:
    cert = ev.certificate
    assert cert is not None
    reason = cert.verify_reason
    if reason in ("expired", "not-yet-valid"):
        cause = Cause.EXPIRED_SERVING_CERT if reason == "expired" else Cause.CLOCK_SKEW
        return Verdict(
            VerdictClass.X509_EXPIRED, Phase.TLS, cause,
            f"The webhook served a certificate ({cert.subject}) outside its validity window: "
            f"{cert.verify_error}.",
            "Rotate the serving certificate (cert-manager renews it; check the CA "
            "injector and the webhook's logs) and check the clocks of the nodes.")
    if reason == "hostname":
        if _is_kubelet(ev):
            return Verdict(
        VerdictClass.X509_HOSTNAME_MISMATCH, Phase.TLS, Cause.FARGATE_KUBELET,
                f"A TLS server answered, but it is a kubelet, not the webhook: its certificate "
                f"is for {', '.join(cert.dns_names) or cert.subject}. On AWS Fargate a pod is a "
                "micro-VM whose own kubelet owns port 10250 and pod IP == node IP, so traffic "
                "to 10250 reaches the kubelet.",
                "Run the webhook on another port (e.g. securePort 10260) and point the "
                "Service's targetPort at it.")
        return Verdict(
        VerdictClass.X509_HOSTNAME_MISMATCH, Phase.TLS, Cause.WRONG_SERVING_CERT,
            f"The served certificate does not name the service: {cert.verify_error}.",
            "Issue the serving certificate for SVC, SVC.NS and SVC.NS.svc, or find which "
            "server answers on the port.")
    if ev.system_roots:
        return Verdict(
            VerdictClass.X509_UNKNOWN_AUTHORITY, Phase.TLS, Cause.EMPTY_CA_BUNDLE,
            f"The webhook configuration has no caBundle, so the apiserver verified the "
            f"serving certificate (issued by {cert.issuer}) against its system trust store, "
            "which does not hold the webhook's private CA. Right after installing "
            "cert-manager this is the usual state until its CA injector has run.",
            "Let the CA injector fill it: annotate the configuration with "
            "cert-manager.io/inject-ca-from: NAMESPACE/CERTIFICATE (or "
            "inject-ca-from-secret: NAMESPACE/SECRET) and check the cainjector's logs; or "
            "copy ca.crt of the CA Secret (cert-manager-webhook-ca) into "
            "clientConfig.caBundle (base64).")
    stale = "possibly because" in (cert.verify_error or "")
    return Verdict(
        VerdictClass.X509_UNKNOWN_AUTHORITY, Phase.TLS,
        Cause.STALE_CA_BUNDLE if stale else Cause.UNKNOWN_ISSUER,
        f"The serving certificate was issued by {cert.issuer}, which the caBundle (of the "
        "webhook configuration or APIService) does not vouch for"
        + (" (a CA with the same name but another key: the caBundle is stale)." if stale
           else "."),
        "Compare the caBundle with the CA that signs the serving certificate (its Secret, "
        "e.g. cert-manager-webhook-ca); check the CA injector's logs (cainjector) and its "
        "leader-election namespace permissions.")


def _response_timeout(ev: Evidence) -> Verdict:
    return Verdict(
        VerdictClass.RESPONSE_TIMEOUT, Phase.HTTP, Cause.WEBHOOK_HUNG,
        "TLS completed and the webhook acknowledged the request, but no HTTP response came: "
        "the webhook process is hung or overloaded.",
        "Read the webhook's logs and resource usage; raise timeoutSeconds to 30 to see the "
        "real error instead of a context deadline.", early=ev.early)


def _http_error(ev: Evidence) -> Verdict:
    status = ev.http.status if ev.http else 0
    if ev.failure is Failure.BAD_REVIEW:
        return Verdict(VerdictClass.HTTP_ERROR, Phase.HTTP, Cause.INVALID_REVIEW,
                       f"The webhook answered HTTP 200 but not with a valid review: {ev.detail}.",
                       "Fix the webhook's response (same uid, apiVersion and kind as the request).")
    if status:
        return Verdict(VerdictClass.HTTP_ERROR, Phase.HTTP, Cause.http_status(status),
                       f"The webhook answered HTTP {status} instead of a review: {ev.detail}.",
                       "Read the webhook's logs for the failing request.")
    return Verdict(VerdictClass.HTTP_ERROR, Phase.HTTP, Cause.BROKEN_RESPONSE,
                   f"The HTTP exchange broke: {ev.detail}.", "Read the webhook's logs.")


def _dns(ev: Evidence) -> Verdict:
    return Verdict(
        VerdictClass.DNS_FAILURE, Phase.DNS, Cause.UNRESOLVABLE,
        f"{ev.detail}. The apiserver resolves SVC.NS.svc through its own service resolver, "
        "not DNS: pass --resolve HOST:CLUSTER_IP to replay it, or check that the Service "
        "named in the webhook configuration exists.",
        "Fix clientConfig.service (name, namespace) or create the Service.", early=ev.early)


def _bad_ca_bundle(ev: Evidence) -> Verdict:
    return Verdict(
        VerdictClass.X509_UNKNOWN_AUTHORITY, Phase.TLS, Cause.INVALID_CA_BUNDLE,
        "The webhook configuration's caBundle holds no PEM certificate, so the apiserver "
        f"cannot build the webhook's client and trusts nothing; no packet is sent ({ev.detail}).",
        "Put the CA's PEM certificate, base64-encoded, in clientConfig.caBundle (ca.crt of the "
        "CA Secret, e.g. cert-manager-webhook-ca), or let cert-manager's CA injector fill it "
        "(annotation cert-manager.io/inject-ca-from).")


def _no_tunnel_agent(ev: Evidence) -> Verdict:
    return Verdict(
        VerdictClass.NO_TUNNEL_AGENT, Phase.TCP, Cause.KONNECTIVITY_NO_AGENT,
        "The apiserver reaches the cluster through konnectivity, and no konnectivity-agent is "
        f"ready to carry the dial ({ev.detail}): konnectivity-server answers the dial request "
        "with 'No agent available' and no packet enters the cluster.",
        "Get a konnectivity-agent Ready in kube-system: its logs say why it cannot connect to "
        "konnectivity-server (port 8132 on the control plane by default; a firewall, an "
        "expired token or a wrong --proxy-server-host).")


def _no_service(ev: Evidence) -> Verdict:
    return Verdict(
        VerdictClass.SERVICE_NOT_FOUND, Phase.DNS, Cause.SERVICE_NOT_FOUND,
        f"The webhook configuration names a Service that does not exist ({ev.detail}).",
        "Fix clientConfig.service (name, namespace) in the webhook configuration.")



# --- the packet-only tests (flow tables, numpy) -------------------------------------------


def _mask(value: Any) -> Mask:
    """VALUE as a boolean array (numpy's stubs type column comparisons as Any)."""
    return np.asarray(value, dtype=np.bool_)


def _nan_gt(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> Mask:
    return _mask(np.nan_to_num(a, nan=-np.inf) > np.nan_to_num(b, nan=-np.inf))


def _icmp(f: FlowTable, port_unreachable: bool) -> Mask:
    proto, kind, code = f["icmp_proto"], f["icmp_type"], f["icmp_code"]
    unreach = ((proto == 1) & np.isin(kind, (3, 11))) | ((proto == 58) & np.isin(kind, (1, 3)))
    # fragmentation needed: PMTU, not a failure
    unreach &= ~((proto == 1) & (kind == 3) & (code == 4))
    port = np.zeros(len(proto), bool)
    for pr, ty, co in ICMP_PORT_UNREACHABLE:
        port |= (proto == pr) & (kind == ty) & (code == co)
    no_answer = f["synack"] == 0
    quoted = no_answer & (f["icmp_errors"] > 0) & unreach
    return _mask(quoted & (port if port_unreachable else ~port))


def _tls_stalled(f: FlowTable) -> Mask:
    """ClientHello sent, no ServerHello, and the client gave up or the TLS timer ran out.
    An alert before any ServerHello is the server's answer (handshake_failure,
    internal_error...), not a stall: the alert rules judge it."""
    waiting = (f["client_hello"] > 0) & (f["server_hello"] == 0) & (f["tls_alerts"] == 0)
    gave_up = (np.isfinite(f["client_close_time"])
               & ~_nan_gt(f["client_hello_time"], f["client_close_time"]))
    long = (f["last_time"] - f["client_hello_time"]) >= TIMERS.tls
    return _mask(waiting & (gave_up | long) & ~(np.isfinite(f["server_close_time"]) & ~gave_up))


def _server_closed_hello(f: FlowTable) -> Mask:
    return _mask((f["client_hello"] > 0) & (f["server_hello"] == 0)
                 & np.isfinite(f["server_close_time"]))


def _alert(f: FlowTable, description: int) -> Mask:
    return _mask((f["tls_alerts"] > 0) & (f["alert_description"] == description))


def _response_stalled(f: FlowTable) -> Mask:
    """TLS done, the client's last request got no server data after it."""
    asked = (f["server_hello"] > 0) & np.isfinite(f["last_request_time"])
    unanswered = ~_nan_gt(f["last_server_data_time"], f["last_request_time"])
    client_closed = _nan_gt(f["client_close_time"], f["last_request_time"])
    long = (f["last_time"] - f["last_request_time"]) >= DEFAULT_TIMEOUT_SECONDS
    return asked & unanswered & (client_closed | long)


def _syn_reset(f: FlowTable) -> Mask:
    return _mask((f["syn"] > 0) & (f["synack"] == 0) & (f["rst_server"] > 0))


def _unanswered_syn(f: FlowTable, retried: bool) -> Mask:
    quiet = (f["syn"] > 0) & (f["synack"] == 0) & (f["rst_server"] == 0)
    # Sends on one interface: copies of one SYN on other interfaces are not retries.
    return _mask(quiet & ((f["syn_sends"] > 1) == retried))


def _established(f: FlowTable) -> Mask:
    return f["synack"] > 0


def _exchanged(f: FlowTable) -> Mask:
    return _mask((f["client_bytes"] > 0) & (f["server_bytes"] > 0) & (f["tls_alerts"] == 0))


def _refused(ev: Evidence) -> bool:
    return ev.failure is Failure.REFUSED


def _syn_sent(ev: Evidence) -> bool:
    """The SYN was captured after the node's rules: on the wire, or over `lo` to a local
    endpoint (a hostNetwork pod on this node); kube-proxy's REJECT leaves no SYN at all."""
    return bool(ev.packets and (ev.packets.left_host or ev.packets.syn > 0))


def _answered_or_left(ev: Evidence) -> bool:
    """A reset came back, or the SYN was seen leaving the host."""
    return _inbound_rst(ev) is not None or bool(ev.packets and ev.packets.left_host)


def _failed_as(*failures: Failure) -> Callable[[Evidence], bool]:
    return lambda ev: ev.failure in failures


V = VerdictClass
RULES: tuple[Rule, ...] = (
    Rule("call succeeded", replay=ReplayTest(lambda ev: ev.failure is None, _ok)),
    Rule("service missing", replay=ReplayTest(_failed_as(Failure.NO_SERVICE), _no_service)),
    Rule("no konnectivity agent", replay=ReplayTest(_failed_as(Failure.NO_TUNNEL_AGENT),
                                                    _no_tunnel_agent)),
    Rule("caBundle not PEM", replay=ReplayTest(_failed_as(Failure.BAD_CA_BUNDLE),
                                               _bad_ca_bundle)),
    Rule("name does not resolve", replay=ReplayTest(_failed_as(Failure.DNS), _dns)),
    Rule("refused by ICMP port unreachable",
         flows=FlowTest(lambda f: _icmp(f, True), V.CONNECTION_REFUSED,
                        "ICMP port unreachable quoting the SYN")),
    Rule("neighbour never answered",
         replay=ReplayTest(lambda ev: (ev.failure is Failure.NO_ROUTE and _neighbour_failed(ev))
                           or (ev.failure is Failure.DIAL_STALL
                               and ev.neighbour_unresolved is not None),
                           _stale_endpoint)),
    Rule("no route",
         replay=ReplayTest(_failed_as(Failure.NO_ROUTE, Failure.NET_UNREACHABLE), _no_route),
         flows=FlowTest(lambda f: _icmp(f, False), V.NO_ROUTE,
                        "ICMP unreachable quoting the SYN")),
    Rule("refused, no SYN went past the node's rules",
         replay=ReplayTest(lambda ev: _refused(ev) and (
             (ev.packets is not None and not _syn_sent(ev)) or ev.rejected_on_node is not None),
             _no_endpoints)),
    Rule("refused by a forged reset",
         replay=ReplayTest(lambda ev: _refused(ev) and _rst_forged(ev), _refused_by_middlebox)),
    Rule("refused by the destination",
         replay=ReplayTest(lambda ev: _refused(ev) and _answered_or_left(ev),
                           _refused_by_destination),
         flows=FlowTest(_syn_reset, V.CONNECTION_REFUSED, "SYN answered by RST")),
    Rule("refused, not captured", replay=ReplayTest(_refused, _refused_unobserved)),
    Rule("SYN unanswered",
         replay=ReplayTest(_failed_as(Failure.DIAL_STALL), _io_timeout),
         flows=FlowTest(lambda f: _unanswered_syn(f, True), V.IO_TIMEOUT,
                        "SYN retransmitted, never answered")),
    Rule("one SYN, capture ended",
         flows=FlowTest(lambda f: _unanswered_syn(f, False), V.INCONCLUSIVE,
                        "one SYN, no answer before the capture ended")),
    Rule("started before the capture",
         flows=FlowTest(lambda f: f["syn"] == 0, V.INCONCLUSIVE,
                        "the connection started before the capture")),
    Rule("TLS alert internal_error",
         replay=ReplayTest(lambda ev: ev.failure is Failure.TLS_ERROR
                           and INTERNAL_ERROR_TEXT in ev.detail, _tls_internal_error),
         flows=FlowTest(lambda f: _alert(f, ALERT_INTERNAL_ERROR), V.TLS_INTERNAL_ERROR,
                        "TLS alert internal_error")),
    Rule("ServerHello never came",
         replay=ReplayTest(_failed_as(Failure.TLS_STALL), _tls_stall),
         flows=FlowTest(_tls_stalled, V.TLS_HANDSHAKE_TIMEOUT, "ClientHello sent, no ServerHello")),
    Rule("server closed after the ClientHello",
         flows=FlowTest(_server_closed_hello, V.UNKNOWN,
                        "server closed the connection after the ClientHello without a "
                        "ServerHello")),
    Rule("certificate rejected",
         replay=ReplayTest(lambda ev: ev.failure is Failure.TLS_ERROR and ev.certificate is not None
                           and ev.certificate.verify_error is not None, _x509)),
    Rule("TLS alert unknown_ca",
         flows=FlowTest(lambda f: _alert(f, ALERT_UNKNOWN_CA), V.X509_UNKNOWN_AUTHORITY,
                        "TLS alert unknown_ca")),
    Rule("TLS alert certificate_expired",
         flows=FlowTest(lambda f: _alert(f, ALERT_CERT_EXPIRED), V.X509_EXPIRED,
                        "TLS alert certificate_expired")),
    Rule("TLS broke",
         replay=ReplayTest(lambda ev: ev.failure is Failure.TLS_ERROR and ev.errno_name == "tls",
                           _tls_broken),
         flows=FlowTest(lambda f: f["tls_alerts"] > 0, V.UNKNOWN, "TLS alert")),
    Rule("response never came",
         replay=ReplayTest(_failed_as(Failure.RESPONSE_STALL), _response_timeout),
         flows=FlowTest(_response_stalled, V.RESPONSE_TIMEOUT,
                        "request sent after the TLS handshake, no response")),
    Rule("data both ways",
         flows=FlowTest(lambda f: _established(f) & _exchanged(f), V.OK,
                        "data exchanged both ways")),
    Rule("handshake only",
         flows=FlowTest(_established, V.INCONCLUSIVE, "handshake seen, not enough data to judge")),
    Rule("HTTP answer wrong", replay=ReplayTest(lambda ev: True, _http_error)),
)


def classify(evidence: Evidence) -> Verdict:
    """Returns the verdict of the first rule of RULES whose replay test holds for EVIDENCE."""
    for rule in RULES:
        if rule.replay is not None and rule.replay.test(evidence):
            return rule.replay.diagnose(evidence)
    raise AssertionError("the last replay rule always holds")


def classify_flows(f: FlowTable) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_]]:
    """(class, reason) per flow of the flow table F, from the rules with a flows test.

    Flows no rule matches are `unknown`, "no rule matched". Values are plain strings.
    """
    n = len(f["stream"])
    verdict = np.full(n, VerdictClass.UNKNOWN.value, dtype=object)
    reason = np.full(n, "no rule matched", dtype=object)
    left = np.ones(n, bool)
    for rule in RULES:
        if rule.flows is None:
            continue
        hit = left & rule.flows.test(f)
        verdict[hit] = rule.flows.cls.value
        reason[hit] = rule.flows.reason
        left &= ~hit
    return verdict, reason


def severity(verdict: npt.NDArray[np.object_]) -> npt.NDArray[np.int64]:
    """Sort key of flow verdicts: failures first (0), then undecided (1), then ok (2)."""
    undecided = np.isin(verdict, [c.value for c in UNDECIDED])
    ok = verdict == VerdictClass.OK.value
    return np.where(ok, 2, np.where(undecided, 1, 0)).astype(np.int64)


def failed(verdict: npt.NDArray[np.object_]) -> npt.NDArray[np.bool_]:
    """Which flow verdicts are failures of the call."""
    return _mask(severity(verdict) == 0)

# --- refinement with the whole path (trace) ---------------------------------------


@dataclass(frozen=True)
class PathRule:
    """When the replay said CLS and the path says more, name the cause more precisely."""

    cls: VerdictClass
    test: Callable[[str | None, set[str]], bool]
    """(culprit hop id, finding codes) -> does this rule apply?"""
    cause: Cause
    explanation: str
    fix: str


PATH_RULES: tuple[PathRule, ...] = (
    PathRule(VerdictClass.IO_TIMEOUT,
             lambda hop, codes: hop == "network" and "gke-firewall-port" in codes,
             Cause.GKE_PRIVATE_FIREWALL,
             "The SYN left the control plane and never reached the node: GKE private clusters "
             "only let the control plane reach nodes on 443 and 10250, and the webhook's "
             "containerPort is neither.",
             "Add a firewall rule from the control plane's CIDR to the nodes on the webhook's "
             "port, or serve it on 443 or 10250."),
    PathRule(VerdictClass.IO_TIMEOUT,
             lambda hop, codes: hop == "network" and "eks-overlay-pod-ip" in codes,
             Cause.EKS_CUSTOM_CNI,
             "The SYN left the control plane and was lost: the pod's IP belongs to an overlay "
             "CNI (Calico, Weave...) that the EKS control plane is not part of, so the VPC "
             "has no route to it.",
             "Run the webhook with hostNetwork: true on a free port (e.g. 10260), or use the "
             "AWS VPC CNI."),
    PathRule(VerdictClass.IO_TIMEOUT,
             lambda hop, codes: hop == "pod-veth" and "konnectivity-tunnel" in codes,
             Cause.DROPPED_AT_POD,
             "The SYN reached the pod's node but never the pod's veth: the node dropped it on "
             "the way in. Through konnectivity the call comes from a konnectivity-agent pod, "
             "not from the control plane: a NetworkPolicy that admits only the control plane's "
             "range drops it.",
             "Add a NetworkPolicy ingress rule admitting the konnectivity agents (namespace "
             "kube-system, pods labelled k8s-app=konnectivity-agent) to the webhook's port."),
    PathRule(VerdictClass.IO_TIMEOUT,
             lambda hop, codes: hop == "network" and "konnectivity-tunnel" in codes,
             Cause.DROPPED_IN_NETWORK,
             "The SYN left the konnectivity agent's node and never reached the endpoint's node: "
             "a firewall or route between nodes drops it (through konnectivity the call is "
             "node-to-node traffic from the agent's pod, not control-plane traffic).",
             "Allow the pod network between nodes on the webhook's port (cloud firewall, "
             "security group)."),
    PathRule(VerdictClass.IO_TIMEOUT, lambda hop, codes: hop == "pod-veth",
             Cause.DROPPED_AT_POD,
             "The SYN reached the pod's node but never the pod's veth: the node dropped it on "
             "the way in, as a NetworkPolicy without an allow rule for the control plane does.",
             "Add a NetworkPolicy ingress rule allowing the control plane (or the node's "
             "address range) to the webhook's port."),
    PathRule(VerdictClass.IO_TIMEOUT, lambda hop, codes: hop == "network",
             Cause.DROPPED_IN_NETWORK,
             "The SYN left the control plane and never reached the node: a firewall or route "
             "between them drops it (cloud firewall, security group, missing route).",
             "Open the webhook's port from the control plane to the nodes."),
    PathRule(VerdictClass.CONNECTION_REFUSED, lambda hop, codes: hop == "network",
             Cause.RST_FROM_MIDDLEBOX,
             "The SYN never reached the node, yet a reset came back: something between the "
             "control plane and the node refused the connection in the pod's name.",
             "Find the firewall on the path (reject-with-tcp-reset) and allow the port."),
    PathRule(VerdictClass.CONNECTION_REFUSED, lambda hop, codes: hop == "webhook",
             Cause.NOTHING_LISTENING,
             "The SYN reached the pod and the pod answered with a reset: nothing listens on "
             "the target port.",
             "Compare the Service's targetPort, the pod's containerPort and the webhook's "
             "--secure-port; right after install, wait for certificates and leader election."),
)


def refine(verdict: Verdict, culprit_hop: str | None, finding_codes: set[str]) -> Verdict:
    """Returns VERDICT with a more precise cause when the path shows one (first rule wins)."""
    for rule in PATH_RULES:
        if rule.cls == verdict.cls and rule.test(culprit_hop, finding_codes):
            if rule.cause == verdict.cause:
                return verdict
            return Verdict(verdict.cls, verdict.phase, rule.cause,
                           rule.explanation, rule.fix, verdict.early)
    return verdict
