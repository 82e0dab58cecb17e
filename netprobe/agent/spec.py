"""What an agent is asked to do and what it answers, as versioned JSON.

Owns: `AgentSpec` and `AgentResult`, their JSON forms, and the framing of the
result on standard output (`NETPROBE-RESULT <sha256> <bytes>` then the
payload, gzip+base64) so a bundle streamed through pod logs arrives intact
or is rejected. Must not: do I/O beyond encoding.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from netprobe import errors

SCHEMA = "netprobe.io/v1"
READY_LINE = "NETPROBE-READY"
RESULT_MARK = "NETPROBE-RESULT"


@dataclass(frozen=True)
class AgentSpec:
    """One agent's job."""

    run_id: str
    node: str
    role: str
    """`replay` (make the apiserver's call and capture it) or `capture` (watch only)."""
    netns: str | None = None
    """Namespace to work in (netns backend); None: the agent's own (host network)."""
    targets: list[dict[str, Any]] = field(default_factory=list)
    """For `replay`: one WebhookTarget (fields, `ca_bundle` as PEM text) per endpoint,
    replayed concurrently."""
    timeouts: dict[str, Any] = field(default_factory=dict)
    bpf: str = ""
    """For `capture`: the kernel filter (the flow after NAT, and ICMP errors)."""
    interface: str = "any"
    duration: float = 10.0
    """For `capture`: the longest time to capture (it stops earlier on stdin EOF)."""
    snaplen: int = 1024
    stop_on_stdin: bool = False
    """For `capture`: stop as soon as standard input closes (the netns backend's signal)."""

    def to_json(self) -> str:
        return json.dumps(dict(dataclasses.asdict(self), schema=SCHEMA, kind="AgentSpec"))

    @classmethod
    def from_json(cls, text: str) -> AgentSpec:
        """Raises UsageError on anything that is not a valid spec."""
        try:
            data = json.loads(text)
            if data.pop("schema", None) != SCHEMA or data.pop("kind", None) != "AgentSpec":
                raise ValueError("not a netprobe.io/v1 AgentSpec")
            spec = cls(**data)
        except (ValueError, TypeError) as exc:
            raise errors.UsageError(f"reading agent spec: {exc}") from None
        if spec.role not in ("replay", "capture"):
            raise errors.UsageError(f"reading agent spec: unknown role {spec.role!r}")
        return spec


@dataclass(frozen=True)
class AgentResult:
    """One agent's answer."""

    run_id: str
    node: str
    role: str
    ok: bool
    error: str | None = None
    replays: list[dict[str, Any]] = field(default_factory=list)
    """`netprobe replay -o json` documents, one per target (replay role)."""
    captures: list[bytes] = field(default_factory=list)
    """pcap files: one per target (replay role), or the node's capture (capture role)."""
    interfaces: dict[str, str] = field(default_factory=dict)
    """ifindex -> interface name where the capture ran."""
    started: float = 0.0
    ended: float = 0.0

    def to_json_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["captures"] = [base64.b64encode(item).decode() for item in self.captures]
        return dict(data, schema=SCHEMA, kind="AgentResult")

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> AgentResult:
        data = dict(data)
        if data.pop("schema", None) != SCHEMA or data.pop("kind", None) != "AgentResult":
            raise errors.AgentError("reading agent result: not a netprobe.io/v1 AgentResult")
        data["captures"] = [base64.b64decode(item) for item in data.get("captures", [])]
        return cls(**data)


def encode_result(result: AgentResult) -> str:
    """The two lines an agent prints: a header with the checksum, then the payload."""
    payload = base64.b64encode(gzip.compress(json.dumps(result.to_json_dict()).encode())).decode()
    digest = hashlib.sha256(payload.encode()).hexdigest()
    return f"{RESULT_MARK} {digest} {len(payload)}\n{payload}\n"


def decode_result(output: str) -> AgentResult:
    """Finds and checks the result in an agent's output (stdout or pod logs).

    Raises:
        AgentError: no result, or a damaged one (checksum or length mismatch).
    """
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith(RESULT_MARK + " "):
            continue
        parts = line.split()
        payload = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if len(parts) != 3 or len(payload) != int(parts[2]) or \
                hashlib.sha256(payload.encode()).hexdigest() != parts[1]:
            raise errors.AgentError("reading agent result: damaged in transit (checksum mismatch)")
        try:
            data = json.loads(gzip.decompress(base64.b64decode(payload)))
        except (ValueError, OSError) as exc:
            raise errors.AgentError(f"reading agent result: {exc}") from None
        return AgentResult.from_json_dict(data)
    raise errors.AgentError("reading agent result: the agent printed no result")
