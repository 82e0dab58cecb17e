"""Wireshark's view of the suspicious flows: expert info, TLS alerts, HTTP and HTTP/2.

Owns: which flows are dissected (verdict not `ok`, most suspicious first,
at most `limit`), the display filter selecting them (one clause per flow's
address and port pair, IPv4 or IPv6, OR'ed, and only the frames that say
something), which frame belongs to which flow, and what is kept of it.
Must not: run tshark itself (`netprobe.capture.tshark`) or print.

A frame belongs to the flow with its address and port pair that started
last at or before it (a reused client port makes several flows of one
pair). Frames are matched on their own TCP header: ICMP errors quoting a
flow are netprobe's `icmp_*` columns, not dissected here.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from netprobe.core import rules

if TYPE_CHECKING:  # tshark (and asyncio behind it) load only when a capture is dissected
    from netprobe.capture import tshark

MAX_EXPERT, MAX_ALERTS, MAX_HTTP = 10, 5, 10
"""Entries kept per flow of each kind (the first ones, in frame order)."""

NOTE_SEVERITY = 0x00400000
"""Wireshark's `PI_NOTE`. Chat entries (SYN, FIN, request lines) are left out."""
SAYS_SOMETHING = (f"_ws.expert.severity >= {NOTE_SEVERITY} || tls.alert_message"
                  " || http.response || http2.type == 3 || http2.type == 7"
                  " || http2.headers.status")
"""Frames worth returning: expert info above chat, TLS alerts, HTTP responses,
HTTP/2 RST_STREAM, GOAWAY and response headers."""
FIELDS = ("_ws.expert.message", "_ws.expert.severity", "_ws.expert.group",
          "tls.alert_message", "tls.alert_message.level", "tls.alert_message.desc",
          "http.response.version", "http.response.code", "http.response.phrase",
          "http2.type", "http2.streamid", "http2.rst_stream.error", "http2.goaway.error",
          "http2.headers.status")


@dataclass(frozen=True)
class ExpertInfo:
    """One of Wireshark's expert info entries, once per distinct message in a flow."""

    frame: int
    """The first frame carrying it (frame numbers as Wireshark shows them, from 1)."""
    severity: str
    """`Note`, `Warning` or `Error`."""
    group: str
    """`Sequence`, `Malformed`, `Security`, ..."""
    protocol: str
    """The dissector that added it: `tcp`, `tls`, `http`, ..."""
    message: str
    count: int
    """Frames of the flow carrying it."""


@dataclass(frozen=True)
class TlsAlert:
    """A TLS alert record as Wireshark decodes it."""

    frame: int
    side: str
    """`client` or `server`: who sent it."""
    level: str
    """`Fatal`, `Warning`; empty when the alert is encrypted."""
    description: str
    """`Unknown CA`, `Handshake Failure`, ...; empty when encrypted."""
    code: int | None
    """The description's number (48), None when encrypted."""


@dataclass(frozen=True)
class HttpMessage:
    """An HTTP/1 response, or an HTTP/2 RST_STREAM, GOAWAY or response HEADERS frame."""

    frame: int
    side: str
    version: str
    """`HTTP/1.1`, `HTTP/1.0` or `HTTP/2`."""
    status: int | None
    """The response status (HTTP/1, or HTTP/2 `:status`), else None."""
    phrase: str
    """HTTP/1's reason phrase, else ''."""
    frame_type: str
    """HTTP/2: `RST_STREAM`, `GOAWAY` or `HEADERS`; '' for HTTP/1."""
    stream_id: int | None
    """HTTP/2 stream (0 for GOAWAY), else None."""
    error: str
    """HTTP/2 error code as Wireshark names it (`PROTOCOL_ERROR`), else ''."""
    error_code: int | None
    """Its number (1), else None."""


@dataclass(frozen=True)
class WiresharkView:
    """What Wireshark's dissectors say about one flow."""

    stream: int
    expert: tuple[ExpertInfo, ...]
    tls_alerts: tuple[TlsAlert, ...]
    http: tuple[HttpMessage, ...]


