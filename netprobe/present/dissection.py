"""Wireshark's view of suspicious flows (`analyze --dissect`) as text lines and JSON values.

Owns: the words of the indented lines under a dissected flow, the per-flow
`wireshark` JSON object and the per-capture `dissect` note.
Must not: run tshark or decide which flows are dissected (`netprobe.analysis.wireshark`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from netprobe.analysis.wireshark import Dissection, HttpMessage, TlsAlert, WiresharkView

TEXT_LINES_PER_FLOW = 6
"""Lines under a flow in the text table; JSON has them all."""
INDENT = "    wireshark: "


def flow_json(view: WiresharkView | None) -> dict[str, Any] | None:
    """The `wireshark` field of a flow: null when the flow was not dissected."""
    if view is None:
        return None
    plain = dataclasses.asdict(view)
    del plain["stream"]
    return plain


def capture_json(dissection: Dissection) -> dict[str, Any]:
    """The `dissect` field of a capture: what was dissected and what was left out."""
    return {"suspicious": dissection.suspicious, "dissected": len(dissection.views),
            "limit": dissection.limit, "capped": dissection.capped,
            "timeout": dissection.timeout, "timed_out": dissection.timed_out,
            "seconds": round(dissection.seconds, 3), "error": dissection.error or None}


def flow_lines(view: WiresharkView) -> list[str]:
    """The indented lines under a dissected flow in the text table."""
    lines = [INDENT + _alert(a) for a in view.tls_alerts]
    lines += [INDENT + _http(h) for h in view.http]
    lines += [f"{INDENT}{e.severity}/{e.group} ({e.protocol}): {e.message} (frame {e.frame}"
              + (f", {e.count} frames)" if e.count > 1 else ")") for e in view.expert]
    if not lines:
        return [INDENT + "nothing above chat level in its frames"]
    if len(lines) > TEXT_LINES_PER_FLOW:
        left = len(lines) - TEXT_LINES_PER_FLOW + 1
        lines = lines[:TEXT_LINES_PER_FLOW - 1] + [f"{INDENT}... {left} more (-o json)"]
    return lines


def capture_line(dissection: Dissection) -> str:
    """One line after the table: how many flows were dissected, and what was capped."""
    if not dissection.views and dissection.error:
        return f"  wireshark: not run: {dissection.error}"
    said = (f"  wireshark: dissected {len(dissection.views)} of {dissection.suspicious} "
            f"suspicious flows in {dissection.seconds:.1f} s")
    if dissection.capped:
        said += f"; {dissection.capped} left out by --dissect-limit {dissection.limit}"
    if dissection.timed_out:
        said += f"; tshark stopped after {dissection.timeout:g} s (--dissect-timeout): " \
                "later frames not dissected"
    if dissection.error:
        said += f"; {dissection.error}"
    return said


def _alert(alert: TlsAlert) -> str:
    if alert.code is None:
        return f"TLS alert (encrypted) from the {alert.side} (frame {alert.frame})"
    return (f"TLS alert from the {alert.side}: {alert.level} {alert.description} ({alert.code})"
            f" (frame {alert.frame})")


def _http(message: HttpMessage) -> str:
    if message.version != "HTTP/2":
        return (f"{message.version} {message.status} {message.phrase} from the {message.side} "
                f"(frame {message.frame})")
    what = f"HTTP/2 {message.frame_type} stream {message.stream_id}"
    if message.error:
        what += f" {message.error} ({message.error_code})"
    if message.status is not None:
        what += f" :status {message.status}"
    return f"{what} from the {message.side} (frame {message.frame})"
