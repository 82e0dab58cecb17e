"""The Kubernetes objects a running lab scenario stands for, as a kubectl `List`.

Owns: realistic, schema-valid objects (webhook configurations with caBundle
and timeoutSeconds, Service, EndpointSlice, Pods, Deployment, Nodes, the CA
Secret) consistent with the plan, so `trace webhook --snapshot` can be run
against the lab. IP families as the API server and its controllers write them: the
Service's `ipFamilies`, `ipFamilyPolicy` (SingleStack, or PreferDualStack on a
dual-stack cluster) and `clusterIPs` (primary first, `clusterIP` the primary); one
EndpointSlice per family (`addressType` IPv4 or IPv6, as the EndpointSlice controller
makes them); every family's InternalIP on a Node, `podCIDRs`, `podIPs` and `hostIPs`.
Must not: read the kernel; inputs are the plan and the PEMs.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Any

from netprobe.core.model import ProxyMode
from netprobe.lab import overlay
from netprobe.lab.topology import (
    KONNECTIVITY_HEALTH_PORT,
    TUNNEL_NAMESPACE,
    Node,
    Plan,
    Pod,
    Provider,
    is_ipv6,
)

CERT_MANAGER_VERSION = "v1.16.2"
KUBELET_VERSION = "v1.31.4"
KUBEADM_CA = "/etc/kubernetes/pki/ca.crt"
"""The cluster CA file on a kubeadm control plane."""
Obj = dict[str, Any]


def _uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "netprobe-lab/" + "/".join(parts)))


def _meta(kind: str, name: str, created: str, namespace: str | None = None,
          labels: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "uid": _uid(kind, namespace or "", name),
                 "creationTimestamp": created, "resourceVersion": "1"}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return meta


def _app_labels(plan: Plan) -> dict[str, str]:
    if plan.aggregated is not None:
        return {"k8s-app": "metrics-server"}
    return {"app": "webhook", "app.kubernetes.io/component": "webhook",
            "app.kubernetes.io/instance": "cert-manager",
            "app.kubernetes.io/name": "webhook"}


def _webhook_entry(plan: Plan, ca_bundle: bytes, path: str) -> Obj:
    hook = plan.webhook
    client: Obj = {"service": {"name": hook.configured_service_name,
                               "namespace": hook.service_namespace, "path": path,
                               "port": hook.service_port}}
    if hook.ca_injected:  # else as cert-manager's chart leaves it until the injector runs
        client["caBundle"] = base64.b64encode(ca_bundle).decode()
    return {
        "name": "webhook.cert-manager.io",
        "admissionReviewVersions": ["v1"],
        "clientConfig": client,
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "namespaceSelector": {"matchExpressions": [
            {"key": "cert-manager.io/disable-validation", "operator": "NotIn",
             "values": ["true"]}]},
        "objectSelector": {},
        "rules": [{"apiGroups": ["cert-manager.io", "acme.cert-manager.io"],
                   "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                   "resources": ["*/*"], "scope": "*"}],
        "sideEffects": "None",
        "timeoutSeconds": hook.timeout_seconds,
    }


def webhook_configurations(plan: Plan, ca_bundle: bytes, created: str) -> list[Obj]:
    annotations = {"cert-manager.io/inject-ca-from-secret":
                   f"{plan.webhook.service_namespace}/cert-manager-webhook-ca"}
    validating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": dict(_meta("vwc", "cert-manager-webhook", created, labels=_app_labels(plan)),
                         annotations=annotations),
        "webhooks": [_webhook_entry(plan, ca_bundle, "/validate")],
    }
    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": dict(_meta("mwc", "cert-manager-webhook", created, labels=_app_labels(plan)),
                         annotations=annotations),
        "webhooks": [dict(_webhook_entry(plan, ca_bundle, "/mutate"),
                          reinvocationPolicy="Never")],
    }
    return [validating, mutating]


def family_name(address: str) -> str:
    """Kubernetes' name of ADDRESS's family (`ipFamilies`, EndpointSlice `addressType`)."""
    return "IPv6" if is_ipv6(address) else "IPv4"


def _ips(addresses: tuple[str, ...]) -> list[dict[str, str]]:
    """`podIPs` / `hostIPs`: one `{ip: ...}` per family, the primary first."""
    return [{"ip": address} for address in addresses]


def service(plan: Plan, created: str) -> Obj:
    hook = plan.webhook
    dual = len(hook.cluster_ips) > 1
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": _meta("svc", hook.service_name, created, hook.service_namespace,
                          _app_labels(plan)),
        "spec": {
            "type": "ClusterIP", "clusterIP": hook.cluster_ip,
            "clusterIPs": list(hook.cluster_ips),
            "ipFamilies": [family_name(ip) for ip in hook.cluster_ips],
            "ipFamilyPolicy": "PreferDualStack" if dual else "SingleStack",
            "internalTrafficPolicy": "Cluster", "sessionAffinity": "None",
            "ports": [{"name": "https", "port": hook.service_port, "protocol": "TCP",
                       "targetPort": hook.target_port_name}],
            "selector": _app_labels(plan) if plan.aggregated else
            {key: _app_labels(plan)[key] for key in ("app.kubernetes.io/component",
                                                      "app.kubernetes.io/instance",
                                                      "app.kubernetes.io/name")},
        },
        "status": {"loadBalancer": {}},
    }


SLICE_SUFFIXES = {"IPv4": "7xk2p", "IPv6": "m4q9z"}
"""The random suffix of each family's EndpointSlice name (generateName `SERVICE-`)."""


