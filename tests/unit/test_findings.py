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
    pack_code_problem,
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


def test_pack_codes_are_checked_but_never_enter_the_process_registry():
    assert pack_code_problem("SECTOR_TEST_PACK_RULE") is None
    assert pack_code_problem("RELEASE_TEST_PACK_GATE") is None
    assert "SECTOR_TEST_PACK_RULE" not in FINDING_CODES
    assert "core's codes" in pack_code_problem("SECTOR_METADATA_MISSING")
    assert "UPPER_SNAKE" in pack_code_problem("bad")
    assert "SECTOR_ or RELEASE_" in pack_code_problem("DATASET_MINE")


def test_two_plugin_managers_never_see_each_others_pack_codes():
    from customer_model_factory import SectorPack, hookimpl
    from customer_model_factory.testing import registered

    class Pack:
        CMF_PLUGIN_API = "1.1"

        @hookimpl
        def cmf_sector_packs(self):
            codes = {"SECTOR_ONE_RULE": "A rule of pack one."}
            return [SectorPack(id="one", version="1", title="One", jurisdiction="EU",
                               finding_codes=codes)]  # fmt: skip

    with registered(Pack(), name="one") as first, registered(Pack(), name="one-b") as second:
        assert first.finding_codes() == {"SECTOR_ONE_RULE": "A rule of pack one."}
        assert second.finding_codes() == first.finding_codes()
    from customer_model_factory.testing import fresh_plugin_manager

    assert fresh_plugin_manager().finding_codes() == {}
    assert "SECTOR_ONE_RULE" not in FINDING_CODES
