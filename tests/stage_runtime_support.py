"""Builders of the upstream manifests the runtime tests need.

The stages 1-3 are run for real (the example pack's traces validated, the linear lane fitted on
the train split, benchmarked on validation then test); the deployment and the evidence pack,
which other stages build, are sealed here by hand with the fields the runtime reads (the
selection they name is not built: its id and hash are placeholders no runtime check follows).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from customer_model_factory.canonical import sha256_bytes
from customer_model_factory.context import RunContext
from customer_model_factory.stages.benchmark.models import CustomerBenchmarkResult
from customer_model_factory.stages.benchmark.run import BenchmarkRequest, run_benchmark
from customer_model_factory.stages.dataset import (
    CustomerWorkspace,
    validate_customer_trace_dataset,
)
from customer_model_factory.stages.deployment.models import (
    CustomerDeploymentManifest,
    DeploymentPolicy,
)
from customer_model_factory.stages.evidence.models import CustomerEvidencePackManifest
from customer_model_factory.stages.runtime.build import (
    RuntimeRequest,
    build_runtime_package,
    write_runtime_package,
)
from customer_model_factory.testing import fresh_plugin_manager

from .stage3_support import (
    BINDING,
    WORKSPACE_TOML,
    ensure_linear_lane,
    example_traces,
    seal_training_manifest,
    write_jsonl,
)

PACKAGE = "example-retail-banking.conduct-v1"
FAST = {"classifier": "sgd", "word_features_log2": 14, "char_features_log2": 14}
SELECTION_HASH = sha256_bytes(b"placeholder selection report")


class Ticks:
    """A deterministic timer: each call advances 1 ms."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def build_chain(root: Path) -> dict[str, Any]:
    """Traces, dataset report, training manifest, validation and test results under ``root``
    (factory home ``root/.cmf``); returns the paths, the context and the results."""
    home = root / ".cmf"
    from cmf_example_retail_banking import plugin as pack

    pm = fresh_plugin_manager()
    pm.register(pack, "example-pack")  # the traces' sector is the example pack's
    ensure_linear_lane(pm)
    context = RunContext.for_plugin_manager(pm, home=home)
    traces = example_traces()
    traces_path = write_jsonl(root / "traces.jsonl", traces)
    workspace = CustomerWorkspace.model_validate(tomllib.loads(WORKSPACE_TOML)["workspace"])
    report = validate_customer_trace_dataset(traces_path, workspace, context=context)
    report.write(root / "report.json")
    training = seal_training_manifest(
        traces=traces,
        report=report,
        report_path=root / "report.json",
        home=home,
        scratch=root / "scratch-model",
        hyperparameters=FAST,
    )
    training.write(root / "training.json")
    results: dict[str, CustomerBenchmarkResult] = {}
    calibration = None
    for split in ("validation", "test"):
        request = BenchmarkRequest(
            training_manifest=root / "training.json",
            traces=traces_path,
            split=split,
            claim_boundary="Separates the synthetic scenarios; no real-traffic claim.",
            calibration=calibration,
        )
        results[split] = run_benchmark(request, context=context, timer=Ticks())
        calibration = results[split].write(root / f"{split}.json")
    return {
        "root": root,
        "home": home,
        "context": context,
        "traces": traces,
        "traces_path": traces_path,
        "training": training,
        "validation": results["validation"],
        "test": results["test"],
    }


