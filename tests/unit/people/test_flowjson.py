"""`analyze -o json` flows written from columns equal the straightforward construction.

The reference is `flowjson.flow_dicts` (one dict per flow, as `analyze -o json`
built them before) dumped by orjson: the columnar writer, compiled and in
Python, must give the same bytes, and the same values and types once parsed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netprobe import _native
from netprobe.analysis import pipeline
from netprobe.cli import analyze as analyze_cli
from netprobe.cli import cli
from netprobe.core import errors
from netprobe.present import flowjson
from tests import craft
from tests.unit.analysis.test_generated import NAMES, _variants

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / ".." / "shared" / "corpus" / "tcpdump" / "tests"
CORPUS_FILES = sorted(CORPUS.glob("*")) if CORPUS.is_dir() else []
CAPTURES = sorted(p for p in (ROOT / "captures").rglob("*") if p.suffix in (".pcap", ".pcapng"))
STRINGS = ["", "ok", "é", "☃ snow", "a\"b\\c", "tab\tnew\nline\r\x00\x01\x1f\x7f", "\u2028\u2029",
           "𝄞 outside the BMP", "</script>", "x" * 300]


def typed(value: Any) -> Any:
    """`value` with each scalar's type beside it (1, 1.0 and True differ); JSON has no
    infinity or NaN: like orjson, they are null."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    return (type(value).__name__, value)


def assert_same_json(flows: flowjson.Table, order: np.ndarray) -> None:
    """Compiled and Python writers give the bytes of orjson over the dicts, and its values."""
    expected = flowjson.flow_dicts(flows, order)
    ref = orjson.dumps(expected)
    for native in ([False, True] if _native.module("jsonrows") else [False]):
        got = b"[" + b"".join(flowjson.flow_json(flows, order, native=native)) + b"]"
        assert got == ref, f"native={native}"
        assert typed(json.loads(got)) == typed(expected)


def _analysis(path: Path) -> pipeline.Analysis | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pipeline.analyse(path)
        except errors.CaptureFormatError:
            return None  # unreadable before its first packet: no flows


def test_compiled_module_is_built() -> None:
    assert _native.module("jsonrows") is not None, "run scripts/build_native.sh jsonrows"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.name for p in CORPUS_FILES])
def test_corpus(path: Path) -> None:
    result = _analysis(path)
    if result is not None:
        assert_same_json(result.flows, flowjson.flow_order(result.flows))


@pytest.mark.parametrize("path", CAPTURES, ids=[str(p.relative_to(ROOT)) for p in CAPTURES])
def test_captures(path: Path) -> None:
    result = _analysis(path)
    assert result is not None
    assert_same_json(result.flows, flowjson.flow_order(result.flows))


def test_crafted_variants_and_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flowjson, "ROWS_PER_PIECE", 3)  # several pieces, commas between them
    variants = _variants(tmp_path)
    for name in NAMES:
        result = _analysis(variants[name])
        assert result is not None
        assert_same_json(result.flows, flowjson.flow_order(result.flows))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> flowjson.Table:
    """The flow table of every crafted scenario (IPv4 and IPv6, ICMP, TLS alerts)."""
    path = craft.write_pcap(tmp_path_factory.mktemp("crafted") / "all.pcap", craft.everything())
    return pipeline.analyse(path).flows


def _rows(table: flowjson.Table, n: int) -> flowjson.Table:
    """`table`'s rows repeated to `n` rows, streams renumbered."""
    picked = {k: np.resize(v, n) for k, v in table.items()}
    picked["stream"] = np.arange(n, dtype=picked["stream"].dtype)
    return picked


def test_empty_table(base: flowjson.Table) -> None:
    flows = _rows(base, 0)
    assert list(flowjson.flow_json(flows, flowjson.flow_order(flows))) == []
    assert_same_json(flows, flowjson.flow_order(flows))


def test_absent_and_odd_values(base: flowjson.Table) -> None:
    flows = _rows(base, 12)
    n = 12
    flows["handshake_rtt"] = np.array([math.nan, math.inf, -math.inf, -0.0, 0.0, 1e-7, 1e22, 5e-324,
                                       1.7976931348623157e308, 0.1, 1e16, 123.456])
    flows["first_time"] = np.full(n, math.nan)  # a whole column of null
    for name in flowjson.NULL_IF_NEGATIVE:
        flows[name] = np.array([-1, 0, 1, 255, -2**63, 2**63 - 1] * 2, flows[name].dtype)
    flows["packets"] = np.array([0, 1, -1, 2**63 - 1, -2**63, 10**18] * 2, np.int64)
    flows["reason"] = np.array((STRINGS * 2)[:n], dtype=object)
    flows["verdict"] = np.array(["ok", "io-timeout", "unknown"] * 4, dtype=object)
    assert_same_json(flows, flowjson.flow_order(flows))


