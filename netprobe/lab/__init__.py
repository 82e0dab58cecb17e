"""The network-namespace lab: a miniature Kubernetes data path.

Network namespaces stand for nodes, pods and the provider's network; veth
pairs, per-node bridges, routes and kube-proxy-style iptables chains carry
real packets; real TLS servers play the webhook and the kubelet. Each
scenario reproduces one failure of `shared/FAILURES.md` on the wire.

Every kernel object the lab makes lives inside a namespace whose name starts
with `np-`: the host's own network namespace is never changed.
"""
