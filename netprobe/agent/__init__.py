"""The probe agent: `python -m netprobe.agent`, one per vantage point.

It takes an `AgentSpec` (JSON) and writes an `AgentResult` bundle (JSON with
the capture inside, checksummed) on standard output. The same entry point
runs in a lab namespace (netns backend) and in a short-lived pod on a node
(Kubernetes backend). It never imports `netprobe.k8s`.
"""
