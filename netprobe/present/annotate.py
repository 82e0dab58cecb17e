"""Which packet gets which comment: the diagnosis written onto the packets.

Owns: the words put on packets in an annotated pcapng, for a traced call
(`trace_comments`, from the `netprobe.pathview` table: the replayed
connection across vantage points) and for flows judged from packets alone
(`flow_comments`, from the `netprobe analyze` tables), and the section
comments that summarise a trace (`trace_summary`).
Must not: read or write files, or decide a verdict (it words the verdicts
that `classify`, `hops` and `analysis.rules` gave).

Rule: a comment says what the packet *shows* about the failure, in the
words of the hop that failed; copies of one packet on several interfaces
say so, since Wireshark flags them as retransmissions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from netprobe.core.model import HopStatus, Phase, TraceResult
from netprobe.core.packets import INITIAL_TTLS, join_address
from netprobe.core.verdicts import VerdictClass

if TYPE_CHECKING:
    import pandas as pd

Comments = dict[tuple[int, int], list[str]]
"""(capture index, packet number in that file) -> comments, in order."""

ICMP_MEANING = {(3, 0): "net unreachable", (3, 1): "host unreachable",
                (3, 3): "port unreachable", (3, 13): "administratively prohibited",
                (11, 0): "TTL exceeded"}
ICMPV6_MEANING = {(1, 0): "no route to destination", (1, 1): "administratively prohibited",
                  (1, 3): "address unreachable", (1, 4): "port unreachable",
                  (1, 5): "source address failed policy", (1, 6): "reject route",
                  (3, 0): "hop limit exceeded"}
"""RFC 4443's names for ICMPv6 errors (its type numbers overlap ICMP's)."""
STALLS = (VerdictClass.TLS_HANDSHAKE_TIMEOUT, VerdictClass.RESPONSE_TIMEOUT)
UNREACHED = (VerdictClass.NO_ENDPOINTS, VerdictClass.NO_ROUTE)
"""Classes whose answer is an ICMP error (kube-proxy's REJECT, a router's unreachable)."""


def _span(seconds: float) -> str:
    """A duration for people: 35 µs, 1.2 ms, 1.01 s."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def trace_summary(result: TraceResult) -> list[str]:
    """Section comments: what was traced, verdict, culprit, the apiserver's words, the fix."""
    verdict = result.verdict
    hops = {hop.id: hop for hop in result.hops}
    where = f" -> {result.endpoint}" if result.endpoint else ""
    pod = f" (pod {result.pod} on {result.node})" if result.pod else ""
    lines = [f"netprobe trace of {result.configuration} webhook {result.webhook}{where}{pod}"]
    line = f"verdict: {verdict.cls} ({verdict.cause})"
    if verdict.phase is not None:
        line += f", in the {verdict.phase.value.upper()} phase"
    if result.culprit is not None:
        hop = hops.get(result.culprit.hop)
        line += f"; culprit: {hop.label if hop else result.culprit.hop}"
    lines.append(line)
    lines.append(verdict.explanation)
    if result.apiserver_error is not None:
        lines.append(f"the apiserver says: {result.apiserver_error.message}")
    if verdict.fix:
        lines.append(f"fix: {verdict.fix}")
    lines.append("path: " + " -> ".join(f"{hop.id} {hop.status.value}" for hop in result.hops))
    return ["\n".join(lines)]


def _add(comments: Comments, row: Any, text: str, first: bool = False) -> None:
    notes = comments.setdefault((int(row["capture"]), int(row["row"])), [])
    if text not in notes:
        notes.insert(0, text) if first else notes.append(text)


