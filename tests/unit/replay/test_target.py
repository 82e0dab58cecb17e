"""Turning what a user types into a CallTarget; bad input is a UsageError."""

from __future__ import annotations

from pathlib import Path

import pytest

from netprobe.core import errors
from netprobe.core.model import CallKind
from netprobe.replay import target

HOST = "cert-manager-webhook.cert-manager.svc"


def test_port_is_always_written() -> None:
    built = target.build(f"https://{HOST}/validate", resolve=f"{HOST}:10.96.20.99", ca_bundle=b"")
    assert built.url == f"https://{HOST}:443/validate"
    assert (built.port, built.resolve_ip, built.kind) == (443, "10.96.20.99", CallKind.ADMISSION)


def test_convert_path_means_conversion() -> None:
    assert target.build(f"https://{HOST}:8443/convert", resolve=None, ca_bundle=b"").kind is \
        CallKind.CONVERSION


@pytest.mark.parametrize("url", ["http://x/validate", "https:///nohost", "not a url",
                                 "https://x:99999/v", "https://user:pw@x/v"])
def test_malformed_urls(url: str) -> None:
    with pytest.raises(errors.UsageError, match="reading URL"):
        target.build(url, resolve=None, ca_bundle=b"")


@pytest.mark.parametrize("resolve", ["nohost", f"{HOST}:", f"{HOST}:not-an-ip",
                                     "other.svc:10.0.0.1"])
def test_malformed_resolve(resolve: str) -> None:
    with pytest.raises(errors.UsageError, match="--resolve"):
        target.build(f"https://{HOST}/v", resolve=resolve, ca_bundle=b"")


def test_ipv6_resolve() -> None:
    built = target.build(f"https://{HOST}/v", resolve=f"{HOST}:[fd00::10]", ca_bundle=b"")
    assert built.resolve_ip == "fd00::10"


def test_timeout_bounds() -> None:
    with pytest.raises(errors.UsageError, match="between 1 and 30"):
        target.build(f"https://{HOST}/v", resolve=None, ca_bundle=b"", timeout_seconds=45)


def test_ca_bundle_file_errors(tmp_path: Path) -> None:
    with pytest.raises(errors.UsageError, match="No such file"):
        target.read_ca_bundle(tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    with pytest.raises(errors.UsageError, match="no certificate|not a PEM"):
        target.read_ca_bundle(junk)


def test_an_empty_ca_bundle_file_stands_for_an_empty_ca_bundle(tmp_path: Path) -> None:
    """The apiserver then trusts its system roots; so does the replay (not a usage error)."""
    empty = tmp_path / "empty.pem"
    empty.write_text("\n  \n")
    assert target.read_ca_bundle(empty).strip() == b""


def test_the_replay_filter_follows_the_call_past_the_nodes_nat() -> None:
    """Never the local port alone: kube-proxy's masquerade changes it on the wire."""
    from netprobe.capture import filters

    bpf = filters.call_filter(40123, [("10.96.20.99", 443), ("10.244.1.5", 10250)])
    assert "port 40123" in bpf
    assert "(host 10.244.1.5 and port 10250)" in bpf and "(host 10.96.20.99 and port 443)" in bpf
    assert "icmp[28:2]" not in bpf  # ICMP errors quote the flow after NAT: all are kept
    blind = filters.call_filter(40123, [("10.96.20.99", 443)], endpoints_known=False)
    assert blind.startswith(f"{filters.EVERY_TCP} or ")
