"""Benchmark `netprobe analyze` against tshark and a scapy loop (prints figures; not a test).

Usage: PYTHONPATH=. python bench/bench_analyze.py [--packets 1000000] [--keep FILE [--reuse]]
           [--runs 3] [--text-vs-json [--before TREE]]

1. Writes a capture of realistic TCP traffic with numpy from per-connection
   byte templates (TLS connections, refusals, unanswered SYNs with
   retransmissions, data retransmissions), interleaved in time.
2. Runs, each in its own process, measuring wall time and peak RSS (/usr/bin/time):
   `python -m netprobe analyze FILE` (interpreter start included), a tshark
   field extraction of the same totals (counted afterwards, not timed), and a
   scapy `PcapReader` loop over a subset, extrapolated to the whole file.

With `--text-vs-json`, only `analyze` and `analyze -o json`, run in turns
(median of `--runs` each, wall time and peak RSS, and their ratios), also for
another source tree given by `--before` (e.g. `git archive main | tar -x -C
DIR`, then `scripts/build_native.sh` there), then the JSON writers of the
flows timed in one process: the dicts and orjson of before, the columnar
writer in Python and compiled, and pandas' `to_json`.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ETH = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
TLS_CH = b"\x16\x03\x01\x01\x00\x01" + b"\x00" * 254
TLS_SH = b"\x16\x03\x03\x00\x5a\x02" + b"\x00" * 89 + b"\x17\x03\x03\x04\x00" + b"\x00" * 1024
REQUEST = b"\x17\x03\x03\x01\x00" + b"\xaa" * 256
RESPONSE = b"\x17\x03\x03\x02\x00" + b"\xbb" * 512
SYN_OPTS = bytes.fromhex("020405b40402080a000000010000000001030307")
TS_OPTS = bytes.fromhex("0101080a0000000200000001")

# (offset seconds, from client, flags, payload, seq delta from the side's ISN)
Step = tuple[float, bool, int, bytes, int]
S, SA, A, PA, FA, RA = 0x02, 0x12, 0x10, 0x18, 0x11, 0x14


def _ok(retransmit: bool = False) -> list[Step]:
    ch, sh = len(TLS_CH), len(TLS_SH)
    steps: list[Step] = [
        (0.0, True, S, b"", 0), (0.0005, False, SA, b"", 0), (0.0006, True, A, b"", 1),
        (0.0007, True, PA, TLS_CH, 1), (0.0012, False, A, b"", 1),
        (0.0015, False, PA, TLS_SH, 1), (0.0017, True, PA, REQUEST, 1 + ch),
    ]
    if retransmit:
        steps.append((0.21, True, PA, REQUEST, 1 + ch))
    steps += [
        (0.2300, False, PA, RESPONSE, 1 + sh), (0.2302, True, FA, b"", 1 + ch + len(REQUEST)),
        (0.2305, False, FA, b"", 1 + sh + len(RESPONSE)),
        (0.2306, True, A, b"", 2 + ch + len(REQUEST)),
    ]
    return steps


KINDS: dict[str, tuple[float, list[Step]]] = {  # name -> (share of connections, steps)
    "ok": (0.80, _ok()),
    "refused": (0.10, [(0.0, True, S, b"", 0), (0.0004, False, RA, b"", 0)]),
    "timeout": (0.05, [(t, True, S, b"", 0) for t in (0.0, 1.0, 3.0, 7.0)]),
    "retransmit": (0.05, _ok(retransmit=True)),
}


def _template(steps: list[Step]) -> tuple[bytes, list[int], list[Step]]:
    """Frames of one connection (client 10.0.0.1:40000 -> 10.96.0.10:443, ISNs 0)."""
    frames, offsets = [], []
    pos = 0
    for _, from_client, flags, payload, _ in steps:
        opts = SYN_OPTS if flags & S else TS_OPTS
        tcp_len = 20 + len(opts)
        ip_len = 20 + tcp_len + len(payload)
        src, dst = (b"\x0a\x00\x00\x01", b"\x0a\x60\x00\x0a")
        if not from_client:
            src, dst = dst, src
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0x4000, 64, 6, 0, src, dst)
        sport, dport = (40000, 443) if from_client else (443, 40000)
        tcp = struct.pack(">HHIIBBHHH", sport, dport,
                          0, 0, (tcp_len // 4) << 4, flags, 502, 0, 0) + opts
        frame = ETH + ip + tcp + payload
        offsets.append(pos)
        frames.append(struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame)
        pos += len(frames[-1])
    return b"".join(frames), offsets, steps


def generate(path: Path, packets: int, seed: int = 1) -> int:
    """Write a pcap of about `packets` packets; return the exact count."""
    rng = np.random.default_rng(seed)
    avg = sum(share * len(steps) for share, steps in KINDS.values())
    conns = int(packets / avg)
    kinds = rng.choice(len(KINDS), size=conns, p=[s for s, _ in KINDS.values()])
    start = np.arange(conns) * 1e-4 + 1_700_000_000.0
    recs_t, recs_src, recs_off, recs_len = [], [], [], []
    stores = []
    base = 0
    for k, (_name, (_, steps)) in enumerate(KINDS.items()):
        blob, offs, steps = _template(steps)
        idx = np.flatnonzero(kinds == k)
        n = len(idx)
        store = np.tile(np.frombuffer(blob, np.uint8), (n, 1))
        cport = (1024 + (idx % 60000)).astype(np.uint16)
        chost = (0x0A000000 + 2 + idx // 60000).astype(np.uint32)
        cisn = rng.integers(0, 2**32, n, dtype=np.uint64)
        sisn = rng.integers(0, 2**32, n, dtype=np.uint64)
        for j, (dt, from_client, flags, _payload, delta) in enumerate(steps):
            o = offs[j] + 16
            t = start[idx] + dt
            store[:, offs[j]: offs[j] + 4] = np.floor(t).astype("<u4").view(np.uint8).reshape(n, 4)
            usec = ((t - np.floor(t)) * 1e6).astype("<u4")
            store[:, offs[j] + 4: offs[j] + 8] = usec.view(np.uint8).reshape(n, 4)
            ip, tcp = o + 14, o + 34
            host_at = ip + (12 if from_client else 16)
            store[:, host_at: host_at + 4] = chost.astype(">u4").view(np.uint8).reshape(n, 4)
            port_at = tcp + (0 if from_client else 2)
            store[:, port_at: port_at + 2] = cport.astype(">u2").view(np.uint8).reshape(n, 2)
            mine, theirs = (cisn, sisn) if from_client else (sisn, cisn)
            seq = ((mine + delta) % 2**32).astype(">u4")
            store[:, tcp + 4: tcp + 8] = seq.view(np.uint8).reshape(n, 4)
            if flags & A:
                peer = _peer_next(steps, j, from_client)
                ack = ((theirs + peer) % 2**32).astype(">u4")
                store[:, tcp + 8: tcp + 12] = ack.view(np.uint8).reshape(n, 4)
            recs_t.append(t)
            recs_src.append(np.full(n, len(stores)))
            recs_off.append(np.arange(n) * len(blob) + offs[j])
            recs_len.append(np.full(n, (offs + [len(blob)])[j + 1] - offs[j]))
        stores.append(store.ravel())
        base += n
    t = np.concatenate(recs_t)
    order = np.argsort(t, kind="stable")
    src = np.concatenate(recs_src)[order]
    off = np.concatenate(recs_off)[order]
    length = np.concatenate(recs_len)[order]
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    with path.open("wb") as out:
        out.write(header)
        for lo in range(0, len(order), 200_000):
            sl = slice(lo, lo + 200_000)
            parts = []
            for s in range(len(stores)):
                m = src[sl] == s
                parts.append((np.flatnonzero(m), off[sl][m], length[sl][m], s))
            total = int(length[sl].sum())
            buf = np.empty(total, np.uint8)
            pos = np.concatenate(([0], np.cumsum(length[sl])[:-1]))
            for rows, o, ln, s in parts:
                if not len(rows):
                    continue
                starts = np.concatenate(([0], np.cumsum(ln)[:-1]))
                dst = np.repeat(pos[rows] - starts, ln) + np.arange(ln.sum())
                srcpos = np.repeat(o - starts, ln) + np.arange(ln.sum())
                buf[dst] = stores[s][srcpos]
            out.write(buf.tobytes())
    return len(order)


def _peer_next(steps: list[Step], j: int, from_client: bool) -> int:
    """What the sender of step j acknowledges: the peer's highest next seq so far."""
    best = 0
    for _dt, fc, flags, payload, delta in steps[:j]:
        if fc != from_client:
            best = max(best, delta + len(payload) + (1 if flags & (S | 0x01) else 0))
    return best