class _Context:
    """What the comment rules look at, computed once from the path table."""

    def __init__(self, result: TraceResult, table: pd.DataFrame) -> None:
        self.result = result
        self.verdict = result.verdict
        self.hops = {hop.id: hop for hop in result.hops}
        self.culprit = result.culprit.hop if result.culprit else None
        self.conn = table[table["conn"]].sort_values(["time", "lane"], kind="stable")
        self.replay_lanes = set(self.conn.loc[self.conn["hop"] == "cp-egress", "lane"])
        first = self.conn[self.conn["kind"] == "SYN"]
        self.t0 = float(first["time"].min()) if not first.empty else float("nan")

    def culprit_status(self) -> HopStatus | None:
        hop = self.hops.get(self.culprit or "")
        return hop.status if hop else None

    def instances(self, kind: str) -> list[pd.DataFrame]:
        """Sightings of each packet instance of `kind`, in path order, instances by time."""
        rows = self.conn[self.conn["kind"] == kind]
        groups = [g.sort_values(["lane", "time"]) for _, g in rows.groupby("instance", sort=False)]
        return sorted(groups, key=lambda g: float(g["time"].min()))

    def at_apiserver(self, sightings: pd.DataFrame) -> pd.DataFrame:
        """The sightings on the apiserver's node (else all of them)."""
        mine = sightings[sightings["capture"] == self.replay_capture()]
        return mine if not mine.empty else sightings

    def replay_capture(self) -> int:
        cp = self.conn[self.conn["hop"] == "cp-egress"]
        return int(cp["capture"].iloc[0]) if not cp.empty else 0

    def server_ttl(self, source: str, capture: int) -> int | None:
        """TTL of the server's non-RST packets as they arrive in `capture`, if any."""
        rows = self.conn[(self.conn["src"] == source) & (self.conn["capture"] == capture)
                         & (self.conn["kind"] != "RST") & (self.conn["proto"] == 6)]
        return int(rows["ttl"].iloc[0]) if not rows.empty else None


def _copies(ctx: _Context, comments: Comments, sightings: pd.DataFrame, name: str) -> None:
    """Say that the later sightings are the same packet on other interfaces."""
    first = sightings.sort_values("time").iloc[0]
    for _, row in sightings.iterrows():
        if row["capture"] == first["capture"] and row["row"] == first["row"]:
            continue
        delay = float(row["time"]) - float(first["time"])
        _add(comments, row, f"the same {name} on {row['where']}, {_span(abs(delay))} "
                            f"{'after' if delay >= 0 else 'before'} {first['where']} "
                            "(a copy on another interface, not a retransmission)")


def _syn_comments(ctx: _Context, comments: Comments) -> None:
    syns = ctx.instances("SYN")
    answered = ctx.conn[ctx.conn["kind"] == "SYN-ACK"]
    answer_time = float(answered["time"].min()) if not answered.empty else float("inf")
    previous = 0.0  # the time of the last SYN, read from the second SYN on
    for k, sightings in enumerate(syns):
        first = sightings.sort_values("time").iloc[0]
        dst = f"{first['dst']}:{int(first['dport'])}"
        if k == 0:
            text = f"SYN of the replayed call (ISN {int(first['seq'])}) to {dst}"
            dialed = ctx.result.replay.dialed if ctx.result.replay else None
            if dialed and dialed[0] != first["dst"]:
                text += f", the Service {dialed[0]}:{dialed[1]} after kube-proxy's DNAT"
        else:
            gap = float(first["time"]) - previous
            text = f"SYN retransmission {k} of the replayed call, {_span(gap)} after the last"
            if float(first["time"]) < answer_time:
                text += f": no SYN-ACK from {first['dst']}"
        previous = float(first["time"])
        _add(comments, first, text)
        _copies(ctx, comments, sightings, "SYN" if k == 0 else f"SYN (retransmission {k})")
        _syn_lost(ctx, comments, sightings)


def _syn_lost(ctx: _Context, comments: Comments, sightings: pd.DataFrame) -> None:
    """On the last sighting of a dropped SYN: where it was last seen, and where not."""
    if ctx.culprit_status() is not HopStatus.DROPPED:
        return
    last = sightings.sort_values(["lane", "time"]).iloc[-1]
    node = ctx.result.node or "the webhook's node"
    if ctx.culprit == "network":
        _add(comments, last, f"SYN seen on {last['where']}, never on {node}: lost between "
                             "the nodes (a firewall or the provider's network drops it)")
    elif ctx.culprit in ("pod-veth", "host-socket"):
        _add(comments, last, f"SYN seen on {last['where']}, never on the pod's veth: dropped on "
                             f"{last['node']} before the pod (NetworkPolicy or host firewall)")
    elif ctx.culprit == "webhook":
        _add(comments, last, f"SYN delivered on {last['where']}; the pod never answers it")


def _synack_comments(ctx: _Context, comments: Comments) -> None:
    for sightings in ctx.instances("SYN-ACK")[:1]:
        first = sightings.sort_values("time").iloc[0]
        text = f"SYN-ACK from {first['src']}:{int(first['sport'])}: the connection is accepted"
        cp = ctx.at_apiserver(sightings).iloc[0]
        if ctx.t0 == ctx.t0:
            text += f" ({_span(float(cp['time']) - ctx.t0)} after the SYN left)"
        _add(comments, first, text)
        _copies(ctx, comments, sightings, "SYN-ACK")