def endpoint_slices(plan: Plan, created: str) -> list[Obj]:
    """One EndpointSlice per family of the Service (its ipFamilies, in order), each with the
    pods' addresses of that family."""
    return [endpoint_slice(plan, created, family_name(ip)) for ip in plan.webhook.cluster_ips]


def endpoint_slice(plan: Plan, created: str, family: str = "IPv4") -> Obj:
    hook = plan.webhook
    endpoints = [{
        "addresses": [ip],
        "conditions": {"ready": pod.ready, "serving": pod.ready, "terminating": False},
        "nodeName": pod.node,
        "targetRef": {"kind": "Pod", "name": pod.name, "namespace": hook.service_namespace,
                      "uid": _uid("pod", hook.service_namespace, pod.name)},
    } for pod in plan.pods for ip in pod.ips if family_name(ip) == family]
    labels = {"kubernetes.io/service-name": hook.service_name,
              "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": _meta("eps", f"{hook.service_name}-{SLICE_SUFFIXES[family]}", created,
                          hook.service_namespace, labels),
        "addressType": family,
        "endpoints": endpoints,
        "ports": [{"name": "https", "port": plan.pods[0].container_port, "protocol": "TCP"}],
    }


METRICS_SERVER_VERSION = "v0.7.2"


def _metrics_server_container(pod: Pod) -> Obj:
    """metrics-server's container as its components.yaml (v0.7) writes it."""
    https = {"path": "/readyz", "port": "https", "scheme": "HTTPS"}
    return {
        "name": "metrics-server",
        "image": f"registry.k8s.io/metrics-server/metrics-server:{METRICS_SERVER_VERSION}",
        "imagePullPolicy": "IfNotPresent",
        "args": ["--cert-dir=/tmp", f"--secure-port={pod.container_port}",
                 "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
                 "--kubelet-use-node-status-port", "--metric-resolution=15s"],
        "ports": [{"name": "https", "containerPort": pod.container_port, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": https, "initialDelaySeconds": 20, "periodSeconds": 10,
                           "failureThreshold": 3},
        "livenessProbe": {"httpGet": dict(https, path="/livez"), "periodSeconds": 10,
                          "failureThreshold": 3},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "runAsUser": 1000,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
    }


def _container(plan: Plan, pod: Pod) -> Obj:
    if plan.aggregated is not None:
        return _metrics_server_container(pod)
    hook = plan.webhook
    names = [hook.service_name, f"{hook.service_name}.{hook.service_namespace}",
             f"{hook.service_name}.{hook.service_namespace}.svc"]
    return {
        "name": "cert-manager-webhook",
        "image": f"quay.io/jetstack/cert-manager-webhook:{CERT_MANAGER_VERSION}",
        "imagePullPolicy": "IfNotPresent",
        "args": ["--v=2", f"--secure-port={pod.container_port}",
                 f"--healthz-port={pod.healthz_port}",
                 f"--dynamic-serving-ca-secret-namespace={hook.service_namespace}",
                 "--dynamic-serving-ca-secret-name=cert-manager-webhook-ca",
                 "--dynamic-serving-dns-names=" + ",".join(names)],
        "ports": [{"name": "https", "containerPort": pod.container_port, "protocol": "TCP"},
                  {"name": "healthcheck", "containerPort": pod.healthz_port, "protocol": "TCP"}],
        "livenessProbe": _probe("/livez", pod.probe_port, failure_threshold=3),
        "readinessProbe": _probe("/healthz", pod.probe_port, failure_threshold=3),
        "securityContext": {"allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True},
    }


def _probe(path: str, port: int, failure_threshold: int) -> Obj:
    return {"httpGet": {"path": path, "port": port, "scheme": "HTTP"},
            "initialDelaySeconds": 5, "periodSeconds": 5, "timeoutSeconds": 1,
            "successThreshold": 1, "failureThreshold": failure_threshold}


def _pod_spec(plan: Plan, pod: Pod) -> Obj:
    account = "metrics-server" if plan.aggregated else "cert-manager-webhook"
    return {"containers": [_container(plan, pod)], "serviceAccountName": account,
            "hostNetwork": pod.host_network,
            "dnsPolicy": "ClusterFirstWithHostNet" if pod.host_network else "ClusterFirst",
            "restartPolicy": "Always", "nodeSelector": {"kubernetes.io/os": "linux"},
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}


def pod_object(plan: Plan, pod: Pod, created: str) -> Obj:
    hook = plan.webhook
    node = plan.node(pod.node)
    ready = "True" if pod.ready else "False"
    template_hash = pod.name.rsplit("-", 2)[-2]
    labels = dict(_app_labels(plan), **{"pod-template-hash": template_hash})
    meta = dict(_meta("pod", pod.name, created, hook.service_namespace, labels),
                uid=_uid("pod", hook.service_namespace, pod.name),
                ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                  "name": pod.name.rsplit("-", 1)[0],
                                  "uid": _uid("rs", pod.name.rsplit("-", 1)[0]),
                                  "controller": True, "blockOwnerDeletion": True}])
    spec = dict(_pod_spec(plan, pod), nodeName=pod.node)
    if node.control_plane:  # scheduled there only because the Deployment tolerates the taint
        spec["tolerations"] = [{"key": "node-role.kubernetes.io/control-plane",
                                "operator": "Exists", "effect": "NoSchedule"}]
    status = {
        "phase": "Running", "podIP": pod.ip, "podIPs": _ips(pod.ips),
        "hostIP": node.ip, "hostIPs": _ips(node.ips), "qosClass": "BestEffort",
        "startTime": created,
        "conditions": [{"type": kind, "status": value, "lastTransitionTime": created}
                       for kind, value in (("Initialized", "True"), ("Ready", ready),
                                           ("ContainersReady", ready),
                                           ("PodScheduled", "True"))],
        "containerStatuses": [{
            "name": "cert-manager-webhook", "ready": pod.ready, "started": True,
            "restartCount": 0, "image": _container(plan, pod)["image"],
            "imageID": "quay.io/jetstack/cert-manager-webhook@sha256:" + "0" * 64,
            "containerID": "containerd://" + uuid.uuid5(uuid.NAMESPACE_URL, pod.name).hex * 2,
            "state": {"running": {"startedAt": created}}}],
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def deployment(plan: Plan, created: str) -> Obj:
    hook = plan.webhook
    pod = plan.pods[0]
    selector = _app_labels(plan) if plan.aggregated else \
        {key: _app_labels(plan)[key] for key in ("app.kubernetes.io/component",
                                                 "app.kubernetes.io/instance",
                                                 "app.kubernetes.io/name")}
    ready = len(plan.ready_pods)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta("deploy", hook.service_name, created, hook.service_namespace,
                          _app_labels(plan)),
        "spec": {"replicas": len(plan.pods), "selector": {"matchLabels": selector},
                 "template": {"metadata": {"labels": _app_labels(plan)},
                              "spec": _pod_spec(plan, pod)}},
        "status": {"replicas": len(plan.pods), "readyReplicas": ready,
                   "availableReplicas": ready, "updatedReplicas": len(plan.pods),
                   "unavailableReplicas": len(plan.pods) - ready, "observedGeneration": 1},
    }


