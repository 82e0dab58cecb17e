"""The review the apiserver sends and its checks of the answer."""

from __future__ import annotations

import json

from netprobe.core.model import CallKind
from netprobe.replay import review


def test_admission_review_is_v1_dry_run() -> None:
    uid, body = review.request_body(CallKind.ADMISSION)
    data = json.loads(body)
    assert (data["apiVersion"], data["kind"]) == ("admission.k8s.io/v1", "AdmissionReview")
    assert data["request"]["uid"] == uid and data["request"]["dryRun"] is True


def test_valid_and_invalid_answers() -> None:
    uid, _ = review.request_body(CallKind.ADMISSION)
    good = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": uid, "allowed": True}}
    assert review.check_response(CallKind.ADMISSION, uid, json.dumps(good).encode()) is None
    wrong_uid = dict(good, response={"uid": "other", "allowed": True})
    assert 'expected response.uid="' in review.check_response(
        CallKind.ADMISSION, uid, json.dumps(wrong_uid).encode())
    assert "webhook response was absent" in review.check_response(
        CallKind.ADMISSION, uid,
        json.dumps({k: v for k, v in good.items() if k != "response"}).encode())
    assert review.check_response(CallKind.ADMISSION, uid, b"not json").startswith(
        "received invalid webhook response")


def test_conversion_review() -> None:
    uid, body = review.request_body(CallKind.CONVERSION)
    assert json.loads(body)["kind"] == "ConversionReview"
    answer = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
              "response": {"uid": uid, "convertedObjects": [], "result": {"status": "Success"}}}
    assert review.check_response(CallKind.CONVERSION, uid, json.dumps(answer).encode()) is None