def _reset_comments(ctx: _Context, comments: Comments) -> None:
    for sightings in ctx.instances("RST"):
        first = sightings.sort_values("time").iloc[0]
        if first["from_client"]:
            _client_reset(ctx, comments, first)
            _copies(ctx, comments, sightings, "RST")
            continue
        cp = ctx.at_apiserver(sightings).iloc[0]
        source, ttl = str(cp["src"]), int(cp["ttl"])
        if ctx.culprit == "network" and ctx.culprit_status() is HopStatus.REFUSED:
            reference = ctx.server_ttl(source, int(cp["capture"]))
            text = f"RST forged on the path: it claims to come from {source} but has TTL {ttl}"
            if reference is not None:
                text += f" where {source}'s packets arrive with {reference}"
            elif ttl in INITIAL_TTLS:
                text += (" (an initial TTL: nothing routed it, so it was made on this link); "
                         f"the SYN never reached {ctx.result.node or 'the webhook node'}")
            _add(comments, cp, text, first=True)
        elif len(sightings) > 1 and first["hop"] in ("pod-veth", "host-socket"):
            port = int(first["sport"])
            _add(comments, first, f"RST from the pod {first['src']} (TTL {int(first['ttl'])}): "
                                  f"nothing listens on port {port}: connection refused")
            _add(comments, cp, f"RST from {source} with TTL {ttl}, {int(first['ttl'])} when it "
                               f"left the pod on {first['where']}: the pod itself refused")
        else:
            _add(comments, cp, f"RST from {source} (TTL {ttl}) answering the replayed call")
        _copies(ctx, comments, sightings, "RST")


def _client_reset(ctx: _Context, comments: Comments, first: Any) -> None:
    if ctx.verdict.phase is Phase.TLS and ctx.verdict.cls not in STALLS:
        _add(comments, first, f"the client aborts the TLS handshake: {_tls_reason(ctx)}")


def _tls_reason(ctx: _Context) -> str:
    """The x509 words of the apiserver's error, else the verdict's cause."""
    message = ctx.result.apiserver_error.message if ctx.result.apiserver_error else ""
    for marker in ("x509: ", "tls: "):
        if marker in message:
            return message[message.index(marker):]
    return ctx.verdict.cause


def _icmp_comments(ctx: _Context, comments: Comments) -> None:
    rows = ctx.conn[ctx.conn["icmp_type"] >= 0]
    for _, groups in rows.groupby("instance", sort=False):
        first = groups.sort_values("time").iloc[0]
        kind = (int(first["icmp_type"]), int(first["icmp_code"]))
        v6 = ":" in str(first["src"])
        name = (ICMPV6_MEANING if v6 else ICMP_MEANING).get(kind, f"type {kind[0]} code {kind[1]}")
        quoted = join_address(str(first["q_dst"]), int(first["q_dport"]))
        text = (f"{'ICMPv6' if v6 else 'ICMP'} {name} ({kind[0]}/{kind[1]}) from {first['src']} "
                f"quoting the replayed SYN to {quoted}")
        if ctx.verdict.cls is VerdictClass.NO_ENDPOINTS:
            text += (f": kube-proxy's REJECT on {first['node']}: the Service has no ready "
                     "endpoint, the SYN never left the node")
        elif ctx.verdict.cls is VerdictClass.NO_ROUTE:
            said = ("network is unreachable" if v6 and kind == (1, 0) else "no route to host")
            text += f": no route to {first['q_dst']} (the apiserver says '{said}')"
        _add(comments, first, text, first=True)
        _copies(ctx, comments, groups, "ICMP error")


def _tls_comments(ctx: _Context, comments: Comments) -> None:
    hellos = ctx.instances("ClientHello")
    if hellos:
        first = hellos[0].sort_values("time").iloc[0]
        text = "ClientHello of the replayed call"
        if ctx.verdict.cls is VerdictClass.TLS_HANDSHAKE_TIMEOUT:
            text += (": ACKed but never answered with a ServerHello; something that is not the "
                     "webhook's TLS server holds the port")
        _add(comments, first, text)
    for sightings in ctx.instances("ServerHello")[:1]:
        cp = ctx.at_apiserver(sightings).iloc[0]
        text = f"ServerHello from {cp['src']}:{int(cp['sport'])}"
        if ctx.verdict.phase is Phase.TLS and ctx.verdict.cls not in STALLS:
            text += f": the certificate it sends fails the apiserver's check: {_tls_reason(ctx)}"
        _add(comments, cp, text)


