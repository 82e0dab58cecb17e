"""Applying a lab plan to the kernel: namespaces, veths, bridges, routes, iptables.

Owns: every `ip`, `iptables-restore` and `ip6tables-restore` call of the lab, and finding
and removing what a lab left behind (any namespace named `np-*`), also after the
process that made it was killed. IPv6 addresses are usable at once: duplicate address
detection is off in every lab namespace (`accept_dad=0` before any link exists, and
`nodad` on each address), as nothing else could claim them; IPv6 is forwarded wherever
IPv4 is; the provider network's blackhole and unreachable routes exist per family (an
IPv6 `unreachable` route answers ICMPv6 no-route); bridges do not snoop multicast, so
neighbour solicitations reach every port as ARP broadcasts do. Must not: change the host's
own network namespace: links are created directly inside their namespaces
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
from netprobe.lab.topology import (
    BRIDGE,
    NODE_NIC,
    PREFIX,
    VPC_NETNS,
    Node,
    Plan,
    Pod,
    is_ipv6,
    subnet_gateway,
    subnet_prefixlen,
)

TOOLS = ("ip", "iptables-restore", "bridge")


def tools(proxy_mode: ProxyMode, ipv6: bool = False) -> tuple[str, ...]:
    """The programs building a lab with kube-proxy in PROXY_MODE (and IPV6) needs."""
    extra = ("ip6tables-restore",) if ipv6 else ()
    return (*TOOLS, *extra, *(("nft",) if proxy_mode is ProxyMode.NFTABLES else ()))


def _addr(address: str, prefixlen: int, device: str) -> str:
    """`addr add` for ADDRESS: an IPv6 one without duplicate address detection."""
    return f"addr add {address}/{prefixlen} dev {device}" + (" nodad" if is_ipv6(address) else "")


def _blackhole(plan: Plan) -> list[str]:
    """A provider network drops what it has no route for, silently, in each family."""
    return ((["route add blackhole default"] if plan.has_ipv4 else [])
            + (["route add blackhole ::/0"] if plan.has_ipv6 else []))


def _ip_batch(commands: list[str], netns: str | None = None) -> None:
    args = ["ip"] + (["-n", netns] if netns else []) + ["-batch", "-"]
    system.run(args, stdin="\n".join(commands) + "\n", doing=f"configuring {netns or 'lab'}",
               error=errors.LabError)


def lab_namespaces() -> list[str]:
    """Returns the names of every network namespace a lab made (prefix `np-`)."""
    if not nsenter.NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in nsenter.NETNS_DIR.iterdir() if p.name.startswith(PREFIX))


def _bridge_ip(pod_cidr: str) -> str:
    """The bridge's address in POD_CIDR (its first host: the pods' gateway)."""
    return str(ipaddress.ip_network(pod_cidr).network_address + 1)


def _prefixlen(cidr: str) -> int:
    return ipaddress.ip_network(cidr).prefixlen


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
        commands += [_addr(subnet_gateway(ip), subnet_prefixlen(ip), node.vpc_link)
                     for ip in node.ips]
        commands.append(f"link set {node.vpc_link} up")
    commands += _blackhole(plan)
    for route in plan.vpc_routes:
        commands.append(f"route replace {route.prefix} via {route.via}" if route.kind == "unicast"
                        else f"route replace {route.kind} {route.prefix}")
    return commands


def _node_commands(plan: Plan, node: Node) -> list[str]:
    commands = ["link set lo up",
                *(_addr(ip, subnet_prefixlen(ip), NODE_NIC) for ip in node.ips),
                f"link set {NODE_NIC} up",
                *(f"route add default via {subnet_gateway(ip)}" for ip in node.ips)]
    if _has_bridge(node):
        snooping = " mcast_snooping 0" if plan.has_ipv6 else ""
        commands += [f"link add {BRIDGE} type bridge{snooping}",
                     *(_addr(_bridge_ip(cidr), _prefixlen(cidr), BRIDGE)
                       for cidr in node.pod_cidrs), f"link set {BRIDGE} up"]
    for pod in _pods_on(plan, node):
        commands += [f"link set {pod.host_veth} master {BRIDGE}", f"link set {pod.host_veth} up"]
        if mtu := overlay.pod_mtu(plan, node):  # flannel's CNI gives pods the overlay's MTU
            commands.append(f"link set {pod.host_veth} mtu {mtu}")
    return commands + overlay.node_commands(plan, node)


def _pod_commands(plan: Plan, pod: Pod) -> list[str]:
    node = plan.node(pod.node)
    cidrs = [next(cidr for cidr in node.pod_cidrs if is_ipv6(cidr) == is_ipv6(ip))
             for ip in pod.ips]
    pod_mtu = overlay.pod_mtu(plan, node)
    mtu = [f"link set {NODE_NIC} mtu {pod_mtu}"] if pod_mtu else []
    return ["link set lo up",
            *(_addr(ip, _prefixlen(cidr), NODE_NIC)
              for ip, cidr in zip(pod.ips, cidrs, strict=True)),
            *mtu, f"link set {NODE_NIC} up",
            *(f"route add default via {_bridge_ip(cidr)}" for cidr in cidrs)]


def _write_sysctl(netns: str, key: str, value: str) -> None:
    with nsenter.entered(netns):
        Path("/proc/sys", *key.split(".")).write_text(value)


def _restore(netns: str, program: str, text: str | None) -> None:
    if text:
        system.run(["ip", "netns", "exec", netns, program], stdin=text,
                   doing=f"writing {program.removesuffix('-restore')} rules in {netns}",
                   error=errors.LabError)


def _apply_rules(plan: Plan) -> None:
    for node in plan.nodes:
        rules = kubeproxy.node_rules(plan, node.netns)
        _restore(node.netns, "iptables-restore", rules.iptables)
        _restore(node.netns, "ip6tables-restore", rules.ip6tables)
        if rules.nft:
            system.run(["ip", "netns", "exec", node.netns, "nft", "-f", "-"], stdin=rules.nft,
                       doing=f"writing kube-proxy's nftables rules in {node.netns}",
                       error=errors.LabError)
    _restore(VPC_NETNS, "iptables-restore", kubeproxy.firewall_rules(plan, VPC_NETNS))
    _restore(VPC_NETNS, "ip6tables-restore",
             kubeproxy.firewall_rules(plan, VPC_NETNS, ipv6=True))


def build(plan: Plan) -> None:
    """Creates every namespace, link, address, route and rule of PLAN.

    Raises:
        LabError: a kernel object could not be made (what is made stays for `destroy`).
    """
    _ip_batch([f"netns add {name}" for name in plan.namespaces])
    if plan.has_ipv6:  # before any link: its addresses, link-local too, are never tentative
        for name in plan.namespaces:
            for scope in ("default", "all"):
                _write_sysctl(name, f"net.ipv6.conf.{scope}.accept_dad", "0")
    _ip_batch(_link_commands(plan))
    _ip_batch(_vpc_commands(plan), VPC_NETNS)
    for node in plan.nodes:
        _ip_batch(_node_commands(plan, node), node.netns)
        if fdb := overlay.fdb_commands(plan, node):
            system.run(["bridge", "-n", node.netns, "-batch", "-"], stdin="\n".join(fdb) + "\n",
                       doing=f"writing the VXLAN forwarding entries in {node.netns}",
                       error=errors.LabError)
    for pod in plan.network_pods:
        if not pod.in_node_netns:
            _ip_batch(_pod_commands(plan, pod), pod.netns)
    for netns in (VPC_NETNS, *(node.netns for node in plan.nodes)):
        _write_sysctl(netns, "net.ipv4.ip_forward", "1")
        if plan.has_ipv6:
            _write_sysctl(netns, "net.ipv6.conf.all.forwarding", "1")
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
