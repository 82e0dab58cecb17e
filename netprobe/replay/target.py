"""Building a `CallTarget` from what a user types.

Owns: parsing and checking the URL (https only, the port the apiserver
would write), `--resolve HOST:IP`, and reading the CA bundle. Must not:
open sockets.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from pathlib import Path

from netprobe.core import errors
from netprobe.core.model import CallKind, CallTarget
from netprobe.replay import certs


def parse_resolve(text: str, host: str) -> str:
    """Returns the IP of `HOST:IP` (IPv6 addresses may be bracketed).

    Raises:
        UsageError: malformed, not an IP, or for another host.
    """
    name, sep, address = text.partition(":")
    if not sep or not name or not address:
        raise errors.UsageError(f"reading --resolve {text!r}: expected HOST:IP")
    address = address.strip("[]")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise errors.UsageError(f"reading --resolve {text!r}: {address!r} is not an IP "
                                "address") from None
    if name.lower() != host.lower():
        raise errors.UsageError(f"reading --resolve {text!r}: the URL's host is {host!r}")
    return address


def read_ca_bundle(path: Path) -> bytes:
    """Returns the PEM bytes of a CA bundle file, checked to hold certificates.

    An empty file stands for an empty caBundle: the replay then trusts the system roots,
    as the apiserver does.

    Raises:
        UsageError: unreadable, or not empty and not PEM certificates.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise errors.UsageError(f"reading CA bundle {path}: {exc.strerror}") from None
    if not certs.is_empty_bundle(data):
        certs.load_ca_bundle(data, str(path))
    return data


def build(url: str, *, resolve: str | None, ca_bundle: bytes, webhook_name: str | None = None,
          timeout_seconds: float = 10.0, kind: CallKind | None = None,
          endpoints: tuple[str, ...] = ()) -> CallTarget:
    """Returns the target the apiserver would call for URL.

    Raises:
        UsageError: the URL is not `https://HOST[:PORT]/PATH`, or a bad timeout.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https":
        raise errors.UsageError(f"reading URL {url!r}: webhooks are called over https://")
    try:
        port = parts.port or 443
    except ValueError:
        raise errors.UsageError(
            f"reading URL {url!r}: the port is not a number in 1-65535") from None
    host = parts.hostname
    if not host or parts.username or parts.password:
        raise errors.UsageError(f"reading URL {url!r}: expected https://HOST[:PORT]/PATH")
    if not 0 < timeout_seconds <= 30:
        raise errors.UsageError(f"reading --timeout {timeout_seconds}: timeoutSeconds must be "
                                "between 1 and 30 (the apiserver's limits)")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    kind = kind or (CallKind.CONVERSION if "convert" in path else CallKind.ADMISSION)
    for endpoint in endpoints:
        _check_endpoint(endpoint)
    canonical = f"https://{f'[{host}]' if ':' in host else host}:{port}{path}"
    return CallTarget(url=canonical, host=host, port=port, path=path,
                      resolve_ip=parse_resolve(resolve, host) if resolve else None,
                      ca_bundle=ca_bundle, webhook_name=webhook_name or host,
                      timeout_seconds=timeout_seconds, kind=kind, endpoints=tuple(endpoints))


def _check_endpoint(text: str) -> None:
    """Raises UsageError unless TEXT is `IP:PORT` or `[IPv6]:PORT`."""
    host, _, port = text.rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
        if not 0 < int(port) < 65536:
            raise ValueError(port)
    except ValueError:
        raise errors.UsageError(f"reading --endpoint {text!r}: expected IP:PORT "
                                "(or [IPv6]:PORT)") from None
