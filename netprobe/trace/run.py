"""Stage 3 of a trace: run the planned agents and collect what they answer.

Owns: the order (every capture agent started, then each waited for until its
filter is attached, before the replay's first SYN; then the replay; then the
captures told to finish), the time budgets, and the promise that every agent
is stopped and the run cleaned up, whatever happens (errors, Ctrl-C).
Must not: know which backend runs the agents, or read their captures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from netprobe.agents.backend import AgentBackend, AgentHandle
from netprobe.agents.spec import AgentResult
from netprobe.core import errors
from netprobe.trace.plan import AgentPlan

Progress = Callable[[str], None]
COLLECT_SLACK = 30.0
"""Seconds beyond the start timeout to wait for a capture agent's result."""


@dataclass(frozen=True)
class AgentRun:
    """What the agents of one plan answered."""

    replay: AgentResult
    captures: dict[str, AgentResult]
    """node -> its capture agent's result."""


def run(backend: AgentBackend, plan: AgentPlan, start_timeout: float,
        progress: Progress) -> AgentRun:
    """Runs PLAN's agents on BACKEND.

    Raises:
        AgentError: an agent failed, died or answered `ok: false`.
        UsageError: a node has no agent (e.g. not in --netns-map).
    """
    started: list[AgentHandle] = []
    try:
        capture_handles = []
        for spec in plan.captures:
            progress(f"starting capture agent on {spec.node}")
            handle = backend.start(spec)
            started.append(handle)
            capture_handles.append(handle)
        replay_handle = None
        if backend.gates_replay:  # it starts up while the captures attach their filters
            replay_handle = backend.start(dataclasses.replace(plan.replay, gated=True))
            started.append(replay_handle)
        for handle in capture_handles:
            handle.wait_ready(start_timeout)
        progress(f"replaying the apiserver's call from {plan.replay.node}")
        if replay_handle is None:
            replay_handle = backend.start(plan.replay)
            started.append(replay_handle)
        else:
            replay_handle.wait_ready(start_timeout)
            replay_handle.release()
        budget = start_timeout + max(t["timeout_seconds"] for t in plan.replay.targets)
        replayed = _checked(replay_handle.finish(budget))
        progress("collecting captures")
        captured = _finish_all(capture_handles, start_timeout + COLLECT_SLACK)
        return AgentRun(replayed, {result.node: result for result in captured})
    finally:
        for handle in started:
            handle.abort()
        backend.cleanup(plan.run_id)  # agents left by a crash (pods are deleted by label)


def _finish_all(handles: list[AgentHandle], timeout: float) -> list[AgentResult]:
    """Every capture told to stop at once (each drains and uploads while the others do)."""
    if len(handles) <= 1:
        return [_checked(handle.finish(timeout)) for handle in handles]
    with ThreadPoolExecutor(max_workers=min(16, len(handles))) as pool:
        results = list(pool.map(lambda handle: handle.finish(timeout), handles))
    return [_checked(result) for result in results]


def _checked(result: AgentResult) -> AgentResult:
    if not result.ok:
        raise errors.AgentError(f"agent on {result.node} ({result.role}) failed: {result.error}")
    return result
