"""Sector extension: the generic contract, dispatch to the owning pack, evidence mappings."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError

from customer_model_factory import Finding, SectorPack, hookimpl
from customer_model_factory.catalog import SCHEMA_MODELS, load_model
from customer_model_factory.errors import ManifestIntegrityError
from customer_model_factory.plugins import create_plugin_manager
from customer_model_factory.stages.sector import (
    DEFAULT_CONTROL_EVIDENCE,
    DEFAULT_SECTOR_FRAMEWORKS,
    SectorEvidenceMapping,
    SectorMetadata,
    build_sector_evidence_mapping,
    sector_evidence_mappings,
    validate_generic_sector_metadata,
    validate_sector_trace_metadata,
)
from customer_model_factory.testing import fresh_plugin_manager, registered


class _Owner:
    """A pack owning one sector whose rule flags traces without a ``desk``."""

    CMF_PLUGIN_API = "1.1"

    def __init__(self, sector: str) -> None:
        self.sector = sector
        self.pack_calls = 0
        self.validated: list[str] = []

    @hookimpl
    def cmf_sector_packs(self) -> list[SectorPack]:
        self.pack_calls += 1
        return [SectorPack(id=self.sector, version="1", title="T", jurisdiction="EU")]

    @hookimpl
    def cmf_validate_sector_metadata(
        self, sector_id: str, metadata: Mapping[str, Any]
    ) -> list[Finding] | None:
        self.validated.append(sector_id)
        if "desk" in metadata:
            return []
        return [
            Finding(code="SECTOR_TEST_DESK", severity="error", message="no desk", field="x"),
        ]

    @hookimpl
    def cmf_evidence_mappings(self, sector_id: str) -> list[Any] | None:
        if sector_id != self.sector:
            return None
        return [
            build_sector_evidence_mapping(
                sector_id=sector_id, jurisdiction="EU", evidence_pack_uri="file:///e/"
            )
        ]


def _trace(**metadata: Any) -> dict[str, Any]:
    base = {"sector_class": "s", "knowledge_class": "k", "jurisdiction": "EU"}
    return {
        "trace_id": "t-1",
        "vertical": "alpha",
        "expected_decision": "approve",
        "metadata": {**base, **metadata},
    }


def _codes(findings: list[Finding]) -> list[str]:
    return [finding.code for finding in findings]


# ---- the generic contract ----


def test_trace_without_metadata_gets_sector_metadata_missing() -> None:
    (finding,) = validate_generic_sector_metadata({"trace_id": "t-9"}, location="a.jsonl:3")
    assert finding.code == "SECTOR_METADATA_MISSING"
    assert (finding.trace_id, finding.field, finding.location) == ("t-9", "metadata", "a.jsonl:3")


def test_each_missing_or_mistyped_generic_field_is_named() -> None:
    findings = validate_generic_sector_metadata(
        {"metadata": {"sector_class": " ", "knowledge_class": 3, "requires_citation": "yes"}}
    )
    assert [(f.code, f.field) for f in findings] == [
        ("SECTOR_METADATA_MISSING", "metadata.sector_class"),
        ("SECTOR_METADATA_INVALID", "metadata.knowledge_class"),
        ("SECTOR_METADATA_MISSING", "metadata.jurisdiction"),
        ("SECTOR_METADATA_INVALID", "metadata.requires_citation"),
    ]


@pytest.mark.parametrize(
    ("metadata", "decision", "code", "field"),
    [
        ({"requires_citation": True}, "approve", "SECTOR_CITATION_REQUIRED", "evidence_refs"),
        (
            {"requires_citation": True, "evidence_refs": [""]},
            "approve",
            "SECTOR_CITATION_REQUIRED",
            "evidence_refs",
        ),
        (
            {"requires_numeric_evidence": True, "numeric_evidence_refs": []},
            "approve",
            "SECTOR_NUMERIC_EVIDENCE_MISSING",
            "numeric_evidence_refs",
        ),
        ({"requires_escalation": True}, "block", "SECTOR_ESCALATION_REQUIRED", None),
    ],
)
def test_flags_require_their_evidence(
    metadata: dict[str, Any], decision: str, code: str, field: str | None
) -> None:
    trace = _trace(**metadata)
    trace["expected_decision"] = decision
    (finding,) = validate_generic_sector_metadata(trace)
    assert finding.code == code
    assert finding.field == (f"metadata.{field}" if field else "expected_decision")
    assert finding.trace_id == "t-1"


def test_flags_met_give_no_finding() -> None:
    trace = _trace(
        requires_citation=True,
        evidence_refs=["doc://a"],
        requires_numeric_evidence=True,
        numeric_evidence_refs=["doc://rates"],
        requires_escalation=True,
    )
    trace["expected_decision"] = "escalate"
    assert validate_generic_sector_metadata(trace) == []


_values = st.one_of(
    st.none(), st.booleans(), st.text(max_size=3), st.integers(), st.lists(st.text(max_size=2))
)


@given(
    st.fixed_dictionaries(
        {},
        optional=dict.fromkeys(
            (
                "sector_class",
                "knowledge_class",
                "jurisdiction",
                "requires_citation",
                "requires_numeric_evidence",
                "requires_escalation",
                "evidence_refs",
                "numeric_evidence_refs",
            ),
            _values,
        ),
    ),
    st.sampled_from(["approve", "escalate"]),
)
def test_fast_generic_check_agrees_with_the_published_model(
    metadata: dict[str, Any], decision: str
) -> None:
    """Wherever the published model accepts metadata, the per-row check flags exactly the
    flag rules the model's values break."""
    findings = validate_generic_sector_metadata(
        {"metadata": metadata, "expected_decision": decision}
    )
    try:
        model = SectorMetadata.model_validate(metadata)
    except ValidationError:
        required = ("sector_class", "knowledge_class", "jurisdiction")
        if any(not isinstance(metadata.get(k), str) or not metadata[k].strip() for k in required):
            assert findings
        return
    expected = set()
    if model.requires_citation and not model.evidence_refs:
        expected.add("SECTOR_CITATION_REQUIRED")
    if model.requires_numeric_evidence and not model.numeric_evidence_refs:
        expected.add("SECTOR_NUMERIC_EVIDENCE_MISSING")
    if model.requires_escalation and decision != "escalate":
        expected.add("SECTOR_ESCALATION_REQUIRED")
    assert set(_codes(findings)) == expected


