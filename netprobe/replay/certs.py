"""The served certificate, described and verified the way Go's crypto/x509 does.

Owns: turning the leaf certificate (DER, taken from the TLS client: TLS 1.3
hides it from the wire) into `CertificateInfo`, and verifying it against
the caBundle in Go's order: validity window first, then the host name, then
the chain; with Go's own messages. Must not: open sockets.

Python's ssl verifies in OpenSSL's order (chain first), which would name
the wrong problem for e.g. the Fargate kubelet's certificate (Go says
"valid for ip-...compute.internal", OpenSSL says "unknown issuer").
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import os
import re
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from netprobe.core import errors
from netprobe.core.model import CertificateInfo


def load_ca_bundle(pem: bytes, source: str = "caBundle") -> list[x509.Certificate]:
    """Returns the certificates of a PEM caBundle.

    Raises:
        UsageError: not PEM, or no certificate in it.
    """
    problem = pem_problem(pem)
    if problem is not None:
        raise errors.UsageError(f"reading CA bundle {source}: {problem}")
    return _certificates(pem)


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)


def _certificates(pem: bytes) -> list[x509.Certificate]:
    """The CERTIFICATE blocks of PEM, other blocks skipped (Go's AppendCertsFromPEM).

    Raises: ValueError, a CERTIFICATE block that does not parse.
    """
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(pem) if m.group(1) == b"CERTIFICATE"]
    return [x509.load_pem_x509_certificate(block) for block in blocks]


def pem_problem(pem: bytes) -> str | None:
    """Why PEM is not a bundle of certificates (Go's AppendCertsFromPEM would load none),
    or None."""
    kinds = [m.group(1).decode() for m in _PEM_BLOCK.finditer(pem)]
    if not kinds:
        return "not a PEM certificate bundle"
    try:
        found = _certificates(pem)
    except ValueError:
        return "a CERTIFICATE block does not parse"
    return None if found else f"no certificate in it (only {', '.join(sorted(set(kinds)))})"


SYSTEM_CERT_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",                 # Debian, Ubuntu, Gentoo
    "/etc/pki/tls/certs/ca-bundle.crt",                   # Fedora, RHEL 6
    "/etc/ssl/ca-bundle.pem",                             # OpenSUSE
    "/etc/pki/tls/cacert.pem",                            # OpenELEC
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # CentOS, RHEL 7
    "/etc/ssl/cert.pem",                                  # Alpine
)
"""Where Go's crypto/x509 (root_linux.go, certFiles) looks for the system roots, in its
order; `SSL_CERT_FILE` comes first, as in Go."""


def is_empty_bundle(pem: bytes) -> bool:
    """An empty caBundle (only whitespace): the apiserver's client trusts the system roots."""
    return not pem.strip()


@functools.cache
def system_roots() -> tuple[x509.Certificate, ...]:
    """The replaying host's system trust store, as Go loads it: the first file of
    `SSL_CERT_FILE`, then `SYSTEM_CERT_FILES`, that exists (none: no roots)."""
    override = os.environ.get("SSL_CERT_FILE")
    for name in ((override,) if override else ()) + SYSTEM_CERT_FILES:
        try:
            data = Path(name).read_bytes()
        except OSError:
            continue
        try:
            return tuple(_certificates(data))
        except ValueError:
            continue
    return ()


def trust_roots(pem: bytes) -> list[x509.Certificate]:
    """The roots the apiserver verifies a webhook's certificate with: the caBundle's, or
    the system's when it is empty. Raises: as `load_ca_bundle`."""
    if is_empty_bundle(pem):
        return list(system_roots())
    return load_ca_bundle(pem)


def _go_time(moment: dt.datetime) -> str:
    """Go's time.RFC3339 for a UTC time: 2026-11-21T22:15:49Z."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str], bool]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], [], False
    dns = ext.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
    return dns, ips, True


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def _match_hostname(pattern: str, host: str) -> bool:
    """Go's matchHostnames: case-insensitive, one leading wildcard label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if not pattern or not host:
        return False
    pattern_labels, host_labels = pattern.split("."), host.split(".")
    if len(pattern_labels) != len(host_labels):
        return False
    return all(p == h or (i == 0 and p == "*") for i, (p, h) in
               enumerate(zip(pattern_labels, host_labels, strict=True)))


def hostname_error(cert: x509.Certificate, host: str) -> str | None:
    """Returns Go's HostnameError text, or None if HOST is valid for CERT."""
    dns, ips, has_san = _sans(cert)
    try:
        wanted_ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        wanted_ip = None
    if wanted_ip is not None:
        if str(wanted_ip) in ips:
            return None
        if not ips:
            return (f"x509: cannot validate certificate for {host} "
                    "because it doesn't contain any IP SANs")
        return f"x509: certificate is valid for {', '.join(ips)}, not {host}"
    if any(_match_hostname(name, host) for name in dns):
        return None
    if not has_san and _match_hostname(_common_name(cert.subject), host):
        return "x509: certificate relies on legacy Common Name field, use SANs instead"
    if not dns:
        return f"x509: certificate is not valid for any names, but wanted to match {host}"
    return f"x509: certificate is valid for {', '.join(dns)}, not {host}"


def _signature_error(cert: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """Returns Go's signature-check error text, or None if ISSUER signed CERT."""
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        key = issuer.public_key()
        if isinstance(key, ec.EllipticCurvePublicKey):
            return "x509: ECDSA verification failure"
        if isinstance(key, rsa.RSAPublicKey):
            return "crypto/rsa: verification error"
        return "x509: signature verification failure"
    except (ValueError, TypeError):
        return "x509: signature verification failure"
    return None


def _candidate_name(cert: x509.Certificate) -> str:
    name = _common_name(cert.subject)
    if name:
        return name
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(orgs[0].value) if orgs else f"serial:{cert.serial_number}"


def authority_error(cert: x509.Certificate, roots: list[x509.Certificate],
                    intermediates: list[x509.Certificate] = ()) -> str | None:  # type: ignore[assignment]
    """Returns Go's UnknownAuthorityError text, or None if a root vouches for CERT.

    One intermediate level is followed (what webhook serving chains use).
    """
    hint: tuple[str, x509.Certificate] | None = None
    for issuer in [*roots, *intermediates]:
        if issuer.subject != cert.issuer:
            continue
        problem = _signature_error(cert, issuer)
        if problem is None:
            if issuer in roots or authority_error(issuer, roots) is None:
                return None
            continue
        hint = hint or (problem, issuer)
    message = "x509: certificate signed by unknown authority"
    if hint is not None:
        message += (f' (possibly because of "{hint[0]}" while trying to verify candidate '
                    f'authority certificate "{_candidate_name(hint[1])}")')
    return message


def verify_go(cert: x509.Certificate, host: str, roots: list[x509.Certificate],
              now: dt.datetime, intermediates: list[x509.Certificate] = ()  # type: ignore[assignment]
              ) -> tuple[str | None, str | None]:
    """Verifies like Go's Certificate.Verify: validity, then host name, then chain.

    Returns (message, reason): both None when the apiserver would accept it;
    reason is `expired`, `not-yet-valid`, `hostname` or `unknown-authority`.
    """
    if now > cert.not_valid_after_utc:
        return (f"x509: certificate has expired or is not yet valid: current time "
                f"{_go_time(now)} is after {_go_time(cert.not_valid_after_utc)}", "expired")
    if now < cert.not_valid_before_utc:
        return (f"x509: certificate has expired or is not yet valid: current time "
                f"{_go_time(now)} is before {_go_time(cert.not_valid_before_utc)}",
                "not-yet-valid")
    mismatch = hostname_error(cert, host)
    if mismatch:
        return mismatch, "hostname"
    unknown = authority_error(cert, roots, intermediates)
    if unknown:
        return unknown, "unknown-authority"
    return None, None


def describe(der: bytes, host: str, roots: list[x509.Certificate], now: dt.datetime,
             chain: list[bytes] = ()) -> CertificateInfo:  # type: ignore[assignment]
    """Returns the leaf's description and Go's verdict on it."""
    cert = x509.load_der_x509_certificate(der)
    intermediates = [x509.load_der_x509_certificate(item) for item in chain[1:]]
    message, reason = verify_go(cert, host, roots, now, intermediates)
    dns, ips, _ = _sans(cert)
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
        dns_names=tuple(dns), ip_addresses=tuple(ips),
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
        sha256=hashlib.sha256(der).hexdigest(), serial=format(cert.serial_number, "x"),
        verify_error=message, verify_reason=reason, chain_length=max(1, len(chain)),
    )
