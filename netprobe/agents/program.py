"""What an agent does for each role.

Owns: the `replay` role (the apiserver's call with its capture, via
netprobe.api) and the `capture` role (tcpdump on the node's interfaces with
the spec's BPF until told to stop), and turning either into an AgentResult.
Tool failures become `ok: false` results with the error, so the controller
always gets an answer. Must not: import netprobe.k8s.
"""

from __future__ import annotations

import select
import sys
import tempfile
import threading
import time
from pathlib import Path

from netprobe.agents.spec import GO_LINE, READY_LINE, AgentResult, AgentSpec
from netprobe.capture.backend import TCPDUMP, CaptureBackend
from netprobe.core import errors
from netprobe.core.model import CallKind, CallTarget
from netprobe.core.settings import Timeouts
from netprobe.host import neighbours
from netprobe.replay import sockets


def _target(target: dict) -> CallTarget:
    fields = dict(target)
    fields["ca_bundle"] = str(fields.get("ca_bundle", "")).encode()
    fields["kind"] = CallKind(fields.get("kind", "admission"))
    fields["endpoints"] = tuple(fields.get("endpoints", ()))
    return CallTarget(**fields)


def _interfaces(netns: str | None) -> dict[str, str]:
    return {str(index): name for index, name in sockets.local_addresses(netns).items()}


def replay_role(spec: AgentSpec, workdir: Path) -> AgentResult:
    """Replays every target concurrently (one thread, socket and capture each)."""
    from concurrent.futures import ThreadPoolExecutor

    from netprobe.core import wire
    from netprobe.replay import probe  # the capture role must start fast: import only here

    if spec.gated and not _released():
        raise errors.AgentError("the controller closed the gate without releasing the replay")
    started = time.time()
    timeouts = Timeouts(**spec.timeouts)

    cancel = threading.Event()

    def one(index: int) -> tuple[dict, bytes]:
        path = workdir / f"replay-{index}.pcap"
        result = probe.replay(_target(spec.targets[index]), netns=spec.netns, timeouts=timeouts,
                            capture_path=path, cancel=cancel)
        return wire.replay_to_json(result), path.read_bytes() if path.exists() else b""

    with ThreadPoolExecutor(max_workers=max(1, min(16, len(spec.targets)))) as pool:
        try:
            done = list(pool.map(one, range(len(spec.targets))))
        except BaseException:
            cancel.set()  # every replay thread stops within a tick, its capture with it
            raise
    return AgentResult(spec.run_id, spec.node, spec.role, True,
                       replays=[doc for doc, _ in done], captures=[pcap for _, pcap in done],
                       interfaces=_interfaces(spec.netns), started=started, ended=time.time())


CAPTURE_DRAIN = 0.05
"""Seconds a capture agent keeps reading after it is told to stop (tcpdump's buffer)."""


def _released() -> bool:
    """Says ready, then waits for the controller's `go` (False: stdin closed first)."""
    print(READY_LINE, flush=True)
    return sys.stdin.readline().strip() == GO_LINE


def _wait_for_stop(spec: AgentSpec) -> None:
    deadline = time.monotonic() + spec.duration
    while (remaining := deadline - time.monotonic()) > 0:
        if not spec.stop_on_stdin:
            time.sleep(min(remaining, 0.5))  # capture window: the pod has no stdin to watch
            continue
        readable, _, _ = select.select([sys.stdin], [], [], remaining)
        if readable and not sys.stdin.readline():
            return


def capture_role(spec: AgentSpec, workdir: Path,
                 backend: CaptureBackend = TCPDUMP) -> AgentResult:
    """Captures SPEC's filter on the node until told to stop (or SPEC.duration)."""
    started = time.time()
    path = workdir / "capture.pcap"
    with backend.sniffer(path, spec.bpf, netns=spec.netns, interface=spec.interface,
                         snaplen=spec.snaplen) as capture:
        print(READY_LINE, flush=True)
        if spec.watch:
            neighbours.prepare()  # while the replay runs, not after it
        _wait_for_stop(spec)
        # Told to stop once the replay is over, and the replay's own capture already waited
        # its grace for late packets: only what tcpdump has not read yet is left to drain.
        capture.stop(grace=CAPTURE_DRAIN)
    return AgentResult(spec.run_id, spec.node, spec.role, True, captures=[path.read_bytes()],
                       interfaces=_interfaces(spec.netns), started=started, ended=time.time(),
                       neighbours=neighbours.states(spec.watch, spec.netns))


def run(spec: AgentSpec) -> AgentResult:
    """Runs SPEC's role; tool failures (and bugs) are returned as `ok: false`, with the error:
    the controller then says what failed instead of "the agent printed no result"."""
    with tempfile.TemporaryDirectory(prefix="netprobe-agent-") as workdir:
        try:
            role = replay_role if spec.role == "replay" else capture_role
            return role(spec, Path(workdir))
        except Exception as exc:  # a tool failure, or a bug: an answer either way
            text = str(exc) if isinstance(exc, errors.NetprobeError) else \
                f"internal error: {type(exc).__name__}: {exc}"
            return AgentResult(spec.run_id, spec.node, spec.role, False, error=text,
                               started=time.time(), ended=time.time())
