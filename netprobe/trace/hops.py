"""The hops of the path and what each did: apiserver -> Service -> nodes -> pod -> webhook.

Owns: turning the replay's verdict and every vantage point's sighting of the
connection into ordered `Hop`s with a status each, and naming the culprit:
the first hop where the flow stops, or where the refusal came from. Must
not: read captures (correlate.py) or word the failure (classify.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from netprobe.core import rules
from netprobe.core.model import (
    CallKind,
    Culprit,
    Hop,
    HopStatus,
    Phase,
    ProxyMode,
    ReplayResult,
    Status,
)
from netprobe.core.packets import join_address
from netprobe.core.verdicts import Cause, VerdictClass
from netprobe.trace.correlate import Sighting

REFUSING = (HopStatus.REFUSED, HopStatus.DROPPED, HopStatus.FAILED)
NEIGHBOUR_CAUSES = (Cause.STALE_ENDPOINT, Cause.NEIGHBOUR_UNREACHABLE)
ANSWERED = {CallKind.ADMISSION: "valid review", CallKind.CONVERSION: "valid review",
            CallKind.DISCOVERY: "discovery answered", CallKind.KUBELET: "the kubelet answered"}
SERVERS = {CallKind.DISCOVERY: "aggregated API server", CallKind.KUBELET: "kubelet"}
"""What the last hop (id `webhook` for every kind) is called when it is not a webhook."""
MISSED = "connected, but"
"""How the detail of a hop starts when the replay's handshake proves what a capture missed."""


@dataclass(frozen=True)
class PathFacts:
    """What the trace knows about one endpoint's path."""

    apiserver_node: str | None
    """The node the call was replayed from."""
    managed: bool
    """True when that is not the real control plane (a managed one cannot be entered)."""
    service: str
    """`ns/name` of the Service, or the URL host."""
    cluster_ip: str | None
    service_port: int
    endpoint_ip: str | None
    endpoint_port: int | None
    endpoint_node: str | None
    pod: str | None
    pod_in_node_netns: bool
    service_exists: bool = True
    proxy_mode: ProxyMode | None = None
    """kube-proxy's mode on the replaying node (its ConfigMap, or kube-ipvs0 seen there)."""
    tunnel: str | None = None
    """The ready konnectivity agents the apiserver's calls go through (`POD on NODE, ...`;
    empty: konnectivity is used and none is ready; None: no konnectivity)."""
    tunnel_agent: str | None = None
    """The agent (`POD on NODE`) whose dial the replay stands for, when there is one."""
    in_tunnel_agent: bool = False
    """The replay ran in that agent's own network namespace (its pod's, or its node's for a
    hostNetwork agent): where the tunnel's dial really starts."""

    @property
    def local(self) -> bool:
        """The endpoint is on the replaying node: the call never leaves it."""
        return self.endpoint_node is not None and self.endpoint_node == self.apiserver_node

    @property
    def endpoint_hop(self) -> tuple[str, str]:
        """(id, label) of the hop that delivers the SYN: the pod's veth, or the node's socket."""
        node = self.endpoint_node
        if self.pod_in_node_netns:
            return "host-socket", f"{node} host socket"
        return "pod-veth", f"pod {self.pod} veth"


NAT_NAMES: dict[ProxyMode | None, str] = {
    None: "kube-proxy NAT",
    ProxyMode.IPTABLES: "kube-proxy iptables DNAT",
    ProxyMode.NFTABLES: "kube-proxy nftables DNAT",
    ProxyMode.IPVS: "kube-proxy IPVS virtual server"}
REJECTS: dict[ProxyMode | None, str] = {
    None: "kube-proxy's REJECT",
    ProxyMode.IPTABLES: "kube-proxy's REJECT (filter KUBE-SERVICES \"has no endpoints\")",
    ProxyMode.NFTABLES: "kube-proxy's reject-chain (map no-endpoint-services)",
    ProxyMode.IPVS: "kube-proxy's REJECT for a virtual server without real servers"}


def _before_nat(replay: ReplayResult) -> str:
    """The call as the apiserver's socket makes it: local -> dialled."""
    if replay.local_address is None or replay.dialed is None:
        return ""
    return (f"{join_address(*replay.local_address)} -> "
            f"{join_address(*replay.dialed)}")


def _after_nat(replay: ReplayResult, cp: Sighting) -> str:
    """The call on the wire after the node's NAT: conntrack's word, else the capture's."""
    if replay.wire is not None:
        return f"{replay.wire.source} -> {replay.wire.destination}"
    return cp.addresses


