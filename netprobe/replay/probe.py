"""One replayed call: the apiserver's request from a vantage point, captured and classified.

Owns: wiring the socket-level call (`call`), its capture (a `capture.backend`
sniffer on the flow), the summary of that capture and the rule table into a
`ReplayResult`. Path failures are values in the result; only tool failures
raise. Must not: print or exit, or know about traces, agents or Kubernetes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import tempfile
import threading
import time
from pathlib import Path

from netprobe.analysis import summary as packet_summary
from netprobe.capture import filters
from netprobe.capture.backend import TCPDUMP, CaptureBackend, Sniffer
from netprobe.core import errors, rules
from netprobe.core.model import (
    CallTarget,
    Evidence,
    Failure,
    PacketSummary,
    Phase,
    PhaseResult,
    ReplayResult,
    Status,
    WireTuple,
)
from netprobe.core.packets import join_address, split_address
from netprobe.core.settings import Timeouts
from netprobe.host import conntrack, nsenter
from netprobe.replay import apiserver, call, certs, sockets


def replay(target: CallTarget, *, netns: str | None = None, timeouts: Timeouts | None = None,
           capture: bool = True, capture_path: Path | None = None,
           interface: str = "any", cancel: threading.Event | None = None,
           capture_backend: CaptureBackend = TCPDUMP) -> ReplayResult:
    """Replays kube-apiserver's call to TARGET from NETNS, capturing its packets.

    Returns a `ReplayResult` whose `verdict` says what failed, where and why.
    Path failures (refused, timeouts, x509...) are in the result, not raised.

    Raises:
        UsageError: unknown namespace, bad CA bundle.
        NotRootError: capturing or entering a namespace needs root.
        CaptureError: tcpdump failed.
    """
    timeouts = timeouts or Timeouts()
    if netns is not None and not nsenter.exists(netns):
        raise errors.UsageError(f"entering network namespace {netns!r}: no such namespace "
                                "(see 'ip netns list')")
    with contextlib.ExitStack() as stack:
        path = capture_path
        if capture and path is None:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="netprobe-"))
            path = Path(scratch) / "replay.pcap"
        sniffer: list[Sniffer] = []
        dialled: list[float] = []

        def start_capture(sock: socket.socket) -> None:
            if not capture or path is None:
                return
            bpf = filters.call_filter(sock.getsockname()[1], _peers(target),
                                      endpoints_known=_endpoints_known(target))
            sniffer.append(stack.enter_context(
                capture_backend.sniffer(path, bpf, netns=netns, interface=interface)))
            dialled.append(time.time())

        outcome = call.run(target, timeouts, netns, on_bound=start_capture, cancel=cancel)
        nat = _translated(outcome, netns)
        summary = None
        if sniffer and path is not None:
            sniffer[0].stop(grace=_grace(outcome, timeouts))
            known = _endpoints_known(target)
            identity = packet_summary.CallIdentity(
                _client_ports(outcome, nat),
                frozenset(_peers(target, outcome.dialed)) if known else frozenset(),
                dialled[0], outcome.local[0] if outcome.local else "")
            summary = packet_summary.summarize(path, identity,
                                               interfaces=sockets.local_addresses(netns))
        return _result(target, outcome, summary, netns, timeouts,
                       str(capture_path) if capture_path and sniffer else None, nat)


DRAIN = 0.02
"""Seconds tcpdump gets to read what the kernel already holds for it."""
DIAL_STALL_GRACE = 0.1
"""Seconds the capture waits after a dial it gave up on."""


def _grace(outcome: call.CallOutcome, timeouts: Timeouts) -> float:
    """How long the capture waits after the call for its last packets: a stall may still
    draw a late reset or ICMP error (the whole `capture_grace`); a call that was answered
    only waits for the closing handshake, a few round trips (the TCP connect's time)."""
    tcp = next((p for p in outcome.phases if p.phase is Phase.TCP and p.status is Status.OK),
               None)
    if outcome.stall is not None and tcp is None:
        # A dial given up: what may still come is an ICMP error or a reset for its last SYN,
        # a round trip away (the neighbour's host unreachable was waited for already).
        return min(timeouts.capture_grace, DIAL_STALL_GRACE)
    if outcome.stall is not None:
        return timeouts.capture_grace
    if tcp is None:  # refused or unreachable: the answer is in already
        return DRAIN
    return min(timeouts.capture_grace, max(DRAIN, 4 * tcp.duration))


def _peers(target: CallTarget,
           dialed: tuple[str, int] | None = None) -> list[tuple[str, int]]:
    """Every (address, port) the call can have on the server's side: the address dialled
    (before DNAT) and each endpoint the Service's NAT may send it to."""
    peers = [split_address(endpoint) for endpoint in target.endpoints]
    if target.resolve_ip:
        peers.append((target.resolve_ip, target.connect_port or target.port))
    if dialed is not None:
        peers.append(dialed)
    return list(dict.fromkeys(peers))


def _endpoints_known(target: CallTarget) -> bool:
    """False for a ClusterIP whose endpoints the caller did not give (`replay --resolve`):
    the node's NAT may send the call anywhere."""
    return bool(target.endpoints) or target.resolve_ip is None or bool(target.connect_port)


def _translated(outcome: call.CallOutcome, netns: str | None) -> WireTuple | None:
    """The call's tuple after the node's DNAT and SNAT, from conntrack."""
    if outcome.local is None or outcome.dialed is None:
        return None
    nat = conntrack.translated(netns, outcome.local, outcome.dialed)
    if nat is None:
        return None
    return WireTuple(join_address(*nat.source), join_address(*nat.destination))


def _endpoint_listed(target: CallTarget, outcome: call.CallOutcome, wire: str | None,
                     nat: WireTuple | None) -> bool:
    """The call went to an address the Service's EndpointSlices list."""
    if nat is not None:
        destination: str | None = split_address(nat.destination)[0]
    else:
        destination = wire or (outcome.dialed[0] if outcome.dialed else None)
    return destination in {split_address(endpoint)[0] for endpoint in target.endpoints}


def _client_ports(outcome: call.CallOutcome, nat: WireTuple | None) -> frozenset[int]:
    ports = {int(outcome.local[1])} if outcome.local else set()
    if nat is not None:
        ports.add(split_address(nat.source)[1])
    return frozenset(ports)


def _result(target: CallTarget, outcome: call.CallOutcome, summary: PacketSummary | None,
            netns: str | None, timeouts: Timeouts, capture: str | None,
            nat: WireTuple | None = None) -> ReplayResult:
    wire = summary.wire_destination if summary is not None else None
    on_link = sockets.on_link(netns, wire or outcome.dialed[0]) if outcome.dialed else None
    evidence = Evidence(
        failure=outcome.failure, stall=outcome.stall, early=outcome.early,
        errno_name=outcome.errno_name, detail=outcome.detail, certificate=outcome.certificate,
        http=outcome.http, packets=summary, dialed=outcome.dialed,
        destination_on_link=on_link, endpoint_listed=_endpoint_listed(target, outcome, wire, nat),
        system_roots=certs.is_empty_bundle(target.ca_bundle))
    verdict = rules.classify(evidence)
    message = None
    if outcome.failure is not None:
        dialed = (target.apiserver_ip, target.port) if target.apiserver_ip else outcome.dialed
        message = apiserver.predict(target, outcome.failure, dialed=dialed,
                                    dial_timeout=timeouts.dial, tls_timeout=timeouts.tls,
                                    connected_after=outcome.connected_after,
                                    detail=outcome.detail)
    return ReplayResult(target=target, phases=tuple(outcome.phases), verdict=verdict,
                        apiserver_error=message, certificate=outcome.certificate,
                        http=outcome.http, packets=summary,
                        capture=capture, netns=netns, local_address=outcome.local,
                        dialed=outcome.dialed, wire=nat)


def with_node_rejection(replay: ReplayResult, node: str) -> ReplayResult:
    """REPLAY, made from a pod on NODE, judged again with NODE's own capture: the node
    answered the SYN with an ICMP error without forwarding it (kube-proxy's REJECT for a
    Service without endpoints)."""
    evidence = Evidence(failure=Failure.REFUSED, packets=replay.packets, dialed=replay.dialed,
                        rejected_on_node=node)
    return dataclasses.replace(replay, verdict=rules.classify(evidence))


def with_neighbour(replay: ReplayResult, node: str, state: str) -> ReplayResult:
    """REPLAY judged again with its endpoint's node still asking ARP/ND for the address
    (STATE `incomplete`/`failed`): an early `io-timeout` is then a stale endpoint, and the
    apiserver gets `no route to host` when that node's kernel gives up."""
    target = replay.target
    dialed = (target.apiserver_ip, target.port) if target.apiserver_ip else replay.dialed
    evidence = Evidence(failure=Failure.DIAL_STALL, early=True, packets=replay.packets,
                        dialed=replay.dialed, endpoint_listed=True,
                        neighbour_unresolved=f"{node} ({state})")
    verdict = rules.classify(evidence)
    if verdict.cls is replay.verdict.cls:
        return replay
    return dataclasses.replace(replay, verdict=verdict, apiserver_error=apiserver.predict(
        target, Failure.NO_ROUTE, dialed=dialed))


def bad_ca_bundle(target: CallTarget, problem: str) -> ReplayResult:
    """The result of a call whose caBundle is not PEM: the apiserver builds no client, so
    nothing is sent."""
    now = time.time()
    phases = (PhaseResult(Phase.DNS, Status.SKIPPED, now, 0.0, "not reached"),
              PhaseResult(Phase.TCP, Status.SKIPPED, now, 0.0, "not reached"),
              PhaseResult(Phase.TLS, Status.FAILED, now, 0.0, f"caBundle: {problem}", "x509"),
              PhaseResult(Phase.HTTP, Status.SKIPPED, now, 0.0, "not reached"))
    evidence = Evidence(failure=Failure.BAD_CA_BUNDLE, detail=problem)
    return ReplayResult(target=target, phases=phases, verdict=rules.classify(evidence),
                        apiserver_error=apiserver.predict(target, Failure.BAD_CA_BUNDLE))


def no_tunnel_agent(target: CallTarget, detail: str) -> ReplayResult:
    """The result of a call the apiserver sends into a konnectivity tunnel with no agent:
    konnectivity-server refuses the dial, no packet enters the cluster."""
    now = time.time()
    phases = (PhaseResult(Phase.DNS, Status.SKIPPED, now, 0.0, "the tunnel dials by address"),
              PhaseResult(Phase.TCP, Status.FAILED, now, 0.0,
                          f"{Failure.NO_TUNNEL_AGENT.value} ({detail})"),
              *(PhaseResult(phase, Status.SKIPPED, now, 0.0, "not reached")
                for phase in (Phase.TLS, Phase.HTTP)))
    evidence = Evidence(failure=Failure.NO_TUNNEL_AGENT, detail=detail)
    return ReplayResult(target=target, phases=phases, verdict=rules.classify(evidence),
                        apiserver_error=apiserver.predict(target, Failure.NO_TUNNEL_AGENT))


def ca_bundle_problem(pem: bytes) -> str | None:
    """Why the apiserver could not load PEM as its roots, or None (an empty one is fine)."""
    return None if certs.is_empty_bundle(pem) else certs.pem_problem(pem)


def service_missing(target: CallTarget, service: str, namespace: str) -> ReplayResult:
    """The result of a call whose Service does not exist: nothing is sent.

    The apiserver's service resolver fails before any packet; so does this.
    """
    now = time.time()
    phases = (PhaseResult(Phase.DNS, Status.FAILED, now, 0.0,
                          f'service "{service}" not found in namespace {namespace}',
                          "ENOTFOUND"),
              *(PhaseResult(phase, Status.SKIPPED, now, 0.0, "not reached")
                for phase in (Phase.TCP, Phase.TLS, Phase.HTTP)))
    evidence = Evidence(failure=Failure.NO_SERVICE, detail=f'service "{service}" not found')
    return ReplayResult(target=target, phases=phases, verdict=rules.classify(evidence),
                        apiserver_error=apiserver.predict(target, Failure.NO_SERVICE,
                                                          detail=service))
