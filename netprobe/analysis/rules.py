"""Verdicts from packets alone: the one rule table of the capture analysis.

Rule 1: every decision that turns flow facts into a verdict name lives in
this file, in `RULES`, checked top to bottom; the first match wins.
Rule 2: verdict names are the contract of shared/FAILURES.md; when packets
cannot tell, the verdict is `inconclusive` (not enough seen) or `unknown`
(something happened that no class describes).
Must not: read files, print, or compute flow facts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Table = dict[str, npt.NDArray[Any]]  # columns of any dtype, used as numbers or strings
Mask = npt.NDArray[np.bool_]

OK = "ok"
FAILURES = (
    "connection-refused",
    "io-timeout",
    "no-route",
    "tls-handshake-timeout",
    "response-timeout",
    "x509-unknown-authority",
    "x509-expired",
)
UNDECIDED = ("inconclusive", "unknown")
# The apiserver's dial, TLS-handshake and default webhook timeouts (seconds).
TIMEOUT = 10.0
# TLS alert descriptions (RFC 8446 6.2) that name a certificate problem.
ALERT_UNKNOWN_CA = 48
ALERT_CERT_EXPIRED = 45
ICMP_PORT_UNREACHABLE = ((1, 3, 3), (58, 1, 4))  # (proto, type, code)
ICMP_FRAG_NEEDED = (1, 3, 4)


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of the rule table."""

    verdict: str
    reason: str
    when: Callable[[Table], Mask]


def _nan_gt(a: np.ndarray, b: np.ndarray) -> Mask:
    return np.nan_to_num(a, nan=-np.inf) > np.nan_to_num(b, nan=-np.inf)


def _icmp(f: Table, port_unreachable: bool) -> Mask:
    proto, kind, code = f["icmp_proto"], f["icmp_type"], f["icmp_code"]
    unreach = ((proto == 1) & np.isin(kind, (3, 11))) | ((proto == 58) & np.isin(kind, (1, 3)))
    # fragmentation needed: PMTU, not a failure
    unreach &= ~((proto == 1) & (kind == 3) & (code == 4))
    port = np.zeros(len(proto), bool)
    for pr, ty, co in ICMP_PORT_UNREACHABLE:
        port |= (proto == pr) & (kind == ty) & (code == co)
    no_answer = f["synack"] == 0
    return no_answer & (f["icmp_errors"] > 0) & unreach & (port if port_unreachable else ~port)


def _tls_stalled(f: Table) -> Mask:
    """ClientHello sent, no ServerHello, and the client gave up or 10 s passed."""
    waiting = (f["client_hello"] > 0) & (f["server_hello"] == 0)
    gave_up = (np.isfinite(f["client_close_time"])
               & ~_nan_gt(f["client_hello_time"], f["client_close_time"]))
    long = (f["last_time"] - f["client_hello_time"]) >= TIMEOUT
    return waiting & (gave_up | long) & ~(np.isfinite(f["server_close_time"]) & ~gave_up)


def _alert(f: Table, description: int) -> Mask:
    return (f["tls_alerts"] > 0) & (f["alert_description"] == description)


def _response_stalled(f: Table) -> Mask:
    """TLS done, the client's last request got no server data after it."""
    asked = (f["server_hello"] > 0) & np.isfinite(f["last_request_time"])
    unanswered = ~_nan_gt(f["last_server_data_time"], f["last_request_time"])
    client_closed = _nan_gt(f["client_close_time"], f["last_request_time"])
    long = (f["last_time"] - f["last_request_time"]) >= TIMEOUT
    return asked & unanswered & (client_closed | long)


def _no_syn(f: Table) -> Mask:
    return f["syn"] == 0


def _unanswered_syn(f: Table, retried: bool) -> Mask:
    quiet = (f["syn"] > 0) & (f["synack"] == 0) & (f["rst_server"] == 0)
    # Sends on one interface: copies of one SYN on other interfaces are not retries.
    return quiet & ((f["syn_sends"] > 1) == retried)


def _established(f: Table) -> Mask:
    return f["synack"] > 0


def _exchanged(f: Table) -> Mask:
    return (f["client_bytes"] > 0) & (f["server_bytes"] > 0) & (f["tls_alerts"] == 0)


RULES: tuple[Rule, ...] = (
    Rule("connection-refused", "ICMP port unreachable quoting the SYN", lambda f: _icmp(f, True)),
    Rule("no-route", "ICMP unreachable quoting the SYN", lambda f: _icmp(f, False)),
    Rule("connection-refused", "SYN answered by RST",
         lambda f: (f["syn"] > 0) & (f["synack"] == 0) & (f["rst_server"] > 0)),
    Rule("io-timeout", "SYN retransmitted, never answered", lambda f: _unanswered_syn(f, True)),
    Rule("inconclusive", "one SYN, no answer before the capture ended",
         lambda f: _unanswered_syn(f, False)),
    Rule("inconclusive", "the connection started before the capture", _no_syn),
    Rule("tls-handshake-timeout", "ClientHello sent, no ServerHello", _tls_stalled),
    Rule("unknown", "server closed the connection after the ClientHello without a ServerHello",
         lambda f: (f["client_hello"] > 0) & (f["server_hello"] == 0)
         & np.isfinite(f["server_close_time"])),
    Rule("x509-unknown-authority", "TLS alert unknown_ca", lambda f: _alert(f, ALERT_UNKNOWN_CA)),
    Rule("x509-expired", "TLS alert certificate_expired", lambda f: _alert(f, ALERT_CERT_EXPIRED)),
    Rule("unknown", "TLS alert", lambda f: f["tls_alerts"] > 0),
    Rule("response-timeout", "request sent after the TLS handshake, no response",
         _response_stalled),
    Rule("ok", "data exchanged both ways", lambda f: _established(f) & _exchanged(f)),
    Rule("inconclusive", "handshake seen, not enough data to judge", _established),
)


def classify(f: Table) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_]]:
    """Return (verdict, reason) arrays for the flow table `f`."""
    n = len(f["stream"])
    verdict = np.full(n, "unknown", dtype=object)
    reason = np.full(n, "no rule matched", dtype=object)
    left = np.ones(n, bool)
    for rule in RULES:
        hit = left & rule.when(f)
        verdict[hit] = rule.verdict
        reason[hit] = rule.reason
        left &= ~hit
    return verdict, reason


def severity(verdict: npt.NDArray[np.object_]) -> npt.NDArray[np.int64]:
    """Sort key: failures first (0), then undecided (1), then ok (2)."""
    fail = np.isin(verdict, FAILURES)
    ok = verdict == OK
    return np.where(fail, 0, np.where(ok, 2, 1)).astype(np.int64)