def _stall_comments(ctx: _Context, comments: Comments) -> Any:
    """Stalls: the request left unanswered and the client giving up. Returns the decisive row."""
    cp = ctx.conn[ctx.conn["capture"] == ctx.replay_capture()]
    client = cp[cp["from_client"] & (cp["proto"] == 6)]
    closing = client[(client["flags"] & 0x05) != 0]
    if ctx.verdict.cls is VerdictClass.RESPONSE_TIMEOUT:
        requests = client[(client["seglen"] >= 32) & (client["tls_hs"] < 0)]
        if not requests.empty:
            last = requests.iloc[-1]
            _add(comments, last, "the last request segment (the encrypted POST): no response "
                                 "data follows it")
            start = float(last["time"])
    else:
        hello = client[client["tls_hs"] == 1]
        start = float(hello["time"].iloc[0]) if not hello.empty else ctx.t0
    if closing.empty:
        return None
    close = closing.iloc[0]
    waited = _span(float(close["time"]) - start)
    what = "response" if ctx.verdict.cls is VerdictClass.RESPONSE_TIMEOUT else "ServerHello"
    _add(comments, close, f"the client gives up after {waited} without a {what} (the replay "
                          f"stops early; the apiserver waits up to its timeout)")
    return close


def _decisive(ctx: _Context, comments: Comments, stall: Any) -> None:
    """Put the verdict first on the packet that shows it best."""
    text = f"netprobe verdict: {ctx.verdict.cls} ({ctx.verdict.cause})"
    if ctx.verdict.cls is VerdictClass.OK:
        text = "netprobe verdict: ok: the webhook answered the replayed call"
    hop = ctx.hops.get(ctx.culprit or "")
    if hop is not None:
        text += f"; culprit: {hop.label}"
    cp = ctx.conn[ctx.conn["capture"] == ctx.replay_capture()]
    pick = None
    if ctx.verdict.cls in STALLS:
        pick = stall
    elif ctx.verdict.cls in UNREACHED or not cp[cp["icmp_type"] >= 0].empty:
        pick = _first(cp[cp["icmp_type"] >= 0])
    elif ctx.verdict.cls is VerdictClass.CONNECTION_REFUSED:
        pick = _first(cp[(cp["kind"] == "RST") & ~cp["from_client"]])
    elif ctx.culprit_status() is HopStatus.DROPPED:
        syn = ctx.conn[ctx.conn["kind"] == "SYN"].sort_values(["time", "lane"])
        pick = _first(syn.iloc[::-1]) if not syn.empty else None
        if ctx.culprit == "pod-veth":
            last_syn = syn[syn["lane"] == syn["lane"].max()] if not syn.empty else syn
            pick = _first(last_syn.iloc[::-1])
    elif ctx.verdict.phase is Phase.TLS:
        pick = _first(cp[cp["kind"] == "ServerHello"])
    if pick is None:
        server_data = cp[~cp["from_client"] & (cp["seglen"] > 0)]
        pick = _first(server_data.iloc[::-1]) if not server_data.empty else _first(cp.iloc[::-1])
    if pick is not None:
        _add(comments, pick, text, first=True)


def _first(rows: pd.DataFrame) -> Any:
    return rows.iloc[0] if not rows.empty else None


def trace_comments(result: TraceResult, table: pd.DataFrame) -> Comments:
    """Comments for the packets of one traced call (the `pathview.path_packets` table).

    Returns:
        (capture, packet number) -> comments. Packets outside the replayed
        connection get none.
    """
    if table.empty or not table["conn"].any():
        return {}
    ctx = _Context(result, table)
    comments: Comments = {}
    _syn_comments(ctx, comments)
    _synack_comments(ctx, comments)
    _icmp_comments(ctx, comments)
    _reset_comments(ctx, comments)
    _tls_comments(ctx, comments)
    stall = _stall_comments(ctx, comments) if result.verdict.cls in STALLS else None
    _decisive(ctx, comments, stall)
    return comments


