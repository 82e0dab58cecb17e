"""One replayed call: the apiserver's request from a vantage point, captured and classified.

Owns: wiring the socket-level call (`call`), its capture (a `capture.backend`
sniffer on the flow), the summary of that capture and the rule table into a
`ReplayResult`. Path failures are values in the result; only tool failures
raise. Must not: print or exit, or know about traces, agents or Kubernetes.
"""

from __future__ import annotations

import contextlib
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
)
from netprobe.core.settings import Timeouts
from netprobe.host import nsenter
from netprobe.replay import apiserver, call, sockets


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

        def start_capture(sock: socket.socket) -> None:
            if not capture or path is None:
                return
            local_port = sock.getsockname()[1]
            sniffer.append(stack.enter_context(
                capture_backend.sniffer(path, filters.flow_filter(local_port), netns=netns,
                                        interface=interface)))

        outcome = call.run(target, timeouts, netns, on_bound=start_capture, cancel=cancel)
        summary = None
        if sniffer and path is not None:
            sniffer[0].stop(grace=timeouts.capture_grace)
            names = sockets.local_addresses(netns)
            local_port = outcome.local[1] if outcome.local else 0
            summary = packet_summary.summarize(path, local_port, interfaces=names)
        return _result(target, outcome, summary, netns, timeouts,
                       str(capture_path) if capture_path and sniffer else None)


def _result(target: CallTarget, outcome: call.CallOutcome, summary: PacketSummary | None,
            netns: str | None, timeouts: Timeouts, capture: str | None) -> ReplayResult:
    wire = summary.wire_destination if summary is not None else None
    on_link = sockets.on_link(netns, wire or outcome.dialed[0]) if outcome.dialed else None
    evidence = Evidence(
        failure=outcome.failure, stall=outcome.stall, early=outcome.early,
        errno_name=outcome.errno_name, detail=outcome.detail, certificate=outcome.certificate,
        http=outcome.http, packets=summary, dialed=outcome.dialed,
        destination_on_link=on_link)
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
                        dialed=outcome.dialed)


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
