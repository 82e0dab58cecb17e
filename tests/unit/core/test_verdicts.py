"""One verdict vocabulary: the enums, the rule table and the documentation agree."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from netprobe.core import rules
from netprobe.core.verdicts import UNDECIDED, Cause, VerdictClass

ROOT = Path(__file__).resolve().parents[3]


def _table_rows(text: str, heading: str) -> list[list[str]]:
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| `")]


def test_readme_lists_exactly_the_replay_classes_and_their_causes() -> None:
    rows = _table_rows((ROOT / "README.md").read_text(), "### Verdict classes")
    documented = {row[0].strip("`") for row in rows}
    assert documented == {c.value for c in VerdictClass if c not in UNDECIDED}
    causes = {cause for row in rows for cause in re.findall(r"`([a-z0-9-]+)`", row[2])}
    refined = re.findall(r"`([a-z-]+)`", (ROOT / "README.md").read_text()
                         .split("- **Verdict** = the replay's class", 1)[1].split("\n\n", 1)[0])
    named = causes | set(refined)
    assert {c.value for c in Cause} <= named | {"http-NNN"}
    assert named - {c.value for c in VerdictClass} <= {c.value for c in Cause} | {"http-NNN"}


def test_packet_rules_are_the_documented_ones_in_order() -> None:
    rows = _table_rows((ROOT / "docs" / "analyze.md").read_text(), "### Verdicts (packets only)")
    documented = [set(re.findall(r"`([a-z0-9-]+)`", row[0])) for row in rows]
    table = [rule.flows.cls.value for rule in rules.RULES if rule.flows is not None]
    position = 0
    for row in documented:  # one row may document several consecutive rules
        assert table[position] in row, (position, table[position], row)
        while position < len(table) and table[position] in row:
            position += 1
    assert position == len(table)


def test_every_rule_has_a_side_and_a_class_of_the_vocabulary() -> None:
    for rule in rules.RULES:
        assert rule.replay is not None or rule.flows is not None, rule.name
        if rule.flows is not None:
            assert isinstance(rule.flows.cls, VerdictClass)
    assert rules.RULES[-1].replay is not None and rules.RULES[-1].flows is None


def test_path_rules_only_name_known_causes() -> None:
    for rule in rules.PATH_RULES:
        assert isinstance(rule.cls, VerdictClass) and isinstance(rule.cause, Cause)


def test_flow_severity_puts_failures_first() -> None:
    verdicts = np.array(["ok", "inconclusive", "io-timeout", "unknown", "x509-expired"], object)
    assert rules.severity(verdicts).tolist() == [2, 1, 0, 1, 0]
    assert rules.failed(verdicts).tolist() == [False, False, True, False, True]


def test_classes_print_as_their_contract_names() -> None:
    assert f"{VerdictClass.IO_TIMEOUT}" == "io-timeout" == str(VerdictClass.IO_TIMEOUT)
    assert Cause.http_status(503) == "http-503"
