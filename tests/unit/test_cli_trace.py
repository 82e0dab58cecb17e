"""`netprobe trace webhook` errors that need no lab: kubeconfig and API server problems."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}
users:
- name: u
  user: {{token: abc}}
contexts:
- name: ctx
  context: {{cluster: c, user: u}}
current-context: ctx
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netprobe", *args], capture_output=True,
                          text=True, timeout=60)


def test_unreachable_api_server(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG.format(port=_closed_port()))
    done = _run("trace", "webhook", "--kubeconfig", str(config))
    assert done.returncode == 3
    assert "reaching the API server at https://127.0.0.1:" in done.stderr
    assert "connection refused" in done.stderr and "Traceback" not in done.stderr


def test_unknown_context(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG.format(port=_closed_port()))
    done = _run("trace", "webhook", "--kubeconfig", str(config), "--context", "nope")
    assert done.returncode == 2 and "context 'nope' not found" in done.stderr


def test_snapshot_without_agents_says_what_to_give(tmp_path: Path) -> None:
    listing = tmp_path / "s.yaml"
    listing.write_text("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Node, "
                       "metadata: {name: n}}\n")
    done = _run("trace", "webhook", "--snapshot", str(listing))
    assert done.returncode == 2 and "--netns-map" in done.stderr


def test_static_checks_of_a_support_bundle(tmp_path: Path) -> None:
    import json
    import time

    import yaml
    from cryptography.hazmat.primitives import serialization

    from netprobe.lab import objects, pki, scenarios

    ca = pki.make_authority("cert-manager-webhook-ca").cert.public_bytes(
        serialization.Encoding.PEM)
    bundle = tmp_path / "bundle.yaml"
    listing = objects.build_list(scenarios.get("no-endpoints").build(), ca, ca, time.time())
    bundle.write_text(yaml.safe_dump(listing))
    done = _run("trace", "webhook", "validating/cert-manager-webhook", "--snapshot", str(bundle),
                "--static", "-o", "json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["kind"] == "FindingsReport"
    codes = {f["code"] for f in report["results"][0]["findings"]}
    assert {"endpoints-not-ready", "probe-port-mismatch"} <= codes
    healthy = tmp_path / "ok.yaml"
    healthy.write_text(yaml.safe_dump(objects.build_list(scenarios.get("ok").build(), ca,
                                                          ca, time.time())))
    assert _run("trace", "webhook", "--snapshot", str(healthy), "--static").returncode == 0
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text(yaml.safe_dump(objects.build_list(scenarios.get("ok").build(),
                                                          b"not pem", ca, time.time())))
    done = _run("trace", "webhook", "--snapshot", str(garbage), "--static", "-o", "json")
    assert done.returncode == 1, done.stderr
    codes = {f["code"] for r in json.loads(done.stdout)["results"] for f in r["findings"]}
    assert "invalid-ca-bundle" in codes
