"""`netprobe analyze FILE...`: verdicts and totals from capture files alone.

Owns: rendering `netprobe.analysis.pipeline` results as a table or JSON and
choosing the exit code (0 nothing wrong, 1 a failure diagnosed in some flow,
2 unreadable or damaged input, 3 netprobe failed).
Must not: decide verdicts or parse packets; keep imports light (no pandas,
scapy or matplotlib on this path).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click
import orjson

from netprobe.core import errors, settings
from netprobe.core.exits import ExitCode, diagnosed
from netprobe.present import flowjson

JSON_VERSION = 1
TEXT_ROWS_PER_PIECE = 4096  # flows turned into dicts at a time (--limit 0 on a huge capture)


def _flow_pieces(analysis: Any | None, limit: int,
                 dissection: Any | None = None) -> Iterator[list[dict[str, Any]]]:
    """The flows of an analysis as dicts, a piece at a time, suspicious first.

    With a DISSECTION (`--dissect`), each flow has a `wireshark` field (null if not dissected).
    """
    if analysis is None:
        return
    order = flowjson.flow_order(analysis.flows, limit)
    extra = _wireshark_column(analysis, dissection)
    for lo in range(0, len(order), TEXT_ROWS_PER_PIECE):
        yield flowjson.flow_dicts(analysis.flows, order[lo: lo + TEXT_ROWS_PER_PIECE], extra)


def _analyse(path: str, kept: list[Any] | None = None) -> tuple[dict[str, Any], Any | None]:
    """The report of one file (without its flows) and the analysis behind it (None on error).

    The analysis is also appended to `kept` when given.
    """
    from netprobe.analysis import pipeline

    try:
        result = pipeline.analyse(path)
    except errors.CaptureFormatError as exc:
        return {"path": path, "error": str(exc), "warnings": [], "totals": None,
                "encrypted": [], "flow_count": 0, "failed": False, "damaged": False}, None
    except errors.NetprobeError:
        raise
    except Exception as exc:  # a bug of ours: exit 3 with a message, never a traceback
        raise errors.NetprobeError(f"analysing {path}: internal error: {exc!r}") from exc
    if kept is not None:
        kept.append(result)
    warnings = list(result.capture.notes)
    if result.capture.damage:
        warnings.insert(0, result.capture.damage)
    return {"path": path, "error": None, "warnings": warnings, "totals": result.totals,
            "encrypted": [link.as_json() for link in result.encrypted],
            "flow_count": len(result.flows["stream"]), "failed": _failed(result),
            "damaged": bool(result.capture.damage)}, result


def _write_json_report(report: dict[str, Any], analysis: Any | None, first: bool,
                       dissection: Any | None = None) -> None:
    """One element of `captures`, its flows written from the flow table a piece at a time."""
    head = {k: report[k] for k in ("path", "error", "warnings", "totals", "encrypted")}
    click.echo((b"" if first else b",") + _dumps(head)[:-1] + b',"flows":[', nl=False)
    if analysis is not None:
        for piece in flowjson.flow_json(analysis.flows, flowjson.flow_order(analysis.flows),
                                        extra=_wireshark_column(analysis, dissection)):
            click.echo(piece, nl=False)
    tail = {k: report[k] for k in ("flow_count", "failed", "damaged")}
    if dissection is not None:
        from netprobe.present.dissection import capture_json

        tail["dissect"] = capture_json(dissection)
    click.echo(b"]," + orjson.dumps(tail)[1:], nl=False)


def _wireshark_column(analysis: Any, dissection: Any | None) -> dict[str, Any] | None:
    """`--dissect`'s `wireshark` field of every flow (null where not dissected)."""
    if dissection is None:
        return None
    import numpy as np

    from netprobe.present.dissection import flow_json

    views = [flow_json(dissection.views.get(int(stream))) for stream in analysis.flows["stream"]]
    column = np.empty(len(views), dtype=object)
    column[:] = views
    return {"wireshark": column}


def _dumps(head: dict[str, Any]) -> bytes:
    """orjson's JSON of `head`; the json module's when a path is not valid UTF-8.

    Python keeps such a file name's bytes as lone surrogates, which orjson
    refuses; json writes them as `\\udcXX` escapes, which Python reads back
    as the same name (`os.fsencode`).
    """
    try:
        return orjson.dumps(head)
    except TypeError:
        import json

        return json.dumps(head, separators=(",", ":")).encode()


