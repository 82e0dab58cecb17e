"""`--pcapng` and `--graph` on the command line: files written, bad paths one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netprobe import analysis
from netprobe.present import export
from netprobe.trace import saved
from tests.unit.people.tshark_fields import comment_field, needs_tshark, rows

ROOT = Path(__file__).resolve().parents[3]
CAPTURES = ROOT / "captures"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netprobe", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def _one_line_error(done: subprocess.CompletedProcess[str], words: str) -> None:
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and words in errors[0], done.stderr
    assert "Traceback" not in done.stderr


@needs_tshark
def test_analyze_writes_one_annotated_pcapng(tmp_path: Path) -> None:
    files = [CAPTURES / "io-timeout" / "control-plane-replay-0.pcap",
             CAPTURES / "rst-middlebox" / "control-plane-1-replay-0.pcap",
             CAPTURES / "ok" / "worker-1-capture.pcap"]
    out = tmp_path / "all.pcapng"
    done = _run("analyze", *map(str, files), "--pcapng", str(out), "-o", "json")
    assert done.returncode == 1, done.stderr  # failures diagnosed
    assert done.stdout.startswith("{")  # stdout stays the JSON; the note goes to stderr
    assert f"wrote {out}: 47 packets" in done.stderr
    got = rows(out, "frame.interface_name", comment_field())
    assert len(got) == sum(len(analysis.read(f)) for f in files)
    comments = [c for _, c in got if c]
    assert "netprobe: stream 0: io-timeout: SYN retransmitted, never answered" in comments
    assert "netprobe: stream 0: connection-refused: SYN answered by RST" in comments
    assert {n.split("/")[0] for n, _ in got} == {f.name for f in files}


@pytest.mark.parametrize("target,words", [
    ("missing/x.pcapng", "no such directory"),
    (".", "is a directory"),
])
def test_analyze_bad_pcapng_path(tmp_path: Path, target: str, words: str) -> None:
    capture = CAPTURES / "ok" / "worker-1-capture.pcap"
    done = _run("analyze", str(capture), "--pcapng", str(tmp_path / target))
    _one_line_error(done, words)
    assert done.stdout == ""  # refused before the analysis


@pytest.mark.parametrize("option,target,words", [
    ("--graph", "g.bmp", "unknown graph format '.bmp'"),
    ("--graph", "g", "unknown graph format '(no suffix)'"),
    ("--graph", "missing/g.png", "no such directory"),
    ("--pcapng", "missing/x.pcapng", "no such directory"),
    ("--pcapng", ".", "is a directory"),
])
def test_trace_bad_output_paths_fail_before_the_trace(tmp_path: Path, option: str, target: str,
                                                      words: str) -> None:
    # no snapshot nor cluster is needed: the paths are checked first
    done = _run("trace", "webhook", "--snapshot", str(tmp_path / "none.yaml"), option,
                str(tmp_path / target))
    _one_line_error(done, words)


def test_trace_outputs_after_a_trace(tmp_path: Path) -> None:
    """What `trace webhook --pcapng --graph` does with its results (the trace needs the lab)."""
    traces = saved.load_trace(CAPTURES / "ok")
    results = [t.result.__class__(**{**t.result.__dict__,
                                     "captures": tuple(str(p) for p in t.paths)})
               for t in traces]
    lines = export.people_outputs(results, tmp_path / "ok.pcapng", tmp_path / "hops.svg")
    assert lines[0].startswith(f"wrote {tmp_path / 'ok.pcapng'}: 112 packets from 7 interfaces")
    assert lines[1:] == [f"wrote {tmp_path / 'hops-1.svg'}", f"wrote {tmp_path / 'hops-2.svg'}"]
    assert (tmp_path / "hops-2.svg").read_text().count("<svg") == 1


def test_capture_folder_is_scratch_only_when_needed(tmp_path: Path) -> None:
    with export.capture_folder(None, needed=False) as folder:
        assert folder is None
    with export.capture_folder(tmp_path, needed=True) as folder:
        assert folder == tmp_path
    with export.capture_folder(None, needed=True) as folder:
        assert folder is not None and folder.is_dir()
    assert not folder.exists()
