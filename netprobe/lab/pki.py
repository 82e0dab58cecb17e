"""Certificates for the lab's TLS servers, made fresh at every `lab up`.

Owns: the webhook CA (what the caBundle holds), the serving certificate in
the scenario's flavour (valid, from another CA, expired), and the kubelet
stand-ins' CA and certificates (every InternalIP of the node in their SANs, both
families on a dual-stack node, as the kubelet-serving CSR asks). Must not: write
anywhere but the directory it is given, nor keep private keys readable by others
(mode 0600).

ECDSA P-256 keeps `lab up` fast: a key takes well under a millisecond.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from netprobe.lab.topology import Node, Plan, ServingCert

CA_BUNDLE = "ca.crt"
"""The webhook configuration's caBundle, as a PEM file."""

SIGNER_CA = "signer-ca.crt"
"""The CA that signed the serving certificate (the CA Secret's `ca.crt`)."""


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM bytes."""

    cert: bytes
    key: bytes


@dataclass(frozen=True)
class _Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str, org: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if org:
        parts.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(parts)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def make_authority(common_name: str) -> _Authority:
    """Returns a self-signed CA valid for a year."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                     False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Authority(cert, key)


def issue(ca: _Authority, common_name: str, dns_names: list[str], ips: list[str],
          *, expired: bool = False, org: str | None = None) -> Issued:
    """Returns a TLS server certificate signed by CA.

    With EXPIRED, the validity window ended a day ago.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    start, end = (now - dt.timedelta(days=91), now - dt.timedelta(days=1)) if expired else (
        now - dt.timedelta(hours=1), now + dt.timedelta(days=90))
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, org))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                       critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(_pem_cert(cert), _pem_key(key))


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _service_names(plan: Plan) -> list[str]:
    svc, ns = plan.webhook.service_name, plan.webhook.service_namespace
    return [svc, f"{svc}.{ns}", f"{svc}.{ns}.svc"]


KUBELET_CA = "kubelet-ca.crt"
"""The CA that signs the kubelets' serving certificates (kube-apiserver's
--kubelet-certificate-authority when it is set)."""


def kubelet_cert_path(directory: Path, node: Node, self_signed: bool = False
                      ) -> tuple[Path, Path]:
    """Returns the (certificate, key) files of NODE's kubelet stand-in: signed by the
    cluster's kubelet CA, or the self-signed pair a kubelet makes for itself."""
    stem = f"kubelet-{'self-' if self_signed else ''}{node.netns}"
    return directory / f"{stem}.crt", directory / f"{stem}.key"


def write_pki(plan: Plan, directory: Path) -> None:
    """Makes every certificate PLAN needs and writes them into DIRECTORY.

    Files: `ca.crt` (the caBundle), `serving.crt`/`serving.key` (the webhook's,
    in the scenario's flavour), `signer-ca.crt`, `kubelet-ca.crt` and one kubelet pair per node.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    webhook_ca = make_authority("cert-manager-webhook-ca")
    signer = webhook_ca
    if plan.webhook.serving_cert is ServingCert.OTHER_CA:
        signer = make_authority("cert-manager-webhook-ca")  # rotated: same name, new key
    serving = issue(signer, plan.webhook.host, _service_names(plan), [],
                    expired=plan.webhook.serving_cert is ServingCert.EXPIRED)
    _write_private(directory / CA_BUNDLE, _pem_cert(webhook_ca.cert))
    _write_private(directory / "serving.crt", serving.cert)
    _write_private(directory / "serving.key", serving.key)
    # What the CA Secret holds now (differs from ca.crt when the caBundle is stale).
    _write_private(directory / SIGNER_CA, _pem_cert(signer.cert))
    kubelet_ca = make_authority("kubernetes")
    _write_private(directory / KUBELET_CA, _pem_cert(kubelet_ca.cert))
    started = int(_now().timestamp())
    for node in plan.nodes:
        name = node.name.removeprefix("fargate-")
        cert_path, key_path = kubelet_cert_path(directory, node)
        pair = issue(kubelet_ca, name, [name], list(node.ips), org="system:nodes")
        _write_private(cert_path, pair.cert)
        _write_private(key_path, pair.key)
        # What the kubelet serves without serverTLSBootstrap (client-go's
        # GenerateSelfSignedCertKeyWithFixtures): NAME@TIME from its own NAME-ca@TIME.
        own = make_authority(f"{name}-ca@{started}")
        cert_path, key_path = kubelet_cert_path(directory, node, self_signed=True)
        pair = issue(own, f"{name}@{started}", [name], list(node.ips))
        _write_private(cert_path, pair.cert + _pem_cert(own.cert))
        _write_private(key_path, pair.key)
