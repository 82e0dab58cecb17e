"""Replaying kube-apiserver's webhook call phase by phase (DNS, TCP, TLS, HTTP)."""
