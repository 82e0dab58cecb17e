"""netprobe's JSON output: versioned, documented in README, stable for scripts.

Owns: turning results into plain JSON-able dicts (`schema` field first).
Must not: change a field's meaning without bumping SCHEMA_VERSION.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from netprobe.core.model import ReplayResult
from netprobe.core.verdicts import VerdictClass

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
        "wire": _plain(result.wire),
        "verdict": verdict,
        "apiserver_error": error.message if error else None,
        "apiserver_error_alternatives": list(error.alternatives) if error else [],
        "client_error": error.client_message if error else None,
        "phases": _plain(result.phases),
        "certificate": _plain(result.certificate),
        "http": _plain(result.http),
        "packets": _plain(result.packets),
        "capture": result.capture,
    }


def replay_from_json(data: dict[str, Any]) -> ReplayResult:
    """Rebuilds a ReplayResult from its JSON (an agent's answer).

    The caBundle is not carried; certificate and packets come back as values.
    """
    from netprobe.core.model import (
        ApiserverError,
        CallKind,
        CallTarget,
        CertificateInfo,
        HttpOutcome,
        IcmpInfo,
        PacketSummary,
        Phase,
        PhaseResult,
        RstInfo,
        Status,
        Verdict,
        WireTuple,
    )

    target = dict(data["target"], kind=CallKind(data["target"]["kind"]),
                  endpoints=tuple(data["target"].get("endpoints", ())))
    verdict = dict(data["verdict"])
    cls = verdict.pop("class")
    phase = Phase(verdict.pop("phase")) if verdict.get("phase") else None
    verdict.pop("phase", None)
    packets = data.get("packets")
    summary = None
    if packets:
        packets = dict(packets)
        packets["rst"] = tuple(RstInfo(**item) for item in packets.get("rst", []))
        packets["icmp"] = tuple(IcmpInfo(**item) for item in packets.get("icmp", []))
        packets["interfaces"] = tuple(packets.get("interfaces", []))
        summary = PacketSummary(**packets)
    cert = data.get("certificate")
    message = data.get("apiserver_error")
    return ReplayResult(
        target=CallTarget(**target),
        phases=tuple(PhaseResult(Phase(p["phase"]), Status(p["status"]), p["started"],
                                 p["duration"], p["detail"], p["error"]) for p in data["phases"]),
        verdict=Verdict(VerdictClass(cls), phase, **verdict),
        apiserver_error=ApiserverError(message, tuple(data.get("apiserver_error_alternatives", [])),
                                       data.get("client_error") or "") if message else None,
        certificate=CertificateInfo(**dict(cert, dns_names=tuple(cert["dns_names"]),
                                           ip_addresses=tuple(cert["ip_addresses"])))
        if cert else None,
        http=HttpOutcome(**data["http"]) if data.get("http") else None,
        packets=summary, capture=data.get("capture"), netns=data.get("netns"),
        local_address=tuple(data["local_address"]) if data.get("local_address") else None,
        dialed=tuple(data["dialed"]) if data.get("dialed") else None,
        wire=WireTuple(**data["wire"]) if data.get("wire") else None)


def trace_to_json(results: list[Any]) -> dict[str, Any]:
    """The `netprobe trace webhook -o json` document."""
    return {"schema": SCHEMA_VERSION, "kind": "TraceReport",
            "results": [_trace_result(result) for result in results]}


def _trace_result(result: Any) -> dict[str, Any]:
    verdict = _plain(result.verdict)
    verdict["class"] = verdict.pop("cls")
    verdict["culprit"] = _plain(result.culprit)
    error = result.apiserver_error
    return {
        "target_kind": result.target_kind,
        "target": result.target,
        "configuration": result.configuration,
        "webhook": result.webhook,
        "endpoint": result.endpoint,
        "pod": result.pod,
        "node": result.node,
        "verdict": verdict,
        "apiserver_error": error.message if error else None,
        "apiserver_error_alternatives": list(error.alternatives) if error else [],
        "client_error": error.client_message if error else None,
        "hops": _plain(result.hops),
        "findings": _plain(result.findings),
        "captures": list(result.captures),
        "notes": list(result.notes),
        "interfaces": {node: dict(names) for node, names in result.interfaces.items()},
        "replay": replay_to_json(result.replay) if result.replay else None,
    }


def trace_from_json(data: dict[str, Any]) -> list[Any]:
    """Rebuilds the TraceResults of a `netprobe trace webhook -o json` document.

    Raises:
        ValueError: not a TraceReport of this schema, or a field is missing or
            malformed (the message names it).
    """
    if data.get("schema") != SCHEMA_VERSION or data.get("kind") != "TraceReport":
        raise ValueError(f"not a {SCHEMA_VERSION} TraceReport")
    try:
        return [_trace_result_from_json(item) for item in data["results"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed TraceReport: {type(exc).__name__}: {exc}") from None


def _trace_result_from_json(data: dict[str, Any]) -> Any:
    from netprobe.core.model import (
        ApiserverError,
        Culprit,
        Finding,
        Hop,
        HopStatus,
        Phase,
        Severity,
        TraceResult,
        Verdict,
    )

    verdict = dict(data["verdict"])
    cls = verdict.pop("class")
    culprit = verdict.pop("culprit", None)
    phase = Phase(verdict.pop("phase")) if verdict.get("phase") else None
    verdict.pop("phase", None)
    message = data.get("apiserver_error")
    hops = tuple(Hop(**dict(hop, status=HopStatus(hop["status"]), evidence=tuple(hop["evidence"])))
                 for hop in data["hops"])
    return TraceResult(
        target=data["target"], configuration=data["configuration"], webhook=data["webhook"],
        endpoint=data.get("endpoint"), verdict=Verdict(VerdictClass(cls), phase, **verdict),
        culprit=Culprit(**culprit) if culprit else None,
        apiserver_error=ApiserverError(message, tuple(data.get("apiserver_error_alternatives", [])),
                                       data.get("client_error") or "") if message else None,
        hops=hops,
        findings=tuple(Finding(**dict(f, severity=Severity(f["severity"])))
                       for f in data.get("findings", [])),
        captures=tuple(data.get("captures", [])),
        notes=tuple(data.get("notes", [])),
        replay=replay_from_json(data["replay"]) if data.get("replay") else None,
        pod=data.get("pod"), node=data.get("node"),
        target_kind=str(data.get("target_kind", "webhook")),
        interfaces={str(node): {str(k): str(v) for k, v in names.items()}
                    for node, names in (data.get("interfaces") or {}).items()})


def static_to_json(reports: list[Any]) -> dict[str, Any]:
    """The `netprobe trace webhook --static -o json` document."""
    return {"schema": SCHEMA_VERSION, "kind": "FindingsReport",
            "results": [{"configuration": r.configuration, "webhook": r.webhook,
                         "target": r.target, "findings": _plain(r.findings)} for r in reports]}
