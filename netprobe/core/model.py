"""The values that flow through netprobe: frozen dataclasses and enums.

Owns: the vocabulary shared by replay, capture, classification and output
(phases, outcomes, packets, certificates, verdicts). Must not: do I/O or
import anything outside the standard library.

Flow: `CallTarget -> PhaseResult[] + CertificateInfo + PacketSummary ->
Verdict -> ReplayResult`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from netprobe.core.packets import split_address
from netprobe.core.settings import DEFAULT_TIMEOUT_SECONDS
from netprobe.core.verdicts import VerdictClass


class Phase(str, enum.Enum):
    """The steps of kube-apiserver's webhook call, in order."""

    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"
    HTTP = "http"


class Status(str, enum.Enum):
    """How one phase ended."""

    OK = "ok"
    FAILED = "failed"
    """The peer or the path said no (RST, ICMP, bad certificate, HTTP error)."""
    TIMEOUT = "timeout"
    """Nothing came back in time (or early: the evidence already says so)."""
    SKIPPED = "skipped"
    """Not reached because an earlier phase failed."""


class CallKind(str, enum.Enum):
    """What the apiserver sends."""

    ADMISSION = "admission"
    """admission.k8s.io/v1 AdmissionReview (validating and mutating)."""
    CONVERSION = "conversion"
    """apiextensions.k8s.io/v1 ConversionReview (CRD conversion)."""
    DISCOVERY = "discovery"
    """kube-aggregator's availability check of an APIService: GET /apis/GROUP/VERSION."""
    KUBELET = "kubelet"
    """kube-apiserver to a node's kubelet (`kubectl logs`, `exec`, `port-forward`)."""

    @property
    def method(self) -> str:
        """The HTTP method: a webhook is POSTed a review, the others are GETs."""
        return "POST" if self in (CallKind.ADMISSION, CallKind.CONVERSION) else "GET"


class ProxyMode(enum.StrEnum):
    """kube-proxy's `mode` (KubeProxyConfiguration); an empty mode is iptables on Linux."""

    IPTABLES = "iptables"
    NFTABLES = "nftables"
    IPVS = "ipvs"


class Failure(enum.Enum):
    """How a replayed call failed, as the apiserver words it differently."""

    REFUSED = "connection refused"
    NO_ROUTE = "no route to host"
    NET_UNREACHABLE = "network is unreachable"
    DIAL_STALL = "dial stall"
    TLS_STALL = "tls stall"
    TLS_ERROR = "tls error"
    RESPONSE_STALL = "response stall"
    HTTP_STATUS = "http status"
    BAD_REVIEW = "bad review"
    NO_SERVICE = "service not found"
    BAD_CA_BUNDLE = "caBundle not PEM"
    NO_TUNNEL_AGENT = "No agent available"
    DNS = "dns"


@dataclass(frozen=True)
class CallTarget:
    """One call the apiserver makes (a webhook, an aggregated API...), as it would make it."""

    url: str
    """`https://HOST:PORT/PATH` (the apiserver always writes the port)."""
    host: str
    """The TLS ServerName and the name it resolves (`SVC.NS.svc`)."""
    port: int
    path: str
    resolve_ip: str | None = None
    """The address the service resolver gives (the ClusterIP); None: use DNS."""
    ca_bundle: bytes = b""
    """The caBundle PEM: the only trust root."""
    webhook_name: str = "webhook.netprobe.local"
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    """The webhook's timeoutSeconds: the overall deadline of the call."""
    kind: CallKind = CallKind.ADMISSION
    conversion_gvk: str = "netprobe.io/v1beta1, Kind=Probe"
    """For conversion webhooks: the object's `group/version, Kind=K` (in the message)."""
    connect_port: int | None = None
    """Dial this port instead of PORT: probing one endpoint directly (podIP:targetPort),
    bypassing the ClusterIP's random choice."""
    apiserver_ip: str | None = None
    """The address the apiserver itself dials (the ClusterIP), for its message, when the
    replay dials an endpoint directly."""
    endpoints: tuple[str, ...] = ()
    """`IP:PORT` (`[IPv6]:PORT`) of every endpoint the Service's NAT may send the call to:
    the capture follows the call there even when the node's SNAT changes its source port."""
    insecure_skip_verify: bool = False
    """An APIService's `insecureSkipTLSVerify`: the certificate is not verified."""


WebhookTarget = CallTarget
"""The name of `CallTarget` before netprobe traced more than webhooks (kept for scripts)."""


