"""`netprobe lab ...`: the network-namespace lab's commands.

Owns: argument parsing and rendering for list/up/down/status/snapshot/
netns-map/demo. Must not: build anything itself (netprobe.lab does).
"""

from __future__ import annotations

import json
import sys
import time

import click
import yaml

from netprobe.core.exits import diagnosed
from netprobe.core.model import ProxyMode, TraceResult
from netprobe.lab import lifecycle, scenarios
from netprobe.lab.kubeproxy import LAB_MODES
from netprobe.lab.topology import IpFamily, Overlay

_FORMATS = click.Choice(["yaml", "json"])
_MODES = [mode.value for mode in LAB_MODES]
_proxy_mode = click.option(
    "--proxy-mode", type=click.Choice(_MODES), default=ProxyMode.IPTABLES.value,
    show_default=True, help="How kube-proxy implements the Service on every node (its rules "
    "as kube-proxy writes them). IPVS needs kernel modules the lab's machines lack.")


_overlay = click.option(
    "--overlay", type=click.Choice([o.value for o in Overlay]), default=Overlay.NONE.value,
    show_default=True, help="How pod traffic crosses between nodes: routed by the provider "
    "network, or inside Flannel's VXLAN (UDP 8472) on a kubeadm scenario (managed providers "
    "route pods natively and stay as they are).")


_FAMILY_HELP = ("The cluster's IP families: IPv4, single-stack IPv6 (ULA fd00:10:...), or "
                "dual-stack with IPv4 primary (both families on every node, pod and Service).")
_ip_family = click.option(
    "--ip-family", type=click.Choice([f.value for f in IpFamily]), default=IpFamily.IPV4.value,
    show_default=True, help=_FAMILY_HELP)


class _PlainDumper(yaml.SafeDumper):
    """Writes repeated values out in full: kubectl never emits YAML anchors."""

    def ignore_aliases(self, data: object) -> bool:
        return True


@click.group()
def lab() -> None:
    """A miniature Kubernetes data path in network namespaces (needs root)."""


@lab.command("list")
def list_scenarios() -> None:
    """List the scenarios, each with what it reproduces."""
    width = max(len(name) for name in scenarios.NAMES)
    for scenario in scenarios.SCENARIOS:
        click.echo(f"{scenario.name:<{width}}  {scenario.summary}")


def _replay_hint(state: lifecycle.LabState) -> str:
    plan = lifecycle.plan_of(state)
    hook = plan.webhook
    return (f"netprobe replay https://{hook.host}:{hook.service_port}/validate "
            f"--resolve {hook.host}:{hook.cluster_ip} --ca-bundle {state.ca_bundle} "
            f"--netns {plan.control_plane.netns}")


@lab.command()
@click.argument("scenario")
@_proxy_mode
@_overlay
@_ip_family
def up(scenario: str, proxy_mode: str, overlay: str, ip_family: str) -> None:
    """Bring SCENARIO up (idempotent; see 'netprobe lab list')."""
    state, made = lifecycle.up(scenario, ProxyMode(proxy_mode), Overlay(overlay),
                               IpFamily(ip_family))
    verb = "is up" if made else "was already up"
    carried = lifecycle.plan_of(state).overlay
    click.echo(f"lab scenario {state.scenario} {verb} (kube-proxy {state.proxy_mode} mode, "
               f"{state.ip_family.value}, {_pods_label(carried)}): "
               f"{scenarios.get(scenario).summary}")
    click.echo(f"  namespaces: {' '.join(state.namespaces)}")
    click.echo(f"  caBundle:   {state.ca_bundle}")
    click.echo(f"  netns map:  {lifecycle.netns_map(lifecycle.plan_of(state))}")


@lab.command()
def down() -> None:
    """Remove every lab namespace, link, rule and server (also after a crash)."""
    removed = lifecycle.down()
    click.echo(f"removed {len(removed)} namespaces" + (f": {' '.join(removed)}" if removed else ""))


def _pods_label(carried: Overlay) -> str:
    return "pods routed natively" if carried is Overlay.NONE else f"pods over {carried.value}"


def _running() -> lifecycle.LabState:
    state = lifecycle.read_state()
    if state is None:
        raise click.UsageError("no lab is up; run 'netprobe lab up SCENARIO' first")
    return state


@lab.command()
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
def status(output: str) -> None:
    """Show the running scenario, its namespaces and whether its servers run."""
    state = lifecycle.read_state()
    leftovers = lifecycle.netns.lab_namespaces()
    data = {"scenario": state.scenario if state else None,
            "healthy": bool(state and lifecycle.is_healthy(state)),
            "namespaces": leftovers, "ca_bundle": str(state.ca_bundle) if state else None,
            "proxy_mode": state.proxy_mode.value if state else None,
            "overlay": lifecycle.plan_of(state).overlay.value if state else None,
            "ip_family": state.ip_family.value if state else None}
    if output == "json":
        click.echo(json.dumps(data, indent=2))
        return
    if state is None:
        extra = (f" ({len(leftovers)} leftover namespaces: run 'netprobe lab down')"
                 if leftovers else "")
        click.echo("no lab is up" + extra)
        return
    click.echo(f"scenario:   {state.scenario} ({'healthy' if data['healthy'] else 'BROKEN'}), "
               f"kube-proxy {state.proxy_mode} mode, {state.ip_family.value}, "
               f"{_pods_label(lifecycle.plan_of(state).overlay)}")
    click.echo(f"namespaces: {' '.join(leftovers)}")
    click.echo(f"caBundle:   {state.ca_bundle}")
    click.echo(f"try:        {_replay_hint(state)}")