def _provider_id(plan: Plan, node: Node) -> str:
    if plan.provider is Provider.EKS:
        if node.fargate:
            return f"aws:///eu-west-1a/{_uid('fargate', node.name)[:36]}/{node.name}"
        return f"aws:///eu-west-1a/i-0{_uid('ec2', node.name).replace('-', '')[:16]}"
    if plan.provider is Provider.GKE:
        return f"gce://netprobe-lab/europe-west1-b/{node.name}"
    return f"kubeadm://{node.name}"


def _node_labels(plan: Plan, node: Node) -> dict[str, str]:
    labels = {"kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux"}
    if node.control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
    if plan.provider is Provider.EKS:
        labels["topology.kubernetes.io/region"] = "eu-west-1"
        labels["topology.kubernetes.io/zone"] = "eu-west-1a"
        if node.fargate:
            labels["eks.amazonaws.com/compute-type"] = "fargate"
        else:
            labels["eks.amazonaws.com/nodegroup"] = "default"
    if plan.provider is Provider.GKE:
        labels["cloud.google.com/gke-nodepool"] = "default-pool"
        labels["topology.kubernetes.io/region"] = "europe-west1"
        labels["topology.kubernetes.io/zone"] = "europe-west1-b"
    return labels


def _taints(node: Node) -> list[Obj]:
    if node.control_plane:
        return [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    if node.fargate:
        return [{"key": "eks.amazonaws.com/compute-type", "value": "fargate",
                 "effect": "NoSchedule"}]
    return []


def node_object(plan: Plan, node: Node, created: str) -> Obj:
    spec: Obj = {"providerID": _provider_id(plan, node)}
    if not node.fargate:
        spec["podCIDR"] = node.pod_cidr
        spec["podCIDRs"] = list(node.pod_cidrs)
    if _taints(node):
        spec["taints"] = _taints(node)
    addresses = [*({"type": "InternalIP", "address": ip} for ip in node.ips),
                 *({"type": "ExternalIP", "address": ip} for ip in node.external_ips),
                 {"type": "Hostname", "address": node.name}]
    info = {"architecture": "amd64", "bootID": _uid("boot", node.name),
            "containerRuntimeVersion": "containerd://1.7.24",
            "kernelVersion": "6.1.0-28-cloud-amd64", "kubeProxyVersion": KUBELET_VERSION,
            "kubeletVersion": KUBELET_VERSION, "machineID": _uid("m", node.name).replace("-", ""),
            "operatingSystem": "linux", "osImage": "Debian GNU/Linux 12 (bookworm)",
            "systemUUID": _uid("sys", node.name)}
    meta = _meta("node", node.name, created, labels=_node_labels(plan, node))
    if annotations := overlay.node_annotations(plan, node):
        meta["annotations"] = annotations
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": meta,
        "spec": spec,
        "status": {"addresses": addresses, "nodeInfo": info,
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                   "message": "kubelet is posting ready status",
                                   "lastHeartbeatTime": created,
                                   "lastTransitionTime": created}]},
    }