def seal_deployment(
    chain: dict[str, Any],
    *,
    require_citations: bool = False,
    audit_log: Path | None = None,
    result: CustomerBenchmarkResult | None = None,
    **overrides: Any,
) -> CustomerDeploymentManifest:
    """A deployment of the chain's test result with the validation calibration's thresholds."""
    test = result or chain["test"]
    calibration = chain["validation"].calibration
    assert calibration is not None
    log = audit_log or chain["root"] / "decisions.log"
    policy = DeploymentPolicy(
        threshold=calibration.threshold,
        abstention_threshold=calibration.abstention_threshold,
        escalation_threshold=calibration.escalation_threshold,
        require_citations=require_citations,
        audit_log_uri=log.resolve().as_uri(),
        evidence_pack_uri=(chain["root"] / "evidence-export").resolve().as_uri(),
        rollback_package_uri="",
        retention_days=30,
        telemetry_mode="disabled",
        thresholds_source="calibration",
        calibration_result_hash=chain["validation"].result_hash,
    )
    model = chain["training"].model
    fields: dict[str, Any] = {
        **BINDING,
        "inputs": [
            {"kind": "selection-report", "hash": SELECTION_HASH},
            test.link(),
        ],
        "deployment_id": "retail-scorer-staging",
        "environment": "staging",
        "selection_id": "retail-selection",
        "selection_hash": SELECTION_HASH,
        "selected_benchmark_id": test.benchmark_id,
        "selected_result_hash": test.result_hash,
        "selected_train_run_id": test.train_run_id,
        "selected_model_artifact_uri": model.uri,
        "model": model,
        "policy": policy,
        "package_uri": (chain["root"] / "runtime").resolve().as_uri(),
        "package_version": "2026.03.1",
    }
    fields.update(overrides)
    return CustomerDeploymentManifest.seal(**fields)


def seal_evidence_pack(
    deployment: CustomerDeploymentManifest, **overrides: Any
) -> CustomerEvidencePackManifest:
    """An evidence pack documenting ``deployment`` (callbacks off)."""
    fields: dict[str, Any] = {
        "customer_id": deployment.customer_id,
        "workspace_id": deployment.workspace_id,
        "tenant_id": deployment.tenant_id,
        "inputs": [deployment.link()],
        "package_id": "retail-evidence",
        "deployment_id": deployment.deployment_id,
        "deployment_hash": deployment.deployment_hash,
        "environment": deployment.environment,
        "classification": "confidential",
        "export_uri": "file:///evidence/retail-evidence.tar.gz",
        "external_callbacks_allowed": False,
        "callback_endpoints": (),
        "artefacts": {"deployment": deployment.deployment_hash},
        "artefact_files": (),
        "evidence_kinds": {},
        "control_evidence": {},
        "sector_mappings": (),
        "control_coverage": (),
    }
    fields.update(overrides)
    return CustomerEvidencePackManifest.seal(**fields)


def write_inputs(
    chain: dict[str, Any], directory: Path, **deployment_overrides: Any
) -> dict[str, Path]:
    """Write a deployment, its evidence pack and the test result into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    deployment = seal_deployment(chain, **deployment_overrides)
    evidence = seal_evidence_pack(deployment)
    return {
        "deployment": deployment.write(directory / "deployment.json"),
        "evidence_pack": evidence.write(directory / "evidence.json"),
        "result": chain["test"].write(directory / "test-result.json"),
    }


def build_runtime(
    chain: dict[str, Any],
    directory: Path,
    *,
    runtime_mode: str = "on_prem",
    **deployment_overrides: Any,
) -> Path:
    """Build and write a runtime package for the chain into ``directory/runtime``; return the
    package directory."""
    inputs = write_inputs(chain, directory / "inputs", **deployment_overrides)
    request = RuntimeRequest(
        **inputs,
        runtime_id="retail-runtime",
        runtime_mode=runtime_mode,
        cost_per_decision=0.0001,
        cost_per_compute_second=0.002,
    )
    package = build_runtime_package(request, chain["context"])
    assert package.ready, package.findings
    write_runtime_package(package, directory / "runtime", context=chain["context"])
    return directory / "runtime"


def requests_of(chain: dict[str, Any], split: str = "test") -> list[dict[str, Any]]:
    """Scoring requests (trace_id, prompt, response, source_refs) of one split of the chain."""
    return [
        {
            "trace_id": trace["trace_id"],
            "prompt": trace["prompt"],
            "response": trace["response"],
            "source_refs": trace.get("source_refs", []),
        }
        for trace in chain["traces"]
        if trace["split"] == split
    ]
