"""Which cluster to talk to, and as whom.

Owns: the kubeconfig order `--kubeconfig` > `KUBECONFIG` > in-cluster >
`~/.kube/config`, the optional `--context`, and turning a broken or missing
configuration into one-line errors. Must not: contact the API server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.config import incluster_config, kube_config
from kubernetes.config.config_exception import ConfigException

from netprobe.core import errors
from netprobe.k8s.client import Api


@dataclass(frozen=True)
class InCluster:
    """Where a pod finds its service account (overridable for tests)."""

    token: Path = Path(incluster_config.SERVICE_TOKEN_FILENAME)
    ca: Path = Path(incluster_config.SERVICE_CERT_FILENAME)

    def applies(self, environ: Mapping[str, str]) -> bool:
        return bool(environ.get(incluster_config.SERVICE_HOST_ENV_NAME)) and self.token.is_file()


def _existing(paths: str) -> list[str]:
    return [path for path in paths.split(os.pathsep) if path and Path(path).expanduser().is_file()]


def _contexts(paths: str) -> tuple[list[str], str | None]:
    """The context names in PATHS (merged as kubectl does) and the current one."""
    try:
        merged = kube_config.KubeConfigMerger(paths).config
        document = merged.value if merged is not None else None
        if not isinstance(document, dict):
            raise ValueError("not a kubeconfig (no mapping at the top)")
        names = [str(item["name"]) for item in document.get("contexts") or []]
    except (ConfigException, OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        raise errors.UsageError(f"loading kubeconfig {paths}: {detail}") from exc
    return names, document.get("current-context") or None


def _from_kubeconfig(paths: str, context: str | None, origin: str) -> client.Configuration:
    if not _existing(paths):
        raise errors.UsageError(f"loading kubeconfig: {origin} {paths}: no such file")
    names, current = _contexts(paths)
    if context is not None and context not in names:
        raise errors.UsageError(f"loading kubeconfig {paths}: context {context!r} not found; "
                                f"it has {', '.join(names) or 'none'}")
    if context is None and not current:
        raise errors.UsageError(f"loading kubeconfig {paths}: no current-context; "
                                f"pass --context (one of {', '.join(names) or 'none'})")
    configuration = client.Configuration()
    try:
        kube_config.load_kube_config(config_file=paths, context=context,
                                     client_configuration=configuration, persist_config=False)
    except (ConfigException, OSError, ValueError, yaml.YAMLError) as exc:
        raise errors.UsageError(f"loading kubeconfig {paths}: {exc}") from exc
    return configuration


def _in_cluster(paths: InCluster, environ: Mapping[str, str]) -> client.Configuration:
    configuration = client.Configuration()
    loader = incluster_config.InClusterConfigLoader(
        token_filename=str(paths.token), cert_filename=str(paths.ca), environ=environ)
    try:
        loader.load_and_set(configuration)
    except (ConfigException, OSError) as exc:
        raise errors.K8sError(f"loading the in-cluster configuration: {exc}") from exc
    return configuration


def load_configuration(kubeconfig: str | None = None, context: str | None = None, *,
                       environ: Mapping[str, str] | None = None, home: Path | None = None,
                       in_cluster: InCluster = InCluster()) -> client.Configuration:
    """The client configuration, from the first source that applies.

    Order: KUBECONFIG (the `--kubeconfig` path) > the `KUBECONFIG` variable
    (colon-separated files, merged) > the pod's service account > `~/.kube/config`.

    Raises:
        UsageError: the named file is missing or malformed, the context does not
            exist, `--context` was given in-cluster, or no configuration was found.
        K8sError: the service account files are unreadable or empty.
    """
    environ = os.environ if environ is None else environ
    if kubeconfig:
        return _from_kubeconfig(kubeconfig, context, "--kubeconfig")
    if environ.get("KUBECONFIG"):
        return _from_kubeconfig(environ["KUBECONFIG"], context, "KUBECONFIG")
    if in_cluster.applies(environ):
        if context is not None:
            raise errors.UsageError(f"loading kubeconfig: --context {context} needs a "
                                    "kubeconfig, but none is given and this runs in a pod")
        return _in_cluster(in_cluster, environ)
    default = (home or Path.home()) / ".kube" / "config"
    if default.is_file():
        return _from_kubeconfig(str(default), context, "default")
    raise errors.UsageError(f"loading kubeconfig: none found (no --kubeconfig, KUBECONFIG unset, "
                            f"not in a pod, no {default})")


def connect(kubeconfig: str | None = None, context: str | None = None, *,
            request_timeout: float = 30.0, environ: Mapping[str, str] | None = None,
            home: Path | None = None, in_cluster: InCluster = InCluster()) -> Api:
    """An `Api` for the configuration `load_configuration` picks (no request is made).

    Raises: as `load_configuration`.
    """
    configuration = load_configuration(kubeconfig, context, environ=environ, home=home,
                                       in_cluster=in_cluster)
    return Api(client.ApiClient(configuration), request_timeout=request_timeout)
