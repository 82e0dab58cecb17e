"""Timeouts and thresholds, with defaults that match kube-apiserver.

Owns: the grouped settings dataclasses and their precedence (flag >
`NETPROBE_*` environment > default). Must not: read anything but the
environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from netprobe.core import errors

DEFAULT_TIMEOUT_SECONDS = 10.0
"""A webhook's `timeoutSeconds` when the configuration leaves it out (admissionregistration/v1)."""


@dataclass(frozen=True)
class Timeouts:
    """The apiserver's timers, and how soon netprobe may call a stall early."""

    dial: float = 30.0
    """TCP connect: the service-reference webhook client dials through
    http.DefaultTransport's dialer, whose timeout is 30 s."""
    tls: float = 10.0
    """TLS handshake (net/http TLSHandshakeTimeout)."""
    dns_stall: float = 2.0
    """Seconds without an answer from the resolver: early `dns-failure` verdict."""
    syn_retransmissions: int = 2
    """Unanswered SYN retransmissions that make an early `io-timeout` verdict."""
    neighbour_give_up: float = 3.0
    """Seconds after which the last hop gives up resolving the destination (ARP/ND) and
    answers ICMP host unreachable: Linux's mcast_solicit 3 x retrans_time 1 s. An early
    `io-timeout` verdict before that could not tell a silent drop from a stale endpoint
    (kernels >= 6.5 retransmit the first SYNs linearly, 1 s apart, so the retransmissions
    alone come earlier)."""
    neighbour_grace: float = 0.3
    """Seconds the early `io-timeout` verdict waits beyond `neighbour_give_up` for that ICMP."""
    tls_stall: float = 1.5
    """Seconds without a ServerHello after an ACKed ClientHello: early verdict."""
    response_stall: float = 1.5
    """Seconds without a response after the request was ACKed: early verdict."""
    capture_grace: float = 0.2
    """Capture keeps running this long after the call ends (late RST/ICMP)."""
    full: bool = False
    """Wait the apiserver's real timeouts instead of calling stalls early."""


TIMERS = Timeouts()
"""The defaults, for code that judges captures without a replay (`netprobe analyze`)."""

DISSECT_LIMIT = 20
"""Flows per capture that `analyze --dissect` hands to Wireshark's dissectors."""
DISSECT_TIMEOUT = 60.0
"""Seconds one tshark run of `analyze --dissect` may take (tshark reads about 50k packets/s)."""

_ENV = {"dial": "NETPROBE_DIAL_TIMEOUT", "tls": "NETPROBE_TLS_TIMEOUT",
        "dns_stall": "NETPROBE_DNS_STALL",
        "tls_stall": "NETPROBE_TLS_STALL", "response_stall": "NETPROBE_RESPONSE_STALL",
        "capture_grace": "NETPROBE_CAPTURE_GRACE", "neighbour_grace": "NETPROBE_NEIGHBOUR_GRACE",
        "neighbour_give_up": "NETPROBE_NEIGHBOUR_GIVE_UP"}


def timeouts_from_env(base: Timeouts | None = None) -> Timeouts:
    """Returns BASE (or defaults) with the `NETPROBE_*` variables applied.

    Raises:
        UsageError: a variable is not a positive number.
    """
    result = base or Timeouts()
    overrides: dict[str, Any] = {}  # floats, for the float fields _ENV names
    for name, variable in _ENV.items():
        raw = os.environ.get(variable)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            raise errors.UsageError(f"reading {variable}: {raw!r} is not a number") from None
        if value <= 0:
            raise errors.UsageError(f"reading {variable}: must be > 0, got {raw}")
        overrides[name] = value
    return replace(result, **overrides) if overrides else result