def ca_secret(plan: Plan, signer_ca: bytes, created: str) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": dict(_meta("secret", "cert-manager-webhook-ca", created,
                               plan.webhook.service_namespace),
                         annotations={"cert-manager.io/allow-direct-injection": "true"}),
        "data": {"ca.crt": base64.b64encode(signer_ca).decode()},
    }


def kube_proxy_config(plan: Plan, created: str) -> Obj | None:
    """kube-proxy's ConfigMap in kube-system, as kubeadm (`kube-proxy`, key `config.conf`) or
    EKS (`kube-proxy-config`, key `config`) writes it; GKE has none (a static pod's flags)."""
    if plan.provider is Provider.GKE:
        return None
    name, key = (("kube-proxy-config", "config") if plan.provider is Provider.EKS
                 else ("kube-proxy", "config.conf"))
    mode = "" if plan.proxy_mode is ProxyMode.IPTABLES else plan.proxy_mode.value
    config = (
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
        "bindAddress: 0.0.0.0\n"
        "clientConnection:\n"
        "  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\n"
        f"clusterCIDR: {','.join(plan.cluster_cidrs)}\n"
        "kind: KubeProxyConfiguration\n"
        f"mode: \"{mode}\"\n")
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _meta("ConfigMap", name, created, "kube-system",
                              labels={"app": "kube-proxy"}),
            "data": {key: config}}


