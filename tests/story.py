"""The invariants of one consistent story per call, checked on a trace's JSON result.

Shared by the tests that trace every lab scenario and every saved capture: a later
phase that succeeded proves the earlier hops, every failed verdict names a culprit,
a call that went through names none, TLS and HTTP failures blame the webhook.
"""

from __future__ import annotations

from typing import Any

PROVEN = {"not-seen", "dropped"}


def check(result: dict[str, Any]) -> None:
    """Raises AssertionError, naming the broken invariant, if RESULT contradicts itself."""
    verdict, hops = result["verdict"], result["hops"]
    culprit = verdict.get("culprit")
    replay = result.get("replay") or {}
    connected = any(p["phase"] == "tcp" and p["status"] == "ok" for p in replay.get("phases", []))
    if connected:
        contradicting = [h["id"] for h in hops if h["id"] != "webhook" and h["status"] in PROVEN]
        assert not contradicting, f"TCP connected, yet {contradicting} did not see the SYN"
    if verdict["class"] == "ok":
        assert culprit is None, f"a call that went through names culprit {culprit}"
        assert all(h["status"] in ("ok", "unobservable") for h in hops), hops
    elif verdict["class"] not in ("inconclusive", "unknown"):
        assert culprit is not None, f"failed verdict {verdict['class']} names no culprit"
    if verdict["phase"] in ("tls", "http") and verdict["cause"] != "invalid-ca-bundle":
        assert culprit and culprit["hop"] == "webhook", f"{verdict['cause']} blames {culprit}"
