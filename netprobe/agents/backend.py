"""Where agents run: behind one small interface, two backends.

- `netns.NetnsBackend`: `ip netns exec NS python -m netprobe.agents` per node
  (the lab, or a user's own test bed), from `--netns-map NODE=NETNS,...`.
- `netprobe.k8s.agents.PodBackend`: one short-lived pod per node.

The trace starts every capture agent, waits until each is ready, runs the
replay agent, then tells the captures to finish and collects all results.
"""

from __future__ import annotations

from typing import Protocol

from netprobe.agents.spec import AgentResult, AgentSpec


class AgentHandle(Protocol):
    """One started agent."""

    def wait_ready(self, timeout: float) -> None:
        """Returns once a capture agent's filter is attached. Raises AgentError."""

    def finish(self, timeout: float) -> AgentResult:
        """Tells the agent to stop (captures) and returns its result. Raises AgentError."""

    def abort(self) -> None:
        """Stops the agent and removes everything it made; safe to call twice."""


class AgentBackend(Protocol):
    """Starts agents on nodes."""

    def start(self, spec: AgentSpec) -> AgentHandle:
        """Starts SPEC's agent on SPEC.node. Raises AgentError, UsageError."""
