"""kube-proxy (iptables mode) rules for the lab's Service, as iptables-restore text.

Owns: the `KUBE-SERVICES -> KUBE-SVC-* -> KUBE-SEP-*` DNAT chains with
kube-proxy's chain-name hashing and random balancing, and the `REJECT` a
Service without ready endpoints gets in the filter table. Also appends the
scenario's own firewall rules for the namespace. Must not: run iptables.
"""

from __future__ import annotations

import base64
import hashlib

from netprobe.lab.topology import FirewallRule, Plan, Pod

MASQ_MARK = "0x4000/0x4000"


def _hash(text: str) -> str:
    """kube-proxy's portProtoHash: base32(sha256(text))[:16]."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def service_port_name(plan: Plan) -> str:
    """`namespace/name:port-name`, as kube-proxy names a service port."""
    hook = plan.webhook
    return f"{hook.service_namespace}/{hook.service_name}:{hook.target_port_name}"


def svc_chain(plan: Plan) -> str:
    return "KUBE-SVC-" + _hash(service_port_name(plan) + "tcp")


def sep_chain(plan: Plan, pod: Pod) -> str:
    endpoint = f"{pod.ip}:{pod.container_port}"
    return "KUBE-SEP-" + _hash(service_port_name(plan) + "tcp" + endpoint)


def _nat_rules(plan: Plan) -> list[str]:
    hook, name = plan.webhook, service_port_name(plan)
    pods = plan.ready_pods
    svc = svc_chain(plan)
    service_chains = [svc, *(sep_chain(plan, pod) for pod in pods)] if pods else []
    lines = [
        "*nat",
        ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        ":KUBE-SERVICES - [0:0]", ":KUBE-POSTROUTING - [0:0]", ":KUBE-MARK-MASQ - [0:0]",
        *(f":{chain} - [0:0]" for chain in service_chains),
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" '
        "-j KUBE-POSTROUTING",
        f"-A KUBE-MARK-MASQ -j MARK --set-xmark {MASQ_MARK}",
        f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK} -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        "-A KUBE-POSTROUTING -j MASQUERADE --random-fully",
    ]
    if pods:
        lines.append(
            f"-A KUBE-SERVICES -d {hook.cluster_ip}/32 -p tcp -m comment --comment "
            f'"{name} cluster IP" -m tcp --dport {hook.service_port} -j {svc}'
        )
        lines += _balance_rules(plan, svc, pods) + _endpoint_rules(plan, pods)
    return lines + ["COMMIT"]


def _balance_rules(plan: Plan, svc: str, pods: tuple[Pod, ...]) -> list[str]:
    """KUBE-SVC-*: pick endpoint i with probability 1/(endpoints left)."""
    name, lines = service_port_name(plan), []
    for index, pod in enumerate(pods):
        remaining = len(pods) - index
        balance = (f"-m statistic --mode random --probability {1 / remaining:.11f} "
                   if remaining > 1 else "")
        lines.append(
            f'-A {svc} -m comment --comment "{name} -> {pod.ip}:{pod.container_port}" '
            f"{balance}-j {sep_chain(plan, pod)}"
        )
    return lines


def _endpoint_rules(plan: Plan, pods: tuple[Pod, ...]) -> list[str]:
    """KUBE-SEP-*: hairpin masquerade mark, then DNAT to podIP:targetPort."""
    name, lines = service_port_name(plan), []
    for pod in pods:
        sep = sep_chain(plan, pod)
        lines.append(f'-A {sep} -s {pod.ip}/32 -m comment --comment "{name}" -j KUBE-MARK-MASQ')
        lines.append(f'-A {sep} -p tcp -m comment --comment "{name}" -m tcp '
                     f"-j DNAT --to-destination {pod.ip}:{pod.container_port}")
    return lines


def _filter_rules(plan: Plan, firewall: list[FirewallRule]) -> list[str]:
    hook, name = plan.webhook, service_port_name(plan)
    lines = [
        "*filter",
        ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
        ":KUBE-SERVICES - [0:0]",
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment '
        '"kubernetes service portals" -j KUBE-SERVICES',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment '
        '"kubernetes service portals" -j KUBE-SERVICES',
    ]
    if not plan.ready_pods:
        lines.append(
            f"-A KUBE-SERVICES -d {hook.cluster_ip}/32 -p tcp -m comment --comment "
            f'"{name} has no endpoints" -m tcp --dport {hook.service_port} '
            "-j REJECT --reject-with icmp-port-unreachable"
        )
    lines += [f"-A {rule.chain} {rule.rule}" for rule in firewall]
    return lines + ["COMMIT"]


def node_rules(plan: Plan, netns: str) -> str:
    """Returns iptables-restore input for a node namespace (kube-proxy + firewall)."""
    firewall = [rule for rule in plan.firewall if rule.netns == netns]
    return "\n".join(_nat_rules(plan) + _filter_rules(plan, firewall)) + "\n"


def firewall_rules(plan: Plan, netns: str) -> str | None:
    """Returns iptables-restore input for a non-node namespace, or None if it has no rules."""
    firewall = [rule for rule in plan.firewall if rule.netns == netns]
    if not firewall:
        return None
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f"-A {rule.chain} {rule.rule}" for rule in firewall]
    return "\n".join(lines + ["COMMIT"]) + "\n"
