"""Helpers of the monitoring and risk tests: a sealed runtime package (built by hand, as the
runtime stage would), decision logs, review and incident files, and a sealed evidence pack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from customer_model_factory.stages.benchmark.models import Histogram, ReferenceHistograms
from customer_model_factory.stages.deployment.models import DeploymentPolicy
from customer_model_factory.stages.evidence.models import CustomerEvidencePackManifest
from customer_model_factory.stages.runtime.models import (
    CallbackPolicy,
    CostModel,
    CustomerRuntimePackage,
    RuntimeConfig,
)
from customer_model_factory.stages.training.models import ModelArtefact

BINDING = {"customer_id": "acme", "workspace_id": "ws-prod", "tenant_id": "acme-eu"}
DEPLOYMENT_ID = "deploy-acme-1"
PACKAGE_VERSION = "1.4.0"
H = "sha256:" + "1" * 64
EVIDENCE_HASH = "sha256:" + "e" * 64
SCORE_EDGES = tuple(round(0.1 * i, 1) for i in range(1, 10))
INPUT_EDGES = (100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0)


def reference_histograms(
    score_counts: tuple[int, ...] = (10,) * 10, input_counts: tuple[int, ...] = (10,) * 10
) -> ReferenceHistograms:
    return ReferenceHistograms(
        score=Histogram(edges=SCORE_EDGES, counts=score_counts, total=sum(score_counts)),
        input_chars=Histogram(edges=INPUT_EDGES, counts=input_counts, total=sum(input_counts)),
        source_split="validation",
    )


def runtime_package(
    *,
    histograms: ReferenceHistograms | None = None,
    cost: CostModel | None = None,
    runtime_id: str = "rt-acme-prod",
    evidence_hash: str = EVIDENCE_HASH,
) -> CustomerRuntimePackage:
    model = ModelArtefact.build("linear", {"model.json": "sha256:" + "2" * 64})
    policy = DeploymentPolicy(
        threshold=0.8,
        abstention_threshold=0.6,
        escalation_threshold=0.5,
        require_citations=False,
        audit_log_uri="file:///var/log/cmf/decisions.jsonl",
        evidence_pack_uri="file:///srv/evidence",
        rollback_package_uri="",
        retention_days=30,
        telemetry_mode="disabled",
        thresholds_source="operator",
    )
    config = RuntimeConfig(
        model=model,
        model_dir="model",
        environment="staging",
        package_version=PACKAGE_VERSION,
        policy=policy,
        callbacks=CallbackPolicy(external_callbacks_allowed=False, callback_endpoints=()),
        cost_model=cost or CostModel(per_decision=0.001, per_compute_second=0.01),
        reference_histograms=histograms or reference_histograms(),
        reference_result_hash=H,
    )
    return CustomerRuntimePackage.seal(
        **BINDING,
        inputs=[],
        runtime_id=runtime_id,
        deployment_id=DEPLOYMENT_ID,
        deployment_hash="sha256:" + "d" * 64,
        evidence_hash=evidence_hash,
        runtime_mode="offline_private",
        runtime_config=config,
    )


def write_runtime(directory: Path, **kwargs: Any) -> CustomerRuntimePackage:
    """Write a runtime package directory (``runtime_package.json``) and return the package."""
    package = runtime_package(**kwargs)
    directory.mkdir(parents=True, exist_ok=True)
    package.write(directory / "runtime_package.json")
    return package


def decision(
    package: CustomerRuntimePackage, index: int, *, score: float | None = None, **over: Any
) -> dict[str, Any]:
    """One decision-log row of ``package`` (policy bands: block >= .8, abstain >= .6,
    escalate >= .5)."""
    value = ((index * 37) % 100) / 100 + 0.005 if score is None else score
    band = (
        "block"
        if value >= 0.8
        else "abstain"
        if value >= 0.6
        else "escalate"
        if value >= 0.5
        else "approve"
    )
    row = {
        "trace_id": f"trace-{index:06d}",
        "decided_at": f"2026-05-18T10:{(index // 60) % 60:02d}:{index % 60:02d}Z",
        "score": value,
        "decision": band,
        "reason": band,
        "latency_ms": float(1 + index % 20),
        "input_chars": 50 + (index * 97) % 950,
        "package_version": package.runtime_config.package_version,
        "runtime_id": package.runtime_id,
        "runtime_hash": package.runtime_hash,
    }
    row.update(over)
    return row


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Rows (dicts, or raw bytes/str lines written as they are) one a line."""
    with open(path, "wb") as handle:
        for row in rows:
            if isinstance(row, bytes):
                handle.write(row + b"\n")
            elif isinstance(row, str):
                handle.write(row.encode() + b"\n")
            else:
                handle.write(orjson.dumps(row) + b"\n")
    return path


def write_log(path: Path, package: CustomerRuntimePackage, count: int) -> Path:
    return write_jsonl(path, [decision(package, i) for i in range(count)])


def evidence_pack(
    *, binding: dict[str, str] | None = None, deployment_id: str = DEPLOYMENT_ID
) -> CustomerEvidencePackManifest:
    """A sealed evidence pack (its content is not what the risk stage checks)."""
    return CustomerEvidencePackManifest.seal(
        **(binding or BINDING),
        inputs=[],
        package_id="evidence-acme-1",
        deployment_id=deployment_id,
        deployment_hash="sha256:" + "d" * 64,
        environment="staging",
        classification="confidential",
        export_uri="file:///srv/evidence",
        external_callbacks_allowed=False,
        callback_endpoints=(),
        artefacts={},
        artefact_files=(),
        evidence_kinds={},
        control_evidence={},
        sector_mappings=(),
        control_coverage=(),
    )


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
    return path
