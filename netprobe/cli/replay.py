"""`netprobe replay`: one webhook call, phase by phase, with its packets and verdict.

Owns: the options and the rendering (phase ladder or JSON). Must not:
decide anything (netprobe.api and netprobe.classify do).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from netprobe import api
from netprobe.core import settings, wire
from netprobe.core.exits import diagnosed
from netprobe.core.model import CallKind
from netprobe.present import text as render
from netprobe.replay import target as target_mod


@click.command()
@click.argument("url")
@click.option("--resolve", metavar="HOST:IP",
              help="Address the apiserver's service resolver gives HOST (the ClusterIP).")
@click.option("--endpoint", "endpoints", metavar="IP:PORT", multiple=True,
              help="An endpoint the Service's NAT may send the call to (repeatable; from "
                   "`kubectl get endpointslices`): the capture follows the call there past the "
                   "node's SNAT. Without it, a ClusterIP call's capture keeps all TCP.")
@click.option("--ca-bundle", "ca_bundle", type=click.Path(path_type=Path), required=True,
              help="PEM file: the webhook configuration's caBundle (the only trust root).")
@click.option("--netns", metavar="NAME", help="Replay from this network namespace.")
@click.option("--timeout", "timeout_seconds", type=float, default=10.0, show_default=True,
              help="The webhook's timeoutSeconds (overall deadline).")
@click.option("--name", "webhook_name", metavar="WEBHOOK",
              help="Webhook name, as in the configuration (for the apiserver's message).")
@click.option("--conversion", is_flag=True,
              help="Send a ConversionReview (CRD conversion webhook).")
@click.option("--capture", "capture_path", type=click.Path(path_type=Path),
              help="Keep the capture here (pcap, mode 0600).")
@click.option("--no-capture", is_flag=True, help="Do not capture packets (no root needed "
              "outside namespaces, but fewer causes can be told apart).")
@click.option("--full", is_flag=True,
              help="Wait the apiserver's real timeouts instead of calling stalls early.")
@click.option("--dial-timeout", type=float, default=30.0, show_default=True,
              help="The apiserver dialer's timeout (net/http default transport: 30 s).")
@click.option("--tls-timeout", type=float, default=10.0, show_default=True,
              help="TLSHandshakeTimeout of the apiserver's transport.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def replay(url: str, resolve: str | None, endpoints: tuple[str, ...], ca_bundle: Path,
           netns: str | None,
           timeout_seconds: float, webhook_name: str | None, conversion: bool,
           capture_path: Path | None, no_capture: bool, full: bool, dial_timeout: float,
           tls_timeout: float, output: str) -> None:
    """Replay kube-apiserver's call to a webhook URL and diagnose it.

    Exit codes: 0 the call succeeded, 1 a failure was diagnosed, 2 usage error,
    3 netprobe itself failed.
    """
    pem = target_mod.read_ca_bundle(ca_bundle)
    target = target_mod.build(url, resolve=resolve, ca_bundle=pem, webhook_name=webhook_name,
                              timeout_seconds=timeout_seconds,
                              kind=CallKind.CONVERSION if conversion else None,
                              endpoints=endpoints)
    timeouts = settings.timeouts_from_env(settings.Timeouts(dial=dial_timeout, tls=tls_timeout,
                                                            full=full))
    result = api.replay(target, netns=netns, timeouts=timeouts, capture=not no_capture,
                        capture_path=capture_path)
    if output == "json":
        click.echo(json.dumps(wire.replay_to_json(result), indent=2))
    else:
        render.replay_text(result, sys.stdout)
    sys.exit(diagnosed(not result.succeeded))
