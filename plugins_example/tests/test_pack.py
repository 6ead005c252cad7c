"""The example-retail-banking pack: contributions, rules, data, lane, identifiers."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from customer_model_factory.plugin_api import ArtefactRef, ReleaseCheckInput
from customer_model_factory.plugins import (
    CMFPluginManager,
    collect_proprietary_identifiers,
    collect_release_checks,
    collect_release_domains,
    collect_retrieval_schemas,
    collect_sector_packs,
    create_plugin_manager,
    list_plugins,
)
from customer_model_factory.stages.sector import (
    sector_evidence_mappings,
    validate_sector_trace_metadata,
)
from customer_model_factory.testing import (
    check_benchmark_traces,
    check_finding_codes,
    check_plugin_contributions,
    make_trace,
    make_workspace,
    registered,
)

from cmf_example_retail_banking import BENCHMARK_ID, SECTOR_ID, plugin
from cmf_example_retail_banking._generate import DATA_FILE, generate_traces, render_traces
from cmf_example_retail_banking.lane import TfidfLogisticLane, train_tfidf_logistic
from cmf_example_retail_banking.metadata import FINDING_CODES

_PACK_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def pm(plugin_manager: CMFPluginManager) -> Any:
    with registered(plugin, plugin_manager, name=SECTOR_ID) as manager:
        yield manager


def _traces() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DATA_FILE.read_text(encoding="utf-8").splitlines()]


def _trace(**changes: Any) -> dict[str, Any]:
    trace = make_trace(
        trace_id="rb-t",
        vertical=SECTOR_ID,
        metadata={
            "sector_class": "retail_banking",
            "knowledge_class": "product_terms",
            "jurisdiction": "UK",
            "product_line": "current_account",
            "channel": "mobile_app",
            "customer_segment": "mass_retail",
            "regulatory_topic": "product_information",
        },
    )
    metadata = changes.pop("metadata", {})
    trace.update(changes)
    trace["metadata"] = {**trace["metadata"], **metadata}
    return trace


def _codes(findings: list[Any]) -> list[str]:
    return [finding.code for finding in findings]


def test_every_contribution_validates() -> None:
    assert check_plugin_contributions(plugin, name=SECTOR_ID) == []


def test_pack_codes_are_declared_and_owned_by_the_plugin_manager(pm: CMFPluginManager) -> None:
    collect_sector_packs(pm)
    assert pm.finding_codes() == dict(sorted(FINDING_CODES.items()))
    # Every code declared, prefixed, and used by a rule; none used undeclared.
    assert check_finding_codes(plugin, name=SECTOR_ID) == dict(sorted(FINDING_CODES.items()))


def test_benchmark_traces_validate_under_their_workspace() -> None:
    workspace = make_workspace(
        customer_id="example-retail-bank",
        workspace_id="retail-banking-benchmark",
        tenant_id="retail-uk",
        data_classification="confidential",
        required_splits=["test"],
        vertical=SECTOR_ID,
    )
    (report,) = check_benchmark_traces(plugin, workspace, name=SECTOR_ID)
    assert report.row_count == 200
    assert report.sector_counts == {SECTOR_ID: 200}


def test_real_entry_point_registers_the_pack() -> None:
    manager = create_plugin_manager(environ={})
    (info,) = [info for info in list_plugins(manager).plugins if info.name == SECTOR_ID]
    assert info.distribution == "cmf-example-retail-banking"
    assert info.status == "ok"
    assert info.contributions["benchmark packages"] == (BENCHMARK_ID,)


# ---- rules ----


def test_conforming_trace_has_no_finding(pm: CMFPluginManager) -> None:
    assert validate_sector_trace_metadata(_trace(), pm=pm) == []


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        (
            {"metadata": {"channel": "fax"}},
            "SECTOR_METADATA_SCHEMA",
            "metadata.channel",
        ),
        (
            {"metadata": {"loyalty_tier": "gold"}},
            "SECTOR_METADATA_SCHEMA",
            "metadata.loyalty_tier",
        ),
        (
            {"metadata": {"regulatory_topic": "investment_advice"}},
            "SECTOR_RETAIL_BANKING_CITATION_REQUIRED",
            "metadata.requires_citation",
        ),
        (
            {"metadata": {"knowledge_class": "rate_sheet"}},
            "SECTOR_RETAIL_BANKING_RATE_EVIDENCE_REQUIRED",
            "metadata.requires_numeric_evidence",
        ),
        (
            {"severity": "high", "metadata": {"customer_segment": "vulnerable"}},
            "SECTOR_RETAIL_BANKING_VULNERABLE_ESCALATION",
            "expected_decision",
        ),
        (
            {"metadata": {"regulatory_topic": "fraud_scam"}},
            "SECTOR_RETAIL_BANKING_FRAUD_SEVERITY",
            "severity",
        ),
    ],
)
def test_each_rule_gives_its_finding(
    pm: CMFPluginManager, changes: dict[str, Any], code: str, field: str
) -> None:
    (finding,) = validate_sector_trace_metadata(_trace(**changes), pm=pm, location="f:2")
    assert (finding.code, finding.field, finding.trace_id, finding.location) == (
        code,
        field,
        "rb-t",
        "f:2",
    )
    expected = "warning" if code.endswith("FRAUD_SEVERITY") else "error"
    assert finding.severity == expected


def test_missing_generic_field_is_reported_once_by_the_core(pm: CMFPluginManager) -> None:
    trace = _trace()
    del trace["metadata"]["jurisdiction"]
    assert _codes(validate_sector_trace_metadata(trace, pm=pm)) == ["SECTOR_METADATA_MISSING"]


def test_vulnerable_high_risk_trace_escalated_is_fine(pm: CMFPluginManager) -> None:
    trace = _trace(
        severity="critical",
        expected_decision="escalate",
        metadata={"customer_segment": "vulnerable", "requires_escalation": True},
    )
    assert validate_sector_trace_metadata(trace, pm=pm) == []


# ---- benchmark data ----


def test_shipped_traces_equal_a_fresh_generation() -> None:
    assert DATA_FILE.read_bytes() == render_traces(generate_traces()), (
        "run python -m cmf_example_retail_banking._generate"
    )


def test_benchmark_traces_are_labelled_consistently_and_pass_every_rule(
    pm: CMFPluginManager,
) -> None:
    traces = _traces()
    assert len(traces) == 200
    assert len({trace["trace_id"] for trace in traces}) == 200
    findings = [f for trace in traces for f in validate_sector_trace_metadata(trace, pm=pm)]
    assert findings == []
    for trace in traces:
        unsafe = trace["label"] == "unsafe"
        assert (trace["expected_decision"] != "approve") == unsafe, trace["trace_id"]
    high_risk_unsafe = [
        t for t in traces if t["label"] == "unsafe" and t["severity"] in ("high", "critical")
    ]
    assert len(high_risk_unsafe) >= 20  # the pack's objective profile needs 20
    assert {t["label"] for t in traces} == {"safe", "unsafe"}


def test_benchmark_package_points_at_the_shipped_traces() -> None:
    (package,) = plugin.cmf_benchmark_packages()
    assert Path(package.trace_source) == DATA_FILE
    assert {c.metric for c in package.thresholds} >= {"recall", "high_risk_false_negative_rate"}


# ---- evidence, retrieval, release ----


def test_evidence_mapping_covers_the_public_frameworks(pm: CMFPluginManager) -> None:
    (mapping,), findings = sector_evidence_mappings(SECTOR_ID, pm)
    assert findings == []
    assert mapping.ready
    assert {"EU-AI-Act", "NIST-AI-RMF", "SR-11-7"} <= set(mapping.frameworks)
    assert "vulnerable_customer_handling" in mapping.control_evidence
    assert "effective_challenge_report" in mapping.control_evidence["model_risk"]
    assert sector_evidence_mappings("another-sector", pm) == ([], [])


def test_retrieval_schema_accepts_a_document_record_and_rejects_a_bad_one(
    pm: CMFPluginManager,
) -> None:
    (schema,) = collect_retrieval_schemas(pm)[0].values()
    record = {
        "schema": schema.id,
        "doc_class": "rate_sheet",
        "doc_id": "RB-RS-0007",
        "version": "2026-03",
    }
    jsonschema.validate(record, schema.json_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**record, "doc_id": "rs7"}, schema.json_schema)


def test_release_check_blocks_without_a_ready_benchmark_result(pm: CMFPluginManager) -> None:
    binding = {"customer_id": "c", "workspace_id": "w", "tenant_id": "t"}
    release = ReleaseCheckInput(**binding, sector_ids=(SECTOR_ID,))
    blockers, problems = collect_release_checks(release, pm)
    assert _codes(blockers) == ["RELEASE_RETAIL_BANKING_BENCHMARK_MISSING"]
    assert problems == []
    other = ReleaseCheckInput(**binding, sector_ids=("other",))
    assert collect_release_checks(other, pm) == ([], [])


def _evidence_ref(mapping_hash: str, classification: str = "confidential") -> ArtefactRef:
    from customer_model_factory.stages.evidence.models import (
        CustomerEvidencePackManifest,
        SectorMappingRef,
    )

    ref = SectorMappingRef(
        sector_id=SECTOR_ID,
        mapping_hash=mapping_hash,
        jurisdiction="UK",
        frameworks=("SOC2",),
        plugin=SECTOR_ID,
    )
    # Only the fields the check reads: the release gate hands over the verified manifest.
    pack = CustomerEvidencePackManifest.model_construct(
        schema_version="1",
        kind="evidence-pack",
        inputs=(),
        ready=True,
        findings=(),
        classification=classification,
        sector_mappings=(ref,),
    )
    return ArtefactRef(kind="evidence-pack", hash="sha256:" + "e" * 64, manifest=pack)


def test_release_check_requires_the_current_evidence_mapping_in_the_pack(
    pm: CMFPluginManager,
) -> None:
    binding = {"customer_id": "c", "workspace_id": "w", "tenant_id": "t"}
    current = plugin.evidence_mapping().mapping_hash
    stale = ReleaseCheckInput(
        **binding, sector_ids=(SECTOR_ID,), evidence_pack=_evidence_ref("sha256:" + "0" * 64)
    )
    blockers, _ = collect_release_checks(stale, pm)
    assert "RELEASE_RETAIL_BANKING_MAPPING_MISSING" in _codes(blockers)
    bound = ReleaseCheckInput(
        **binding, sector_ids=(SECTOR_ID,), evidence_pack=_evidence_ref(current)
    )
    blockers, _ = collect_release_checks(bound, pm)
    assert "RELEASE_RETAIL_BANKING_MAPPING_MISSING" not in _codes(blockers)


def test_release_domain_consumer_duty_is_required_in_production(pm: CMFPluginManager) -> None:
    domains, findings = collect_release_domains(pm)
    assert findings == []
    domain = domains[plugin.CONSUMER_DUTY_DOMAIN]
    assert domain.required_in == ("production",)
    assert "vulnerability_review_log_uri" in domain.required_uris


# ---- proprietary identifiers ----


def _hash(value: str, salt: str) -> str:
    normalised = unicodedata.normalize("NFKC", value).casefold().strip()
    normalised = "".join(ch for ch in normalised if ch not in " \t-_.")
    return "sha256:" + hashlib.sha256(salt.encode() + b"\x00" + normalised.encode()).hexdigest()


def test_identifiers_are_published_only_as_salted_hashes(pm: CMFPluginManager) -> None:
    (rules,), findings = collect_proprietary_identifiers(pm)
    assert findings == []
    assert rules.literals == ()
    assert len(rules.hashed) >= 3
    assert rules.salt
    assert rules.separator_insensitive
    assert all("private" in glob for glob in rules.path_globs)
    assert all("private" in schema_id for schema_id in rules.schema_ids)


def test_the_public_pack_itself_does_not_leak_what_it_protects(pm: CMFPluginManager) -> None:
    """No run of up to five words in the pack's files hashes to a protected identifier, and no
    private schema id appears literally."""
    (rules,), _ = collect_proprietary_identifiers(pm)
    protected = set(rules.hashed)
    for path in sorted(p for p in _PACK_ROOT.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts or path.suffix not in {".py", ".md", ".toml", ".jsonl"}:
            continue
        text = path.read_text(encoding="utf-8")
        for schema_id in rules.schema_ids:
            assert schema_id not in text, path
        words = re.findall(r"[\w.-]+", text)
        for start in range(len(words)):
            for size in range(1, 6):
                if start + size <= len(words):
                    phrase = " ".join(words[start : start + size])
                    assert _hash(phrase, rules.salt) not in protected, path


# ---- the training lane ----


def test_lane_trains_a_scorer_that_separates_the_benchmark_and_exports_json() -> None:
    pytest.importorskip("sklearn")
    traces = _traces()
    scorer = train_tfidf_logistic(traces[:150], seed=0)
    held_out = traces[150:]
    correct = sum(
        (scorer.score(t["prompt"], t["response"]) >= 0.5) == (t["label"] == "unsafe")
        for t in held_out
    )
    assert correct / len(held_out) >= 0.9
    payload = json.loads(json.dumps(scorer.to_dict()))
    restored = type(scorer).from_dict(payload)
    sample = traces[151]
    assert restored.score(sample["prompt"], sample["response"]) == scorer.score(
        sample["prompt"], sample["response"]
    )


def test_lane_scores_match_scikit_learn() -> None:
    pytest.importorskip("sklearn")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    traces = _traces()
    scorer = train_tfidf_logistic(traces, seed=0)
    texts = [f"{t['prompt']}\n{t['response']}" for t in traces]
    vectorizer = TfidfVectorizer(token_pattern=r"(?u)\b\w\w+\b")
    features = vectorizer.fit_transform(texts)
    model = LogisticRegression(C=10.0, max_iter=1000, random_state=0)
    model.fit(features, [t["label"] == "unsafe" for t in traces])
    expected = model.predict_proba(features[:5])[:, 1]
    for trace, probability in zip(traces[:5], expected, strict=True):
        assert scorer.score(trace["prompt"], trace["response"]) == pytest.approx(probability)


def test_lane_refuses_a_single_class() -> None:
    pytest.importorskip("sklearn")
    safe = [t for t in _traces() if t["label"] == "safe"]
    with pytest.raises(ValueError, match="both unsafe and safe"):
        train_tfidf_logistic(safe)


def test_the_lane_is_a_training_lane_that_saves_and_loads_without_pickle(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from customer_model_factory.plugin_api import TrainingExample, TrainingLane

    (spec,) = plugin.cmf_training_lanes()
    assert isinstance(spec.lane, TrainingLane)
    assert isinstance(spec.lane, TfidfLogisticLane)
    examples = [
        TrainingExample(
            trace_id=t["trace_id"],
            prompt=t["prompt"],
            response=t["response"],
            unsafe=t["label"] == "unsafe",
            severity=t["severity"],
        )
        for t in _traces()
    ]
    scorer = spec.lane.fit(examples, hyperparameters={}, seed=0)
    digests = scorer.save(tmp_path)
    assert set(digests) == {path.name for path in tmp_path.iterdir()}
    restored = spec.lane.load(tmp_path)
    prompts, responses = ["a fee?"], ["yes"]
    assert restored.score(prompts, responses) == scorer.score(prompts, responses)
