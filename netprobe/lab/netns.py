"""Applying a lab plan to the kernel: namespaces, veths, bridges, routes, iptables.

Owns: every `ip` and `iptables-restore` call of the lab, and finding and
removing what a lab left behind (any namespace named `np-*`), also after the
process that made it was killed. Must not: change the host's own network
namespace: links are created directly inside their namespaces
(`ip link add ... netns NS type veth peer ... netns NS2`).
"""

from __future__ import annotations

import ipaddress
import os
import signal
import time
from pathlib import Path

from netprobe.core import errors
from netprobe.core.model import ProxyMode
from netprobe.host import nsenter, system
from netprobe.lab import kubeproxy, overlay
from netprobe.lab.topology import BRIDGE, NODE_NIC, PREFIX, VPC_NETNS, Node, Plan, Pod

TOOLS = ("ip", "iptables-restore", "bridge")


def tools(proxy_mode: ProxyMode) -> tuple[str, ...]:
    """The programs building a lab with kube-proxy in PROXY_MODE needs."""
    return (*TOOLS, "nft") if proxy_mode is ProxyMode.NFTABLES else TOOLS


def _ip_batch(commands: list[str], netns: str | None = None) -> None:
    args = ["ip"] + (["-n", netns] if netns else []) + ["-batch", "-"]
    system.run(args, stdin="\n".join(commands) + "\n", doing=f"configuring {netns or 'lab'}",
               error=errors.LabError)


def lab_namespaces() -> list[str]:
    """Returns the names of every network namespace a lab made (prefix `np-`)."""
    if not nsenter.NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in nsenter.NETNS_DIR.iterdir() if p.name.startswith(PREFIX))


def _bridge_address(node: Node) -> str:
    net = ipaddress.ip_network(node.pod_cidr)
    return f"{net.network_address + 1}/{net.prefixlen}"


def _has_bridge(node: Node) -> bool:
    return not node.fargate


def _pods_on(plan: Plan, node: Node) -> list[Pod]:
    return [pod for pod in plan.network_pods if pod.node == node.name and not pod.in_node_netns]


def _link_commands(plan: Plan) -> list[str]:
    commands = [f"link add {NODE_NIC} netns {node.netns} type veth peer name {node.vpc_link} "
                f"netns {VPC_NETNS}" for node in plan.nodes]
    for pod in plan.network_pods:
        if not pod.in_node_netns:
            node = plan.node(pod.node)
            commands.append(f"link add {NODE_NIC} netns {pod.netns} type veth peer name "
                            f"{pod.host_veth} netns {node.netns}")
    return commands


def _vpc_commands(plan: Plan) -> list[str]:
    commands = ["link set lo up"]
    for node in plan.nodes:
        commands += [f"addr add {node.gateway}/24 dev {node.vpc_link}",
                     f"link set {node.vpc_link} up"]
    # A provider network drops what it has no route for, silently.
    commands.append("route add blackhole default")
    for route in plan.vpc_routes:
        commands.append(f"route replace {route.prefix} via {route.via}" if route.kind == "unicast"
                        else f"route replace {route.kind} {route.prefix}")
    return commands


def _node_commands(plan: Plan, node: Node) -> list[str]:
    commands = ["link set lo up", f"addr add {node.ip}/24 dev {NODE_NIC}",
                f"link set {NODE_NIC} up", f"route add default via {node.gateway}"]
    if _has_bridge(node):
        commands += [f"link add {BRIDGE} type bridge", f"addr add {_bridge_address(node)} "
                     f"dev {BRIDGE}", f"link set {BRIDGE} up"]
    for pod in _pods_on(plan, node):
        commands += [f"link set {pod.host_veth} master {BRIDGE}", f"link set {pod.host_veth} up"]
        if node in overlay.members(plan):  # flannel's CNI gives pods the overlay's MTU
            commands.append(f"link set {pod.host_veth} mtu {overlay.MTU}")
    return commands + overlay.node_commands(plan, node)


def _pod_commands(plan: Plan, pod: Pod) -> list[str]:
    node = plan.node(pod.node)
    prefix = ipaddress.ip_network(node.pod_cidr).prefixlen
    gateway = _bridge_address(node).split("/")[0]
    mtu = [f"link set {NODE_NIC} mtu {overlay.MTU}"] if node in overlay.members(plan) else []
    return ["link set lo up", f"addr add {pod.ip}/{prefix} dev {NODE_NIC}", *mtu,
            f"link set {NODE_NIC} up", f"route add default via {gateway}"]


def _write_sysctl(netns: str, key: str, value: str) -> None:
    with nsenter.entered(netns):
        Path("/proc/sys", *key.split(".")).write_text(value)


def _apply_rules(plan: Plan) -> None:
    for node in plan.nodes:
        rules = kubeproxy.node_rules(plan, node.netns)
        if rules.iptables:
            system.run(["ip", "netns", "exec", node.netns, "iptables-restore"],
                       stdin=rules.iptables, doing=f"writing iptables rules in {node.netns}",
                       error=errors.LabError)
        if rules.nft:
            system.run(["ip", "netns", "exec", node.netns, "nft", "-f", "-"], stdin=rules.nft,
                       doing=f"writing kube-proxy's nftables rules in {node.netns}",
                       error=errors.LabError)
    vpc = kubeproxy.firewall_rules(plan, VPC_NETNS)
    if vpc:
        system.run(["ip", "netns", "exec", VPC_NETNS, "iptables-restore"], stdin=vpc,
                   doing=f"writing firewall rules in {VPC_NETNS}", error=errors.LabError)


def build(plan: Plan) -> None:
    """Creates every namespace, link, address, route and rule of PLAN.

    Raises:
        LabError: a kernel object could not be made (what is made stays for `destroy`).
    """
    _ip_batch([f"netns add {name}" for name in plan.namespaces])
    _ip_batch(_link_commands(plan))
    _ip_batch(_vpc_commands(plan), VPC_NETNS)
    for node in plan.nodes:
        _ip_batch(_node_commands(plan, node), node.netns)
        if fdb := overlay.fdb_commands(plan, node):
            system.run(["bridge", "-n", node.netns, "-batch", "-"], stdin="\n".join(fdb) + "\n",
                       doing=f"writing {overlay.DEVICE}'s forwarding entries in {node.netns}",
                       error=errors.LabError)
    for pod in plan.network_pods:
        if not pod.in_node_netns:
            _ip_batch(_pod_commands(plan, pod), pod.netns)
    for netns in (VPC_NETNS, *(node.netns for node in plan.nodes)):
        _write_sysctl(netns, "net.ipv4.ip_forward", "1")
    _apply_rules(plan)


def _pids_in(netns: str) -> list[int]:
    try:
        out = system.run(["ip", "netns", "pids", netns], doing=f"listing processes in {netns}")
    except errors.NetprobeError:
        return []
    return [int(pid) for pid in out.split() if pid.isdigit() and int(pid) != os.getpid()]


def _kill(pids: list[int], timeout: float = 2.0) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if system.process_alive(pid)]
        if alive:
            time.sleep(0.01)  # polling process exit: there is no pidfd wait for non-children
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def destroy() -> list[str]:
    """Kills every process in a lab namespace and deletes every `np-*` namespace.

    Returns the names of the namespaces removed. Safe to call at any time:
    it needs no record of what was made.
    """
    names = lab_namespaces()
    pids = sorted({pid for name in names for pid in _pids_in(name)})
    _kill(pids)
    if names:
        _ip_batch([f"netns del {name}" for name in names])
    return names
