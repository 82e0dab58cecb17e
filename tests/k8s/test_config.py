"""Which configuration is used: --kubeconfig > KUBECONFIG > in-cluster > ~/.kube/config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from netprobe.core import errors
from netprobe.k8s import config


def _kubeconfig(path: Path, contexts: dict[str, str], current: str | None = None) -> Path:
    """A kubeconfig whose context NAME points at server URL."""
    document = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}} for name, url in contexts.items()],
        "users": [{"name": "alice", "user": {"token": "t0ken"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "alice"}}
                     for name in contexts],
    }
    if current:
        document["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def in_cluster(tmp_path: Path) -> config.InCluster:
    token, ca = tmp_path / "sa" / "token", tmp_path / "sa" / "ca.crt"
    token.parent.mkdir()
    token.write_text("sa-token")
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    return config.InCluster(token=token, ca=ca)


POD_ENV = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def test_the_flag_wins(tmp_path: Path, home: Path, in_cluster: config.InCluster) -> None:
    flag = _kubeconfig(tmp_path / "flag", {"a": "https://flag:6443"}, "a")
    env = _kubeconfig(tmp_path / "env", {"a": "https://env:6443"}, "a")
    _kubeconfig(home / ".kube" / "config", {"a": "https://home:6443"}, "a")
    loaded = config.load_configuration(str(flag), environ=dict(POD_ENV, KUBECONFIG=str(env)),
                                       home=home, in_cluster=in_cluster)
    assert loaded.host == "https://flag:6443"


def test_then_the_variable(tmp_path: Path, home: Path, in_cluster: config.InCluster) -> None:
    first = _kubeconfig(tmp_path / "one", {"a": "https://one:6443"}, "a")
    second = _kubeconfig(tmp_path / "two", {"b": "https://two:6443"})
    environ = dict(POD_ENV, KUBECONFIG=f"{first}:{tmp_path / 'missing'}:{second}")
    assert config.load_configuration(environ=environ, home=home,
                                     in_cluster=in_cluster).host == "https://one:6443"
    assert config.load_configuration(context="b", environ=environ, home=home,
                                     in_cluster=in_cluster).host == "https://two:6443"


def test_then_in_cluster(home: Path, in_cluster: config.InCluster) -> None:
    _kubeconfig(home / ".kube" / "config", {"a": "https://home:6443"}, "a")
    loaded = config.load_configuration(environ=POD_ENV, home=home, in_cluster=in_cluster)
    assert loaded.host == "https://10.96.0.1:443"
    assert loaded.api_key["BearerToken"] == "bearer sa-token"


def test_then_the_home_file(home: Path, in_cluster: config.InCluster) -> None:
    _kubeconfig(home / ".kube" / "config", {"a": "https://home:6443"}, "a")
    api = config.connect(environ={}, home=home, in_cluster=in_cluster, request_timeout=3.0)
    try:
        assert (api.host, api.request_timeout) == ("https://home:6443", 3.0)
    finally:
        api.close()


def test_nothing_found(home: Path, in_cluster: config.InCluster) -> None:
    with pytest.raises(errors.UsageError) as caught:
        config.load_configuration(environ={}, home=home, in_cluster=in_cluster)
    assert str(caught.value) == ("loading kubeconfig: none found (no --kubeconfig, KUBECONFIG "
                                 f"unset, not in a pod, no {home}/.kube/config)")
    assert caught.value.exit_code == 2


def test_a_missing_flag_file(tmp_path: Path) -> None:
    with pytest.raises(errors.UsageError, match=r"^loading kubeconfig: --kubeconfig \S+/nope: "
                                                r"no such file$"):
        config.load_configuration(str(tmp_path / "nope"), environ={})


def test_a_missing_variable_file(tmp_path: Path) -> None:
    with pytest.raises(errors.UsageError, match=r"^loading kubeconfig: KUBECONFIG \S+/nope: "):
        config.load_configuration(environ={"KUBECONFIG": str(tmp_path / "nope")})


def test_an_unknown_context(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "kc", {"prod": "https://p:6443", "dev": "https://d:6443"})
    with pytest.raises(errors.UsageError) as caught:
        config.load_configuration(str(path), "staging", environ={})
    assert str(caught.value) == (f"loading kubeconfig {path}: context 'staging' not found; "
                                 "it has prod, dev")


def test_no_current_context(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "kc", {"prod": "https://p:6443"})
    with pytest.raises(errors.UsageError, match="no current-context; pass --context"):
        config.load_configuration(str(path), environ={})


def test_a_malformed_file(tmp_path: Path) -> None:
    path = tmp_path / "kc"
    path.write_text("clusters: [\n")
    with pytest.raises(errors.UsageError, match=f"^loading kubeconfig {path}: "):
        config.load_configuration(str(path), environ={})


def test_context_in_a_pod_needs_a_kubeconfig(home: Path, in_cluster: config.InCluster) -> None:
    with pytest.raises(errors.UsageError, match="--context dev needs a kubeconfig"):
        config.load_configuration(context="dev", environ=POD_ENV, home=home,
                                  in_cluster=in_cluster)


def test_a_broken_service_account(home: Path, in_cluster: config.InCluster) -> None:
    in_cluster.token.write_text("")
    with pytest.raises(errors.K8sError, match="^loading the in-cluster configuration: "
                                              "Token file exists but empty"):
        config.load_configuration(environ=POD_ENV, home=home, in_cluster=in_cluster)