def apiservice(plan: Plan, ca_bundle: bytes, created: str) -> Obj:
    """The APIService metrics-server registers (components.yaml), Available as the
    aggregator last found it."""
    api = plan.aggregated
    assert api is not None
    spec: Obj = {"group": api.group, "version": api.version, "groupPriorityMinimum": 100,
                 "versionPriority": 100,
                 "service": {"name": plan.webhook.configured_service_name,
                             "namespace": plan.webhook.service_namespace,
                             "port": plan.webhook.service_port}}
    if api.insecure_skip_tls_verify:
        spec["insecureSkipTLSVerify"] = True
    else:
        spec["caBundle"] = base64.b64encode(ca_bundle).decode()
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": _meta("apiservice", api.name, created, labels=_app_labels(plan)),
            "spec": spec,
            "status": {"conditions": [{"type": "Available", "status": "Unknown",
                                       "lastTransitionTime": created, "reason": "NoCheckYet",
                                       "message": "the lab sets no condition: netprobe checks"}]}}


def kube_apiserver(plan: Plan, created: str, kubelet_ca: str = KUBEADM_CA) -> Obj:
    """kubeadm's kube-apiserver static pod (its mirror Pod), the flags trace kubelet reads.

    KUBELET_CA is the file --kubelet-certificate-authority names when the plan sets it:
    the lab's control plane is this host, so it is the lab's own kubelet CA file."""
    node = plan.control_plane
    name = f"kube-apiserver-{node.name}"
    command = ["kube-apiserver", f"--advertise-address={node.ip}", "--allow-privileged=true",
               "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
               "--enable-bootstrap-token-auth=true",
               "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
               "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
               f"--kubelet-preferred-address-types={plan.kubelet_preferred}",
               "--secure-port=6443",
               f"--service-cluster-ip-range={','.join(plan.service_cidrs)}"]
    if plan.kubelet_ca_verified:
        command.append(f"--kubelet-certificate-authority={kubelet_ca}")
    if plan.tunnel_agents:
        command.append("--egress-selector-config-file="
                       "/etc/kubernetes/konnectivity/egress-selector-configuration.yaml")
    container = {"name": "kube-apiserver",
                 "image": f"registry.k8s.io/kube-apiserver:{KUBELET_VERSION}",
                 "imagePullPolicy": "IfNotPresent", "command": command}
    meta = dict(_meta("pod", name, created, "kube-system",
                      {"component": "kube-apiserver", "tier": "control-plane"}),
                annotations={"kubernetes.io/config.source": "file",
                             "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint":
                             f"{node.ip}:6443"},
                ownerReferences=[{"apiVersion": "v1", "kind": "Node", "name": node.name,
                                  "uid": _uid("node", "", node.name), "controller": True}])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [container], "hostNetwork": True, "nodeName": node.name,
                     "priorityClassName": "system-node-critical", "priority": 2000001000,
                     "tolerations": [{"operator": "Exists", "effect": "NoExecute"}]},
            "status": {"phase": "Running", "podIP": node.ip, "podIPs": _ips(node.ips),
                       "hostIP": node.ip, "hostIPs": _ips(node.ips)}}


KONNECTIVITY_VERSION = "v0.30.3"
KONNECTIVITY_SERVER_PORT = 8132
KONNECTIVITY_LABELS = {"k8s-app": "konnectivity-agent"}