def flow_comments(packets: Mapping[str, np.ndarray],
                  flows: Mapping[str, np.ndarray]) -> dict[int, list[str]]:
    """Comments for `netprobe analyze`: each flow whose verdict is not `ok` gets its verdict.

    `packets` and `flows` are the numpy tables of `netprobe.analysis.pipeline`.
    The flow's first packet says the verdict and its reason; the packets that
    show it say what they show (SYN retransmissions, the RST and its TTL, the
    ICMP error, the unanswered ClientHello, the TLS alert).

    Returns:
        Packet number (file order) -> comments.
    """
    out: dict[int, list[str]] = defaultdict(list)
    verdict = np.asarray(flows["verdict"])
    suspicious = np.flatnonzero(verdict != VerdictClass.OK.value)
    if not len(suspicious):
        return {}
    stream = np.asarray(packets["stream"])
    rows = np.flatnonzero(np.isin(stream, flows["stream"][suspicious]))
    by_stream: dict[int, list[int]] = defaultdict(list)
    for row, s in zip(rows.tolist(), stream[rows].tolist(), strict=True):
        by_stream[s].append(row)
    for index in suspicious.tolist():
        s = int(flows["stream"][index])
        mine = by_stream.get(s, [])
        if mine:
            out[mine[0]].append(f"netprobe: stream {s}: {verdict[index]}: {flows['reason'][index]}")
        _flow_evidence(packets, mine, out)
    _icmp_evidence(packets, flows, suspicious, out)
    return dict(out)


def _flow_evidence(packets: Mapping[str, np.ndarray], rows: list[int],
                   out: dict[int, list[str]]) -> None:
    flags = packets["flags"]
    client, hs, alert = packets["from_client"], packets["tls_hs"], packets["tls_alert"]
    ttl = packets["ttl"]
    server_ttls = {int(ttl[r]) for r in rows if not client[r] and not int(flags[r]) & 0x04}
    ifindex = packets["ifindex"]
    syns: dict[int, int] = {}  # interface index -> SYNs seen on it
    answered = False
    for row in rows:
        f = int(flags[row])
        if f & 0x12 == 0x02 and client[row]:
            lane = int(ifindex[row])
            count = syns[lane] = syns.get(lane, 0) + 1
            if count > 1:
                out[row].append(f"SYN retransmission {count - 1}" +
                                ("" if answered else ": no SYN-ACK yet"))
            elif len(syns) > 1:
                out[row].append(f"the SYN on another interface (index {lane}): a copy of the "
                                "same packet, not a retransmission")
        elif f & 0x12 == 0x12:
            answered = True
        elif f & 0x04 and not client[row]:
            text = f"RST from the server side, TTL {int(ttl[row])}"
            if server_ttls and int(ttl[row]) not in server_ttls:
                text += (f", where the server's other packets have {min(server_ttls)}: "
                         "made by a hop on the path")
            out[row].append(text)
        if hs[row] == 1 and client[row]:
            out[row].append("ClientHello" + ("" if _server_hello(rows, hs, client)
                                             else ": no ServerHello follows"))
        if alert[row] >= 0:
            name = "encrypted" if alert[row] == 256 else f"description {int(alert[row])}"
            out[row].append(f"TLS alert ({name})")


def _server_hello(rows: list[int], hs: np.ndarray, client: np.ndarray) -> bool:
    return any(hs[r] == 2 and not client[r] for r in rows)


def _icmp_evidence(packets: Mapping[str, np.ndarray], flows: Mapping[str, np.ndarray],
                   suspicious: np.ndarray, out: dict[int, list[str]]) -> None:
    """ICMP errors quote a flow; the flow table knows which, not the packet row: match by ports."""
    if "quoted.row" in packets:
        rows, sport = packets["quoted.row"], packets["quoted.q_sport"]
        dport = packets["quoted.q_dport"]
    else:
        rows = np.flatnonzero(packets["q_ip"] > 0)
        sport, dport = packets["q_sport"][rows], packets["q_dport"][rows]
    for index in suspicious.tolist():
        if flows["icmp_errors"][index] <= 0:
            continue
        hit = rows[(sport == flows["client_port"][index]) & (dport == flows["server_port"][index])]
        for row in hit.tolist():
            out[row].append(f"ICMP {int(packets['icmp_type'][row])}/"
                            f"{int(packets['icmp_code'][row])} quoting stream "
                            f"{int(flows['stream'][index])}: {flows['verdict'][index]}")
