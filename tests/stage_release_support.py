"""Builders of a sealed, consistent chain for the release gate tests.

:func:`build_release_chain` seals dataset-report → training-manifest → benchmark-result →
selection-report → deployment → evidence-pack → runtime-package → monitoring → risk-register with
``Model.seal``, writes each with ``.write`` into one directory, and links each to its upstream
manifests (and plain files: raw results, decision log) by hash with relative ``uri``s, so chain
verification runs for real. ``overrides[kind]`` replaces fields of that manifest before it is
sealed (downstream manifests then link the changed hash), so a test can break one thing at a
time. It also writes an enterprise readiness file and, on request, domain evidence records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from customer_model_factory.findings import Finding
from customer_model_factory.manifest import InputLink, Manifest
from customer_model_factory.stages.benchmark.metrics import RawResult, compute_benchmark_metrics
from customer_model_factory.stages.benchmark.models import (
    CustomerBenchmarkResult,
    DecisionThresholds,
    Histogram,
    ReferenceHistograms,
    render_raw_results,
)
from customer_model_factory.stages.dataset import CustomerDatasetValidationReport
from customer_model_factory.stages.deployment.models import (
    CustomerDeploymentManifest,
    DeploymentPolicy,
)
from customer_model_factory.stages.evidence.models import (
    CustomerEvidencePackManifest,
    SectorMappingRef,
)
from customer_model_factory.stages.monitoring.models import (
    CustomerMonitoringManifest,
    MonitoringMetrics,
    MonitoringThresholds,
    ThresholdBreach,
)
from customer_model_factory.stages.release.build import ReleaseRequest, write_domain_record
from customer_model_factory.stages.release.domains import core_domains
from customer_model_factory.stages.risk.models import CustomerRiskException, CustomerRiskRegister
from customer_model_factory.stages.runtime.models import (
    CallbackPolicy,
    CostModel,
    CustomerRuntimePackage,
    RuntimeConfig,
)
from customer_model_factory.stages.selection.models import (
    CandidateSummary,
    CustomerModelSelectionReport,
)
from customer_model_factory.stages.training.models import CustomerTrainingManifest, ModelArtefact

__all__ = [
    "BINDING",
    "FILES",
    "NOW",
    "ReleaseChain",
    "build_release_chain",
    "example_pack_domains",
    "sha256",
    "write_all_domain_records",
]

NOW = "2026-05-18T18:45:00Z"
BINDING = {
    "customer_id": "cust-7f3e2a9c-41d2-4b8e-9a65-0c2f1e8d7b34",
    "workspace_id": "retail-guardrails",
    "tenant_id": "tenant-uk-retail",
}
SECTOR = "example-retail-banking"
try:  # the example pack's release check requires its current mapping in the evidence pack
    from cmf_example_retail_banking.plugin import evidence_mapping

    MAPPING_HASH = evidence_mapping().mapping_hash
except ImportError:  # pragma: no cover - the example pack is not installed
    MAPPING_HASH = "sha256:" + "c" * 64
FILES = {
    "dataset-report": "dataset_report.json",
    "training-manifest": "training_manifest.json",
    "benchmark-result": "benchmark_test.json",
    "selection-report": "selection.json",
    "deployment": "deployment.json",
    "evidence-pack": "evidence_pack.json",
    "runtime-package": "runtime_package.json",
    "monitoring": "monitoring_manifest.json",
    "risk-register": "risk_register.json",
}
"""Manifest kind -> its file name in the chain directory."""


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class ReleaseChain:
    """A written chain: its directory, every manifest by kind, and the files beside them."""

    root: Path
    manifests: dict[str, Manifest] = field(default_factory=dict)
    readiness: Path | None = None

    def path(self, kind: str) -> Path:
        return self.root / FILES[kind]

    def request(self, **overrides: Any) -> ReleaseRequest:
        fields: dict[str, Any] = {
            "release_id": "release-customer-20260518",
            "generated_at": NOW,
            "enterprise_readiness": self.readiness,
            "runtime_package": self.path("runtime-package"),
            "evidence_pack": self.path("evidence-pack"),
            "monitoring_manifest": self.path("monitoring"),
            "risk_register": self.path("risk-register"),
            "output": self.root / "out" / "release_gate.json",
        }
        fields.update(overrides)
        return ReleaseRequest(**fields)


def _seal(
    chain: ReleaseChain,
    cls: type[Manifest],
    overrides: dict[str, dict[str, Any]],
    **fields: Any,
) -> Any:
    fields.update(overrides.get(cls.KIND, {}))
    manifest = cls.seal(**fields)
    manifest.write(chain.path(cls.KIND))
    chain.manifests[cls.KIND] = manifest
    return manifest


def _link(chain: ReleaseChain, kind: str) -> InputLink:
    return chain.manifests[kind].link(FILES[kind])


def _histograms() -> ReferenceHistograms:
    return ReferenceHistograms(
        score=Histogram(edges=(0.5,), counts=(3, 3), total=6),
        input_chars=Histogram(edges=(40.0,), counts=(2, 4), total=6),
        source_split="test",
    )


def build_release_chain(
    root: Path,
    *,
    environment: str = "staging",
    overrides: dict[str, dict[str, Any]] | None = None,
    readiness: dict[str, Any] | None = None,
) -> ReleaseChain:
    """Seal and write a consistent chain into ``root`` (see the module docstring)."""
    root.mkdir(parents=True, exist_ok=True)
    changes = overrides or {}
    chain = ReleaseChain(root=root)

    report = _seal(
        chain,
        CustomerDatasetValidationReport,
        changes,
        **BINDING,
        source="traces.jsonl",
        dataset_hash=sha256(b"traces"),
        vertical=SECTOR,
        row_count=6,
        split_counts={"test": 6},
        label_counts={"safe": 3, "unsafe": 3},
        label_class_counts={"safe": 3, "unsafe": 3},
        decision_counts={"approve": 3, "block": 3},
        severity_counts={"high": 3, "low": 3},
        high_risk_count=3,
        sector_counts={SECTOR: 6},
        finding_counts={"error": 0, "info": 0, "warning": 0},
        secrets_policy="fail",
    )
    model = ModelArtefact(
        lane="linear",
        uri="cmf://sha256/" + "a" * 64,
        digest="sha256:" + "a" * 64,
        files={"model.json": "sha256:" + "b" * 64},
    )
    training = _seal(
        chain,
        CustomerTrainingManifest,
        changes,
        **BINDING,
        inputs=[_link(chain, "dataset-report")],
        package_id="retail-scorer",
        dataset_hash=report.dataset_hash,
        dataset_report_hash=report.report_hash,
        dataset_ready=True,
        lane="linear",
        base_model_id="none",
        base_model_revision="none",
        base_model_artifact_uri="",
        output_uri=model.uri,
        hyperparameters={},
        objective_profile="zero_silent_unsafe_pass",
        requires_private_execution=False,
        seed=0,
        train_run_id="run-0001",
        training_rows=6,
        label_class_counts={"safe": 3, "unsafe": 3},
        model=model,
    )
    raw = [
        RawResult(
            trace_id=f"t-{index}",
            label="unsafe" if index % 2 else "safe",
            is_unsafe=bool(index % 2),
            severity="high" if index % 2 else "low",
            sector=SECTOR,
            score=0.9 if index % 2 else 0.1,
            decision="block" if index % 2 else "approve",
            latency_ms=1.0,
        )
        for index in range(6)
    ]
    raw_bytes = render_raw_results(raw)
    (root / "raw_results.jsonl").write_bytes(raw_bytes)
    result = _seal(
        chain,
        CustomerBenchmarkResult,
        changes,
        **BINDING,
        inputs=[
            _link(chain, "training-manifest"),
            InputLink(kind="raw-results", hash=sha256(raw_bytes), uri="raw_results.jsonl"),
        ],
        benchmark_id="example-retail-banking.conduct-v1",
        training_manifest_hash=training.manifest_hash,
        train_run_id=training.train_run_id,
        lane="linear",
        model_artifact_uri=model.uri,
        model_digest=model.digest,
        split="test",
        traces_digest=sha256(b"test traces"),
        trace_count=6,
        label_class_counts={"safe": 3, "unsafe": 3},
        metrics=compute_benchmark_metrics(raw),
        raw_result_uri="cmf://sha256/" + sha256(raw_bytes).removeprefix("sha256:"),
        raw_result_digest=sha256(raw_bytes),
        claim_boundary="Synthetic conduct scenarios only.",
        thresholds=DecisionThresholds(
            source="imported", threshold=0.8, abstention_threshold=0.6, escalation_threshold=0.4
        ),
        reference_histograms=_histograms(),
    )
    selection = _seal(
        chain,
        CustomerModelSelectionReport,
        changes,
        **BINDING,
        inputs=[_link(chain, "benchmark-result")],
        selection_id="selection-1",
        objective_profile="zero_silent_unsafe_pass",
        profile_constraints=(),
        score_weights={"f1": 1.0},
        min_high_risk_samples=1,
        tie_break="score, then result_hash",
        candidates=(
            CandidateSummary(
                result_hash=result.result_hash,
                benchmark_id=result.benchmark_id,
                split="test",
                training_manifest_hash=training.manifest_hash,
                train_run_id=training.train_run_id,
                model_artifact_uri=model.uri,
                trace_count=6,
                eligible=True,
                score=1.0,
                rank=1,
                observed={"f1": 1.0},
                high_risk_unsafe_count=3,
                high_risk_silent_unsafe_passes=0,
                high_risk_miss_rate_upper_95=0.63,
                reasons=(),
            ),
        ),
        selected_benchmark_id=result.benchmark_id,
        selected_result_hash=result.result_hash,
        selected_model_artifact_uri=model.uri,
        selected_train_run_id=training.train_run_id,
        gate_criteria=(),
        high_risk_miss_rate_upper_95=0.63,
        high_risk_statement="3 high-risk unsafe traces; none approved.",
    )
    policy = DeploymentPolicy(
        threshold=0.8,
        abstention_threshold=0.6,
        escalation_threshold=0.4,
        require_citations=True,
        audit_log_uri="file:///srv/cmf/audit/decisions.jsonl",
        evidence_pack_uri="file:///srv/cmf/evidence/",
        rollback_package_uri="file:///srv/cmf/packages/previous/",
        retention_days=365,
        telemetry_mode="customer_controlled",
        thresholds_source="operator",
    )
    deployment = _seal(
        chain,
        CustomerDeploymentManifest,
        changes,
        **BINDING,
        inputs=[_link(chain, "selection-report"), _link(chain, "benchmark-result")],
        deployment_id="deploy-retail-uk-1",
        environment=environment,
        selection_id=selection.selection_id,
        selection_hash=selection.selection_hash,
        selected_benchmark_id=result.benchmark_id,
        selected_result_hash=result.result_hash,
        selected_train_run_id=training.train_run_id,
        selected_model_artifact_uri=model.uri,
        model=model,
        policy=policy,
        package_uri="file:///srv/cmf/packages/current/",
        package_version="1.0.0",
    )
    evidence = _seal(
        chain,
        CustomerEvidencePackManifest,
        changes,
        **BINDING,
        inputs=[_link(chain, "deployment"), _link(chain, "selection-report")],
        package_id="evidence-1",
        deployment_id=deployment.deployment_id,
        deployment_hash=deployment.deployment_hash,
        environment=environment,
        classification="confidential",
        export_uri="file:///srv/cmf/evidence/pack.tar.gz",
        external_callbacks_allowed=False,
        callback_endpoints=(),
        artefacts={"deployment": deployment.deployment_hash},
        artefact_files=(),
        evidence_kinds={},
        control_evidence={},
        sector_mappings=(
            SectorMappingRef(
                sector_id=SECTOR,
                mapping_hash=MAPPING_HASH,
                jurisdiction="UK",
                frameworks=("ISO27001",),
                plugin=None,
            ),
        ),
        control_coverage=(),
    )
    runtime = _seal(
        chain,
        CustomerRuntimePackage,
        changes,
        **BINDING,
        inputs=[_link(chain, "deployment"), _link(chain, "evidence-pack")],
        runtime_id="runtime-1",
        deployment_id=deployment.deployment_id,
        deployment_hash=deployment.deployment_hash,
        evidence_hash=evidence.evidence_hash,
        runtime_mode="offline_private",
        runtime_config=RuntimeConfig(
            model=model,
            model_dir="model",
            environment=environment,
            package_version="1.0.0",
            policy=policy,
            callbacks=CallbackPolicy(external_callbacks_allowed=False, callback_endpoints=()),
            cost_model=CostModel(),
            reference_histograms=_histograms(),
            reference_result_hash=result.result_hash,
        ),
    )
    log = (
        json.dumps({"trace_id": "t-1", "decision": "block", "runtime_hash": runtime.runtime_hash})
        + "\n"
    ).encode()
    (root / "decisions.jsonl").write_bytes(log)
    monitoring = _seal(
        chain,
        CustomerMonitoringManifest,
        changes,
        **BINDING,
        inputs=[
            _link(chain, "runtime-package"),
            _link(chain, "evidence-pack"),
            InputLink(kind="decision-log", hash=sha256(log), uri="decisions.jsonl"),
        ],
        monitoring_id="monitoring-1",
        health_status="within_control",
        runtime_id=runtime.runtime_id,
        runtime_hash=runtime.runtime_hash,
        deployment_id=deployment.deployment_id,
        evidence_hash=evidence.evidence_hash,
        decision_log_uri="decisions.jsonl",
        decision_log_digest=sha256(log),
        review_queue_uri="",
        incident_queue_uri="",
        observation_window="2026-05-17T00:00:00Z/2026-05-18T00:00:00Z",
        monitored_at="2026-05-18T12:00:00Z",
        metrics=MonitoringMetrics(
            total_decisions=1,
            input_drift_score=0.01,
            source_corpus_drift_score=0.02,
            false_positive_review_count=0,
            false_negative_incident_count=0,
            abstention_rate=0.0,
            escalation_rate=0.0,
            latency_p95_ms=3.0,
            cost_per_1k_decisions=0.5,
            decision_counts={"abstain": 0, "approve": 0, "block": 1, "escalate": 0},
            block_rate=1.0,
            high_severity_incident_count=0,
        ),
        thresholds=MonitoringThresholds(),
        threshold_breaches=(),
        package_version={
            "package_version": "1.0.0",
            "runtime_hash": runtime.runtime_hash,
            "runtime_id": runtime.runtime_id,
        },
        retraining_recommended=False,
        recommendations=(),
    )
    _seal(
        chain,
        CustomerRiskRegister,
        changes,
        **BINDING,
        inputs=[_link(chain, "evidence-pack"), _link(chain, "monitoring")],
        register_id="risk-1",
        deployment_id=deployment.deployment_id,
        evidence_hash=evidence.evidence_hash,
        monitoring_hash=monitoring.monitoring_hash,
        generated_at="2026-05-18T12:00:00Z",
        risks=(
            CustomerRiskException(
                risk_id="RISK-001",
                status="accepted",
                severity="medium",
                owner="model-risk-office",
                accepted_at="2026-05-01T00:00:00Z",
                expires_at="2026-08-01T00:00:00Z",
                compensating_controls=("human review of escalations",),
                linked_artifact_hashes={
                    "evidence-pack": evidence.evidence_hash,
                    "monitoring": monitoring.monitoring_hash,
                },
                rationale="Escalation latency above target while staffing grows.",
            ),
        ),
    )
    chain.readiness = root / "enterprise_readiness.json"
    chain.readiness.write_text(
        json.dumps(readiness if readiness is not None else {"ready": True, "blocking_debt_ids": []})
    )
    return chain


def not_ready(code: str) -> list[Finding]:
    """One error finding: seals a manifest that is not ready."""
    return [Finding(code=code, severity="error", message="not ready for the test")]


def breach_fn(count: int = 2) -> dict[str, Any]:
    """Monitoring overrides: ``count`` false-negative incidents over a limit of 0."""
    metrics = MonitoringMetrics(
        total_decisions=1,
        input_drift_score=0.01,
        source_corpus_drift_score=0.02,
        false_positive_review_count=0,
        false_negative_incident_count=count,
        abstention_rate=0.0,
        escalation_rate=0.0,
        latency_p95_ms=3.0,
        cost_per_1k_decisions=0.5,
        decision_counts={"abstain": 0, "approve": 0, "block": 1, "escalate": 0},
        block_rate=1.0,
        high_severity_incident_count=count,
    )
    return {
        "metrics": metrics,
        "health_status": "review_required",
        "threshold_breaches": (
            ThresholdBreach(metric="false_negative_incident_count", observed=count, limit=0),
        ),
    }


def example_pack_domains() -> list[Any]:
    """The release domains of the example pack, when it is installed (the CLI loads it)."""
    try:
        from cmf_example_retail_banking.plugin import cmf_release_domains
    except ImportError:  # pragma: no cover - the example pack is not installed
        return []
    return list(cmf_release_domains())


def write_all_domain_records(
    directory: Path,
    environment: str,
    names: list[str] | None = None,
    extra: list[Any] | None = None,
) -> dict[str, Path]:
    """Write a passing record (and its evidence file) for each named core domain (all by
    default) and each domain of ``extra``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    domains = {**core_domains(), **{domain.name: domain for domain in extra or []}}
    chosen = names if names is not None else sorted(domains)
    for name in chosen:
        domain = domains[name]
        evidence = directory / "evidence" / f"{name}.txt"
        evidence.parent.mkdir(exist_ok=True)
        evidence.write_text(f"evidence of {name}\n")
        path = directory / f"{name}.json"
        write_domain_record(
            path,
            domain=name,
            environment=environment,
            uris={uri: f"https://evidence.example/{name}/{uri}" for uri in domain.required_uris},
            checks=dict.fromkeys(domain.required_checks, True),
            evidence_file=evidence,
        )
        paths[name] = path
    return paths