# ---- dispatch ----


def test_owner_rules_run_and_only_the_owner_is_called() -> None:
    alpha, beta = _Owner("alpha"), _Owner("beta")
    pm = fresh_plugin_manager()
    with registered(alpha, pm, name="alpha-pack"), registered(beta, pm, name="beta-pack"):
        findings = validate_sector_trace_metadata(_trace(), pm=pm, location="f.jsonl:7")
        (finding,) = findings
        assert finding.code == "SECTOR_TEST_DESK"
        # The core completes what the pack left out.
        assert (finding.trace_id, finding.location) == ("t-1", "f.jsonl:7")
        assert alpha.validated == ["alpha"]
        assert beta.validated == []
        assert validate_sector_trace_metadata(_trace(desk="fx"), pm=pm) == []


def test_owner_is_resolved_once_for_many_traces() -> None:
    owner = _Owner("alpha")
    with registered(owner) as pm:
        for _ in range(50):
            validate_sector_trace_metadata(_trace(desk="fx"), pm=pm)
        assert owner.pack_calls == 1
        assert len(owner.validated) == 50


def test_unknown_sector_gets_sector_unknown_after_the_generic_contract() -> None:
    with registered(_Owner("alpha")) as pm:
        trace = _trace(requires_citation=True)
        trace["vertical"] = "gamma"
        findings = validate_sector_trace_metadata(trace, pm=pm, location="x.jsonl:1")
        assert _codes(findings) == ["SECTOR_CITATION_REQUIRED", "SECTOR_UNKNOWN"]
        assert findings[1].field == "vertical"
        assert "'gamma'" in findings[1].message


def test_sector_id_argument_overrides_vertical_and_no_sector_means_no_check() -> None:
    with registered(_Owner("alpha")) as pm:
        trace = _trace(desk="fx")
        del trace["vertical"]
        assert validate_sector_trace_metadata(trace, pm=pm) == []
        assert validate_sector_trace_metadata(trace, sector_id="alpha", pm=pm) == []
        assert _codes(validate_sector_trace_metadata(trace, sector_id="zeta", pm=pm)) == [
            "SECTOR_UNKNOWN"
        ]


def test_pack_validator_that_raises_or_returns_junk_fails_closed() -> None:
    class Raising(_Owner):
        @hookimpl
        def cmf_validate_sector_metadata(self, trace: Mapping[str, Any]) -> Any:
            if trace.get("junk"):
                return ["not a finding"]
            raise KeyError("desk")

    with registered(Raising("alpha"), name="raising-pack") as pm:
        (failure,) = validate_sector_trace_metadata(_trace(), pm=pm)
        assert failure.code == "PLUGIN_HOOK_FAILED"
        assert failure.severity == "error"
        assert "'raising-pack'" in failure.message
        assert "KeyError" in failure.message
        assert failure.trace_id == "t-1"
        junk = _trace()
        junk["junk"] = True
        (invalid,) = validate_sector_trace_metadata(junk, pm=pm)
        assert "returned a str, not a Finding" in invalid.message


