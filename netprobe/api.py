"""netprobe's Python API: what the CLI calls, and what notebooks and scripts use.

Owns: wiring the edges (sockets, capture, files) to the core (classify,
apiserver messages) for each user-level operation. Edges are keyword
parameters with defaults. Must not: print or exit.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from pathlib import Path

from netprobe import apiserver, classify, errors, nsenter
from netprobe.capture.tcpdump import TcpdumpCapture, flow_filter
from netprobe.model import (
    Evidence,
    Failure,
    PacketSummary,
    Phase,
    PhaseResult,
    ReplayResult,
    Status,
    WebhookTarget,
)
from netprobe.replay import call, sockets
from netprobe.settings import Timeouts


def replay(target: WebhookTarget, *, netns: str | None = None, timeouts: Timeouts | None = None,
           capture: bool = True, capture_path: Path | None = None,
           interface: str = "any", cancel: threading.Event | None = None) -> ReplayResult:
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
        sniffer: list[TcpdumpCapture] = []

        def start_capture(sock: socket.socket) -> None:
            if not capture or path is None:
                return
            local_port = sock.getsockname()[1]
            sniffer.append(stack.enter_context(
                TcpdumpCapture(path, flow_filter(local_port), netns=netns, interface=interface)))

        outcome = call.run(target, timeouts, netns, on_bound=start_capture, cancel=cancel)
        summary = None
        if sniffer:
            from netprobe import packets  # scapy: loaded only when there is a capture to read

            sniffer[0].stop(grace=timeouts.capture_grace)
            names = sockets.local_addresses(netns)
            local_port = outcome.local[1] if outcome.local else 0
            summary = packets.summarize(path, local_port, interfaces=names)  # type: ignore[arg-type]
        return _result(target, outcome, summary, netns, timeouts,
                       str(capture_path) if capture_path and sniffer else None)


def _result(target: WebhookTarget, outcome: call.CallOutcome, summary: PacketSummary | None,
            netns: str | None, timeouts: Timeouts, capture: str | None) -> ReplayResult:
    wire = summary.wire_destination if summary is not None else None
    on_link = sockets.on_link(netns, wire or outcome.dialed[0]) if outcome.dialed else None
    evidence = Evidence(
        failure=outcome.failure, stall=outcome.stall, early=outcome.early,
        errno_name=outcome.errno_name, detail=outcome.detail, certificate=outcome.certificate,
        http=outcome.http, packets=summary, dialed=outcome.dialed,
        destination_on_link=on_link)
    verdict = classify.classify(evidence)
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
                        dialed=outcome.dialed)


def service_missing(target: WebhookTarget, service: str, namespace: str) -> ReplayResult:
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
    return ReplayResult(target=target, phases=phases, verdict=classify.classify(evidence),
                        apiserver_error=apiserver.predict(target, Failure.NO_SERVICE,
                                                          detail=service))


def replay_lab_scenario(name: str, *, timeouts: Timeouts | None = None,
                        capture_path: Path | None = None) -> ReplayResult:
    """Brings lab scenario NAME up (if needed) and replays the apiserver's call in it.

    The lab stays up; `netprobe.lab.lifecycle.down()` removes it.
    """
    from netprobe.lab import lifecycle, pki

    state, _ = lifecycle.up(name)
    plan = lifecycle.plan_of(state)
    hook = plan.webhook
    target = WebhookTarget(
        url=f"https://{hook.host}:{hook.service_port}/validate", host=hook.host,
        port=hook.service_port, path="/validate", resolve_ip=hook.cluster_ip,
        ca_bundle=(state.directory / "pki" / pki.CA_BUNDLE).read_bytes(),
        webhook_name="webhook.cert-manager.io", timeout_seconds=hook.timeout_seconds)
    if hook.configured_service_name != hook.service_name:
        return service_missing(target, hook.configured_service_name, hook.service_namespace)
    return replay(target, netns=plan.control_plane.netns, timeouts=timeouts,
                  capture_path=capture_path)


def trace_lab_scenario(name: str, *, options: object | None = None,
                       webhook: str | None = "validating/cert-manager-webhook") -> list:
    """Brings lab scenario NAME up (if needed) and traces its webhook end to end.

    The snapshot and the netns map are the lab's own, exactly what
    `netprobe lab snapshot` and `netprobe lab netns-map` print. The lab stays up.
    """
    from netprobe import trace
    from netprobe.backends.netns import NetnsBackend, parse_netns_map
    from netprobe.lab import lifecycle

    state, _ = lifecycle.up(name)
    plan = lifecycle.plan_of(state)
    objects = lifecycle.snapshot_list(state)["items"]
    backend = NetnsBackend(parse_netns_map(lifecycle.netns_map(plan)))
    return trace.trace_webhooks(objects, backend, name=webhook,
                                options=options)  # type: ignore[arg-type]
