"""`netprobe trace webhook` with bad or unusual input: clear answers, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.wire import run_cli

pytestmark = pytest.mark.lab


@pytest.fixture
def lab_ok():
    run_cli("lab", "up", "connection-refused")
    try:
        listing = yaml.safe_load(run_cli("lab", "snapshot").stdout)
        yield listing, run_cli("lab", "netns-map").stdout.strip()
    finally:
        run_cli("lab", "down")


def _trace(tmp_path: Path, listing: dict, netns_map: str, *extra: str):
    path = tmp_path / "snapshot.yaml"
    path.write_text(yaml.safe_dump(listing))
    return run_cli("trace", "webhook", *extra, "--snapshot", str(path), "--netns-map", netns_map,
                   "-o", "json", check=False)


def _edit(listing: dict, kind: str, change) -> dict:
    copy = json.loads(json.dumps(listing))
    for item in copy["items"]:
        if item["kind"] == kind:
            change(item)
    return copy


def test_webhook_not_found_lists_what_exists(lab_ok, tmp_path: Path) -> None:
    listing, netns_map = lab_ok
    done = _trace(tmp_path, listing, netns_map, "no-such-webhook")
    assert done.returncode == 2
    assert "finding webhook 'no-such-webhook'" in done.stderr
    assert "validating/cert-manager-webhook" in done.stderr and "Traceback" not in done.stderr


def test_node_missing_from_the_netns_map(lab_ok, tmp_path: Path) -> None:
    listing, netns_map = lab_ok
    partial = ",".join(item for item in netns_map.split(",") if not item.startswith("worker-1"))
    done = _trace(tmp_path, listing, partial, "validating/cert-manager-webhook")
    assert done.returncode == 2 and "no namespace for node 'worker-1'" in done.stderr


def test_named_target_port_that_resolves_nowhere(lab_ok, tmp_path: Path) -> None:
    listing, netns_map = lab_ok

    def rename(pod: dict) -> None:
        if pod["metadata"]["namespace"] == "cert-manager":  # the webhook's, not kube-apiserver's
            pod["spec"]["containers"][0]["ports"][0]["name"] = "not-https"

    def unnamed(eps: dict) -> None:
        eps["ports"][0]["name"] = "other"
    edited = _edit(_edit(listing, "Pod", rename), "EndpointSlice", unnamed)
    done = _trace(tmp_path, edited, netns_map, "validating/cert-manager-webhook")
    result = json.loads(done.stdout)["results"][0]
    assert "target-port-unresolved" in {f["code"] for f in result["findings"]}


def test_ipv6_cluster_ip_is_traced_not_crashed(lab_ok, tmp_path: Path) -> None:
    listing, netns_map = lab_ok

    def six(service: dict) -> None:
        service["spec"]["clusterIP"] = "fd00:10:96::20"
        service["spec"]["clusterIPs"] = ["fd00:10:96::20"]
        service["spec"]["ipFamilies"] = ["IPv6"]
    done = _trace(tmp_path, _edit(listing, "Service", six), netns_map,
                  "validating/cert-manager-webhook")
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)["results"][0]
    # The lab's control plane has no IPv6 route: that is what the apiserver would hit too.
    assert result["verdict"]["class"] == "no-route"
    assert "dial tcp [fd00:10:96::20]:443: connect: network is unreachable" in \
        result["apiserver_error"]


def test_malformed_snapshot(lab_ok, tmp_path: Path) -> None:
    _, netns_map = lab_ok
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: List\nitems:\n  - {kind: Service\n")
    done = run_cli("trace", "webhook", "--snapshot", str(bad), "--netns-map", netns_map,
                   check=False)
    assert done.returncode == 2 and "reading snapshot" in done.stderr and "line" in done.stderr
    assert "Traceback" not in done.stderr
