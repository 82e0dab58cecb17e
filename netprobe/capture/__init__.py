"""Packet captures: taking them (tcpdump with a kernel BPF filter) and reading them.

Owns: the capture edge. `tcpdump.py` takes a capture of one flow; the
readers (pcap, pcapng, compressed; `formats`, `records`, `decode`) turn
capture files into numpy columns in bounded memory. Must not: decide
anything about flows or verdicts (`netprobe.analysis`, `netprobe.packets`),
print, or import scapy/pyshark on the reading path.
"""
