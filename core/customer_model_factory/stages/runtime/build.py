"""``cmf runtime build``: bind a deployment, its evidence pack and its selected benchmark result
into a :class:`~.models.CustomerRuntimePackage`, and export it with its model files.

:func:`build_runtime_package` reads the three manifests (each hash recomputed), checks that they
belong together (one customer / workspace / tenant; the evidence pack documents *this*
deployment by ``deployment_hash``; the result is the deployment's selected result; the model the
deployment names is the model the result scored, and its digest is the digest of its index) and
seals the package. A mismatch is an error finding (the package is written, not ready, exit 1); a
result without reference histograms (imported raw results) cannot give monitoring its reference
and is refused (exit 2).

:func:`write_runtime_package` writes the package directory: the model files copied out of the
artefact store (each verified against its digest) under ``<dir>/<model_dir>``, then
``<dir>/runtime_package.json``, last and atomically, so a package file never names files that
are not there.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from customer_model_factory.canonical import sha256_bytes
from customer_model_factory.context import RunContext
from customer_model_factory.errors import InputError, StageInputError
from customer_model_factory.findings import Finding
from customer_model_factory.io import same_file
from customer_model_factory.manifest import BoundManifest, InputLink, read_manifest_payload
from customer_model_factory.stages.benchmark.models import CustomerBenchmarkResult
from customer_model_factory.stages.deployment.models import CustomerDeploymentManifest
from customer_model_factory.stages.evidence.models import CustomerEvidencePackManifest
from customer_model_factory.stages.runtime.models import (
    CallbackPolicy,
    CostModel,
    CustomerRuntimePackage,
    RuntimeConfig,
    RuntimeMode,
)
from customer_model_factory.stages.training.models import export_model_files, model_index_bytes
from customer_model_factory.store import ArtefactStore

__all__ = [
    "DEFAULT_MODEL_DIR",
    "PACKAGE_FILE",
    "RuntimeRequest",
    "build_runtime_package",
    "write_runtime_package",
]

PACKAGE_FILE: Final = "runtime_package.json"
"""The file name of the runtime package manifest inside its directory."""
DEFAULT_MODEL_DIR: Final = "model"
"""Where the model files go inside the package directory, unless told."""
_BINDING: Final = ("customer_id", "workspace_id", "tenant_id")
_M = TypeVar("_M", bound=BoundManifest)


class RuntimeRequest(BaseModel):
    """Everything ``cmf runtime build`` takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    deployment: Path = Field(description="The deployment manifest.")
    evidence_pack: Path = Field(description="The evidence pack manifest of that deployment.")
    result: Path = Field(description="The deployment's selected benchmark result (test split).")
    runtime_id: str = Field(min_length=1, max_length=200, description="The runtime package id.")
    runtime_mode: RuntimeMode = Field(
        description="offline_private, customer_cloud_private, on_prem."
    )
    cost_per_decision: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    cost_per_compute_second: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    currency: str = Field(default="USD", min_length=1, max_length=16)
    model_dir: str = Field(default=DEFAULT_MODEL_DIR, description="Relative model directory.")

    @field_validator("runtime_id")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.isprintable():
            raise ValueError("runtime_id must hold printable characters only")
        return value

    @field_validator("model_dir")
    @classmethod
    def _model_dir(cls, value: str) -> str:
        parts = value.split("/")
        if (
            not value
            or value.startswith("/")
            or "\\" in value
            or "\x00" in value
            or any(p in {"", ".", ".."} for p in parts)
        ):
            raise ValueError("model_dir must be a relative POSIX path without '.' or '..'")
        return value

    @field_validator("cost_per_decision", "cost_per_compute_second")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("a cost must be a finite number")
        return value


def _load(cls: type[_M], path: Path, store: ArtefactStore) -> tuple[_M, InputLink]:
    payload = read_manifest_payload(path)
    manifest = cls.from_payload(payload, path=path)
    # Store the manifest's bytes, so the chain resolves the link from the store later.
    stored = store.put_bytes(path.read_bytes())
    return manifest, manifest.link(stored.uri)