def _skip(hop_id: str, label: str, node: str | None = None) -> Hop:
    return Hop(hop_id, label, HopStatus.SKIPPED, node, detail="not reached")


def _service_hop(facts: PathFacts, replay: ReplayResult, cp: Sighting) -> Hop:
    where = facts.apiserver_node or "the node"
    label = f"Service {facts.service} ({NAT_NAMES[facts.proxy_mode]} on {where})"
    if facts.cluster_ip is None and facts.service_exists:  # a URL or a node's address
        return Hop("service", f"no Service: {facts.service} dialled directly", HopStatus.OK,
                   facts.apiserver_node, detail="no kube-proxy NAT on this path",
                   addresses=_after_nat(replay, cp))
    if not facts.service_exists:
        return Hop("service", label, HopStatus.FAILED, facts.apiserver_node,
                   detail=f"no Service {facts.service}: the apiserver's service resolver fails")
    if replay.verdict.cls is VerdictClass.NO_ENDPOINTS:
        return Hop("service", label, HopStatus.REFUSED, facts.apiserver_node,
                   detail=f"{REJECTS[facts.proxy_mode]}: no ready endpoint; the SYN never "
                   "left the node",
                   addresses=_before_nat(replay))
    return Hop("service", label, HopStatus.OK, facts.apiserver_node,
               detail=_nat_detail(facts, replay, cp), addresses=_after_nat(replay, cp))


def _nat_detail(facts: PathFacts, replay: ReplayResult, cp: Sighting) -> str:
    """What the node's NAT did: DNAT to the endpoint, SNAT (masquerade) of the source."""
    after = _after_nat(replay, cp)
    before = _before_nat(replay)
    if not after or " -> " not in after or not before:
        wire = cp.destination or (replay.packets.wire_destination if replay.packets else None)
        return (f"DNAT {facts.cluster_ip}:{facts.service_port} -> {wire}:{facts.endpoint_port}"
                if wire and wire != facts.cluster_ip
                else f"no NAT seen: {facts.cluster_ip}:{facts.service_port}")
    source, destination = before.split(" -> ")
    wire_source, wire_destination = after.split(" -> ")
    parts = [f"DNAT {destination} -> {wire_destination}" if destination != wire_destination
             else f"no DNAT ({destination})"]
    if source != wire_source:
        parts.append(f"SNAT {source} -> {wire_source} (masquerade: the client is outside "
                     "the cluster CIDR)")
    return ", ".join(parts)


NOT_CAPTURED = (MISSED + " the capture holds no packet of this call: captured elsewhere "
                "than the path, or NAT changed the tuple")


def _cp_egress(facts: PathFacts, cp: Sighting, replay: ReplayResult) -> Hop:
    label = f"{facts.apiserver_node or 'control plane'} egress"
    if not cp.observed:
        return Hop("cp-egress", label, HopStatus.UNOBSERVABLE, facts.apiserver_node)
    if not cp.seen and _connected(replay):  # the handshake proves the SYN left
        return Hop("cp-egress", label, HopStatus.UNOBSERVABLE, facts.apiserver_node,
                   detail=NOT_CAPTURED)
    if not cp.seen and replay.verdict.cls is VerdictClass.IO_TIMEOUT and not (
            cp.resets or cp.icmp):
        return Hop("cp-egress", label, HopStatus.DROPPED, facts.apiserver_node,
                   detail="the SYN never left the node: its own rules drop it (a host "
                   "firewall's OUTPUT chain), or the capture missed it")
    if not cp.seen:
        return Hop("cp-egress", label, HopStatus.NOT_SEEN, facts.apiserver_node,
                   detail="the SYN did not leave")
    extra = f", {cp.syn_count - 1} retransmissions" if cp.syn_count > 1 else ""
    evidence = [f"RST from {src} TTL {ttl}" for _, src, ttl in cp.resets]
    evidence += [f"ICMP {t}/{c} from {rep}" for _, rep, t, c in cp.icmp]
    return Hop("cp-egress", label, HopStatus.OK, facts.apiserver_node, cp.syn_interfaces[-1],
               detail=f"SYN out to {cp.destination}{extra}", evidence=tuple(evidence),
               addresses=cp.addresses)


