"""netprobe's JSON output: versioned, documented in README, stable for scripts.

Owns: turning results into plain JSON-able dicts (`schema` field first).
Must not: change a field's meaning without bumping SCHEMA_VERSION.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from netprobe.model import ReplayResult

SCHEMA_VERSION = "netprobe.io/v1"


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name))
                for field in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, bytes):
        return None
    return value


def replay_to_json(result: ReplayResult) -> dict[str, Any]:
    """The `netprobe replay -o json` document."""
    target = _plain(result.target)
    target.pop("ca_bundle", None)
    verdict = _plain(result.verdict)
    verdict["class"] = verdict.pop("cls")
    error = result.apiserver_error
    return {
        "schema": SCHEMA_VERSION,
        "kind": "ReplayResult",
        "target": target,
        "netns": result.netns,
        "local_address": _plain(result.local_address),
        "dialed": _plain(result.dialed),
        "verdict": verdict,
        "apiserver_error": error.message if error else None,
        "apiserver_error_alternatives": list(error.alternatives) if error else [],
        "phases": _plain(result.phases),
        "certificate": _plain(result.certificate),
        "http": _plain(result.http),
        "packets": _plain(result.packets),
        "capture": result.capture,
    }