def _failed(result: Any) -> bool:
    from netprobe.core import rules

    return bool(rules.failed(result.flows["verdict"]).any())


def _exit_code(reports: list[dict[str, Any]]) -> int:
    if any(r["error"] or r["warnings"] for r in reports):
        return ExitCode.USAGE
    return diagnosed(any(r.get("failed") for r in reports))


def _fmt_rtt(value: float | None) -> str:
    return "" if value is None else f"{value * 1000:.1f}"


TABLE_COLUMNS = ("stream", "client", "server", "verdict", "why", "SYN(retx)", "RST", "ICMP",
                 "hello C/S", "rtt ms", "data retx")
TUNNEL_COLUMN = "tunnel"  # shown only when a listed flow crossed one
ENCRYPTED_SHOWN = 5  # encrypted links named in the text output, the busiest first
VERDICT_COLOURS = {"ok": "green", "inconclusive": "yellow", "unknown": "yellow"}  # else red


def _table_row(f: dict[str, Any]) -> list[str]:
    """The text table's cells for one flow."""
    rst = ("server" + (f" ttl={f['rst_ttl']}" if f["rst_ttl"] is not None else "")
           if f["rst_server"] else ("client" if f["rst_client"] else ""))
    icmp = f"{f['icmp_type']}/{f['icmp_code']} from {f['icmp_from']}" if f["icmp_errors"] else ""
    return [str(f["stream"]), f"{f['client']}:{f['client_port']}",
            f"{f['server']}:{f['server_port']}", f["verdict"], f["reason"],
            f"{f['syn']}({f['syn_retransmissions']})", rst, icmp,
            f"{f['client_hello']}/{f['server_hello']}", _fmt_rtt(f["handshake_rtt"]),
            str(f["data_retransmissions"])]


def _tunnel_cell(f: dict[str, Any]) -> str:
    """`vxlan/42 192.168.0.1>192.168.0.2`: kind/VNI, the client's node > the server's."""
    if f["tunnel"] is None:
        return ""
    vni = "" if f["vni"] is None else f"/{f['vni']}"
    return f"{f['tunnel']}{vni} {f['outer_client']}>{f['outer_server']}"


def _encrypted_lines(report: dict[str, Any]) -> list[str]:
    """One note per encrypted link (the busiest first): the flows inside are not seen."""
    links = report["encrypted"]
    lines = [f"  note: {link['kind']} between {link['endpoints'][0]} and {link['endpoints'][1]}: "
             f"{link['packets']} encrypted packet{'' if link['packets'] == 1 else 's'}; the flows "
             "inside cannot be seen in this capture (capture inside the tunnel: the pod's veth "
             "or the tunnel's interface)"
             for link in links[:ENCRYPTED_SHOWN]]
    if len(links) > ENCRYPTED_SHOWN:
        lines.append(f"  note: ... {len(links) - ENCRYPTED_SHOWN} more encrypted links (-o json)")
    return lines


def _render_text(report: dict[str, Any], analysis: Any, limit: int,
                 dissection: Any | None = None) -> None:
    """Path, totals and the flow table, suspicious flows first.

    A plain aligned table (no table library: rendering 50 rows with one cost
    a fifth of the whole command on a million packets); verdicts and the path
    are coloured on a terminal only (click strips styles when piped).
    """
    click.secho(report["path"], bold=True)
    click.echo("  " + "  ".join(f"{k}={v}" for k, v in report["totals"].items()))
    for line in _encrypted_lines(report):
        click.echo(line)
    flows = [row for piece in _flow_pieces(analysis, limit, dissection) for row in piece]
    if flows:
        rows = [_table_row(f) for f in flows]
        columns: tuple[str, ...] = TABLE_COLUMNS
        if any(f["tunnel"] is not None for f in flows):
            columns += (TUNNEL_COLUMN,)
            rows = [row + [_tunnel_cell(f)] for row, f in zip(rows, flows, strict=True)]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(columns)]
        header = (h.ljust(w) for h, w in zip(columns, widths, strict=True))
        click.echo("  ".join(header).rstrip())
        click.echo("  ".join("-" * w for w in widths))
        for f, row in zip(flows, rows, strict=True):
            cells = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
            cells[3] = click.style(cells[3], fg=VERDICT_COLOURS.get(f["verdict"], "red"))
            click.echo("  ".join(cells).rstrip())
            if dissection is not None and f["stream"] in dissection.views:
                from netprobe.present.dissection import flow_lines

                click.echo("\n".join(flow_lines(dissection.views[f["stream"]])))
    if report["flow_count"] > len(flows):
        click.echo(f"  ... {report['flow_count'] - len(flows)} more flows "
                   "(use --limit 0 or -o json)")
    if dissection is not None:
        from netprobe.present.dissection import capture_line

        click.echo(capture_line(dissection))


