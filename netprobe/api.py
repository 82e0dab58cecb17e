"""netprobe's Python API: what the CLI calls, and what notebooks and scripts use.

Owns: one function per user-level operation, each delegating to the layer
that does it (`replay.probe`, `trace.pipeline`, `trace.saved`, `lab`).
Imports only downwards. Must not: print or exit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netprobe.core.model import ProxyMode, TraceResult
from netprobe.replay.probe import replay
from netprobe.trace.pipeline import TraceOptions, static_checks, trace_webhooks
from netprobe.trace.saved import SavedTrace, VantageCapture, load_trace, read_trace

if TYPE_CHECKING:
    from netprobe.lab.topology import IpFamily, Overlay

__all__ = ["SavedTrace", "TraceOptions", "VantageCapture", "load_trace", "read_trace", "replay",
           "static_checks", "trace_lab_scenario", "trace_webhooks"]


def trace_lab_scenario(name: str, *, options: TraceOptions | None = None,
                       webhook: str | None = "validating/cert-manager-webhook",
                       proxy_mode: ProxyMode = ProxyMode.IPTABLES,
                       pod_overlay: Overlay | None = None,
                       ip_family: IpFamily | None = None) -> list[TraceResult]:
    """Brings lab scenario NAME up (if needed) and traces its call end to end: its webhook
    (WEBHOOK selects which), or its APIService for an aggregated-API scenario.

    The snapshot and the netns map are the lab's own, exactly what
    `netprobe lab snapshot` and `netprobe lab netns-map` print. The lab stays up. IP_FAMILY
    runs the scenario in IPv4 (default), IPv6 or dual-stack.
    """
    from netprobe.agents.netns import NetnsBackend, parse_netns_map
    from netprobe.lab import lifecycle, scenarios
    from netprobe.lab.topology import IpFamily, Overlay
    from netprobe.trace.pipeline import trace
    from netprobe.trace.targets import KINDS

    state, _ = lifecycle.up(name, proxy_mode, pod_overlay or Overlay.NONE,
                            ip_family or IpFamily.IPV4)
    plan = lifecycle.plan_of(state)
    objects = lifecycle.snapshot_list(state)["items"]
    backend = NetnsBackend(parse_netns_map(lifecycle.netns_map(plan)))
    scenario = scenarios.get(name)
    kind = KINDS[scenario.command]
    selected = webhook if kind.command == "webhook" else scenario.target
    return trace(kind, objects, backend, name=selected, options=options)
