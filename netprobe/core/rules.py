"""All verdict logic: evidence in, one verdict out.

Rule 1: every decision about *what failed and why* lives in this file, in
the `RULES` table, tried in order; the first rule whose test holds names
the verdict. Rule 2: inputs are values (`Evidence`); nothing here does I/O.
Verdict class names are a contract (shared/FAILURES.md); cause ids are
stable and documented in README.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netprobe.core.model import Evidence, Failure, Phase, RstInfo, Verdict

INITIAL_TTLS = (64, 128, 255)
"""What hosts and routers start TTLs at; a packet at exactly one of these was
made by a device on the local link."""


@dataclass(frozen=True)
class Rule:
    """One line of the table: when TEST holds, VERDICT says what it means."""

    name: str
    test: Callable[[Evidence], bool]
    verdict: Callable[[Evidence], Verdict]


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
    return Verdict("ok", None, "ok", "The call went through like the apiserver's: TCP, TLS "
                   "with the caBundle and the service name, and a valid review came back.", "")


def _no_endpoints(ev: Evidence) -> Verdict:
    return Verdict(
        "no-endpoints", Phase.TCP, "kube-proxy-reject",
        "The connection was refused without a packet leaving this host: the node's own "
        "rules rejected the SYN. kube-proxy installs such a REJECT for a Service that has "
        "no ready endpoints, so the webhook pod is not Ready (or does not exist).",
        "Check `kubectl get endpointslices` for the Service; make the pod Ready: compare "
        "the readiness probe's port with the port the webhook serves healthz on "
        "(e.g. --healthz-port), check its logs; if endpoints never update, check etcd's quota.")


def _refused_by_middlebox(ev: Evidence) -> Verdict:
    rst = _inbound_rst(ev)
    assert rst is not None
    return Verdict(
        "connection-refused", Phase.TCP, "rst-from-middlebox",
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
        "connection-refused", Phase.TCP, "nothing-listening",
        f"{_dest(ev)} answered the SYN with a reset{hops}: the host is reachable but nothing "
        "listens on the target port. The webhook is not started yet, listens on another "
        "port, or the Service's targetPort points to the wrong containerPort.",
        "Compare the Service's targetPort, the pod's containerPort and the webhook's "
        "--secure-port; right after install, wait for leader election and serving "
        "certificate generation, then retry.")


def _refused_unobserved(ev: Evidence) -> Verdict:
    return Verdict(
        "connection-refused", Phase.TCP, "refused",
        "The connection was refused. Without a capture netprobe cannot tell whether the "
        "node's kube-proxy rejected it (no endpoints), a firewall forged a reset, or the "
        "pod has nothing listening.", "Run again as root so netprobe can capture.")


def _icmp_text(ev: Evidence) -> str:
    if ev.packets and ev.packets.icmp:
        icmp = ev.packets.icmp[0]
        return f"ICMP type {icmp.type} code {icmp.code} from {icmp.reporter}"
    return ""


def _no_route(ev: Evidence) -> Verdict:
    icmp = _icmp_text(ev)
    if icmp:
        return Verdict(
            "no-route", Phase.TCP, "icmp-unreachable",
            f"{icmp} answered the SYN to {_dest(ev)}: that router has no way to the "
            "destination. The node's InternalIP or the pod CIDR is not routed from the "
            "control plane.",
            "Check routes to the node (kubelet --node-ip, cloud route tables, CNI routes) and "
            "host firewalls that reject with icmp-host-prohibited.")
    return Verdict(
        "no-route", Phase.TCP, "no-local-route",
        f"This host has no route to {_dest(ev)}: the SYN was never sent.",
        "Add the route to the pod/node network on the control-plane host.")


def _io_timeout(ev: Evidence) -> Verdict:
    retrans = ev.packets.syn_retransmissions if ev.packets else None
    seen = (f"The SYN to {_dest(ev)} was sent and retransmitted {retrans} times without an "
            "answer" if retrans is not None else f"The SYN to {_dest(ev)} was never answered")
    return Verdict(
        "io-timeout", Phase.TCP, "syn-dropped",
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
            "tls-handshake-timeout", Phase.TLS, "clienthello-lost",
            "TCP connected but the ClientHello was never acknowledged: data packets are "
            "dropped after the handshake (MTU black hole, asymmetric firewall).",
            "Check MTU/MSS clamping and stateful firewalls on the path.", early=ev.early)
    return Verdict(
        "tls-handshake-timeout", Phase.TLS, "no-tls-server",
        "TCP connected and the ClientHello was acknowledged, but no ServerHello came: "
        "whatever owns the port is not the webhook's TLS server (a plain TCP/HTTP "
        "listener, a proxy, a stuck process).",
        "Find who owns the port on the pod or node (ss -ltnp) and point the Service's "
        "targetPort at the webhook's TLS port.", early=ev.early)


def _tls_broken(ev: Evidence) -> Verdict:
    cause = "not-tls" if "does not look like a TLS handshake" in ev.detail else "tls-aborted"
    return Verdict(
        "tls-handshake-timeout", Phase.TLS, cause,
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
        cause = "expired-serving-cert" if reason == "expired" else "clock-skew"
        return Verdict(
            "x509-expired", Phase.TLS, cause,
            f"The webhook served a certificate ({cert.subject}) outside its validity window: "
            f"{cert.verify_error}.",
            "Rotate the serving certificate (cert-manager renews it; check the CA "
            "injector and the webhook's logs) and check the clocks of the nodes.")
    if reason == "hostname":
        if _is_kubelet(ev):
            return Verdict(
                "x509-hostname-mismatch", Phase.TLS, "fargate-kubelet",
                f"A TLS server answered, but it is a kubelet, not the webhook: its certificate "
                f"is for {', '.join(cert.dns_names) or cert.subject}. On AWS Fargate a pod is a "
                "micro-VM whose own kubelet owns port 10250 and pod IP == node IP, so traffic "
                "to 10250 reaches the kubelet.",
                "Run the webhook on another port (e.g. securePort 10260) and point the "
                "Service's targetPort at it.")
        return Verdict(
            "x509-hostname-mismatch", Phase.TLS, "wrong-serving-cert",
            f"The served certificate does not name the service: {cert.verify_error}.",
            "Issue the serving certificate for SVC, SVC.NS and SVC.NS.svc, or find which "
            "server answers on the port.")
    stale = "possibly because" in (cert.verify_error or "")
    return Verdict(
        "x509-unknown-authority", Phase.TLS, "stale-ca-bundle" if stale else "unknown-issuer",
        f"The serving certificate was issued by {cert.issuer}, which the webhook "
        "configuration's caBundle does not vouch for"
        + (" (a CA with the same name but another key: the caBundle is stale)." if stale
           else "."),
        "Compare the caBundle with the CA Secret (cert-manager-webhook-ca); check the "
        "cainjector's logs and its leader-election namespace permissions.")


def _response_timeout(ev: Evidence) -> Verdict:
    return Verdict(
        "response-timeout", Phase.HTTP, "webhook-hung",
        "TLS completed and the webhook acknowledged the request, but no HTTP response came: "
        "the webhook process is hung or overloaded.",
        "Read the webhook's logs and resource usage; raise timeoutSeconds to 30 to see the "
        "real error instead of a context deadline.", early=ev.early)


def _http_error(ev: Evidence) -> Verdict:
    status = ev.http.status if ev.http else 0
    if ev.failure is Failure.BAD_REVIEW:
        return Verdict("http-error", Phase.HTTP, "invalid-review",
                       f"The webhook answered HTTP 200 but not with a valid review: {ev.detail}.",
                       "Fix the webhook's response (same uid, apiVersion and kind as the request).")
    if status:
        return Verdict("http-error", Phase.HTTP, f"http-{status}",
                       f"The webhook answered HTTP {status} instead of a review: {ev.detail}.",
                       "Read the webhook's logs for the failing request.")
    return Verdict("http-error", Phase.HTTP, "broken-response",
                   f"The HTTP exchange broke: {ev.detail}.", "Read the webhook's logs.")


def _dns(ev: Evidence) -> Verdict:
    return Verdict(
        "dns-failure", Phase.DNS, "unresolvable",
        f"{ev.detail}. The apiserver resolves SVC.NS.svc through its own service resolver, "
        "not DNS: pass --resolve HOST:CLUSTER_IP to replay it, or check that the Service "
        "named in the webhook configuration exists.",
        "Fix clientConfig.service (name, namespace) or create the Service.", early=ev.early)


def _no_service(ev: Evidence) -> Verdict:
    return Verdict(
        "service-not-found", Phase.DNS, "service-not-found",
        f"The webhook configuration names a Service that does not exist ({ev.detail}).",
        "Fix clientConfig.service (name, namespace) in the webhook configuration.")


def _refused(ev: Evidence) -> bool:
    return ev.failure is Failure.REFUSED


RULES: tuple[Rule, ...] = (
    Rule("call succeeded", lambda ev: ev.failure is None, _ok),
    Rule("service missing", lambda ev: ev.failure is Failure.NO_SERVICE, _no_service),
    Rule("name does not resolve", lambda ev: ev.failure is Failure.DNS, _dns),
    Rule("refused, nothing left the host",
         lambda ev: _refused(ev) and ev.packets is not None and not ev.packets.left_host,
         _no_endpoints),
    Rule("refused by a forged reset", lambda ev: _refused(ev) and _rst_forged(ev),
         _refused_by_middlebox),
    Rule("refused by the destination",
         lambda ev: _refused(ev) and (_inbound_rst(ev) is not None
                                      or bool(ev.packets and ev.packets.left_host)),
         _refused_by_destination),
    Rule("refused, not captured", _refused, _refused_unobserved),
    Rule("no route", lambda ev: ev.failure in (Failure.NO_ROUTE, Failure.NET_UNREACHABLE),
         _no_route),
    Rule("SYN unanswered", lambda ev: ev.failure is Failure.DIAL_STALL, _io_timeout),
    Rule("ServerHello never came", lambda ev: ev.failure is Failure.TLS_STALL, _tls_stall),
    Rule("certificate rejected",
         lambda ev: ev.failure is Failure.TLS_ERROR and ev.certificate is not None
         and ev.certificate.verify_error is not None, _x509),
    Rule("TLS broke", lambda ev: ev.failure is Failure.TLS_ERROR and ev.errno_name == "tls",
         _tls_broken),
    Rule("response never came", lambda ev: ev.failure is Failure.RESPONSE_STALL,
         _response_timeout),
    Rule("HTTP answer wrong", lambda ev: True, _http_error),
)


def classify(evidence: Evidence) -> Verdict:
    """Returns the verdict of the first rule of RULES that holds for EVIDENCE."""
    for rule in RULES:
        if rule.test(evidence):
            return rule.verdict(evidence)
    raise AssertionError("the last rule always holds")


# --- refinement with the whole path (trace) ---------------------------------------


@dataclass(frozen=True)
class PathRule:
    """When the replay said CLS and the path says more, name the cause more precisely."""

    cls: str
    test: Callable[[str | None, set[str]], bool]
    """(culprit hop id, finding codes) -> does this rule apply?"""
    cause: str
    explanation: str
    fix: str
    new_cls: str | None = None


PATH_RULES: tuple[PathRule, ...] = (
    PathRule("io-timeout", lambda hop, codes: hop == "network" and "gke-firewall-port" in codes,
             "gke-private-firewall",
             "The SYN left the control plane and never reached the node: GKE private clusters "
             "only let the control plane reach nodes on 443 and 10250, and the webhook's "
             "containerPort is neither.",
             "Add a firewall rule from the control plane's CIDR to the nodes on the webhook's "
             "port, or serve it on 443 or 10250."),
    PathRule("io-timeout", lambda hop, codes: hop == "network" and "eks-overlay-pod-ip" in codes,
             "eks-custom-cni",
             "The SYN left the control plane and was lost: the pod's IP belongs to an overlay "
             "CNI (Calico, Weave...) that the EKS control plane is not part of, so the VPC "
             "has no route to it.",
             "Run the webhook with hostNetwork: true on a free port (e.g. 10260), or use the "
             "AWS VPC CNI."),
    PathRule("io-timeout", lambda hop, codes: hop == "pod-veth", "dropped-at-pod",
             "The SYN reached the pod's node but never the pod's veth: the node dropped it on "
             "the way in, as a NetworkPolicy without an allow rule for the control plane does.",
             "Add a NetworkPolicy ingress rule allowing the control plane (or the node's "
             "address range) to the webhook's port."),
    PathRule("io-timeout", lambda hop, codes: hop == "network", "dropped-in-network",
             "The SYN left the control plane and never reached the node: a firewall or route "
             "between them drops it (cloud firewall, security group, missing route).",
             "Open the webhook's port from the control plane to the nodes."),
    PathRule("connection-refused", lambda hop, codes: hop == "network", "rst-from-middlebox",
             "The SYN never reached the node, yet a reset came back: something between the "
             "control plane and the node refused the connection in the pod's name.",
             "Find the firewall on the path (reject-with-tcp-reset) and allow the port."),
    PathRule("connection-refused", lambda hop, codes: hop == "webhook", "nothing-listening",
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
            return Verdict(rule.new_cls or verdict.cls, verdict.phase, rule.cause,
                           rule.explanation, rule.fix, verdict.early)
    return verdict