def _dissect(path: str, analysis: Any, limit: int, timeout: float,
             missing: list[str]) -> Any:
    """Wireshark's view of the capture's suspicious flows (`--dissect`).

    A tshark that cannot be found is said once on stderr (and kept in MISSING);
    analyze goes on without it, as it does when tshark fails on one file.
    """
    from netprobe import analysis as analysis_api
    from netprobe.analysis import wireshark

    if not missing:
        try:
            dissection = analysis_api.dissect(path, analysis.flows, limit=limit, timeout=timeout)
        except errors.UsageError as exc:  # tshark missing or NETPROBE_TSHARK wrong
            missing.append(str(exc))
            click.echo(f"netprobe: warning: --dissect: {exc}", err=True)
        else:
            if dissection.error:
                click.echo(f"netprobe: warning: --dissect: {path}: {dissection.error}", err=True)
            return dissection
    suspicious = wireshark.suspicious_rows(analysis.flows["verdict"], analysis.flows["stream"])
    return wireshark.not_run(missing[0], len(suspicious), limit, timeout)


@click.command("analyze")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@click.option("--limit", type=int, default=50, show_default=True,
              help="Text output: flows shown per capture, suspicious first (0: all).")
@click.option("--dissect", is_flag=True,
              help="Also run Wireshark's dissectors (tshark, via pyshark) on the flows whose "
                   "verdict is not ok: expert info, TLS alerts, HTTP status, HTTP/2 "
                   "RST_STREAM/GOAWAY per flow.")
@click.option("--dissect-limit", type=click.IntRange(min=1), default=settings.DISSECT_LIMIT,
              show_default=True, help="--dissect: flows dissected per capture, most "
                                      "suspicious first.")
@click.option("--dissect-timeout", type=click.FloatRange(min=0, min_open=True),
              default=settings.DISSECT_TIMEOUT, show_default=True,
              help="--dissect: seconds tshark may take per capture (it reads ~50k packets/s).")
@click.option("--pcapng", "pcapng", type=click.Path(),
              help="Also write all FILEs into one pcapng for Wireshark: each flow whose verdict "
                   "is not ok carries its verdict and evidence as packet comments.")
@click.pass_context
def analyze(ctx: click.Context, files: tuple[str, ...], output: str, limit: int,
            dissect: bool, dissect_limit: int, dissect_timeout: float,
            pcapng: str | None) -> None:
    """Diagnose webhook connections from capture FILEs (pcap/pcapng, gzip/zstd)."""
    kept: list[Any] | None = None
    if pcapng:
        from netprobe.present import export

        export.check_writable(pcapng)  # before the work: a usage error, exit 2
        kept = []
    reports: list[dict[str, Any]] = []
    missing: list[str] = []  # why tshark cannot run, once known
    if output == "json":
        click.echo(f'{{"schema":"netprobe.io/v1","kind":"AnalyzeReport","version":{JSON_VERSION:d},'
                   '"captures":[', nl=False)
    for path in files:  # one capture in memory at a time (unless --pcapng keeps them)
        report, analysis = _analyse(path, kept)
        dissection = (_dissect(path, analysis, dissect_limit, dissect_timeout, missing)
                      if dissect and analysis is not None else None)
        if output == "json":
            _write_json_report(report, analysis, first=not reports, dissection=dissection)
        elif analysis is not None:
            _render_text(report, analysis, limit, dissection)
        reports.append(report)
        del analysis
    if output == "json":
        click.echo("]}")
    for report in reports:
        for message in ([report["error"]] if report["error"] else []) + report["warnings"]:
            level = "error" if report["error"] else "warning"
            click.echo(f"netprobe: {level}: {message}", err=True)
    if pcapng and kept:
        from netprobe.present import export

        written = export.analysis_pcapng(kept, pcapng)
        click.echo(f"netprobe: wrote {pcapng}: {written.packets} packets, {written.comments} "
                   f"comments, {len(written.interfaces)} interfaces", err=True)
    ctx.exit(_exit_code(reports))