def _local_hops(facts: PathFacts, cp: Sighting, replay: ReplayResult) -> list[Hop]:
    """The endpoint is on the replaying node: after the NAT the SYN goes through the node's
    pod network (its bridge, then the pod's veth) or, to a hostNetwork pod, over `lo`."""
    node = facts.endpoint_node
    hop_id, label = facts.endpoint_hop
    if not cp.observed:
        return [Hop(hop_id, label, HopStatus.UNOBSERVABLE, node)]
    crossed = ", ".join(cp.syn_interfaces)
    delivered = facts.pod_in_node_netns or len(cp.syn_interfaces) > 1 or _connected(replay)
    if cp.seen and delivered:
        extra = f", {cp.syn_count - 1} retransmissions" if cp.syn_count > 1 else ""
        return [Hop(hop_id, label, HopStatus.OK, node, cp.syn_interfaces[-1],
                    detail=f"SYN delivered on the node itself (through {crossed}){extra}",
                    addresses=cp.addresses)]
    if cp.seen:
        return [Hop(hop_id, label, HopStatus.DROPPED, node, cp.syn_interfaces[0],
                    detail=f"the SYN went out {crossed} but never reached the pod's veth",
                    addresses=cp.addresses)]
    if _connected(replay):
        return [Hop(hop_id, label, HopStatus.UNOBSERVABLE, node,
                    detail=f"{MISSED} {node}'s capture did not see the SYN")]
    return [Hop(hop_id, label, HopStatus.NOT_SEEN, node,
                detail="the SYN never left the node's NAT")]


def _worker_hops(facts: PathFacts, cp: Sighting, worker: Sighting,
                 replay: ReplayResult) -> list[Hop]:
    node = facts.endpoint_node
    ingress = f"{node} ingress"
    pod_id, pod_label = facts.endpoint_hop
    if not worker.observed:
        return [Hop("network", "provider network", HopStatus.UNOBSERVABLE),
                Hop("worker-ingress", ingress, HopStatus.UNOBSERVABLE, node),
                Hop(pod_id, pod_label, HopStatus.UNOBSERVABLE, node)]
    if not worker.seen and _connected(replay):
        # The handshake completed, so the SYN did arrive: the node's capture missed it
        # (another interface, or an eBPF datapath that bypasses where tcpdump listens).
        missed = f"{MISSED} {node}'s capture did not see the SYN"
        return [Hop("network", "provider network", HopStatus.UNOBSERVABLE, detail=missed),
                Hop("worker-ingress", ingress, HopStatus.UNOBSERVABLE, node, detail=missed),
                Hop(pod_id, pod_label, HopStatus.UNOBSERVABLE, node)]
    if not worker.seen:
        refused = bool(cp.resets or cp.icmp)
        what = ("refused on the way: " + ", ".join(
            [f"RST from {s} TTL {t}" for _, s, t in cp.resets]
            + [f"ICMP {t}/{c} from {r}" for _, r, t, c in cp.icmp])) if refused else \
            "the SYN was lost between the nodes"
        return [Hop("network", "provider network", HopStatus.REFUSED if refused
                    else HopStatus.DROPPED, detail=what),
                Hop("worker-ingress", ingress, HopStatus.NOT_SEEN, node,
                    detail="the SYN never arrived"),
                Hop(pod_id, pod_label, HopStatus.NOT_SEEN, node)]
    hops = [Hop("network", "provider network", HopStatus.OK, detail="passed"),
            Hop("worker-ingress", ingress, HopStatus.OK, node, worker.syn_interfaces[0],
                detail=f"SYN in to {worker.destination}", addresses=worker.addresses)]
    reached_pod = facts.pod_in_node_netns or len(_past_ingress(worker)) > 0
    if not reached_pod and _connected(replay):  # the handshake proves it got there
        hops.append(Hop(pod_id, pod_label, HopStatus.UNOBSERVABLE, node,
                        detail=f"{MISSED} {node}'s capture did not see the pod's veth"))
    elif not reached_pod and replay.verdict.cause in NEIGHBOUR_CAUSES:
        reporters = ", ".join(dict.fromkeys(rep for _, rep, _, _ in cp.icmp))
        answer = rules.gave_up_answer(facts.endpoint_ip or "")
        how = (f"{reporters} gave up and answered {answer}" if reporters
               else "the node still asks, holding the SYN")
        hops.append(Hop(pod_id, pod_label, HopStatus.REFUSED, node,
                        detail=f"nobody answers ARP/ND for {facts.endpoint_ip} on {node}: {how}"))
    elif not reached_pod:
        hops.append(Hop(pod_id, pod_label, HopStatus.DROPPED, node,
                        detail="the SYN reached the node but never its pod's veth"))
    else:
        hops.append(Hop(pod_id, pod_label, HopStatus.OK, node, worker.syn_interfaces[-1],
                        detail="SYN delivered"))
    return hops


