"""Findings and the registry of finding codes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

import customer_model_factory
from customer_model_factory.findings import (
    FINDING_CODES,
    STAGE_PREFIXES,
    Finding,
    count_by_severity,
    has_errors,
    register_finding_codes,
    sort_findings,
)

PACKAGE = Path(customer_model_factory.__file__).parent


def _codes_used_in_the_package() -> dict[str, str]:
    """Every string literal of the package shaped like a finding code, with where it appears."""
    used: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "findings.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exported = {
            id(element)
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            for element in ast.walk(node.value)
        }
        for node in ast.walk(tree):
            if (
                id(node) not in exported
                and isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.startswith(STAGE_PREFIXES)
                and node.value not in STAGE_PREFIXES
                and node.value.replace("_", "").isalnum()
                and node.value.isupper()
                and not node.value.endswith("_")
            ):
                used.setdefault(node.value, f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return used


def test_every_code_used_in_the_package_is_registered():
    unregistered = {
        code: where
        for code, where in _codes_used_in_the_package().items()
        if code not in FINDING_CODES
    }
    assert unregistered == {}, "register these in findings.py: " + ", ".join(
        f"{code} ({where})" for code, where in sorted(unregistered.items())
    )


def test_every_registered_code_has_a_prefix_and_a_one_line_meaning():
    for code, meaning in FINDING_CODES.items():
        assert code.startswith(STAGE_PREFIXES), code
        assert meaning and "\n" not in meaning and meaning.endswith("."), code


def test_registry_is_read_only():
    with pytest.raises(TypeError):
        FINDING_CODES["DATASET_X"] = "nope"  # type: ignore[index]


def test_finding_rejects_malformed_codes():
    with pytest.raises(ValidationError):
        Finding(code="lower_case", severity="error", message="m")
    with pytest.raises(ValidationError):
        Finding(code="NOPREFIX_CODE", severity="error", message="m")
    with pytest.raises(ValidationError):
        Finding(code="DATASET_X", severity="fatal", message="m")


def test_findings_are_frozen_and_know_their_meaning():
    finding = Finding(code="MANIFEST_INVALID", severity="error", message="m")
    assert finding.meaning == FINDING_CODES["MANIFEST_INVALID"]
    with pytest.raises(ValidationError):
        finding.message = "changed"  # type: ignore[misc]


def test_sort_orders_lines_numerically_and_counts():
    findings = [
        Finding(code="MANIFEST_INVALID", severity="warning", message="m", location="a.jsonl:10"),
        Finding(code="MANIFEST_INVALID", severity="error", message="m", location="a.jsonl:9"),
        Finding(code="MANIFEST_INVALID", severity="info", message="m"),
    ]
    ordered = sort_findings(findings)
    assert [f.location for f in ordered] == [None, "a.jsonl:9", "a.jsonl:10"]
    assert has_errors(findings) and not has_errors(findings[::2])
    assert count_by_severity(findings) == {"error": 1, "warning": 1, "info": 1}


def test_packs_register_their_own_codes_once():
    register_finding_codes({"SECTOR_TEST_PACK_RULE": "A test pack's rule fired."}, owner="t")
    register_finding_codes({"SECTOR_TEST_PACK_RULE": "A test pack's rule fired."}, owner="t")
    assert FINDING_CODES["SECTOR_TEST_PACK_RULE"] == "A test pack's rule fired."
    with pytest.raises(ValueError, match="already registered"):
        register_finding_codes({"SECTOR_TEST_PACK_RULE": "Another meaning."}, owner="other")
    with pytest.raises(ValueError, match="UPPER_SNAKE"):
        register_finding_codes({"bad": "x."}, owner="t")
