"""Where agents run: one Protocol, three backends.

- `netns.NetnsBackend`: `ip netns exec NS python -m netprobe.agents` per node
  (the lab, or a user's own test bed), from `--netns-map NODE=NETNS,...`.
- `pod.PodBackend`: one short-lived pod per node, through the Kubernetes API.
- `fake.FakeBackend`: in memory, answering from a function (for tests and
  for replaying recorded agent results, like httpx's MockTransport).

The trace starts every capture agent (and, where the backend gates it, the
replay agent with them), waits until each is ready, runs (releases) the replay
agent, then tells the captures to finish, collects all results, and always
calls `cleanup` with the run id at the end.
"""

from __future__ import annotations

from typing import Protocol

from netprobe.agents.spec import AgentResult, AgentSpec

MANAGED_CONTROL_PLANE = "control-plane"
"""The vantage name of a control plane that has no Node object (a managed one: EKS,
GKE, AKS). Only a backend that can stand in for it (the lab's netns map) has it."""


class AgentHandle(Protocol):
    """One started agent."""

    def wait_ready(self, timeout: float) -> None:
        """Returns once a capture agent's filter is attached. Raises AgentError."""

    def finish(self, timeout: float) -> AgentResult:
        """Tells the agent to stop (captures) and returns its result. Raises AgentError."""

    def abort(self) -> None:
        """Stops the agent and removes everything it made; safe to call twice."""

    def release(self) -> None:
        """Lets a gated replay agent (`AgentSpec.gated`) make its call."""


class AgentBackend(Protocol):
    """Starts agents on nodes."""

    gates_replay: bool
    """Its agents can be started gated (they read `go` from the controller): the replay
    then starts up while the captures do, instead of after them."""

    def has_node(self, node: str) -> bool:
        """Whether an agent can run on NODE (`MANAGED_CONTROL_PLANE` included)."""

    def start(self, spec: AgentSpec) -> AgentHandle:
        """Starts SPEC's agent on SPEC.node. Raises AgentError, UsageError."""

    def cleanup(self, run_id: str) -> list[str]:
        """Removes whatever agents of RUN_ID are left (after a crash); returns their names."""
