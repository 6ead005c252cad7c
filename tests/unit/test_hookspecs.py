"""Hook specs: their documentation, their contract, and one test per hook.

Meta-tests stop drift: every hook needs a ``test_hook_<name>`` here and a ``### <name>`` section
in ``docs/plugin-authoring.md``, and every spec docstring says when it is called, what it gets,
what it returns and whether it is ``firstresult``.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from customer_model_factory import (
    CMF_PLUGIN_API,
    BenchmarkPackage,
    Finding,
    MetricConstraint,
    ObjectiveProfile,
    ProprietaryIdentifiers,
    RetrievalSchema,
    SectorPack,
    TrainingLaneSpec,
    hookimpl,
    hookspecs,
)
from customer_model_factory.plugins import (
    collect_benchmark_packages,
    collect_objective_profiles,
    collect_proprietary_identifiers,
    collect_release_checks,
    collect_retrieval_schemas,
    collect_sector_packs,
    collect_training_lanes,
    hook_names,
)
from customer_model_factory.sector import (
    build_sector_evidence_mapping,
    sector_evidence_mappings,
    validate_sector_trace_metadata,
)
from customer_model_factory.testing import fresh_plugin_manager, registered

_DOCS = Path(__file__).parents[2] / "docs" / "plugin-authoring.md"


def _specs() -> list[tuple[str, Any]]:
    return [(name, getattr(hookspecs, name)) for name in hook_names()]


def test_every_hook_has_a_test_here() -> None:
    module = sys.modules[__name__]
    missing = [name for name in hook_names() if not hasattr(module, f"test_hook_{name}")]
    assert missing == [], f"add test_hook_<name> for {missing}"


def test_every_hook_has_a_docs_section() -> None:
    text = _DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `?(cmf_\w+)`?", text, flags=re.MULTILINE))
    missing = sorted(set(hook_names()) - documented)
    assert missing == [], f"document {missing} in {_DOCS}"


@pytest.mark.parametrize(("name", "spec"), _specs())
def test_spec_docstring_follows_the_template(name: str, spec: Any) -> None:
    doc = inspect.getdoc(spec) or ""
    assert "Called" in doc, f"{name}: say when it is called"
    assert ":returns:" in doc, f"{name}: say what it returns"
    assert "firstresult" in doc, f"{name}: say whether it is firstresult"
    assert ".. versionadded::" in doc
    for parameter in inspect.signature(spec).parameters:
        assert f":param {parameter}:" in doc, f"{name}: document {parameter}"


@pytest.mark.parametrize(("name", "spec"), _specs())
def test_hooks_are_prefixed_and_never_firstresult_or_historic(name: str, spec: Any) -> None:
    assert name.startswith("cmf_")
    opts = fresh_plugin_manager().hook.__dict__[name].spec.opts
    assert not opts["firstresult"]
    assert not opts["historic"]


def test_package_root_exports_what_packs_need() -> None:
    assert CMF_PLUGIN_API == hookspecs.CMF_PLUGIN_API == 1
    assert hookimpl is hookspecs.hookimpl
    assert hookspecs.PROJECT_NAME == "customer_model_factory"


class _Everything:
    """One plugin implementing every hook, for the per-hook tests."""

    CMF_PLUGIN_API = 1

    @hookimpl
    def cmf_sector_packs(self) -> list[SectorPack]:
        return [SectorPack(id="omega", version="2", title="Omega", jurisdiction="US")]

    @hookimpl
    def cmf_validate_sector_metadata(
        self, sector_id: str, trace: Mapping[str, Any], metadata: Mapping[str, Any]
    ) -> list[Finding] | None:
        if metadata.get("tier") == "gold":
            return []
        return [Finding(code="SECTOR_OMEGA_TIER", severity="warning", message=sector_id)]

    @hookimpl
    def cmf_evidence_mappings(self, sector_id: str) -> list[Any] | None:
        return [
            build_sector_evidence_mapping(
                sector_id=sector_id, jurisdiction="US", evidence_pack_uri="file:///omega/"
            )
        ]

    @hookimpl
    def cmf_retrieval_schemas(self) -> list[RetrievalSchema]:
        return [RetrievalSchema(id="omega.docs", version="1", json_schema={"type": "object"})]

    @hookimpl
    def cmf_benchmark_packages(self) -> list[BenchmarkPackage]:
        return [
            BenchmarkPackage(
                id="omega.bench",
                version="1",
                trace_source="omega.jsonl",
                claim_boundary="none",
                thresholds=(MetricConstraint(metric="recall", op=">=", value=0.8),),
            )
        ]

    @hookimpl
    def cmf_objective_profiles(self) -> list[ObjectiveProfile]:
        return [ObjectiveProfile(name="omega", score_weights={"recall": 1.0})]

    @hookimpl
    def cmf_training_lanes(self) -> list[TrainingLaneSpec]:
        return [TrainingLaneSpec(name="omega-lane", requires_private_execution=True, train=len)]

    @hookimpl
    def cmf_release_checks(self, context: Mapping[str, Any]) -> list[Finding] | None:
        if context.get("approved"):
            return None
        return [Finding(code="RELEASE_OMEGA_UNAPPROVED", severity="error", message="unapproved")]

    @hookimpl
    def cmf_proprietary_identifiers(self) -> list[ProprietaryIdentifiers]:
        return [ProprietaryIdentifiers(source="omega", path_globs=("**/omega_private/**",))]


@pytest.fixture
def everything() -> Any:
    with registered(_Everything(), name="omega-pack") as pm:
        yield pm


def test_hook_cmf_sector_packs(everything: Any) -> None:
    packs, findings = collect_sector_packs(everything)
    assert packs["omega"].jurisdiction == "US"
    assert findings == []


def test_hook_cmf_validate_sector_metadata(everything: Any) -> None:
    metadata = {"sector_class": "a", "knowledge_class": "b", "jurisdiction": "US"}
    trace = {"trace_id": "o-1", "vertical": "omega", "metadata": metadata}
    (finding,) = validate_sector_trace_metadata(trace, pm=everything)
    assert (finding.code, finding.message, finding.trace_id) == (
        "SECTOR_OMEGA_TIER",
        "omega",
        "o-1",
    )
    gold = {**trace, "metadata": {**metadata, "tier": "gold"}}
    assert validate_sector_trace_metadata(gold, pm=everything) == []


def test_hook_cmf_evidence_mappings(everything: Any) -> None:
    (mapping,), findings = sector_evidence_mappings("omega", everything)
    assert (mapping.sector_id, mapping.jurisdiction, findings) == ("omega", "US", [])


def test_hook_cmf_retrieval_schemas(everything: Any) -> None:
    assert list(collect_retrieval_schemas(everything)[0]) == ["omega.docs"]


def test_hook_cmf_benchmark_packages(everything: Any) -> None:
    package = collect_benchmark_packages(everything)[0]["omega.bench"]
    assert package.claim_boundary == "none"
    assert package.thresholds[0].holds(0.8)
    assert not package.thresholds[0].holds(0.79)


def test_hook_cmf_objective_profiles(everything: Any) -> None:
    profiles = collect_objective_profiles(everything)[0]
    assert profiles["omega"].score_weights == {"recall": 1.0}
    assert "balanced" in profiles


def test_hook_cmf_training_lanes(everything: Any) -> None:
    lane = collect_training_lanes(everything)[0]["omega-lane"]
    assert lane.requires_private_execution
    assert lane.train([1, 2]) == 2


def test_hook_cmf_release_checks(everything: Any) -> None:
    blockers, problems = collect_release_checks({"approved": False}, everything)
    assert [f.code for f in blockers] == ["RELEASE_OMEGA_UNAPPROVED"]
    assert collect_release_checks({"approved": True}, everything) == ([], [])
    assert problems == []


def test_hook_cmf_proprietary_identifiers(everything: Any) -> None:
    (rules,), findings = collect_proprietary_identifiers(everything)
    assert rules.path_globs == ("**/omega_private/**",)
    assert findings == []
