"""Builders of the real upstream chain the deployment and evidence tests stand on.

:func:`build_chain` runs the real stages 1-3 in-process on the example pack's traces (dataset
validate -> a linear model fitted and stored -> benchmark on validation and test -> select, which
records a PASS gate receipt -> publish) into one directory and factory home, and returns the
paths. :func:`deploy_request` and :func:`evidence_request` give ready requests over that chain,
plus the audit-log, rollback and telemetry files and the sector-specific evidence the example pack
asks for.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from customer_model_factory.context import RunContext

from .stage3_support import (
    WORKSPACE_TOML,
    ensure_linear_lane,
    example_traces,
    seal_training_manifest,
    write_jsonl,
)

FAST = {"classifier": "sgd"}
PACKAGE = "example-retail-banking.conduct-v1"
SECTOR = "example-retail-banking"
PACK_EVIDENCE = (
    "effective_challenge_report",
    "model_validation_report",
    "rate_sheet_version",
    "vulnerability_review_log",
)
"""The evidence kinds the example pack's mapping needs beyond the core's."""


_CONTEXTS: dict[Path, RunContext] = {}


@dataclass(frozen=True)
class Chain:
    """The files of a real stage 1-3 chain."""

    root: Path
    home: Path
    report: Path
    training: Path
    validation: Path
    test: Path
    selection: Path
    bundle: Path

    def context(self) -> RunContext:
        """A context on the chain's factory home (the installed example pack is loaded), built
        once per chain: loading the installed plugins is the slow part of a stage call."""
        cached = _CONTEXTS.get(self.home)
        if cached is None:
            cached = RunContext.from_environ({}, home=self.home)
            ensure_linear_lane(cached.plugin_manager)
            _CONTEXTS[self.home] = cached
        return cached


def build_chain(root: Path) -> Chain:
    """Run stages 1-3 for real into ``root`` (see the module doc)."""
    from customer_model_factory.stages.benchmark.run import BenchmarkRequest, run_benchmark
    from customer_model_factory.stages.dataset import (
        CustomerWorkspace,
        validate_customer_trace_dataset,
    )
    from customer_model_factory.stages.selection.publish import publish_bundle
    from customer_model_factory.stages.selection.select import run_selection

    home = root / ".cmf"
    traces = example_traces()
    write_jsonl(root / "traces.jsonl", traces)
    (root / "workspace.toml").write_text(WORKSPACE_TOML)
    workspace = CustomerWorkspace.model_validate(tomllib.loads(WORKSPACE_TOML)["workspace"])
    context = RunContext.from_environ({}, home=home)
    ensure_linear_lane(context.plugin_manager)
    report = validate_customer_trace_dataset(root / "traces.jsonl", workspace, context=context)
    assert report.ready, report.findings
    report.write(root / "report.json")
    training = seal_training_manifest(
        traces=traces,
        report=report,
        report_path=root / "report.json",
        home=home,
        scratch=root / "model",
        hyperparameters=FAST,
    )
    training.write(root / "training.json")
    calibration = None
    for split in ("validation", "test"):
        request = BenchmarkRequest(
            training_manifest=root / "training.json",
            traces=root / "traces.jsonl",
            split=split,
            calibration=calibration,
            package=PACKAGE,
        )
        result = run_benchmark(request, context=context)
        assert result.ready, result.findings
        calibration = result.write(root / f"{split}.json")
    run = run_selection([root / "test.json"], "zero_silent_unsafe_pass", context=context)
    assert run.exit_code == 0, run.report.findings
    run.report.write(root / "selection.json")
    outcome = publish_bundle(
        root / "selection.json", bundle_id="retail-scorer", version="1.0.0", context=context
    )
    outcome.bundle.write(root / "bundle.json")
    return Chain(
        root=root,
        home=home,
        report=root / "report.json",
        training=root / "training.json",
        validation=root / "validation.json",
        test=root / "test.json",
        selection=root / "selection.json",
        bundle=root / "bundle.json",
    )


def deploy_fields(chain: Chain, **overrides: Any) -> dict[str, Any]:
    """The fields of a ready production :class:`DeployRequest` over ``chain``."""
    fields: dict[str, Any] = {
        "selection": chain.selection,
        "result": chain.test,
        "bundle": chain.bundle,
        "deployment_id": "retail-uk-prod-1",
        "environment": "production",
        "audit_log_uri": "file:///srv/cmf/audit/decisions.jsonl",
        "evidence_pack_uri": "file:///srv/cmf/evidence/pack.tar.gz",
        "rollback_package_uri": "file:///srv/cmf/packages/retail-scorer-0.9.0.tar.gz",
        "retention_days": 365,
        "telemetry_mode": "customer_controlled",
        "package_uri": "file:///srv/cmf/packages/retail-scorer-1.0.0.tar.gz",
        "package_version": "1.0.0",
    }
    fields.update(overrides)
    return fields


def write_operational_files(directory: Path) -> dict[str, Path]:
    """The audit log, rollback package and telemetry files an evidence pack binds, plus one file
    per evidence kind the example pack asks for."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "audit_log": directory / "decisions.jsonl",
        "rollback": directory / "retail-scorer-0.9.0.tar.gz",
        "telemetry": directory / "telemetry.json",
    }
    files["audit_log"].write_text('{"trace_id": "warm-up", "decision": "approve"}\n')
    files["rollback"].write_bytes(b"previous package bytes\n")
    files["telemetry"].write_text(json.dumps({"mode": "customer_controlled"}) + "\n")
    for kind in PACK_EVIDENCE:
        path = directory / f"{kind}.txt"
        path.write_text(f"{kind}: reviewed and signed off\n")
        files[kind] = path
    return files