@dataclass(frozen=True)
class Dissection:
    """Wireshark's view of the suspicious flows of one capture."""

    views: Mapping[int, WiresharkView]
    """tcp.stream to its view, for every flow dissected."""
    suspicious: int
    """Flows whose verdict is not `ok`."""
    limit: int
    timeout: float
    timed_out: bool
    """tshark was stopped after `timeout` s: frames past that point are missing."""
    seconds: float
    """How long tshark ran."""
    error: str
    """Why tshark did not run or failed ('' if it ran to the end)."""

    @property
    def capped(self) -> int:
        """Suspicious flows left out by the limit."""
        return max(0, self.suspicious - self.limit)


def suspicious_rows(verdict: np.ndarray, stream: np.ndarray) -> np.ndarray:
    """Rows of the flows whose verdict is not `ok`, in the order reports list them."""
    order = np.lexsort((stream, rules.severity(verdict)))
    return np.asarray(order[verdict[order] != "ok"])


def display_filter(flows: Mapping[str, Any]) -> str:
    """The tshark display filter selecting FLOWS' frames that say something."""
    clauses = []
    for client, cport, server, sport in _pairs(flows):
        ip = "ipv6" if ipaddress.ip_address(client).version == 6 else "ip"
        clauses.append(f"({ip}.addr=={client} && {ip}.addr=={server} && "
                       f"tcp.port=={cport} && tcp.port=={sport})")
    return f"tcp && !icmp && !icmpv6 && ({' || '.join(sorted(set(clauses)))}) && ({SAYS_SOMETHING})"


def dissect(path: str | Path, flows: Mapping[str, Any], suspicious: int, limit: int,
            timeout: float) -> Dissection:
    """Wireshark's view of FLOWS (rendered flow columns: at most LIMIT, already chosen).

    Raises:
        MissingToolError, UsageError: tshark cannot be found.
    """
    from netprobe.capture import tshark

    streams = [int(s) for s in flows["stream"]]
    if not streams:
        return Dissection({}, suspicious, limit, timeout, False, 0.0, "")
    run = tshark.dissect_frames(path, display_filter(flows), FIELDS, timeout)
    owners = _owners(flows)
    frames: dict[int, list[tuple[tshark.Frame, str]]] = defaultdict(list)
    for frame in run.frames:
        owner = owners.owner(frame)
        if owner is not None:
            frames[owner[0]].append((frame, owner[1]))
    views = {s: view(s, frames.get(s, [])) for s in streams}
    return Dissection(views, suspicious, limit, timeout, run.timed_out, run.seconds, run.problem)


def not_run(reason: str, suspicious: int, limit: int, timeout: float) -> Dissection:
    """The dissection of a capture whose flows tshark could not look at, and why."""
    return Dissection({}, suspicious, limit, timeout, False, 0.0, reason)


def _pairs(flows: Mapping[str, Any]) -> list[tuple[str, int, str, int]]:
    return [(str(c), int(cp), str(s), int(sp)) for c, cp, s, sp in zip(
        flows["client"], flows["client_port"], flows["server"], flows["server_port"],
        strict=True)]


class _Owners:
    """Which flow (stream, and the sender's side) a dissected frame belongs to."""

    def __init__(self) -> None:
        self.by_pair: dict[frozenset[tuple[str, int]], list[tuple[float, int, tuple[str, int]]]]
        self.by_pair = defaultdict(list)

    def add(self, stream: int, start: float, client: tuple[str, int],
            server: tuple[str, int]) -> None:
        self.by_pair[frozenset((client, server))].append((start, stream, client))
        self.by_pair[frozenset((client, server))].sort()

    def owner(self, frame: tshark.Frame) -> tuple[int, str] | None:
        src = (_address(frame.src), frame.sport)
        candidates = self.by_pair.get(frozenset((src, (_address(frame.dst), frame.dport))))
        if not candidates:
            return None
        started = [c for c in candidates if c[0] <= frame.time + 1e-6] or candidates[:1]
        _, stream, client = started[-1]
        return stream, "client" if src == client else "server"


def _owners(flows: Mapping[str, Any]) -> _Owners:
    owners = _Owners()
    for (client, cport, server, sport), stream, start in zip(
            _pairs(flows), flows["stream"], flows["first_time"], strict=True):
        owners.add(int(stream), float(start), (_address(client), cport),
                   (_address(server), sport))
    return owners