def _error(code: str, message: str, field: str | None = None) -> Finding:
    return Finding(code=code, severity="error", message=message, field=field)


def _binding_findings(
    deployment: CustomerDeploymentManifest,
    evidence: CustomerEvidencePackManifest,
    result: CustomerBenchmarkResult,
) -> list[Finding]:
    findings = []
    for name, other in (("evidence pack", evidence), ("benchmark result", result)):
        for field in _BINDING:
            if getattr(other, field) != getattr(deployment, field):
                findings.append(
                    _error(
                        "RUNTIME_BINDING_MISMATCH",
                        f"the {name}'s {field} differs from the deployment's",
                        field,
                    )
                )
    if evidence.deployment_hash != deployment.deployment_hash:
        findings.append(
            _error(
                "RUNTIME_EVIDENCE_OTHER_DEPLOYMENT",
                f"the evidence pack documents deployment {evidence.deployment_hash}, not "
                f"{deployment.deployment_hash}",
                "deployment_hash",
            )
        )
    if evidence.deployment_id != deployment.deployment_id:
        findings.append(
            _error(
                "RUNTIME_EVIDENCE_OTHER_DEPLOYMENT",
                "the evidence pack's deployment_id differs from the deployment's",
                "deployment_id",
            )
        )
    if evidence.environment != deployment.environment:
        findings.append(
            _error(
                "RUNTIME_ENVIRONMENT_MISMATCH",
                f"the evidence pack is for {evidence.environment}, the deployment for "
                f"{deployment.environment}",
                "environment",
            )
        )
    return findings


def _chain_findings(
    deployment: CustomerDeploymentManifest,
    evidence: CustomerEvidencePackManifest,
    result: CustomerBenchmarkResult,
) -> list[Finding]:
    findings = []
    for name, manifest, code in (
        ("deployment", deployment, "RUNTIME_DEPLOYMENT_NOT_READY"),
        ("evidence pack", evidence, "RUNTIME_EVIDENCE_NOT_READY"),
        ("benchmark result", result, "RUNTIME_RESULT_NOT_READY"),
    ):
        if not manifest.ready:
            findings.append(_error(code, f"the {name} is not ready (it holds error findings)"))
    if result.result_hash != deployment.selected_result_hash:
        findings.append(
            _error(
                "RUNTIME_RESULT_NOT_SELECTED",
                f"the benchmark result {result.result_hash} is not the deployment's selected "
                f"result {deployment.selected_result_hash}",
                "selected_result_hash",
            )
        )
    model = deployment.model
    if (model.digest, model.uri, model.lane) != (
        result.model_digest,
        result.model_artifact_uri,
        result.lane,
    ):
        findings.append(
            _error(
                "RUNTIME_MODEL_MISMATCH",
                f"the deployment's model {model.digest} ({model.lane}) is not the model the "
                f"benchmark result scored {result.model_digest} ({result.lane})",
                "model",
            )
        )
    if sha256_bytes(model_index_bytes(model.lane, model.files)) != model.digest:
        findings.append(
            _error(
                "RUNTIME_MODEL_INDEX_INVALID",
                "the model's digest is not the digest of its index (lane and file digests)",
                "model.digest",
            )
        )
    if deployment.selected_model_artifact_uri != model.uri:
        findings.append(
            _error(
                "RUNTIME_MODEL_MISMATCH",
                "the deployment's selected_model_artifact_uri differs from its model's uri",
                "selected_model_artifact_uri",
            )
        )
    return findings


