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
    ReleaseDomain,
    RetrievalSchema,
    SectorPack,
    TrainingLaneSpec,
    hookimpl,
)
from customer_model_factory.plugin_api import (
    ReleaseCheckInput,
    TrainedScorer,
    TrainingExample,
    TrainingLane,
    hookspecs,
)
from customer_model_factory.plugins import (
    collect_benchmark_packages,
    collect_objective_profiles,
    collect_proprietary_identifiers,
    collect_release_checks,
    collect_release_domains,
    collect_retrieval_schemas,
    collect_sector_packs,
    collect_training_lanes,
    hook_names,
)
from customer_model_factory.stages.sector import (
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
    assert CMF_PLUGIN_API == hookspecs.CMF_PLUGIN_API == "1.2"
    assert hookimpl is hookspecs.hookimpl
    assert hookspecs.PROJECT_NAME == "customer_model_factory"


class _MeanScorer:
    def __init__(self, rate: float) -> None:
        self.rate = rate

    def score(self, prompts: Any, responses: Any) -> list[float]:
        return [self.rate for _ in prompts]

    def save(self, directory: Path) -> dict[str, str]:
        (directory / "rate.json").write_text(str(self.rate))
        return {"rate.json": "sha256:" + "0" * 64}


class _MeanLane:
    """A lane that learns the unsafe rate: the smallest thing that satisfies the protocol."""

    def fit(self, examples: Any, *, hyperparameters: Any, seed: int) -> _MeanScorer:
        return _MeanScorer(sum(e.unsafe for e in examples) / max(1, len(examples)))

    def load(self, directory: Path) -> _MeanScorer:
        return _MeanScorer(float((directory / "rate.json").read_text()))


class _Everything:
    """One plugin implementing every hook, for the per-hook tests."""

    CMF_PLUGIN_API = "1.2"

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
        return [
            TrainingLaneSpec(name="omega-lane", requires_private_execution=True, lane=_MeanLane())
        ]

    @hookimpl
    def cmf_release_checks(self, release: ReleaseCheckInput) -> list[Finding] | None:
        if release.environment == "development":
            return None
        return [Finding(code="RELEASE_OMEGA_UNAPPROVED", severity="error", message="unapproved")]

    @hookimpl
    def cmf_release_domains(self) -> list[ReleaseDomain]:
        return [
            ReleaseDomain(
                name="omega.audit",
                required_uris=("audit_report_uri",),
                required_checks=("auditor_signed",),
                required_in=("production",),
            )
        ]

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


def test_hook_cmf_training_lanes(everything: Any, tmp_path: Path) -> None:
    spec = collect_training_lanes(everything)[0]["omega-lane"]
    assert spec.requires_private_execution
    assert isinstance(spec.lane, TrainingLane)
    example = {"trace_id": "t", "prompt": "p", "response": "r", "severity": "low"}
    examples = [
        TrainingExample(**example, unsafe=True),
        TrainingExample(**example, unsafe=False),
    ]
    scorer = spec.lane.fit(examples, hyperparameters={}, seed=0)
    assert isinstance(scorer, TrainedScorer)
    scorer.save(tmp_path)
    assert spec.lane.load(tmp_path).score(["a", "b"], ["c", "d"]) == [0.5, 0.5]


def test_a_lane_that_is_not_a_training_lane_is_refused() -> None:
    with pytest.raises(ValueError, match="TrainingLane"):
        TrainingLaneSpec(name="x", requires_private_execution=False, lane=object())


def test_hook_cmf_release_checks(everything: Any) -> None:
    binding = {"customer_id": "c", "workspace_id": "w", "tenant_id": "t"}
    staging = ReleaseCheckInput(**binding, environment="staging")
    blockers, problems = collect_release_checks(staging, everything)
    assert [f.code for f in blockers] == ["RELEASE_OMEGA_UNAPPROVED"]
    development = ReleaseCheckInput(**binding, environment="development")
    assert collect_release_checks(development, everything) == ([], [])
    assert problems == []


def test_a_release_check_taking_the_deprecated_mapping_still_runs_and_warns() -> None:
    class Legacy:
        CMF_PLUGIN_API = "1.0"

        @hookimpl
        def cmf_release_checks(self, context: Mapping[str, Any]) -> list[Finding]:
            return [Finding(code="RELEASE_OLD", severity="error", message=context["tenant_id"])]

    with registered(Legacy(), name="legacy") as pm:
        (note,) = [f for f in pm.findings if f.code == "PLUGIN_DEPRECATED"]
        assert "release: ReleaseCheckInput" in note.message and note.severity == "warning"
        release = ReleaseCheckInput(customer_id="c", workspace_id="w", tenant_id="t-9")
        (blocker,), problems = collect_release_checks(release, pm)
        assert blocker.message == "t-9" and problems == []


def test_hook_cmf_release_domains(everything: Any) -> None:
    domains, findings = collect_release_domains(everything)
    assert list(domains) == ["omega.audit"] and findings == []
    assert domains["omega.audit"].required_in == ("production",)


def test_a_release_domain_requiring_nothing_or_naming_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ReleaseDomain(name="empty")
    with pytest.raises(ValueError, match="twice"):
        ReleaseDomain(name="twice", required_checks=("a", "a"))
    with pytest.raises(ValueError, match="lower-case id"):
        ReleaseDomain(name="Upper", required_checks=("a",))


def test_hook_cmf_proprietary_identifiers(everything: Any) -> None:
    (rules,), findings = collect_proprietary_identifiers(everything)
    assert rules.path_globs == ("**/omega_private/**",)
    assert findings == []


def test_release_input_carries_typed_artefact_refs_and_the_legacy_mapping() -> None:
    from customer_model_factory.plugin_api import ArtefactRef, build_sector_evidence_mapping

    mapping = build_sector_evidence_mapping(
        sector_id="omega", jurisdiction="US", evidence_pack_uri="file:///omega/"
    )
    ref = ArtefactRef(kind=mapping.KIND, hash=mapping.content_digest, manifest=mapping)
    release = ReleaseCheckInput(
        customer_id="c", workspace_id="w", tenant_id="t", sector_evidence=(ref,)
    )
    legacy = release.as_mapping()
    assert legacy["sector_evidence"] == (mapping,)
    assert legacy["tenant_id"] == "t" and legacy["evidence_pack"] is None
    with pytest.raises(ValueError, match="pattern"):
        ArtefactRef(kind="x", hash="md5:abc")
    with pytest.raises(ValueError, match="frozen"):
        release.tenant_id = "other"  # type: ignore[misc]