def _address(text: str) -> str:
    """One spelling per address (tshark's and ipaddress' IPv6 forms could differ)."""
    return str(ipaddress.ip_address(text))


def view(stream: int, frames: Sequence[tuple[tshark.Frame, str]]) -> WiresharkView:
    """The view of one flow from its dissected frames (each with its sender's side)."""
    expert: dict[tuple[int, str, str, str, str], list[int]] = {}
    alerts: list[TlsAlert] = []
    http: list[HttpMessage] = []
    for frame, side in frames:
        for layer in frame.layers:
            for key in _expert(layer):
                expert.setdefault(key, []).append(frame.number)
            alerts += _alerts(frame.number, side, layer)
            http += _http(frame.number, side, layer)
    ranked = sorted(expert.items(), key=lambda item: (-item[0][0], item[1][0]))  # errors first
    entries = [ExpertInfo(numbers[0], sev, group, proto, message, len(set(numbers)))
               for (_, sev, group, proto, message), numbers in ranked]
    return WiresharkView(stream, tuple(entries[:MAX_EXPERT]), tuple(alerts[:MAX_ALERTS]),
                         tuple(http[:MAX_HTTP]))


def _values(layer: tshark.Layer, name: str) -> tuple[tshark.FieldValue, ...]:
    return layer.fields.get(name, ())


def _expert(layer: tshark.Layer) -> list[tuple[int, str, str, str, str]]:
    """(level, severity, group, protocol, message) of LAYER's expert entries above chat."""
    out = []
    for message, severity, group in zip(_values(layer, "_ws.expert.message"),
                                        _values(layer, "_ws.expert.severity"),
                                        _values(layer, "_ws.expert.group"), strict=False):
        level = _int(severity.value) or 0
        if level >= NOTE_SEVERITY:
            text = message.value.removesuffix("\\r\\n")  # PDML escapes a request line's CRLF
            out.append((level, severity.label, group.label, layer.name, text))
    return out


def _alerts(number: int, side: str, layer: tshark.Layer) -> list[TlsAlert]:
    """LAYER's TLS alerts; an encrypted one (TLS 1.2 after the handshake) has no level."""
    out = [TlsAlert(number, side, _name(level.label), _name(description.label),
                    _int(description.value))
           for level, description in zip(_values(layer, "tls.alert_message.level"),
                                         _values(layer, "tls.alert_message.desc"), strict=False)]
    encrypted = len(_values(layer, "tls.alert_message")) - len(out)
    return out + [TlsAlert(number, side, "", "", None)] * max(0, encrypted)


def _name(label: str) -> str:
    """`Unknown CA (48)` -> `Unknown CA`."""
    head, _, tail = label.rpartition(" (")
    return head if head and tail.endswith(")") else label


def _http(number: int, side: str, layer: tshark.Layer) -> list[HttpMessage]:
    if layer.name == "http":
        return [HttpMessage(number, side, version.value, _int(code.value), phrase.value,
                            "", None, "", None)
                for version, code, phrase in zip(_values(layer, "http.response.version"),
                                                 _values(layer, "http.response.code"),
                                                 _values(layer, "http.response.phrase"),
                                                 strict=False)]
    if layer.name == "http2":
        return _http2(number, side, layer)
    return []


def _http2(number: int, side: str, layer: tshark.Layer) -> list[HttpMessage]:
    """RST_STREAM, GOAWAY and response HEADERS frames of an `http2` layer, in order."""
    errors = {"3": list(_values(layer, "http2.rst_stream.error")),
              "7": list(_values(layer, "http2.goaway.error"))}
    statuses = list(_values(layer, "http2.headers.status"))
    out = []
    for kind, stream_id in zip(_values(layer, "http2.type"), _values(layer, "http2.streamid"),
                               strict=False):
        error = errors[kind.value].pop(0) if errors.get(kind.value) else None
        status = statuses.pop(0).value if kind.value == "1" and statuses else None
        if kind.value in errors or status is not None:
            out.append(HttpMessage(number, side, "HTTP/2", _int(status), "", _name(kind.label),
                                   int(stream_id.value), _name(error.label) if error else "",
                                   _int(error.value) if error else None))
    return out


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None