def test_owner_without_a_validator_gets_the_generic_contract_only() -> None:
    class PacksOnly:
        CMF_PLUGIN_API = "1.1"

        @hookimpl
        def cmf_sector_packs(self) -> list[SectorPack]:
            return [SectorPack(id="alpha", version="1", title="T", jurisdiction="EU")]

    with registered(PacksOnly()) as pm:
        assert validate_sector_trace_metadata(_trace(), pm=pm) == []


def test_example_pack_rules_run_for_its_vertical() -> None:
    pytest.importorskip("cmf_example_retail_banking")
    pm = create_plugin_manager(environ={})
    trace = {
        "trace_id": "rb-x",
        "vertical": "example-retail-banking",
        "severity": "critical",
        "expected_decision": "approve",
        "metadata": {
            "sector_class": "retail_banking",
            "knowledge_class": "policy",
            "jurisdiction": "UK",
            "product_line": "current_account",
            "channel": "web_chat",
            "customer_segment": "vulnerable",
            "regulatory_topic": "fraud_scam",
        },
    }
    findings = validate_sector_trace_metadata(trace, pm=pm, location="t.jsonl:1")
    assert _codes(findings) == ["SECTOR_RETAIL_BANKING_VULNERABLE_ESCALATION"]
    assert findings[0].location == "t.jsonl:1"


# ---- evidence mappings ----


def test_default_mapping_uses_the_reference_frameworks_and_controls() -> None:
    mapping = build_sector_evidence_mapping(
        sector_id="alpha", jurisdiction="EU", evidence_pack_uri="file:///e/"
    )
    assert mapping.frameworks == DEFAULT_SECTOR_FRAMEWORKS == ("ISO27001", "ISO42001", "SOC2")
    assert sorted(mapping.control_evidence) == [
        "audit_logging",
        "customer_data_protection",
        "dataset_lineage",
        "document_grounding",
        "human_escalation",
        "model_risk",
    ]
    assert mapping.control_evidence == dict(DEFAULT_CONTROL_EVIDENCE)
    assert mapping.ready
    assert mapping.mapping_hash == mapping.compute_hash()


def test_mapping_is_deterministic_whatever_the_input_order() -> None:
    one = build_sector_evidence_mapping(
        sector_id="a",
        jurisdiction="EU",
        evidence_pack_uri="file:///e/",
        frameworks=("SOC2", "EU-AI-Act", "SOC2"),
        control_evidence={"b": ["y", "x"], "a": ("z",)},
    )
    two = build_sector_evidence_mapping(
        sector_id="a",
        jurisdiction="EU",
        evidence_pack_uri="file:///e/",
        frameworks=("EU-AI-Act", "SOC2"),
        control_evidence={"a": ["z"], "b": ("x", "y", "x")},
    )
    assert one.mapping_hash == two.mapping_hash
    assert one.to_json_bytes() == two.to_json_bytes()
    assert one.frameworks == ("EU-AI-Act", "SOC2")


def test_empty_control_or_no_framework_makes_the_mapping_not_ready() -> None:
    mapping = build_sector_evidence_mapping(
        sector_id="a",
        jurisdiction="EU",
        evidence_pack_uri="file:///e/",
        frameworks=(),
        control_evidence={"audit_logging": [" "]},
    )
    assert not mapping.ready
    assert [(f.code, f.field) for f in mapping.findings] == [
        ("SECTOR_EVIDENCE_CONTROL_EMPTY", "control_evidence.audit_logging"),
        ("SECTOR_EVIDENCE_NO_FRAMEWORK", "frameworks"),
    ]


def test_mapping_round_trips_and_tampering_is_caught(tmp_path: Path) -> None:
    mapping = build_sector_evidence_mapping(
        sector_id="a", jurisdiction="EU", evidence_pack_uri="file:///e/"
    )
    assert "customer_id" not in mapping.payload()  # a pack-level mapping binds no customer
    path = mapping.write(tmp_path / "mapping.json")
    assert SectorEvidenceMapping.load(path) == mapping
    payload = json.loads(path.read_text())
    payload["jurisdiction"] = "US"
    path.write_text(json.dumps(payload))
    with pytest.raises(ManifestIntegrityError, match="mapping_hash mismatch"):
        SectorEvidenceMapping.load(path)