# Children keep their bytecode as an installed netprobe does: with PYTHONDONTWRITEBYTECODE
# set, each run would compile every module again (about 30 ms).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(cmd: list[str], native: str = "1", root: Path = ROOT) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process, from /usr/bin/time.

    /usr/bin/time forks the command from a small process, so the peak RSS is
    the command's own (a child forked straight from this big generator
    process would report the generator's memory). It runs in `root`, whose
    netprobe is imported (`python -m` puts the working folder first).
    """
    proc = subprocess.run(["/usr/bin/time", "-f", "%e %M", *cmd], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False, cwd=root,
                          env={**CHILD_ENV, "PYTHONPATH": str(root), "NETPROBE_NATIVE": native})
    wall, rss_kb = proc.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss_kb) / 1024


SCAPY_LOOP = r"""
import sys, itertools
from scapy.utils import PcapReader
from scapy.layers.inet import TCP
n = syn = synack = rst = ch = sh = 0
for pkt in itertools.islice(PcapReader(sys.argv[1]), int(sys.argv[2])):
    n += 1
    if TCP in pkt:
        f = int(pkt[TCP].flags)
        syn += (f & 0x12) == 0x02; synack += (f & 0x12) == 0x12; rst += bool(f & 4)
        p = bytes(pkt[TCP].payload)
        if len(p) > 5 and p[0] == 0x16 and p[1] == 3:
            ch += p[5] == 1; sh += p[5] == 2
