"""Running agents in network namespaces that stand for nodes.

Owns: parsing `--netns-map NODE=NETNS,...`, and one `ip netns exec NETNS
python -m netprobe.agents` child per agent: READY on its stdout means its
capture filter is attached, closing its stdin means "finish", its stdout
carries the result bundle. Children never outlive the trace.
"""

from __future__ import annotations

import dataclasses
import os
import select
import signal
import subprocess
import sys
import time

from netprobe.agents.spec import GO_LINE, READY_LINE, AgentResult, AgentSpec, decode_result
from netprobe.core import errors
from netprobe.host import nsenter


def parse_netns_map(text: str) -> dict[str, str]:
    """Returns {node: netns} from `NODE=NETNS,NODE=NETNS`.

    Raises:
        UsageError: malformed, duplicated, or naming a namespace that does not exist.
    """
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node, sep, netns = item.partition("=")
        if not sep or not node or not netns:
            raise errors.UsageError(f"reading --netns-map: {item!r} is not NODE=NETNS")
        if node in mapping:
            raise errors.UsageError(f"reading --netns-map: node {node!r} is given twice")
        if not nsenter.exists(netns):
            raise errors.UsageError(f"reading --netns-map: no network namespace {netns!r} "
                                    "(see 'ip netns list')")
        mapping[node] = netns
    if not mapping:
        raise errors.UsageError("reading --netns-map: empty")
    return mapping


ABORT_GRACE = 3.0
"""Seconds an aborted agent gets to clean up before it is killed."""


class NetnsHandle:
    """An agent child process in a namespace."""

    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec
        args = [sys.executable, "-m", "netprobe.agents", "--spec", spec.to_json()]
        # Its own session: abort() kills the agent and its tcpdump together.
        self._child = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, start_new_session=True)
        self._early_output = ""

    def wait_ready(self, timeout: float) -> None:
        assert self._child.stdout is not None
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self._child.stdout], [], [], remaining)
            if not readable:
                break
            line = self._child.stdout.readline()
            if not line:
                self._fail("exited before it was ready")
            if line.strip() == READY_LINE:
                return
            self._early_output += line
        self.abort()
        raise errors.AgentError(f"agent on {self.spec.node}: not ready after {timeout:.0f} s")

    def _fail(self, what: str) -> None:
        _, err = self._child.communicate(timeout=10)
        self.abort()
        detail = (err or "").strip().splitlines()
        raise errors.AgentError(f"agent on {self.spec.node}: {what}: "
                                f"{detail[-1] if detail else 'no message'}")

    def finish(self, timeout: float) -> AgentResult:
        try:
            out, err = self._child.communicate(input="", timeout=timeout)
        except subprocess.TimeoutExpired:
            self.abort()
            raise errors.AgentError(f"agent on {self.spec.node}: no result after "
                                    f"{timeout:.0f} s") from None
        if self._child.returncode == 2:
            raise errors.AgentError(f"agent on {self.spec.node}: {err.strip()}")
        return decode_result(self._early_output + out)

    def release(self) -> None:
        """Sends the gated replay its `go` line."""
        assert self._child.stdin is not None
        try:
            self._child.stdin.write(GO_LINE + "\n")
            self._child.stdin.flush()
        except BrokenPipeError:
            self._fail("exited before it was released")

    def abort(self) -> None:
        """SIGTERM lets the agent stop its capture and remove its files; SIGKILL if it hangs."""
        for signum, grace in ((signal.SIGTERM, ABORT_GRACE), (signal.SIGKILL, None)):
            try:
                os.killpg(self._child.pid, signum)  # the agent and whatever it started
            except ProcessLookupError:
                break
            try:
                self._child.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        self._child.wait()
        for stream in (self._child.stdin, self._child.stdout, self._child.stderr):
            if stream is not None and not stream.closed:
                stream.close()


class NetnsBackend:
    """Runs each node's agent in the namespace the map gives it."""

    gates_replay = True

    def __init__(self, netns_map: dict[str, str]) -> None:
        self.netns_map = netns_map

    def has_node(self, node: str) -> bool:
        return node in self.netns_map

    def start(self, spec: AgentSpec) -> NetnsHandle:
        netns = self.netns_map.get(spec.node)
        if netns is None:
            raise errors.UsageError(f"--netns-map has no namespace for node {spec.node!r}; "
                                    f"it maps {', '.join(sorted(self.netns_map))}")
        return NetnsHandle(dataclasses.replace(spec, netns=netns, stop_on_stdin=True))

    def cleanup(self, run_id: str) -> list[str]:
        """Nothing to remove: each agent is a child that `abort` kills with its group."""
        return []