def _konnectivity_container(plan: Plan) -> Obj:
    """konnectivity-agent's container as kubernetes.io's "Set up Konnectivity service" task
    (konnectivity-agent.yaml) writes it: it dials konnectivity-server on the control plane."""
    return {
        "name": "konnectivity-agent",
        "image": f"registry.k8s.io/kas-network-proxy/proxy-agent:{KONNECTIVITY_VERSION}",
        "command": ["/proxy-agent"],
        "args": ["--logtostderr=true",
                 "--ca-cert=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
                 f"--proxy-server-host={plan.control_plane.ip}",
                 f"--proxy-server-port={KONNECTIVITY_SERVER_PORT}",
                 "--admin-server-port=8133", f"--health-server-port={KONNECTIVITY_HEALTH_PORT}",
                 "--service-account-token-path=/var/run/secrets/tokens/konnectivity-agent-token"],
        "livenessProbe": {"httpGet": {"port": KONNECTIVITY_HEALTH_PORT, "path": "/healthz"},
                          "initialDelaySeconds": 15, "timeoutSeconds": 15},
    }


def konnectivity_agent(plan: Plan, pod: Pod, created: str) -> Obj:
    """A konnectivity-agent pod (pod network); not Ready when it has no connection to
    konnectivity-server (its readiness is its tunnel's)."""
    node = plan.node(pod.node)
    ready = "True" if pod.ready else "False"
    owner = pod.name.rsplit("-", 1)[0]
    meta = dict(_meta("pod", pod.name, created, TUNNEL_NAMESPACE,
                      dict(KONNECTIVITY_LABELS, **{"pod-template-hash": owner.rsplit("-")[-1]})),
                ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                  "uid": _uid("rs", owner), "controller": True}])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [_konnectivity_container(plan)], "nodeName": pod.node,
                     "serviceAccountName": "konnectivity-agent",
                     "priorityClassName": "system-cluster-critical",
                     "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}]},
            "status": {"phase": "Running", "podIP": pod.ip, "podIPs": _ips(pod.ips),
                       "hostIP": node.ip, "hostIPs": _ips(node.ips),
                       "conditions": [{"type": kind, "status": value,
                                       "lastTransitionTime": created}
                                      for kind, value in (("Ready", ready),
                                                          ("ContainersReady", ready))]}}


def konnectivity_deployment(plan: Plan, created: str) -> Obj:
    ready = sum(pod.ready for pod in plan.tunnel_agents)
    replicas = len(plan.tunnel_agents)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": _meta("deploy", "konnectivity-agent", created, TUNNEL_NAMESPACE,
                              KONNECTIVITY_LABELS),
            "spec": {"replicas": replicas, "selector": {"matchLabels": KONNECTIVITY_LABELS},
                     "template": {"metadata": {"labels": KONNECTIVITY_LABELS},
                                  "spec": {"containers": [_konnectivity_container(plan)]}}},
            "status": {"replicas": replicas, "readyReplicas": ready,
                       "availableReplicas": ready, "unavailableReplicas": replicas - ready}}


def _tunnel_objects(plan: Plan, created: str) -> list[Obj]:
    if not plan.tunnel_agents:
        return []
    return [konnectivity_deployment(plan, created),
            *(konnectivity_agent(plan, pod, created) for pod in plan.tunnel_agents)]


def _is_managed(plan: Plan) -> bool:
    return plan.provider is not Provider.KUBEADM


def build_list(plan: Plan, ca_bundle: bytes, signer_ca: bytes, started: float,
               kubelet_ca: str = KUBEADM_CA) -> Obj:
    """Returns a kubectl-style `List` of every object the scenario stands for.

    Managed providers (EKS, GKE) have no control-plane Node object.
    """
    created = dt.datetime.fromtimestamp(started, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    nodes = [node for node in plan.nodes if not (node.control_plane and _is_managed(plan))]
    calls = ([apiservice(plan, ca_bundle, created)] if plan.aggregated
             else webhook_configurations(plan, ca_bundle, created))
    secrets = [] if plan.aggregated else [ca_secret(plan, signer_ca, created)]
    if not _is_managed(plan):  # a managed control plane shows no pod of its own
        secrets.append(kube_apiserver(plan, created, kubelet_ca))
    items = [
        *calls,
        service(plan, created), *endpoint_slices(plan, created), deployment(plan, created),
        *(pod_object(plan, pod, created) for pod in plan.running_pods),
        *(node_object(plan, node, created) for node in nodes),
        *secrets,
        *_tunnel_objects(plan, created),
    ]
    proxy = kube_proxy_config(plan, created)
    if proxy is not None:
        items.append(proxy)
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
            "items": items}
