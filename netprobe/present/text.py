"""Text rendering for people: the phase ladder, the verdict, the apiserver's words.

Owns: how results look in a terminal (rich, colours only on a TTY). Must
not: compute anything a script would need (that belongs in the JSON).
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from netprobe.core.model import PacketSummary, ReplayResult, Status
from netprobe.core.verdicts import VerdictClass

_STATUS_STYLE = {Status.OK: "green", Status.FAILED: "bold red", Status.TIMEOUT: "bold red",
                 Status.SKIPPED: "dim"}


def _console(stream: TextIO) -> Console:
    # Pipes and files get wide lines: the text is meant to be grepped and pasted.
    width = None if stream.isatty() else 160
    return Console(file=stream, highlight=False, soft_wrap=True, width=width)


def _ladder(result: ReplayResult) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False, padding=(0, 2, 0, 0))
    for phase in result.phases:
        style = _STATUS_STYLE[phase.status]
        took = "" if phase.status is Status.SKIPPED else f"{phase.duration * 1000:8.1f} ms"
        table.add_row(f"  {phase.phase.value.upper()}", f"[{style}]{phase.status.value}[/]",
                      took, escape(phase.detail))
    return table


def _packets_line(summary: PacketSummary) -> str:
    parts = [f"{summary.syn} SYN ({summary.syn_retransmissions} retransmitted)",
             f"{summary.synack} SYN-ACK"]
    if summary.synack_ttl is not None:
        parts[-1] += f" (TTL {summary.synack_ttl})"
    for rst in summary.rst:
        who = "" if rst.inbound else " (ours, closing)"
        parts.append(f"RST from {rst.source} TTL {rst.ttl}{who}")
    for icmp in summary.icmp:
        parts.append(f"ICMP {icmp.type}/{icmp.code} from {icmp.reporter}")
    if summary.client_hello:
        parts.append(f"ClientHello{' ACKed' if summary.client_hello_acked else ''}")
    if summary.server_hello:
        parts.append("ServerHello")
    if summary.wire_destination:
        parts.append(f"on the wire to {summary.wire_destination}")
    return ", ".join(parts)


def replay_text(result: ReplayResult, stream: TextIO) -> None:
    """Writes the phase ladder, the verdict and the apiserver's message."""
    out = _console(stream)
    where = f" from netns {result.netns}" if result.netns else ""
    out.print(f"[bold]replay[/] {escape(result.target.url)}{where}")
    out.print(_ladder(result))
    verdict = result.verdict
    colour = "green" if result.succeeded else "red"
    early = " [yellow](early verdict)[/]" if verdict.early else ""
    phase = f" in {verdict.phase.value.upper()}" if verdict.phase else ""
    out.print(f"\n[bold {colour}]verdict: {verdict.cls}[/]{phase}, cause {verdict.cause}{early}")
    out.print(f"  {escape(verdict.explanation)}")
    if verdict.fix:
        out.print(f"  [bold]fix:[/] {escape(verdict.fix)}")
    if result.apiserver_error:
        out.print("\n[bold]the apiserver will say:[/]")
        out.print(f"  {escape(result.apiserver_error.message)}")
        for other in result.apiserver_error.alternatives:
            out.print(f"  [dim]or, as its timers race:[/] {escape(other)}")
    if result.packets is not None:
        out.print(f"\n[bold]packets:[/] {escape(_packets_line(result.packets))}")
    if result.capture:
        out.print(f"[bold]capture:[/] {escape(result.capture)}")


_HOP_STYLE = {"ok": "green", "not-seen": "dim", "dropped": "bold red",
              "refused": "bold red", "failed": "bold red", "unobservable": "yellow",
              "skipped": "dim"}


def trace_text(result, stream: TextIO) -> None:
    """Writes the hop tree (culprit marked), the verdict, findings and captures."""
    from rich.tree import Tree

    out = _console(stream)
    endpoint = f" -> {result.endpoint}" if result.endpoint else ""
    noun = {"apiservice": "APIService", "kubelet": "kubelet"}.get(result.target_kind, "webhook")
    tree = Tree(f"[bold]{escape(result.configuration)}[/] {noun} {escape(result.webhook)}: "
                f"{escape(result.target)}{escape(endpoint)}")
    culprit = result.culprit.hop if result.culprit else None
    for hop in result.hops:
        style = _HOP_STYLE.get(hop.status.value, "")
        mark = " [bold red]<- culprit[/]" if hop.id == culprit else ""
        where = f" [dim]({escape(hop.interface)})[/]" if hop.interface else ""
        detail = f": {escape(hop.detail)}" if hop.detail else ""
        branch = tree.add(f"[{style}]{hop.status.value:<12}[/] {escape(hop.label)}{where}"
                          f"{detail}{mark}")
        said = result.apiserver_error.message if result.apiserver_error else None
        for item in hop.evidence:
            if item != said:  # printed in full below the tree
                branch.add(f"[dim]{escape(item)}[/]")
    out.print(tree)
    verdict = result.verdict
    colour = "green" if verdict.cls is VerdictClass.OK else "red"
    early = " [yellow](early verdict)[/]" if verdict.early else ""
    where = ""
    if result.culprit:
        parts = [result.culprit.hop] + [p for p in (result.culprit.node, result.culprit.pod) if p]
        where = " at " + " / ".join(parts)
    out.print(f"[bold {colour}]verdict: {verdict.cls}[/]{escape(where)}, "
              f"cause {verdict.cause}{early}")
    out.print(f"  {escape(verdict.explanation)}")
    if verdict.fix:
        out.print(f"  [bold]fix:[/] {escape(verdict.fix)}")
    if result.apiserver_error:
        out.print(f"  [bold]the apiserver will say:[/] {escape(result.apiserver_error.message)}")
        for other in result.apiserver_error.alternatives:
            out.print(f"  [dim]or, as its timers race:[/] {escape(other)}")
    for finding in result.findings:
        colour = {"error": "red", "warning": "yellow"}.get(finding.severity.value, "dim")
        out.print(f"  [{colour}]{finding.severity.value}[/] {finding.code}: "
                  f"{escape(finding.message)}")
    for capture in result.captures:
        out.print(f"  [bold]capture:[/] {escape(capture)}")
    for note in result.notes:
        out.print(f"  [yellow]note:[/] {escape(note)}")
    out.print("")


class progress:
    """A spinner with the current step on a terminal; silent otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self._console = Console(file=stream)
        self._status = None

    def __enter__(self):
        if self._console.is_terminal:
            self._status = self._console.status("starting")
            self._status.__enter__()
        return self.update

    def update(self, message: str) -> None:
        if self._status is not None:
            self._status.update(escape(message))

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)


def static_text(reports, stream: TextIO) -> None:
    """Findings per webhook path, errors first."""
    out = _console(stream)
    for report in reports:
        out.print(f"[bold]{escape(report.configuration)}[/] {report.noun} "
                  f"{escape(report.webhook)}: "
                  f"{escape(report.target)}")
        if not report.findings:
            out.print("  [green]no problem found without packets[/]")
        for finding in report.findings:
            colour = {"error": "red", "warning": "yellow"}.get(finding.severity.value, "dim")
            out.print(f"  [{colour}]{finding.severity.value}[/] {finding.code}: "
                      f"{escape(finding.message)}")
            out.print(f"    [bold]fix:[/] {escape(finding.fix)}")
        out.print("")
