"""The apiserver's messages: exact shapes and the timer races."""

from __future__ import annotations

import pytest

from netprobe.core.model import CallKind, CallTarget, Failure
from netprobe.replay import apiserver

PREFIX = ('failed calling webhook "webhook.cert-manager.io": failed to call webhook: '
          'Post "https://cert-manager-webhook.cert-manager.svc:443/validate?timeout=10s": ')


def _target(timeout: float = 10.0) -> CallTarget:
    return CallTarget("https://cert-manager-webhook.cert-manager.svc:443/validate",
                         "cert-manager-webhook.cert-manager.svc", 443, "/validate",
                         "10.96.20.99", b"", "webhook.cert-manager.io", timeout)


@pytest.mark.parametrize("seconds,text", [(10, "10s"), (30, "30s"), (1.5, "1.5s"), (0.25, "0.25s"),
                                          (90, "1m30s"), (60, "1m0s")])
def test_go_duration(seconds: float, text: str) -> None:
    assert apiserver.go_duration(seconds) == text


def test_refused_names_the_cluster_ip() -> None:
    error = apiserver.predict(_target(), Failure.REFUSED, dialed=("10.96.20.99", 443))
    assert error.message == PREFIX + "dial tcp 10.96.20.99:443: connect: connection refused"
    assert error.alternatives == ()


def test_no_route() -> None:
    error = apiserver.predict(_target(), Failure.NO_ROUTE, dialed=("10.96.20.99", 443))
    assert error.message.endswith("dial tcp 10.96.20.99:443: connect: no route to host")


def test_dial_stall_with_default_timeout_races_to_the_context() -> None:
    error = apiserver.predict(_target(10), Failure.DIAL_STALL, dialed=("10.96.20.99", 443))
    assert error.message == PREFIX + "context deadline exceeded"
    assert error.alternatives == (PREFIX + "dial tcp 10.96.20.99:443: i/o timeout",)
    assert error.client_message == "Internal error occurred: " + error.message


def test_dial_stall_shows_the_dial_timeout_when_it_is_shorter() -> None:
    error = apiserver.predict(_target(30), Failure.DIAL_STALL, dialed=("10.96.20.99", 443),
                              dial_timeout=10)
    assert error.message.endswith("?timeout=30s\": dial tcp 10.96.20.99:443: i/o timeout")
    assert error.alternatives == ()


def test_tls_stall_depends_on_when_tcp_connected() -> None:
    short = apiserver.predict(_target(10), Failure.TLS_STALL, connected_after=0.001)
    assert short.message.endswith("context deadline exceeded")
    assert short.alternatives[0].endswith("net/http: TLS handshake timeout")
    long = apiserver.predict(_target(30), Failure.TLS_STALL, connected_after=0.001)
    assert long.message.endswith('?timeout=30s": net/http: TLS handshake timeout')


def test_x509_detail_is_passed_through() -> None:
    detail = "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    assert apiserver.predict(_target(), Failure.TLS_ERROR, detail=detail).message == PREFIX + detail


def test_http_500_uses_client_go_wording() -> None:
    text = apiserver.status_error(500, "internal error\n")
    assert text == ('an error on the server ("internal error") '
                    'has prevented the request from succeeding')
    message = apiserver.predict(_target(), Failure.HTTP_STATUS, detail=text).message
    assert message == ('failed calling webhook "webhook.cert-manager.io": '
                       f'failed to call webhook: {text}')


def test_call_url_brackets_ipv6() -> None:
    target = CallTarget("https://[fd00::1]:8443/v", "fd00::1", 8443, "/v")
    assert apiserver.call_url(target) == "https://[fd00::1]:8443/v?timeout=10s"


def test_conversion_webhooks_have_their_own_shape() -> None:
    from dataclasses import replace

    from netprobe.core.model import CallKind
    target = replace(_target(30), path="/convert", kind=CallKind.CONVERSION,
                     conversion_gvk="stable.example.com/v1beta1, Kind=CronTab")
    error = apiserver.predict(target, Failure.REFUSED, dialed=("10.96.20.99", 443))
    assert error.message == ('conversion webhook for stable.example.com/v1beta1, Kind=CronTab '
                             'failed: Post "https://cert-manager-webhook.cert-manager.svc:443/'
                             'convert?timeout=30s": dial tcp 10.96.20.99:443: connect: '
                             'connection refused')


def test_response_stall_is_the_context_deadline() -> None:
    error = apiserver.predict(_target(), Failure.RESPONSE_STALL)
    assert error.message == PREFIX + "context deadline exceeded" and error.alternatives == ()


def _target6(kind: CallKind = CallKind.ADMISSION) -> CallTarget:
    return CallTarget("https://cert-manager-webhook.cert-manager.svc:443/validate",
                      "cert-manager-webhook.cert-manager.svc", 443, "/validate",
                      "fd00:10:96::1463", b"", "webhook.cert-manager.io", 10.0, kind=kind)


@pytest.mark.parametrize("failure,err", [
    (Failure.DIAL_STALL, "i/o timeout"),
    (Failure.REFUSED, "connect: connection refused"),
    (Failure.NET_UNREACHABLE, "connect: network is unreachable"),
])
def test_ipv6_dials_are_bracketed_as_go_writes_them(failure: Failure, err: str) -> None:
    error = apiserver.predict(_target6(), failure, dialed=("fd00:10:96::1463", 443),
                              dial_timeout=30.0)
    texts = (error.message, *error.alternatives)
    assert any(text == PREFIX + f"dial tcp [fd00:10:96::1463]:443: {err}" for text in texts)


def test_an_ipv6_kubelet_url_and_dial_are_bracketed() -> None:
    target = CallTarget("https://[fd00:10:0:1::11]:10250/healthz", "fd00:10:0:1::11", 10250,
                        "/healthz", "fd00:10:0:1::11", b"", "worker-1", 10.0,
                        kind=CallKind.KUBELET)
    error = apiserver.predict(target, Failure.DIAL_STALL, dialed=("fd00:10:0:1::11", 10250))
    assert error.message == ('Get "https://[fd00:10:0:1::11]:10250/healthz": '
                             "dial tcp [fd00:10:0:1::11]:10250: i/o timeout")
    assert apiserver.call_url(_target6()).startswith(
        "https://cert-manager-webhook.cert-manager.svc:443/")
