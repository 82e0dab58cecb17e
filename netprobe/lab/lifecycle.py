"""Bringing a lab scenario up and down, and telling what is up.

Owns: the lab's state directory (`/run/netprobe-lab`, or `NETPROBE_LAB_DIR`)
with the certificates, the server spec and `state.json`; the order of `up`
(certificates, kernel objects, servers) and the promise that a failed or
interrupted `up` leaves nothing behind. Must not: print (the CLI does).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from netprobe.core import errors
from netprobe.core.model import ProxyMode
from netprobe.host import system
from netprobe.lab import families, netns, objects, overlay, pki, scenarios, servers
from netprobe.lab.kubeproxy import LAB_MODES
from netprobe.lab.topology import TUNNEL_NAMESPACE, VPC_NETNS, IpFamily, Overlay, Plan

READY_TIMEOUT = 15.0
"""Seconds the servers get to open their sockets."""


def state_dir() -> Path:
    """Where the running lab keeps its files."""
    return Path(os.environ.get("NETPROBE_LAB_DIR", "/run/netprobe-lab"))


@dataclass(frozen=True)
class LabState:
    """What `up` recorded about the running lab."""

    scenario: str
    started: float
    daemon_pid: int
    directory: Path
    namespaces: list[str] = field(default_factory=list)
    proxy_mode: ProxyMode = ProxyMode.IPTABLES
    overlay: Overlay = Overlay.NONE
    ip_family: IpFamily = IpFamily.IPV4

    @property
    def ca_bundle(self) -> Path:
        return self.directory / "pki" / pki.CA_BUNDLE


def read_state() -> LabState | None:
    """Returns the recorded lab, or None when no lab was recorded."""
    path = state_dir() / "state.json"
    try:
        data = json.loads(path.read_text())
        return LabState(data["scenario"], data["started"], data["daemon_pid"],
                        state_dir(), data.get("namespaces", []),
                        ProxyMode(data.get("proxy_mode", ProxyMode.IPTABLES)),
                        Overlay(data.get("overlay", Overlay.NONE.value)),
                        IpFamily(data.get("ip_family", IpFamily.IPV4.value)))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _write_state(state: LabState) -> None:
    data = {"scenario": state.scenario, "started": state.started,
            "daemon_pid": state.daemon_pid, "namespaces": state.namespaces,
            "proxy_mode": state.proxy_mode.value, "overlay": state.overlay.value,
            "ip_family": state.ip_family.value}
    (state.directory / "state.json").write_text(json.dumps(data, indent=1) + "\n")


def is_healthy(state: LabState) -> bool:
    """True when every namespace of STATE exists and its servers run."""
    present = set(netns.lab_namespaces())
    return (system.process_alive(state.daemon_pid)
            and all(name in present for name in state.namespaces))


def _start_servers(plan: Plan, directory: Path) -> int:
    spec_path = directory / "servers.json"
    servers.write_spec(servers.listener_specs(plan, directory / "pki"), spec_path)
    log = open(directory / "servers.log", "wb")
    with log:
        child = subprocess.Popen(
            ["ip", "netns", "exec", VPC_NETNS, sys.executable, "-m", "netprobe.lab.servers",
             str(spec_path)],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
            start_new_session=True)
    assert child.stdout is not None
    with child.stdout:
        ready, _, _ = select.select([child.stdout], [], [], READY_TIMEOUT)
        line = child.stdout.readline().strip() if ready else b""
    if line != b"ready":
        tail = (directory / "servers.log").read_text(errors="replace").strip().splitlines()
        raise errors.LabError(f"starting the lab's servers: {tail[-1] if tail else 'no answer'}")
    return child.pid


def _prepare(name: str, proxy_mode: ProxyMode, ip_family: IpFamily) -> scenarios.Scenario:
    scenario = scenarios.get(name)
    if proxy_mode not in LAB_MODES:
        raise errors.UsageError(
            f"bringing the lab up: kube-proxy's {proxy_mode} mode needs the kernel's ip_vs "
            "module and dummy links, which the lab's machines lack; the lab builds "
            + " and ".join(mode.value for mode in LAB_MODES))
    system.require_root("bringing the lab up")
    system.require_tools(*netns.tools(proxy_mode, ipv6=ip_family is not IpFamily.IPV4))
    return scenario


def build_plan(name: str, proxy_mode: ProxyMode = ProxyMode.IPTABLES,
               pod_overlay: Overlay = Overlay.NONE,
               ip_family: IpFamily = IpFamily.IPV4) -> Plan:
    """Scenario NAME's plan with kube-proxy in PROXY_MODE, in IP_FAMILY, pods carried by
    POD_OVERLAY where it applies.

    Raises:
        UsageError: unknown scenario.
    """
    plan = replace(scenarios.get(name).build(), proxy_mode=proxy_mode)
    return overlay.with_overlay(families.with_ip_family(plan, ip_family), pod_overlay)


def up(name: str, proxy_mode: ProxyMode = ProxyMode.IPTABLES,
       pod_overlay: Overlay = Overlay.NONE,
       ip_family: IpFamily = IpFamily.IPV4) -> tuple[LabState, bool]:
    """Brings scenario NAME up with kube-proxy in PROXY_MODE, in IP_FAMILY, and pods carried
    by POD_OVERLAY; returns its state and whether it was made now.

    Idempotent: the same scenario in the same mode and families already up is left as it is.

    Raises:
        UsageError: unknown scenario, not root, a tool missing, or another
            scenario is up.
        LabError: the kernel or the servers refused; nothing is left behind.
    """
    _prepare(name, proxy_mode, ip_family)
    plan = build_plan(name, proxy_mode, pod_overlay, ip_family)
    current = read_state()
    if current is not None and is_healthy(current):
        if ((current.scenario, current.proxy_mode, current.overlay, current.ip_family)
                == (name, proxy_mode, pod_overlay, ip_family)):
            return current, False
        raise errors.UsageError(f"a lab is already up (scenario {current.scenario}, "
                                f"{current.proxy_mode} mode, overlay {current.overlay.value}, "
                                f"{current.ip_family.value}); run 'netprobe lab down' first")
    down()
    directory = state_dir()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        pki.write_pki(plan, directory / "pki")
        netns.build(plan)
        pid = _start_servers(plan, directory)
        state = LabState(name, time.time(), pid, directory, list(plan.namespaces), proxy_mode,
                         pod_overlay, ip_family)
        _write_state(state)
    except BaseException:
        down()
        raise
    return state, True


def down() -> list[str]:
    """Removes the lab whatever its state; returns the namespaces removed."""
    system.require_root("taking the lab down")
    removed = netns.destroy()
    shutil.rmtree(state_dir(), ignore_errors=True)
    return removed


def plan_of(state: LabState) -> Plan:
    """Returns the plan of the running scenario."""
    return build_plan(state.scenario, state.proxy_mode, state.overlay, state.ip_family)


def netns_map(plan: Plan) -> str:
    """Returns `NODE=NETNS,...,NS/POD=NETNS`, the form `--netns-map` takes: every node,
    and every konnectivity agent's pod (the replay starts where the tunnel's dial does)."""
    return ",".join([*(f"{node.name}={node.netns}" for node in plan.nodes),
                     *(f"{TUNNEL_NAMESPACE}/{pod.name}={pod.netns}"
                       for pod in plan.tunnel_agents)])


def snapshot_list(state: LabState) -> dict:
    """The running scenario's Kubernetes objects (what `lab snapshot` prints)."""
    pki_dir = state.directory / "pki"
    return objects.build_list(plan_of(state), (pki_dir / pki.CA_BUNDLE).read_bytes(),
                               (pki_dir / pki.SIGNER_CA).read_bytes(), state.started,
                               str(pki_dir / pki.KUBELET_CA))