def _past_ingress(worker: Sighting) -> tuple[str, ...]:
    """The interfaces the SYN crossed on the endpoint's node after coming in: past its NIC
    and, when it came inside an overlay, past the device that decapsulated it."""
    return worker.syn_interfaces[2 if worker.tunnel is not None else 1:]


def _overlay(facts: PathFacts, cp: Sighting, worker: Sighting) -> list[Hop]:
    """The overlay tunnel between the nodes (Flannel's VXLAN, Cilium's Geneve, Calico's
    IP-in-IP...), when a capture saw the SYN inside it: named, with its VNI and the nodes'
    addresses. Whether the datagram arrived is the `network` hop's to say."""
    tunnel = cp.tunnel or worker.tunnel
    if tunnel is None:
        return []
    where = []
    if cp.tunnel is not None:
        where.append(f"encapsulated on {facts.apiserver_node}'s {cp.tunnel.interface}")
    if worker.tunnel is not None:
        where.append(f"received on {facts.endpoint_node}'s {worker.tunnel.interface}")
    label = f"overlay ({tunnel})"
    return [Hop("overlay", label, HopStatus.OK, detail="the SYN " + " and ".join(where),
                addresses=str(tunnel))]


def _connected(replay: ReplayResult) -> bool:
    """The replay's TCP handshake completed."""
    return any(p.phase is Phase.TCP and p.status is Status.OK for p in replay.phases)


def _webhook_hop(facts: PathFacts, replay: ReplayResult, worker: Sighting) -> Hop:
    verdict = replay.verdict
    server = SERVERS.get(replay.target.kind, "webhook")
    where = (join_address(facts.endpoint_ip, facts.endpoint_port)
             if facts.endpoint_ip and facts.endpoint_port else facts.endpoint_ip or facts.service)
    label = f"{server} {where}" + (f" (pod {facts.pod})" if facts.pod else "")
    node = facts.endpoint_node
    if verdict.cls is VerdictClass.OK:
        return Hop("webhook", label, HopStatus.OK, node, detail=ANSWERED[replay.target.kind])
    if verdict.phase in (Phase.TLS, Phase.HTTP):
        return Hop("webhook", label, HopStatus.FAILED, node, detail=verdict.cause,
                   evidence=(replay.apiserver_error.message,) if replay.apiserver_error else ())
    if worker.resets or (verdict.cls is VerdictClass.CONNECTION_REFUSED and worker.seen):
        return Hop("webhook", label, HopStatus.REFUSED, node,
                   detail="answered the SYN with RST: nothing listens on the port")
    return Hop("webhook", label, HopStatus.DROPPED, node, detail="never answered")


def build_hops(facts: PathFacts, replay: ReplayResult, cp: Sighting,
               worker: Sighting) -> list[Hop]:
    """Every hop of the path, each with its status, in path order."""
    replayed = (f"replayed in {facts.tunnel_agent}" if facts.in_tunnel_agent
                else f"replayed on {facts.apiserver_node}" if facts.apiserver_node else "replay")
    apiserver = Hop("apiserver", f"apiserver ({replayed}"
                    f"{', managed control plane' if facts.managed else ''})", HopStatus.OK,
                    facts.apiserver_node,
                    detail=f"{replay.target.kind.method} {replay.target.url}",
                    addresses=_before_nat(replay))
    unsent = [_skip(h, h) for h in ("service", "cp-egress", "network", "worker-ingress",
                                     "pod-veth", "webhook")]
    if replay.verdict.cause == Cause.INVALID_CA_BUNDLE:
        apiserver = dataclasses.replace(apiserver, status=HopStatus.FAILED,
                                        detail="caBundle not PEM: no client is built, no call "
                                        "is made")
        return [apiserver, *unsent]
    tunnel = _tunnel(facts)
    if any(hop.status is HopStatus.FAILED for hop in tunnel):
        return [apiserver, *tunnel, *unsent]
    hops = [apiserver, *tunnel, service := _service_hop(facts, replay, cp)]
    if facts.local:
        return hops + _local_path(facts, replay, cp, service)
    if service.status is not HopStatus.OK:
        return hops + [_skip(h, h) for h in ("cp-egress", "network", "worker-ingress",
                                               "pod-veth", "webhook")]
    hops.append(egress := _cp_egress(facts, cp, replay))
    if egress.status in (HopStatus.NOT_SEEN, HopStatus.DROPPED) and not (cp.resets or cp.icmp):
        return hops + [_skip(h, h) for h in ("network", "worker-ingress", "pod-veth", "webhook")]
    hops += _overlay(facts, cp, worker)
    worker_hops = _worker_hops(facts, cp, worker, replay)
    hops += worker_hops
    if any(h.status in REFUSING or h.status is HopStatus.NOT_SEEN for h in worker_hops):
        return hops + [_skip("webhook", "webhook")]
    return hops + [_webhook_hop(facts, replay, worker)]


