"""Packet capture: taking it (tcpdump with a kernel BPF filter), reading and writing files."""
