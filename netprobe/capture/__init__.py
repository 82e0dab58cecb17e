"""Reading packet captures: containers (pcap, pcapng, compressed) and decoding.

Owns: turning capture files into numpy columns, in bounded memory.
Must not: decide anything about flows or verdicts (that is `netprobe.analysis`),
print, or import scapy/pyshark on the reading path.
"""