def build_runtime_package(request: RuntimeRequest, context: RunContext) -> CustomerRuntimePackage:
    """Check a deployment, its evidence pack and its selected result belong together and seal the
    runtime package (nothing is written; see :func:`write_runtime_package`).

    :raises DataFormatError, ManifestIntegrityError, SchemaVersionError: an input that cannot be
        read as its manifest, or was modified after it was written (exit 2).
    :raises StageInputError: ``RUNTIME_REFERENCE_HISTOGRAMS_MISSING``: the result carries no
        reference histograms (exit 2).
    """
    store = ArtefactStore(context.home)
    deployment, deployment_link = _load(CustomerDeploymentManifest, request.deployment, store)
    evidence, evidence_link = _load(CustomerEvidencePackManifest, request.evidence_pack, store)
    result, result_link = _load(CustomerBenchmarkResult, request.result, store)
    if result.reference_histograms is None:
        raise StageInputError(
            "the benchmark result carries no reference histograms (imported raw results hold no "
            "text): benchmark the selected model by scoring its traces (cmf benchmark run)",
            code="RUNTIME_REFERENCE_HISTOGRAMS_MISSING",
            path=request.result,
        )
    findings = [
        *context.plugin_manager.stage_findings(),
        *_binding_findings(deployment, evidence, result),
        *_chain_findings(deployment, evidence, result),
    ]
    model = deployment.model
    config = RuntimeConfig(
        model=model,
        model_dir=request.model_dir,
        environment=deployment.environment,
        package_version=deployment.package_version,
        policy=deployment.policy,
        callbacks=CallbackPolicy(
            external_callbacks_allowed=evidence.external_callbacks_allowed,
            callback_endpoints=tuple(evidence.callback_endpoints),
        ),
        cost_model=CostModel(
            currency=request.currency,
            per_decision=request.cost_per_decision,
            per_compute_second=request.cost_per_compute_second,
        ),
        reference_histograms=result.reference_histograms,
        reference_result_hash=result.result_hash,
    )
    return CustomerRuntimePackage.seal(
        customer_id=deployment.customer_id,
        workspace_id=deployment.workspace_id,
        tenant_id=deployment.tenant_id,
        inputs=[
            deployment_link,
            evidence_link,
            result_link,
            InputLink(kind="model", hash=model.digest, uri=model.uri),
        ],
        findings=list(dict.fromkeys(findings)),
        runtime_id=request.runtime_id,
        deployment_id=deployment.deployment_id,
        deployment_hash=deployment.deployment_hash,
        evidence_hash=evidence.evidence_hash,
        runtime_mode=request.runtime_mode,
        runtime_config=config,
    )


def _check_target(root: Path, target: Path, inputs: list[Path]) -> None:
    real_target = target.resolve()
    for source in inputs:
        real = source.resolve()
        if real == real_target or real_target in real.parents:
            raise InputError(
                "an input lies inside the package's model directory; write the package elsewhere",
                path=source,
            )
        if same_file(source, root / PACKAGE_FILE):
            raise InputError(f"{PACKAGE_FILE} would overwrite an input", path=source)
    if target.is_symlink() or not target.exists():
        return
    if target.is_dir() and not any(target.iterdir()):
        return
    if not (root / PACKAGE_FILE).is_file():
        raise InputError(
            "the model directory exists and is not an earlier runtime package's; choose an "
            "empty or new output directory",
            path=target,
        )


def write_runtime_package(
    package: CustomerRuntimePackage,
    directory: str | Path,
    *,
    context: RunContext,
    inputs: Sequence[str | Path] = (),
) -> Path:
    """Write a runtime package directory and return the path of its ``runtime_package.json``.

    The model files are copied out of the artefact store of ``context.home``, each verified
    against its digest, into a fresh directory that then replaces ``<dir>/<model_dir>`` (so no
    stale file of an earlier build stays beside them); the package file is written last,
    atomically.

    An existing model directory is replaced only when it belongs to an earlier package (a
    ``runtime_package.json`` beside it), so ``-o`` naming a directory that holds other data never
    deletes it.

    :param inputs: files the build read; none may lie inside the model directory or be the
        package file.
    :raises ArtefactError: a model file is not stored, or its stored bytes differ from its digest.
    :raises InputError: ``directory`` exists and is not a directory; its model directory holds
        other data or an input.
    """
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise InputError("the runtime package output must be a directory", path=root)
    config = package.runtime_config
    target = root.joinpath(*config.model_dir.split("/"))
    _check_target(root, target, [Path(p) for p in inputs])
    root.mkdir(parents=True, exist_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        export_model_files(ArtefactStore(context.home), config.model, fresh)
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, old / "model")
            shutil.rmtree(old)
        os.replace(fresh, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(fresh)
    return package.write(root / PACKAGE_FILE)