@dataclass(frozen=True)
class PhaseResult:
    """One phase of a replayed call."""

    phase: Phase
    status: Status
    started: float
    """Epoch seconds (lines up with pcap timestamps)."""
    duration: float
    detail: str = ""
    """What was seen, for people ("connected to 10.244.1.5:10250")."""
    error: str | None = None
    """A stable error id: an errno name (`ECONNREFUSED`), `timeout`, `x509`..."""


@dataclass(frozen=True)
class CertificateInfo:
    """The leaf certificate the server presented, from the TLS client."""

    subject: str
    issuer: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    not_before: float
    not_after: float
    sha256: str
    serial: str
    verify_error: str | None = None
    """Go's x509 message if the apiserver would reject it, else None."""
    verify_reason: str | None = None
    """`expired`, `not-yet-valid`, `hostname`, `unknown-authority`, or None."""
    chain_length: int = 1


@dataclass(frozen=True)
class RstInfo:
    """A TCP reset seen during the call."""

    source: str
    ttl: int
    inbound: bool
    """True if it came towards the replaying host."""
    time: float


@dataclass(frozen=True)
class IcmpInfo:
    """An ICMP error that quotes the replayed flow."""

    reporter: str
    type: int
    code: int
    time: float


@dataclass(frozen=True)
class PacketSummary:
    """What the capture of one replayed call shows."""

    packets: int = 0
    syn: int = 0
    syn_retransmissions: int = 0
    synack: int = 0
    synack_ttl: int | None = None
    synack_source: str | None = None
    rst: tuple[RstInfo, ...] = ()
    icmp: tuple[IcmpInfo, ...] = ()
    data_retransmissions: int = 0
    client_hello: int = 0
    client_hello_acked: bool = False
    server_hello: int = 0
    tls_alerts: int = 0
    server_bytes: int = 0
    """Payload bytes the server sent."""
    wire_destination: str | None = None
    """The destination address on the wire (after the node's DNAT)."""
    wire_source: str | None = None
    """`IP:PORT` the SYN left with (after the node's SNAT: kube-proxy masquerades calls
    from outside the cluster CIDR, with a random source port)."""
    left_host: bool = False
    """True if the SYN was seen on a non-loopback interface."""
    first_time: float | None = None
    last_time: float | None = None
    interfaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class WireTuple:
    """A connection's addresses on the wire, after the node's DNAT and SNAT."""

    source: str
    """`IP:PORT` of the client as the server sees it."""
    destination: str
    """`IP:PORT` of the endpoint the connection really went to."""


@dataclass(frozen=True)
class HttpOutcome:
    """The webhook's HTTP answer."""

    status: int
    review_valid: bool
    detail: str = ""
    body_excerpt: str = ""


@dataclass(frozen=True)
class Verdict:
    """The diagnosis: a contract class name, the phase, the cause and the fix."""

    cls: VerdictClass
    """A verdict class of FAILURES.md (`connection-refused`, `io-timeout`...)."""
    phase: Phase | None
    """The phase that really failed or stalled (None when the call succeeded)."""
    cause: str
    """A stable cause id (`nothing-listening`, `rst-from-middlebox`...)."""
    explanation: str
    fix: str
    early: bool = False
    """True if given before the apiserver's own timer would fire."""


@dataclass(frozen=True)
class ApiserverError:
    """What kube-apiserver would report for this outcome."""

    message: str
    """The most likely full message."""
    alternatives: tuple[str, ...] = ()
    """Other messages a timer race can produce instead."""
    client_message: str = ""
    """What the API client (kubectl) is answered: HTTP 500, `Internal error occurred: ...`."""


class Severity(str, enum.Enum):
    """How much a static finding matters."""

    ERROR = "error"
    """This alone breaks the call."""
    WARNING = "warning"
    """Breaks it in some clusters, or hides the real error."""
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    """A problem seen in the API objects, before any packet."""

    code: str
    """Stable id (`timeout-masks-errors`, `fargate-port-10250`...), documented in README."""
    severity: Severity
    message: str
    fix: str
    subject: str = ""
    """The object it is about (`Service cert-manager/cert-manager-webhook`)."""


