"""Certificate checks in Go's order, with Go's words."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from netprobe.core import errors
from netprobe.lab import pki
from netprobe.replay import certs

HOST = "cert-manager-webhook.cert-manager.svc"
NOW = dt.datetime.now(dt.UTC)


def _load(issued: pki.Issued) -> x509.Certificate:
    return x509.load_pem_x509_certificate(issued.cert)


@pytest.fixture(scope="module")
def ca():
    return pki.make_authority("cert-manager-webhook-ca")


def test_valid_certificate(ca) -> None:
    cert = _load(pki.issue(ca, HOST, [HOST], []))
    assert certs.verify_go(cert, HOST, [ca.cert], NOW) == (None, None)


def test_expired_wins_over_everything(ca) -> None:
    other = pki.make_authority("other")
    cert = _load(pki.issue(other, "x", ["wrong.example"], [], expired=True))
    message, reason = certs.verify_go(cert, HOST, [ca.cert], NOW)
    assert reason == "expired"
    assert message.startswith("x509: certificate has expired or is not yet valid: current time ")
    assert " is after " in message and message.endswith("Z")


def test_hostname_is_checked_before_the_chain(ca) -> None:
    kubelet_ca = pki.make_authority("kubernetes")
    name = "ip-10-0-3-33.eu-west-1.compute.internal"
    cert = _load(pki.issue(kubelet_ca, name, [name], ["10.0.3.33"]))
    message, reason = certs.verify_go(cert, HOST, [ca.cert], NOW)
    assert reason == "hostname"
    assert message == f"x509: certificate is valid for {name}, not {HOST}"


def test_stale_bundle_gets_gos_candidate_hint(ca) -> None:
    rotated = pki.make_authority("cert-manager-webhook-ca")
    cert = _load(pki.issue(rotated, HOST, [HOST], []))
    message, reason = certs.verify_go(cert, HOST, [ca.cert], NOW)
    assert reason == "unknown-authority"
    assert message == ('x509: certificate signed by unknown authority (possibly because of '
                       '"x509: ECDSA verification failure" while trying to verify candidate '
                       'authority certificate "cert-manager-webhook-ca")')


def test_unrelated_issuer_has_no_hint(ca) -> None:
    cert = _load(pki.issue(pki.make_authority("someone-else"), HOST, [HOST], []))
    message, _ = certs.verify_go(cert, HOST, [ca.cert], NOW)
    assert message == "x509: certificate signed by unknown authority"


@pytest.mark.parametrize("pattern,host,match", [
    ("*.cert-manager.svc", HOST, True), ("*.svc", HOST, False),
    ("CERT-MANAGER-WEBHOOK.cert-manager.svc", HOST, True), ("a.*.svc", "a.b.svc", False)])
def test_wildcards_like_go(pattern: str, host: str, match: bool) -> None:
    assert certs._match_hostname(pattern, host) is match


def test_ip_host_without_ip_sans(ca) -> None:
    cert = _load(pki.issue(ca, HOST, [HOST], []))
    assert certs.hostname_error(cert, "10.96.20.99") == (
        "x509: cannot validate certificate for 10.96.20.99 because it doesn't contain any IP SANs")


@pytest.mark.parametrize("pem", [
    b"", b"not pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_bad_bundles_are_usage_errors(pem: bytes) -> None:
    with pytest.raises(errors.UsageError, match="reading CA bundle"):
        certs.load_ca_bundle(pem)


def test_an_empty_ca_bundle_trusts_the_system_roots_as_go_loads_them(ca, tmp_path,
                                                                      monkeypatch) -> None:
    """Go's crypto/x509 (root_linux.go) reads SSL_CERT_FILE first, then its certFiles list."""
    system = pki.make_authority("Some Public Root")
    bundle = tmp_path / "roots.pem"
    bundle.write_bytes(system.cert.public_bytes(serialization.Encoding.PEM))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    certs.system_roots.cache_clear()
    try:
        roots = certs.trust_roots(b"  \n")
        assert [root.subject for root in roots] == [system.cert.subject]
        served = _load(pki.issue(ca, HOST, [HOST], []))
        message, reason = certs.verify_go(served, HOST, roots, NOW)
        assert (message, reason) == ("x509: certificate signed by unknown authority",
                                     "unknown-authority")
        assert certs.trust_roots(ca.cert.public_bytes(serialization.Encoding.PEM)) == [ca.cert]
    finally:
        certs.system_roots.cache_clear()


@pytest.mark.parametrize("pem, problem", [(b"garbage", "not a PEM certificate bundle"),
                                          (b"-----BEGIN X-----\n-----END X-----\n",
                                           r"no certificate in it \(only X\)")])
def test_a_bundle_that_is_not_pem_certificates_says_why(pem: bytes, problem: str) -> None:
    assert re.fullmatch(problem, certs.pem_problem(pem) or "")
    with pytest.raises(errors.UsageError, match=problem):
        certs.trust_roots(pem)