def test_a_new_column_of_any_dtype(base: flowjson.Table,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a field is one name: every dtype a column may have is written as the dicts are."""
    extra = {
        "key_id": np.array([-1, 0, 4096, 2**24 - 1], np.int32),
        "kind": np.array(["", "vxlan", "gre", "geneve"], dtype="U8"),
        "outer": np.array([np.str_(""), "10.0.0.1", "fd00::ü", "\n"], dtype=object),
        "encapsulated": np.array([True, False, True, False]),
        "big": np.array([0, 1, 2**64 - 1, 2**63], np.uint64),
        "small": np.array([0, 255, 7, 1], np.uint8),
        "ratio": np.array([0.1, np.nan, 1.5, -2.25], np.float32),
        "wireshark": np.array([None, {"a": [1, "é"]}, ["x", 1.5], 1], dtype=object),
        "mixed": np.array([1, True, 1.0, "1"], dtype=object),
    }
    monkeypatch.setattr(flowjson, "FLOW_FIELDS", (*flowjson.FLOW_FIELDS, *extra))
    monkeypatch.setattr(flowjson, "NULL_IF_NEGATIVE", flowjson.NULL_IF_NEGATIVE | {"key_id"})
    monkeypatch.setattr(flowjson, "NULL_IF_EMPTY", flowjson.NULL_IF_EMPTY | {"kind", "outer"})
    flows = {**_rows(base, 4), **extra}
    assert_same_json(flows, flowjson.flow_order(flows))
    row = json.loads(b"[" + b"".join(flowjson.flow_json(flows, np.arange(4))) + b"]")[1]
    assert (row["key_id"], row["kind"], row["encapsulated"]) == (0, "vxlan", False)
    assert row["mixed"] is True


def ints(n: int) -> st.SearchStrategy[np.ndarray]:
    return st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n).map(
        lambda v: np.array(v, np.int64))


def floats(n: int) -> st.SearchStrategy[np.ndarray]:
    return st.lists(st.floats(), min_size=n, max_size=n).map(lambda v: np.array(v, float))


def strings(n: int) -> st.SearchStrategy[np.ndarray]:
    return st.lists(st.one_of(st.sampled_from(STRINGS), st.text()), min_size=n, max_size=n).map(
        lambda v: np.array([*v, None], dtype=object)[:-1])


COLUMNS = {"packets": ints, "rst_ttl": ints, "handshake_rtt": floats, "last_time": floats,
           "reason": strings, "verdict": strings}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_columns(base: flowjson.Table, data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 20))
    flows = _rows(base, n)
    for name, values in COLUMNS.items():
        flows[name] = data.draw(values(n))
    order = np.array(data.draw(st.permutations(range(n))), np.int64)
    assert_same_json(flows, order)


def _shortening(objects: list[Any]) -> Any:
    def encode(value: Any) -> bytes:
        objects.clear()
        return orjson.dumps(value)
    return encode


SHORTENED: list[Any] = [1.5, 2.5]


@pytest.mark.skipif(_native.module("jsonrows") is None, reason="jsonrows not built")
@pytest.mark.parametrize(("columns", "n", "error"), [
    ([(b'"a":', 0, np.zeros(3, np.int64), False)], 2, ValueError),
    ([(b'"a":', 0, np.zeros(2, np.int32), False)], 2, TypeError),
    ([(b'"a":', 1, (["x"], {}, orjson.dumps), False)], 2, ValueError),
    ([(b'"a":', 1, ["x", "y"], False)], 2, TypeError),
    ([(b'"a":', 1, (["x", "y"], {}, str), False)], 2, TypeError),  # encode gives no bytes
    ([(b'"a":', 1, ([{1}], {}, orjson.dumps), False)], 1, TypeError),  # encode raises
    ([(b'"a":', 1, (SHORTENED, {}, _shortening(SHORTENED)), False)], 2, ValueError),
    ([(b'"a":', 2, b"1,2,3", False)], 2, ValueError),
    ([(b'"a":', 2, b"1", False)], 2, ValueError),
    ([(b'"a":', 2, b"1", False)], 0, ValueError),
    ([(b'"a":', 2, "1,2", False)], 2, TypeError),
    ([(b'"a":', 7, b"", False)], 0, ValueError),
    ([(b'"a":', 0, np.zeros(2, np.int64))], 2, TypeError),
    ([[b'"a":', 0, np.zeros(2, np.int64), False]], 2, TypeError),
    ([], -1, ValueError),
])
def test_compiled_rows_refuse_bad_columns(columns: list[Any], n: int,
                                          error: type[Exception]) -> None:
    rows = _native.module("jsonrows").rows  # type: ignore[union-attr]
    with pytest.raises(error):
        rows(columns, n)


def test_object_columns_encode_each_string_once() -> None:
    """The cache is kept from piece to piece: a string is encoded once; other objects
    every time (a dict would take 1 for True)."""
    calls: list[Any] = []

    def encode(value: Any) -> bytes:
        calls.append(value)
        return orjson.dumps(value)

    modules = [_native.module("jsonrows")] if _native.module("jsonrows") else []
    for rows in [m.rows for m in modules] + [flowjson._join_rows]:  # type: ignore[union-attr]
        calls.clear()
        cache: dict[Any, bytes] = {"": b"null"}
        for _ in range(2):
            column = (b'"a":', flowjson.OBJECTS, (["x", "", None, 1, True, "x"], cache, encode),
                      False)
            assert rows([column], 6) == (b'{"a":"x"},{"a":null},{"a":null},{"a":1},{"a":true},'
                                         b'{"a":"x"}')
        assert calls.count("x") == 1 and calls.count(None) == 1 and "" not in calls
        assert [c for c in calls if c == 1] == [1, True, 1, True]


def _document(paths: list[str]) -> dict[str, Any]:
    """The whole `-o json` document, built the straightforward way (json, dicts)."""
    captures = []
    for path in paths:
        report, result = analyze_cli._analyse(path)
        flows = ([] if result is None else
                 flowjson.flow_dicts(result.flows, flowjson.flow_order(result.flows)))
        captures.append({**{k: report[k] for k in ("path", "error", "warnings", "totals",
                                                    "encrypted")},
                         "flows": flows,
                         **{k: report[k] for k in ("flow_count", "failed", "damaged")}})
    return json.loads(json.dumps({"schema": "netprobe.io/v1", "kind": "AnalyzeReport",
                                  "version": analyze_cli.JSON_VERSION, "captures": captures}))


def test_whole_document(tmp_path: Path) -> None:
    """Several captures: crafted, damaged, empty, unreadable, unicode and control characters
    in the path (and so in the warnings)."""
    folder = tmp_path / "ünï cödé ☃"
    folder.mkdir()
    crafted = craft.write_pcap(folder / 'all "quoted"\t.pcap', craft.everything())
    damaged = folder / "damaged\n.pcap"
    damaged.write_bytes(crafted.read_bytes()[:-7])
    empty = craft.write_pcap(folder / "empty.pcap", [])
    garbage = folder / "garbage.pcap"
    garbage.write_bytes(b"not a capture at all")
    paths = [str(p) for p in (crafted, damaged, empty, garbage)]
    if (CORPUS / "empty.pcapng").exists():
        shutil.copy(CORPUS / "empty.pcapng", folder / "é.pcapng")
        paths.append(str(folder / "é.pcapng"))
    done = CliRunner().invoke(cli, ["analyze", "-o", "json", *paths])
    assert done.exit_code == 2, done.output
    doc = json.loads(done.stdout)
    assert typed(doc) == typed(_document(paths))
    assert doc["captures"][1]["damaged"] and doc["captures"][3]["error"]
    assert list(doc["captures"][0]) == ["path", "error", "warnings", "totals", "encrypted", "flows",
                                        "flow_count", "failed", "damaged"]


def test_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    """Its bytes come back as Python read them (\\udcXX escapes), instead of exit 3."""
    name = os.fsdecode(bytes(tmp_path) + b"/caf\xe9 \xff.pcap")
    Path(name).write_bytes(craft.write_pcap(tmp_path / "all.pcap", craft.everything()).read_bytes())
    done = CliRunner().invoke(cli, ["analyze", "-o", "json", name])
    assert done.exit_code == 1, done.output
    capture = json.loads(done.stdout)["captures"][0]
    assert os.fsencode(capture["path"]) == os.fsencode(name)
    assert typed(capture["flows"]) == typed(_document([name])["captures"][0]["flows"])
