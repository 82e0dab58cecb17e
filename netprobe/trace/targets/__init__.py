"""Target kinds: the calls the apiserver makes that netprobe can trace.

A target kind is a small plug-in: it finds its calls in the API objects
(`paths`) and says what request the apiserver sends for one (`target`).
Everything else (resolving the Service, agents, captures, correlation, hops,
verdict, outputs) is the pipeline's (`netprobe.trace.pipeline`), the same for
every kind. To add one: a module here with a class like `webhook.Webhooks`,
registered in `KINDS`, and its CLI command (`netprobe/cli/trace.py`).
"""

from __future__ import annotations

from typing import Protocol

from netprobe.core.model import CallTarget, TraceResult
from netprobe.trace.discovery import CallPath, Obj
from netprobe.trace.targets.apiservice import APISERVICES
from netprobe.trace.targets.kubelet import KUBELETS
from netprobe.trace.targets.webhook import WEBHOOKS


class TargetKind(Protocol):
    """One kind of call the apiserver makes into the cluster."""

    command: str
    """The `netprobe trace` sub-command (`webhook`)."""
    noun: str
    """What one call is called in messages (`webhook`)."""

    def paths(self, objects: list[Obj]) -> list[CallPath]:
        """Every call of this kind that OBJECTS configure, not yet resolved."""

    def target(self, path: CallPath) -> CallTarget:
        """The request the apiserver sends for the resolved PATH."""

    def finish(self, path: CallPath, result: TraceResult) -> TraceResult:
        """The kind's last word on PATH's RESULT: what the objects themselves say of the
        call (notes), and the apiserver's message where its client for this kind differs."""


KINDS: dict[str, TargetKind] = {kind.command: kind for kind in (WEBHOOKS, APISERVICES, KUBELETS)}