@lab.command("snapshot")
@click.option("-o", "--output", type=_FORMATS, default="yaml", show_default=True)
def snapshot_cmd(output: str) -> None:
    """Print the Kubernetes objects of the running scenario (a kubectl List)."""
    objects = lifecycle.snapshot_list(_running())
    if output == "json":
        click.echo(json.dumps(objects, indent=2))
    else:
        yaml.dump(objects, sys.stdout, Dumper=_PlainDumper, sort_keys=False)


@lab.command()
@click.argument("names", nargs=-1, metavar="[SCENARIO]...")
@click.option("-v", "--verbose", is_flag=True, help="Show every trace in full.")
@click.option("--proxy-mode", type=click.Choice([*_MODES, "all"]), default="all",
              show_default=True, help="kube-proxy's mode(s) to build each scenario in.")
@_overlay
@click.option("--ip-family", type=click.Choice([*(f.value for f in IpFamily), "all"]),
              default=IpFamily.IPV4.value, show_default=True,
              help=_FAMILY_HELP + " 'all' runs each of the three.")
def demo(names: tuple[str, ...], verbose: bool, proxy_mode: str, overlay: str,
         ip_family: str) -> None:
    """Bring each scenario up, trace its webhook, take it down (default: all), in each mode
    and IP family.

    Exits 0 when every trace names the failure (class and cause) the scenario reproduces.
    """
    chosen = [scenarios.get(name) for name in names] or list(scenarios.SCENARIOS)
    modes = list(LAB_MODES) if proxy_mode == "all" else [ProxyMode(proxy_mode)]
    chosen_families = list(IpFamily) if ip_family == "all" else [IpFamily(ip_family)]
    pod_overlay = Overlay(overlay)
    for family in chosen_families:  # refuse an impossible combination before building any
        lifecycle.build_plan(chosen[0].name, modes[0], pod_overlay, family)
    click.echo(f"netprobe lab demo: {len(chosen)} scenarios x {len(modes)} kube-proxy modes"
               + (f" x {len(chosen_families)} IP families" if len(chosen_families) > 1 else
                  f" ({chosen_families[0].value})")
               + (f", pods over {pod_overlay.value} where the cluster runs it"
                  if pod_overlay is not Overlay.NONE else "")
               + "; each is built, traced with its 'netprobe trace' command from its snapshot "
               "and netns map, and removed\n")
    misses = 0
    try:
        for family in chosen_families:
            for mode in modes:
                for scenario in chosen:
                    misses += _demo_run(scenario, mode, pod_overlay, family, verbose)
    finally:
        lifecycle.down()
    total = len(chosen) * len(modes) * len(chosen_families)
    click.echo(f"\n{total - misses}/{total} scenario runs diagnosed as the failure they "
               "reproduce")
    sys.exit(diagnosed(misses > 0))


NAME_WIDTH = max(len(name) for name in scenarios.NAMES)


def _demo_run(scenario: scenarios.Scenario, mode: ProxyMode, pod_overlay: Overlay,
              family: IpFamily, verbose: bool) -> int:
    """Builds, traces and removes SCENARIO once; returns 1 on a miss."""
    from netprobe import api

    started = time.monotonic()
    results = api.trace_lab_scenario(scenario.name, proxy_mode=mode, pod_overlay=pod_overlay,
                                     ip_family=family)
    carried = lifecycle.build_plan(scenario.name, mode, pod_overlay, family).overlay
    lifecycle.down()
    label = mode.value if carried is Overlay.NONE else f"{mode.value}/{carried.value}"
    if family is not IpFamily.IPV4:
        label += f"/{family.value}"
    return _demo_lines(scenario, label, results, time.monotonic() - started, verbose)


def _demo_lines(scenario: scenarios.Scenario, mode: str, results: list[TraceResult],
                took: float, verbose: bool) -> int:
    """One line per distinct outcome (a fan-out's endpoints share one); returns 1 on a miss."""
    from netprobe.present import text as render

    shown: dict[tuple[str, str, str | None, str | None], int] = {}
    for result in results:
        culprit = result.culprit
        key = (result.verdict.cls, result.verdict.cause, culprit.hop if culprit else None,
               culprit.node if culprit else None)
        shown[key] = shown.get(key, 0) + 1
    miss = any((cls, cause) != (scenario.verdict, scenario.cause) for cls, cause, _, _ in shown)
    for (cls, cause, hop, node), count in shown.items():
        hit = (cls, cause) == (scenario.verdict, scenario.cause)
        where = (f"at {hop}" + (f" on {node}" if node else "")) if hop else ""
        many = f" ({count} endpoints)" if count > 1 else ""
        click.echo(f"[{'ok ' if hit else 'MISS'}] {scenario.name:<{NAME_WIDTH}} {mode:<14} -> "
                   f"{cls:<23} "
                   f"{cause:<21} {where}{many}  {took:.2f} s")
    errors_seen = {r.apiserver_error.message for r in results if r.apiserver_error}
    for message in sorted(errors_seen):
        click.echo(f"       apiserver: {message}")
    if verbose:
        for result in results:
            render.trace_text(result, sys.stdout)
    return int(miss)


@lab.command("netns-map")
def netns_map() -> None:
    """Print NODE=NETNS,... for the running scenario (the --netns-map form)."""
    click.echo(lifecycle.netns_map(lifecycle.plan_of(_running())))
