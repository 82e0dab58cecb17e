"""The Kubernetes edge: the only package that imports `kubernetes`.

- `client`: `Api` (one API server connection) and the single mapping of the
  client's exceptions to netprobe's `K8sError` tree; watch and log streams
  that end quietly at a deadline.
- `config`: which kubeconfig (or in-cluster identity) to use.
- `source`: `LiveSource`, the webhook path as kubectl-style dicts.
- `agents`: `PodBackend`, one short-lived agent pod per vantage node, and the
  `preflight` that says what RBAC or Pod Security would deny.

Nothing outside this package sees a `kubernetes` model or exception.
"""
