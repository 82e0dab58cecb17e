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

from netprobe.core import errors

SCHEMA = "netprobe.io/v1"
READY_LINE = "NETPROBE-READY"
GO_LINE = "go"
"""What the controller writes to a gated replay agent to let it call."""
RESULT_MARK = "NETPROBE-RESULT"
# The result's payload line stays under kubelet's default log rotation size
# (containerLogMaxSize 10 MiB): `kubectl logs` reads the current file only.
MAX_PAYLOAD_CHARS = 8 * 1024 * 1024
FIT_ATTEMPTS = 6


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
    """For `replay`: one CallTarget (fields, `ca_bundle` as PEM text) per endpoint,
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
    watch: list[str] = field(default_factory=list)
    """For `capture`: addresses whose neighbour (ARP/ND) state the agent reports at the end."""
    gated: bool = False
    """For `replay`: once started up, print the ready line and wait for a `go` line on
    standard input, so the controller can start it together with the captures and
    release it when they are all ready (backends with `gates_replay`)."""

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
    warnings: list[str] = field(default_factory=list)
    """What the controller should tell the user (a capture cut to fit the pod log)."""
    neighbours: dict[str, str] = field(default_factory=dict)
    """For `capture`: the node's neighbour (ARP/ND) state of each watched address when the
    capture stopped (`incomplete`: the node asks and nobody answers)."""

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


def _payload(result: AgentResult) -> str:
    return base64.b64encode(gzip.compress(json.dumps(result.to_json_dict()).encode())).decode()


def encode_result(result: AgentResult, budget: int = MAX_PAYLOAD_CHARS) -> str:
    """The two lines an agent prints: a header with the checksum, then the payload.

    A payload over `budget` characters has its captures cut (see `fit`).
    """
    payload = _payload(result)
    if len(payload) > budget:
        result = fit(result, budget, len(payload))
        payload = _payload(result)
    digest = hashlib.sha256(payload.encode()).hexdigest()
    return f"{RESULT_MARK} {digest} {len(payload)}\n{payload}\n"


def fit(result: AgentResult, budget: int, size: int) -> AgentResult:
    """`result` with its captures cut so that its payload fits `budget` characters.

    Each capture keeps a share of the room in proportion to its size, and its
    SYN, reset and ICMP packets first (`netprobe.capture.trim`); a
    warning says what was cut.
    """
    from netprobe.capture import trim  # only a huge capture pays for the decoder's import

    raw = sum(len(c) for c in result.captures) or 1
    scale = budget / size
    for _ in range(FIT_ATTEMPTS):  # compression makes the payload's size a guess
        cuts = [trim.trim(c, int(len(c) * scale)) for c in result.captures]
        smaller = dataclasses.replace(result, captures=[c.data for c in cuts],
                                      warnings=[*result.warnings, *_cut_notes(result, cuts,
                                                                              budget)])
        if len(_payload(smaller)) <= budget or sum(len(c.data) for c in cuts) < raw * 0.01:
            break
        scale *= 0.7
    return smaller


def _cut_notes(result: AgentResult, cuts: list[Any], budget: int) -> list[str]:
    return [f"the capture {i + 1} of the {result.role} agent on {result.node} was cut to "
            f"{c.kept} of {c.total} packets to fit through the pod log "
            f"({budget / 2**20:.3g} MiB); SYN, reset and ICMP packets were kept first"
            for i, c in enumerate(cuts) if 0 <= c.kept < c.total]


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
