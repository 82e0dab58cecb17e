"""The review the apiserver sends, and whether the webhook's answer is valid.

Owns: an `admission.k8s.io/v1` AdmissionReview (or an
`apiextensions.k8s.io/v1` ConversionReview) request body with a fresh uid
and a harmless dry-run object, and the apiserver's checks of the response
with its error texts. Must not: do I/O.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from netprobe.core.model import CallKind

PROBE_OBJECT = {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "netprobe-probe", "namespace": "default",
                 "labels": {"app.kubernetes.io/managed-by": "netprobe"}},
    "data": {"purpose": "netprobe replay of the apiserver's webhook call"},
}


def request_body(kind: CallKind, uid: str | None = None) -> tuple[str, bytes]:
    """Returns (uid, JSON body) of the review the apiserver would POST."""
    uid = uid or str(uuid.uuid4())
    if kind is CallKind.DISCOVERY:  # a GET: no body
        return uid, b""
    if kind is CallKind.CONVERSION:
        review: dict[str, Any] = {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": uid, "desiredAPIVersion": "netprobe.io/v1",
                        "objects": [dict(PROBE_OBJECT, apiVersion="netprobe.io/v1beta1",
                                         kind="Probe")]},
        }
    else:
        review = {
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
                "resource": {"group": "", "version": "v1", "resource": "configmaps"},
                "requestKind": {"group": "", "version": "v1", "kind": "ConfigMap"},
                "requestResource": {"group": "", "version": "v1", "resource": "configmaps"},
                "name": "netprobe-probe", "namespace": "default", "operation": "CREATE",
                "userInfo": {"username": "system:serviceaccount:netprobe:netprobe",
                             "groups": ["system:serviceaccounts", "system:authenticated"]},
                "object": PROBE_OBJECT, "oldObject": None, "dryRun": True,
                "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions",
                            "dryRun": ["All"]},
            },
        }
    return uid, json.dumps(review, separators=(",", ":")).encode()


def check_response(kind: CallKind, uid: str, body: bytes) -> str | None:
    """Returns the apiserver's complaint about a 200 response, or None if valid."""
    try:
        review = json.loads(body)
    except ValueError as exc:
        return f"received invalid webhook response: {exc}"
    if not isinstance(review, dict):
        return "received invalid webhook response: not a JSON object"
    expected = (("apiextensions.k8s.io/v1", "ConversionReview") if kind is CallKind.CONVERSION
                else ("admission.k8s.io/v1", "AdmissionReview"))
    got = (review.get("apiVersion"), review.get("kind"))
    if got != expected:
        return (f"received invalid webhook response: expected webhook response of "
                f"{expected[0]}, Kind={expected[1]}, got {got[0]}, Kind={got[1]}")
    response = review.get("response")
    if not isinstance(response, dict):
        return "received invalid webhook response: webhook response was absent"
    if response.get("uid") != uid:
        return (f'received invalid webhook response: expected response.uid="{uid}", '
                f'got "{response.get("uid", "")}"')
    if kind is CallKind.ADMISSION and not isinstance(response.get("allowed"), bool):
        return "received invalid webhook response: response.allowed is not a boolean"
    return None


def allowed(body: bytes) -> bool | None:
    """The admission decision in a valid response (None for conversions)."""
    try:
        value = json.loads(body).get("response", {}).get("allowed")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, bool) else None