def test_plugins_give_evidence_mappings_for_their_sector_only() -> None:
    with registered(_Owner("alpha")) as pm:
        mappings, findings = sector_evidence_mappings("alpha", pm)
        assert findings == []
        assert [m.sector_id for m in mappings] == ["alpha"]
        assert sector_evidence_mappings("beta", pm) == ([], [])


def test_tampered_mapping_from_a_plugin_is_rejected() -> None:
    class Tamperer(_Owner):
        @hookimpl
        def cmf_evidence_mappings(self, sector_id: str) -> list[Any]:
            good = build_sector_evidence_mapping(
                sector_id=sector_id, jurisdiction="EU", evidence_pack_uri="file:///e/"
            )
            return [good.model_copy(update={"jurisdiction": "US"}), good.payload(), 42]

    with registered(Tamperer("alpha"), name="tamperer") as pm:
        mappings, findings = sector_evidence_mappings("alpha", pm)
        assert len(mappings) == 1
        assert [f.code for f in findings] == ["PLUGIN_INVALID_CONTRIBUTION"] * 2
        assert "hash does not verify" in findings[0].message


def test_sector_models_are_published_in_the_catalog() -> None:
    assert load_model("sector-evidence-mapping") is SectorEvidenceMapping
    assert load_model("sector-metadata") is SectorMetadata
    assert SCHEMA_MODELS["sector-metadata"] == "customer_model_factory.stages.sector:SectorMetadata"
    committed = Path(__file__).parents[2] / "schemas"
    for name in ("sector-metadata", "sector-evidence-mapping"):
        assert (committed / f"customer-model-factory-{name}.schema.json").exists(), (
            "run `cmf schemas export`"
        )


def test_a_declared_metadata_schema_is_enforced_even_when_the_pack_accepts_everything() -> None:
    class Permissive:
        CMF_PLUGIN_API = "1.1"

        def __init__(self, **declared: Any) -> None:
            self.declared = declared

        @hookimpl
        def cmf_sector_packs(self) -> list[SectorPack]:
            return [
                SectorPack(id="strict", version="1", title="S", jurisdiction="EU", **self.declared)
            ]

        @hookimpl
        def cmf_validate_sector_metadata(self, sector_id: str) -> list[Finding]:
            return []  # accepts everything

    class Model(BaseModel):
        model_config = ConfigDict(extra="allow")
        tier: Literal["gold", "silver"]

    schema = {
        "type": "object",
        "required": ["tier"],
        "properties": {"tier": {"enum": ["gold", "silver"]}},
    }
    metadata = {"sector_class": "a", "knowledge_class": "b", "jurisdiction": "EU"}
    for declared in ({"metadata_model": Model}, {"metadata_schema": schema}):
        with registered(Permissive(**declared), name="permissive") as pm:
            good = {
                "trace_id": "t1",
                "vertical": "strict",
                "metadata": {**metadata, "tier": "gold"},
            }
            assert validate_sector_trace_metadata(good, pm=pm, location="f:1") == []
            secret = "AKIAIOSFODNN7EXAMPLE"
            bad = {"trace_id": "t2", "vertical": "strict", "metadata": {**metadata, "tier": secret}}
            (finding,) = validate_sector_trace_metadata(bad, pm=pm, location="f:2")
            assert (finding.code, finding.field, finding.location, finding.trace_id) == (
                "SECTOR_METADATA_SCHEMA",
                "metadata.tier",
                "f:2",
                "t2",
            )
            assert secret not in finding.message  # the rule broken, never the value
            missing = {"trace_id": "t3", "vertical": "strict", "metadata": metadata}
            (finding,) = validate_sector_trace_metadata(missing, pm=pm)
            assert finding.field == "metadata.tier"


def test_an_unsealed_evidence_mapping_spec_is_sealed_by_the_core() -> None:
    from customer_model_factory.plugin_api import EvidenceMappingSpec

    class SpecOwner(_Owner):
        @hookimpl
        def cmf_evidence_mappings(self, sector_id: str) -> list[Any]:
            return [
                EvidenceMappingSpec(
                    sector_id=sector_id,
                    jurisdiction="EU",
                    evidence_pack_uri="file:///e/",
                    frameworks=("SOC2", "ISO27001", "SOC2"),
                ),
                EvidenceMappingSpec(sector_id="other", jurisdiction="EU", evidence_pack_uri="x"),
            ]

    with registered(SpecOwner("alpha"), name="spec-owner") as pm:
        (mapping,), findings = sector_evidence_mappings("alpha", pm)
        assert mapping.frameworks == ("ISO27001", "SOC2")
        assert mapping.compute_hash() == mapping.mapping_hash
        assert [f.code for f in findings] == ["PLUGIN_INVALID_CONTRIBUTION"]
        assert "another sector" in findings[0].message
