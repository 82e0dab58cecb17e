"""An in-memory agent backend: every agent's answer comes from a function.

Owns: `FakeBackend`, shipped for tests and for replaying recorded agent
results through the whole trace pipeline (like httpx's MockTransport): no
process, no pod, no packet. It records what it was asked. Must not: touch
the network or the system.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from netprobe.agents.backend import MANAGED_CONTROL_PLANE
from netprobe.agents.spec import AgentResult, AgentSpec
from netprobe.core import errors

Handler = Callable[[AgentSpec], AgentResult]
"""Answers one agent: its result, or raises AgentError to play a dead agent."""


@dataclass
class FakeHandle:
    """One fake agent: `finish` asks the backend's handler."""

    spec: AgentSpec
    backend: FakeBackend
    ready: bool = False
    aborted: bool = False
    released: bool = False

    def wait_ready(self, timeout: float) -> None:
        self.ready = True

    def finish(self, timeout: float) -> AgentResult:
        if self.aborted:
            raise errors.AgentError(f"agent on {self.spec.node} was aborted")
        if self.spec.gated and not self.released:
            raise errors.AgentError(f"agent on {self.spec.node} was never released")
        return self.backend.handler(self.spec)

    def abort(self) -> None:
        self.aborted = True

    def release(self) -> None:
        self.released = True


@dataclass
class FakeBackend:
    """Agents answered by HANDLER, on NODES (every node when None)."""

    handler: Handler
    nodes: Iterable[str] | None = None
    gates_replay: bool = False
    started: list[AgentSpec] = field(default_factory=list)
    """Every spec started, in order."""
    cleaned: list[str] = field(default_factory=list)
    """Every run id cleaned up."""

    def has_node(self, node: str) -> bool:
        if self.nodes is None:
            return node != MANAGED_CONTROL_PLANE
        return node in set(self.nodes)

    def start(self, spec: AgentSpec) -> FakeHandle:
        if not self.has_node(spec.node):
            raise errors.UsageError(f"no agent can run on node {spec.node!r}")
        self.started.append(spec)
        return FakeHandle(spec, self)

    def cleanup(self, run_id: str) -> list[str]:
        self.cleaned.append(run_id)
        return []
