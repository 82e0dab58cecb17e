#!/usr/bin/env bash
# Installs the system programs netprobe needs (Debian/Ubuntu), without prompts.
# Needs root; says so clearly when it is missing and something must be installed.
set -euo pipefail

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v iptables-restore >/dev/null 2>&1 || need+=(iptables)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
# kube-proxy's nftables mode in the lab, and the tests' outside view of conntrack's NAT
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "netprobe needs Python >= 3.11; python3 is $(python3 -V 2>&1)" >&2
    exit 2
fi

if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "netprobe setup: missing system packages: ${need[*]}; run as root (sudo make ...)" >&2
    exit 2
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "netprobe setup: install these packages by hand: ${need[*]} (no apt-get here)" >&2
    exit 2
fi
echo "netprobe setup: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture: answer no, without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