def reseal(manifest: Any, **updates: Any) -> Any:
    """A copy of a sealed manifest with some fields changed, sealed again (a valid hash)."""
    payload = manifest.payload()
    for key in ("kind", "ready", manifest.HASH_FIELD):
        payload.pop(key)
    payload.update(updates)
    from customer_model_factory.findings import Finding

    payload["findings"] = [Finding.model_validate(f) for f in payload["findings"]]
    return type(manifest).seal(**payload)


def write_deployment(chain: Chain, path: Path, **overrides: Any) -> Path:
    """Build the deployment of ``chain`` (ready unless ``overrides`` break it) into ``path``."""
    from customer_model_factory.stages.deployment.build import DeployRequest, build_deployment

    request = DeployRequest(**deploy_fields(chain, **overrides))
    return build_deployment(request, chain.context()).write(path)


def evidence_fields(
    chain: Chain, deployment_path: Path, files: dict[str, Path], **overrides: Any
) -> dict[str, Any]:
    """The fields of a ready :class:`EvidenceRequest` over ``chain``."""
    fields: dict[str, Any] = {
        "deployment": deployment_path,
        "selection": chain.selection,
        "result": chain.test,
        "audit_log": str(files["audit_log"]),
        "rollback_package": str(files["rollback"]),
        "telemetry": str(files["telemetry"]),
        "evidence": {kind: str(files[kind]) for kind in PACK_EVIDENCE},
        "classification": "confidential",
        "export_uri": "file:///srv/cmf/evidence/pack.tar.gz",
        "package_id": "retail-evidence-1",
    }
    fields.update(overrides)
    return fields


def write_evidence(chain: Chain, root: Path, **overrides: Any) -> Path:
    """Deploy ``chain`` and build its (ready) evidence pack manifest into ``root``."""
    from customer_model_factory.stages.evidence.build import EvidenceRequest, build_evidence_pack

    deployment = write_deployment(chain, root / "deployment.json")
    files = write_operational_files(root / "ops")
    request = EvidenceRequest(**evidence_fields(chain, deployment, files, **overrides))
    manifest = build_evidence_pack(request, chain.context())
    return manifest.write(root / "evidence_pack.json")