def _tunnel(facts: PathFacts) -> list[Hop]:
    """The konnectivity tunnel between the apiserver and the cluster, when there is one:
    konnectivity-server's gRPC stream to an agent is never observable, and without a ready
    agent nothing passes."""
    if facts.tunnel is None:
        return []
    if not facts.tunnel:
        return [Hop("tunnel", "konnectivity tunnel (no agent ready)", HopStatus.FAILED,
                    detail="no konnectivity-agent is ready: konnectivity-server answers the "
                    "apiserver's dial with 'No agent available'; no packet enters the cluster")]
    where = facts.apiserver_node or "a node"
    if facts.tunnel_agent and facts.in_tunnel_agent:
        how = (f"replayed from agent {facts.tunnel_agent}'s own network namespace, where the "
               "tunnel's dial to the Service starts")
    elif facts.tunnel_agent:
        how = (f"replayed from {where}'s host network, where agent {facts.tunnel_agent} runs: "
               "netprobe cannot enter the agent pod's namespace, so a NetworkPolicy selecting "
               "the agent is not exercised")
    else:
        how = (f"replayed from {where}'s host network; the apiserver's call really starts in "
               "an agent's network namespace")
    return [Hop("tunnel", f"konnectivity tunnel ({facts.tunnel})", HopStatus.UNOBSERVABLE,
                facts.apiserver_node if facts.tunnel_agent else None,
                detail="konnectivity-server's gRPC stream to the agent is not captured; " + how)]


def _local_path(facts: PathFacts, replay: ReplayResult, cp: Sighting,
                service: Hop) -> list[Hop]:
    """The hops after the Service when the endpoint is on the replaying node."""
    hop_id = facts.endpoint_hop[0]
    if service.status is not HopStatus.OK:
        return [_skip(hop_id, hop_id), _skip("webhook", "webhook")]
    delivery = _local_hops(facts, cp, replay)
    if any(h.status in REFUSING or h.status is HopStatus.NOT_SEEN for h in delivery):
        return delivery + [_skip("webhook", "webhook")]
    return delivery + [_webhook_hop(facts, replay, cp)]


def disagreements(hops: list[Hop]) -> list[str]:
    """Notes for where the packets and the replay disagree (a capture missed the call)."""
    return [f"the packets and the replay disagree at {hop.id} ({hop.label}): {hop.detail}"
            for hop in hops if hop.status is HopStatus.UNOBSERVABLE
            and hop.detail.startswith(MISSED)]


def culprit(hops: list[Hop], facts: PathFacts, replay: ReplayResult | None = None
            ) -> Culprit | None:
    """The first hop where the flow stopped or was refused; None if it went through.

    A failed call always has one: when no hop shows where (the captures missed the
    packets), the replay's own evidence says: the webhook for TLS and HTTP failures and
    for a reset from the endpoint, else the first hop that did not see the call.
    """
    for hop in hops:
        if hop.status in REFUSING:
            return _blame(hop, facts)
    if replay is None or not replay.verdict.cls.failed:
        return None
    by_id = {hop.id: hop for hop in hops}
    if replay.verdict.phase in (Phase.TLS, Phase.HTTP) or _reset_by_endpoint(replay, facts):
        webhook = by_id.get("webhook")
        if webhook is not None:
            return _blame(webhook, facts)
    unseen = [h for h in hops if h.status in (HopStatus.NOT_SEEN, HopStatus.UNOBSERVABLE)]
    return _blame(unseen[0] if unseen else hops[-1], facts)


def _blame(hop: Hop, facts: PathFacts) -> Culprit:
    pod = facts.pod if hop.id in ("pod-veth", "host-socket", "webhook") else None
    return Culprit(hop.id, hop.node or (facts.endpoint_node if pod else None), pod)


def _reset_by_endpoint(replay: ReplayResult, facts: PathFacts) -> bool:
    packets = replay.packets
    return bool(packets and any(r.inbound and r.source == facts.endpoint_ip
                                for r in packets.rst))