@dataclass(frozen=True)
class Evidence:
    """Everything the classifier may look at, as plain values."""

    failure: Failure | None
    stall: str | None = None
    early: bool = False
    errno_name: str | None = None
    detail: str = ""
    certificate: CertificateInfo | None = None
    http: HttpOutcome | None = None
    packets: PacketSummary | None = None
    """None when no capture was taken."""
    dialed: tuple[str, int] | None = None
    destination_on_link: bool | None = None
    """Whether the wire destination is on a directly connected network."""
    neighbour_unresolved: str | None = None
    """The endpoint's node still asks ARP/ND for the address (`NODE (incomplete)`): its
    agent's word, which comes before the kernel gives up and answers host unreachable."""
    endpoint_listed: bool = False
    """The wire destination is one of the Service's endpoints (its EndpointSlices)."""
    rejected_on_node: str | None = None
    """The call started in a pod (a konnectivity agent's) and its node's own capture saw
    that node answer the SYN to a Service without endpoints with an ICMP error: the node's
    rules refused it, though the SYN left the pod."""
    system_roots: bool = False
    """The caBundle is empty: the certificate was verified against the system trust store,
    as the apiserver's client does then."""


@dataclass(frozen=True)
class ReplayResult:
    """Everything one replay found."""

    target: CallTarget
    phases: tuple[PhaseResult, ...]
    verdict: Verdict
    apiserver_error: ApiserverError | None
    certificate: CertificateInfo | None = None
    http: HttpOutcome | None = None
    packets: PacketSummary | None = None
    capture: str | None = None
    """Path of the capture file, if one was written."""
    netns: str | None = None
    local_address: tuple[str, int] | None = None
    dialed: tuple[str, int] | None = None
    wire: WireTuple | None = None
    """The call on the wire after the node's NAT, from conntrack (None: no entry, e.g.
    kube-proxy rejected the SYN, or conntrack could not be asked)."""

    @property
    def client_ports(self) -> frozenset[int]:
        """The call's source port before NAT and, where the node's SNAT changed it, after."""
        ports = {int(self.local_address[1])} if self.local_address else set()
        for address in (self.wire.source if self.wire else None,
                        self.packets.wire_source if self.packets else None):
            if address:
                ports.add(split_address(address)[1])
        return frozenset(ports)

    @property
    def succeeded(self) -> bool:
        return self.verdict.cls is VerdictClass.OK


class HopStatus(str, enum.Enum):
    """What one hop of the path did with the replayed connection."""

    OK = "ok"
    """Seen and passed on (or, for the webhook, answered correctly)."""
    NOT_SEEN = "not-seen"
    DROPPED = "dropped"
    """The flow stopped here: seen before, never after, no answer."""
    REFUSED = "refused"
    """A reset or ICMP error was made here."""
    FAILED = "failed"
    """The webhook answered wrongly (TLS, certificate, HTTP)."""
    UNOBSERVABLE = "unobservable"
    """No vantage point there (the provider's network, a managed control plane)."""
    SKIPPED = "skipped"
    """Not reached."""


@dataclass(frozen=True)
class Hop:
    """One stage of apiserver -> Service NAT -> nodes -> pod -> webhook."""

    id: str
    """`apiserver`, `service`, `cp-egress`, `network`, `worker-ingress`, `pod-veth`
    (or `host-socket`), `webhook`."""
    label: str
    status: HopStatus
    node: str | None = None
    interface: str | None = None
    detail: str = ""
    evidence: tuple[str, ...] = ()
    addresses: str = ""
    """The connection's addresses as seen here (after NAT)."""


@dataclass(frozen=True)
class Culprit:
    """Where the flow stopped, or where the refusal came from."""

    hop: str
    node: str | None = None
    pod: str | None = None


@dataclass(frozen=True)
class TraceResult:
    """One traced webhook endpoint."""

    target: str
    """`https://HOST:PORT/PATH` the apiserver posts to."""
    configuration: str
    webhook: str
    endpoint: str | None
    """`podIP:port` traced (None when there was none)."""
    verdict: Verdict
    culprit: Culprit | None
    apiserver_error: ApiserverError | None
    hops: tuple[Hop, ...]
    findings: tuple[Finding, ...]
    captures: tuple[str, ...] = ()
    replay: ReplayResult | None = None
    pod: str | None = None
    node: str | None = None
    interfaces: dict[str, dict[str, str]] = field(default_factory=dict)
    """node -> {ifindex: interface name} where its capture ran (names SLL2 interfaces)."""
    notes: tuple[str, ...] = ()
    """What the user should know about how the trace was made (a capture cut short)."""
    target_kind: str = "webhook"
    """Which kind of call was traced: `webhook` or `apiservice` (the `trace` sub-command)."""