print(n, syn, synack, rst, ch, sh)
"""


STAGES = r"""
import sys, time
t0 = time.perf_counter()
from netprobe.analysis import counts, load, pipeline
from netprobe.capture import decode, formats
marks = [("imports", time.perf_counter() - t0)]
def stage(name, fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    marks.append((name, time.perf_counter() - t))
    return out
walk = dec = 0.0
parts, reader = [], iter(formats.CaptureFile(sys.argv[1]))
while True:  # as load.load does: decode each batch as it is read
    t = time.perf_counter()
    batch = next(reader, None)
    walk += time.perf_counter() - t
    if batch is None:
        break
    t = time.perf_counter()
    parts.append(load._compact(decode.decode(batch), False))
    dec += time.perf_counter() - t
marks += [("read+walk", walk), ("decode", dec)]
cols = stage("concatenate", load._concatenate, parts, False)
packets = stage("tcp", pipeline.packet_table, cols)
stage("flows+verdicts", pipeline.flow_table, packets)
stage("totals", counts.count, packets)
print(" ".join(f"{name}={secs:.3f}" for name, secs in marks))
"""


def stages(path: Path, runs: int) -> None:
    """Seconds per stage (in one process, median of `runs`), compiled and numpy."""
    for native in ("1", "0"):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NETPROBE_NATIVE": native}
        lines = [subprocess.run([sys.executable, "-c", STAGES, str(path)], env=env, text=True,
                                capture_output=True, check=True).stdout.split()
                 for _ in range(runs)]
        names = [item.split("=")[0] for item in lines[0]]
        medians = [float(np.median([float(line[i].split("=")[1]) for line in lines]))
                   for i in range(len(names))]
        label = "compiled" if native == "1" else "numpy (NETPROBE_NATIVE=0)"
        print(f"stages, {label}: "
              + "  ".join(f"{n} {m:.3f}" for n, m in zip(names, medians, strict=True))
              + f"  (sum {sum(medians):.2f} s)")


def text_vs_json(path: Path, runs: int, before: Path | None) -> None:
    """`analyze` and `analyze -o json`, whole process, in turns: medians and ratios."""
    trees = [("this tree", ROOT)] + ([(f"before ({before})", before)] if before else [])
    got: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(runs):
        for label, root in trees:
            for output in ("text", "json"):
                cmd = [sys.executable, "-m", "netprobe", "analyze", "-o", output,
                       str(path.resolve())]
                got.setdefault((label, output), []).append(measure(cmd, root=root))
    print(f"text vs json, whole process, median of {runs} (in turns):")
    print(f"{'tree':40} {'text s':>7} {'json s':>7} {'ratio':>6} {'text MB':>8} {'json MB':>8}"
          f" {'ratio':>6}")
    for label, _ in trees:
        text, json = got[(label, "text")], got[(label, "json")]
        t_wall, j_wall = (float(np.median([w for w, _ in r])) for r in (text, json))
        t_rss, j_rss = (float(np.median([m for _, m in r])) for r in (text, json))
        print(f"{label:40} {t_wall:>7.2f} {j_wall:>7.2f} {j_wall / t_wall:>5.2f}x {t_rss:>8.0f}"
              f" {j_rss:>8.0f} {j_rss / t_rss:>5.2f}x")


WRITERS = r"""
import json, sys, time
import numpy as np, orjson
from netprobe.analysis import flow_records, pipeline
from netprobe.present import flowjson
result = pipeline.analyse(sys.argv[1])
runs = int(sys.argv[2])
flows = result.flows
order = flowjson.flow_order(flows)
reference = orjson.dumps(flowjson.flow_dicts(flows, order))[1:-1]

def before():  # analyze -o json until the columnar writer: dicts of 4096 flows, orjson
    return b",".join(orjson.dumps(flowjson.flow_dicts(flows, order[lo: lo + 4096]))[1:-1]
                     for lo in range(0, len(order), 4096))

def columns(native):
    return lambda: b"".join(flowjson.flow_json(flows, order, native=native))

def pandas_to_json():  # pandas' own writer, absent values made null as flow_dicts does
    rec = flow_records({k: v[order] for k, v in flows.items()})
    frame = pd.DataFrame({k: rec[k] for k in flowjson.FLOW_FIELDS})
    for name in flowjson.NULL_IF_NEGATIVE:
        frame[name] = frame[name].astype("Int64").mask(frame[name] < 0)
    frame["icmp_from"] = frame["icmp_from"].mask(frame["icmp_from"] == "")
    return frame.to_json(orient="records", double_precision=15).encode()[1:-1]

t = time.perf_counter()
import pandas as pd
pandas_import = time.perf_counter() - t
writers = [("dicts + orjson (before)", before), ("columns, Python join", columns(False)),
           ("columns, compiled (jsonrows)", columns(True)), ("pandas to_json", pandas_to_json)]
print(f"JSON of {len(order)} flows ({len(reference) / 1e6:.0f} MB) in one process, "
      f"median of {runs}:")
for label, fn in writers:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    values = json.loads(b"[" + out + b"]") == json.loads(b"[" + reference + b"]")
    same = "same bytes" if out == reference else "same values" if values else "values differ"
    extra = f" (+ {pandas_import:.2f} s to import pandas)" if "pandas" in label else ""
    print(f"  {label:30} {np.median(times):6.3f} s  {same}{extra}")
"""


def writers(path: Path, runs: int) -> None:
    """The JSON writers of the flows, timed in one process (see WRITERS)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", WRITERS, str(path), str(runs)], env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--scapy-subset", type=int, default=20_000)
    parser.add_argument("--keep", type=Path, help="write the capture here and keep it")
    parser.add_argument("--skip-tshark", action="store_true")
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep: reuse that file if it exists")
    parser.add_argument("--runs", type=int, default=3, help="runs per netprobe figure (median)")
    parser.add_argument("--text-vs-json", action="store_true",
                        help="only analyze and analyze -o json, in turns, and the JSON writers")
    parser.add_argument("--before", type=Path, help="with --text-vs-json: also this source tree")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    path = (args.keep or Path(tmp.name) / "bench.pcap").resolve()
    t0 = time.perf_counter()
    if args.reuse and path.exists():
        from netprobe.analysis import totals

        n = totals(path)["packets"]
        print(f"reusing {path}: {n} packets ({path.stat().st_size / 1e6:.0f} MB)")
    else:
        n = generate(path, args.packets)
        print(f"generated {n} packets ({path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - t0:.1f} s: {path}")
    if args.text_vs_json:
        text_vs_json(path, args.runs, args.before)
        writers(path, args.runs)
        return
    py = sys.executable
    rows = []
    for label, extra, native in (("netprobe analyze (text)", [], "1"),
                                 ("netprobe analyze -o json", ["-o", "json"], "1"),
                                 ("netprobe analyze, numpy only", [], "0")):
        runs = [measure([py, "-m", "netprobe", "analyze", *extra, str(path)], native)
                for _ in range(args.runs)]
        wall, rss = sorted(runs)[len(runs) // 2]
        rows.append((label, n, wall, rss, f"median of {args.runs}"))
    if not args.skip_tshark:
        from tests.tshark_reference import FIELDS
        cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=a"]
        for f in FIELDS:
            cmd += ["-e", f]
        wall, rss = measure(cmd)
        rows.append(("tshark -T fields (same totals)", n, wall, rss, ""))
    k = min(args.scapy_subset, n)
    wall, rss = measure([py, "-c", SCAPY_LOOP, str(path), str(k)])
    rows.append(("scapy PcapReader loop", k, wall, rss, f"subset of {k}, extrapolated"))
    print(f"{'tool':34} {'packets':>9} {'wall s':>8} {'pkt/s':>11} {'peak MB':>8}")
    for label, count, wall, rss, note in rows:
        rate = count / wall
        shown = wall * n / count if count != n else wall
        print(f"{label:34} {n:>9} {shown:>8.2f} {rate:>11,.0f} {rss:>8.0f} {note}")
    ours = rows[0][2]
    for label, count, wall, _, _ in rows[3:]:
        print(f"netprobe analyze is {wall * n / count / ours:,.0f}x {label.split()[0]}")
    stages(path, args.runs)


if __name__ == "__main__":
    main()
