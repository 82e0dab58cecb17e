"""`netprobe trace webhook`: the main job. Discover, replay, capture at every hop, name the culprit.

Owns: the options (cluster source, agent backend, output) and the rendering.
Must not: decide anything (netprobe.trace does).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from netprobe.core import errors, settings, wire
from netprobe.core.exits import diagnosed
from netprobe.core.verdicts import VerdictClass
from netprobe.k8s import files as snapshot
from netprobe.present import export
from netprobe.present import text as render
from netprobe.replay.target import read_ca_bundle
from netprobe.trace import pipeline as trace_mod
from netprobe.trace.frames import Frames
from netprobe.trace.targets import TargetKind
from netprobe.trace.targets.apiservice import APISERVICES
from netprobe.trace.targets.kubelet import Kubelets
from netprobe.trace.targets.webhook import WEBHOOKS

if TYPE_CHECKING:  # only a live cluster imports the kubernetes client
    from netprobe.k8s.client import Api


@click.group()
def trace() -> None:
    """Trace a call the apiserver makes, hop by hop."""


def _objects(snapshot_path: Path | None, kubeconfig: str | None,
             context: str | None) -> tuple[list, Api | None]:
    if snapshot_path is not None:
        return snapshot.load(snapshot_path), None
    from netprobe.k8s import config, source  # only a live cluster needs the kubernetes client

    api = config.connect(kubeconfig, context)
    return source.LiveSource(api).objects(), api


def _backend(netns_map: str | None, api_client: Api | None, agent_namespace: str, image: str):
    if netns_map:
        from netprobe.agents.netns import NetnsBackend, parse_netns_map

        return NetnsBackend(parse_netns_map(netns_map))
    if api_client is None:
        raise click.UsageError("a --snapshot has no cluster to run agents in: give --netns-map "
                               "NODE=NETNS,..., or --static for the checks that need no "
                               "packets (or trace a live cluster without --snapshot)")
    from netprobe.agents import pod as agents

    problems = agents.preflight(api_client, agent_namespace)
    if problems:
        from netprobe.core import errors
        raise errors.K8sForbidden("checking what agents need: " + "; ".join(problems))
    return agents.PodBackend(api_client, namespace=agent_namespace, image=image)


def _static(kind: TargetKind, objects: list, name: str | None, namespace: str | None,
            output: str) -> None:
    reports = trace_mod.static_checks(objects, name=name, namespace=namespace, kind=kind)
    if output == "json":
        click.echo(json.dumps(wire.static_to_json(reports), indent=2))
    else:
        render.static_text(reports, sys.stdout)
    errors_found = any(f.severity.value == "error" for r in reports for f in r.findings)
    sys.exit(diagnosed(errors_found))


def _trace_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every `trace` sub-command takes (one set, one meaning)."""
    options = [
        click.argument("name", required=False),
        click.option("-n", "--namespace", help="Only calls whose Service is in this namespace."),
        click.option("--snapshot", "snapshot_path", type=click.Path(path_type=Path),
                     help="Read the objects from a file or directory (kubectl get -o "
                          "yaml|json output) instead of the cluster."),
        click.option("--kubeconfig",
                     help="Kubeconfig file (else KUBECONFIG, in-cluster, ~/.kube/config)."),
        click.option("--context", help="Kubeconfig context."),
        click.option("--netns-map", metavar="NODE=NETNS,...",
                     help="Run each node's agent in this network namespace (lab or test bed)."),
        click.option("--agent-namespace", default="netprobe", show_default=True),
        click.option("--agent-image", default="netprobe-agent:0.1.0", show_default=True,
                     help="Image built from agents/Dockerfile, pushed where your nodes can "
                          "pull it."),
        click.option("--apiserver-node", help="Replay from this node instead of the control "
                                              "plane."),
        click.option("--pcap-dir", type=click.Path(path_type=Path),
                     help="Keep every vantage point's capture here."),
        click.option("--full", is_flag=True, help="Wait the apiserver's real timeouts."),
        click.option("--static", "static_only", is_flag=True,
                     help="Only the checks that need no packets: no agents, nothing sent."),
        click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text",
                     show_default=True),
        click.option("--pcapng", "pcapng_path", type=click.Path(path_type=Path),
                     help="Write every vantage point's capture into one pcapng for Wireshark, "
                          "the diagnosis in packet comments."),
        click.option("--graph", "graph_path", type=click.Path(path_type=Path),
                     help="Write the hop graph: .png/.svg/.pdf drawn, .dot/.graphml/.json as "
                          "data (several endpoints: FILE-1.png, FILE-2.png...)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@trace.command()
@_trace_options
def webhook(**options: Any) -> None:
    """Trace webhook NAME (configuration, webhook or service name; all without NAME).

    Exit codes: 0 every call succeeded, 1 a failure was diagnosed (with --static:
    an error finding), 2 usage error, 3 netprobe itself failed.
    """
    _run(WEBHOOKS, **options)


@trace.command()
@_trace_options
def apiservice(**options: Any) -> None:
    """Trace APIService NAME (e.g. v1beta1.metrics.k8s.io, or its Service's name; all
    without NAME): kube-aggregator's availability check, GET /apis/GROUP/VERSION.

    APIServices served by kube-apiserver itself (no spec.service) make no call and are
    skipped. Exit codes as for `trace webhook`.
    """
    _run(APISERVICES, **options)


@trace.command()
@_trace_options
@click.option("--kubelet-preferred-address-types", "preferred", metavar="TYPE,...",
              help="kube-apiserver's flag (else the kube-apiserver static pod's, else "
                   "Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP).")
@click.option("--kubelet-certificate-authority", "authority", metavar="FILE",
              type=click.Path(path_type=Path),
              help="kube-apiserver's flag: verify the kubelets' serving certificates against "
                   "this CA (else the file the static pod names, when readable here; else "
                   "unverified, as kube-apiserver does without the flag).")
def kubelet(preferred: str | None, authority: Path | None, **options: Any) -> None:
    """Trace the apiserver's calls to node NAME's kubelet (kubectl logs, exec,
    port-forward; every node without NAME): the address it prefers, the kubelet port.

    Exit codes as for `trace webhook`.
    """
    types = tuple(t.strip() for t in preferred.split(",") if t.strip()) if preferred else None
    _run(Kubelets(types, _kubelet_authority(authority)), **options)


def _kubelet_authority(path: Path | None) -> bytes | None:
    """The PEM of --kubelet-certificate-authority. Raises UsageError: unreadable, empty or
    not PEM certificates (kube-apiserver would not start with it)."""
    if path is None:
        return None
    pem = read_ca_bundle(path)
    if not pem.strip():
        raise errors.UsageError(f"reading --kubelet-certificate-authority {path}: empty file")
    return pem


def _run(kind: TargetKind, name: str | None, namespace: str | None, snapshot_path: Path | None,
         kubeconfig: str | None, context: str | None, netns_map: str | None,
         agent_namespace: str, agent_image: str, apiserver_node: str | None,
         pcap_dir: Path | None, full: bool, static_only: bool, output: str,
         pcapng_path: Path | None, graph_path: Path | None) -> None:
    export.check_outputs(pcapng_path, graph_path)  # before any work: exit 2 on a bad path
    objects, api_client = _objects(snapshot_path, kubeconfig, context)
    if static_only:
        _static(kind, objects, name, namespace, output)
    backend = _backend(netns_map, api_client, agent_namespace, agent_image)
    with export.capture_folder(pcap_dir, needed=pcapng_path is not None) as folder:
        options = trace_mod.TraceOptions(
            timeouts=settings.timeouts_from_env(settings.Timeouts(full=full)), pcap_dir=folder,
            apiserver_node=apiserver_node)
        frames = Frames()  # every capture decoded once, for the trace and for --pcapng
        with render.progress(sys.stderr) as progress:
            results = trace_mod.trace(kind, objects, backend, name=name, namespace=namespace,
                                      options=options, progress=progress, frames=frames)
        for line in export.people_outputs(results, pcapng_path, graph_path, frames):
            click.echo(f"netprobe: {line}", err=True)
        if folder is not pcap_dir:  # a scratch folder: do not report paths about to vanish
            results = [dataclasses.replace(result, captures=()) for result in results]
    if output == "json":
        click.echo(json.dumps(wire.trace_to_json(results), indent=2))
    else:
        for result in results:
            render.trace_text(result, sys.stdout)
    sys.exit(diagnosed(any(result.verdict.cls is not VerdictClass.OK for result in results)))
