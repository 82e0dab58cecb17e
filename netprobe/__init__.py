"""netprobe: find where and why the Kubernetes API server cannot reach a webhook.

The public Python API (also what the notebooks use):

- `replay(target, netns=..., timeouts=...)`: one apiserver call, phase by phase,
  captured and classified (`ReplayResult`).
- `trace_webhooks(objects, backend, name=...)`: the whole path, with agents at
  every hop, correlated across NAT (`TraceResult` per endpoint).
- `load_trace(path)`, `read_trace(saved)`: a saved trace and its captures, as one table.
- `netprobe.analysis`: captures as pandas DataFrames, flows, verdicts, totals.

Names are loaded on first use, so `import netprobe` (and the CLI) start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "NetprobeError": "netprobe.core.errors",
    "CallTarget": "netprobe.core.model",
    "ReplayResult": "netprobe.core.model",
    "SavedTrace": "netprobe.api",
    "Timeouts": "netprobe.core.settings",
    "TraceOptions": "netprobe.api",
    "TraceResult": "netprobe.core.model",
    "UsageError": "netprobe.core.errors",
    "Verdict": "netprobe.core.model",
    "WebhookTarget": "netprobe.core.model",
    "load_trace": "netprobe.api",
    "read_trace": "netprobe.api",
    "replay": "netprobe.api",
    "trace_webhooks": "netprobe.api",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'netprobe' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
