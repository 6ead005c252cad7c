"""Build the deployment manifest (stage 4) from the selection report and its selected result.

:func:`build_deployment` loads the selection report and the benchmark result given as the selected
one (both hash-verified) and refuses a result that is not the candidate the selection chose
(``DEPLOY_RESULT_NOT_SELECTED``): the deployment's identity (benchmark id, result hash, model,
training run) always comes from the *selected* candidate, never from the first one. The model is
taken from the training manifest the result links (read from the artefact store, verified) or from
the published bundle, and every file of it is re-hashed in the store. Thresholds default to the
calibration of the selected run (the selected test result's ``thresholds``, taken from the
calibrated validation result, which is read and checked too); an operator overrides all three
together or none.

What cannot be built at all raises (exit 2): tampered or unreadable files, a selection that chose
nothing, a result that is not the selected one, a partial or out-of-range threshold override, a
model whose files are not stored. Everything else that blocks a deployment is an error finding in
the written manifest (``ready: false``, exit 1): see :data:`DEPLOY_CHECKS`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from customer_model_factory.canonical import sha256_bytes
from customer_model_factory.context import RunContext
from customer_model_factory.errors import (
    ArtefactError,
    InputError,
    LedgerError,
    StageInputError,
)
from customer_model_factory.findings import Finding
from customer_model_factory.manifest import (
    InputLink,
    Manifest,
    parse_manifest_payload,
    read_manifest_bytes,
)
from customer_model_factory.stages.benchmark.models import CustomerBenchmarkResult
from customer_model_factory.stages.deployment.models import (
    CustomerDeploymentManifest,
    DeploymentPolicy,
    Environment,
    TelemetryMode,
)
from customer_model_factory.stages.selection.models import (
    CustomerModelSelectionReport,
    ModelBundle,
)
from customer_model_factory.stages.training.models import (
    CustomerTrainingManifest,
    ModelArtefact,
    model_index_bytes,
)
from customer_model_factory.store import ArtefactStore, parse_artefact_uri

__all__ = [
    "DEPLOY_CHECKS",
    "MODEL_LINK_KIND",
    "DeployRequest",
    "build_deployment",
    "check_threshold_order",
    "request_or_usage_error",
]

MODEL_LINK_KIND: Final = "model"
"""The input-link kind of a model: its hash is the model index digest, its URI the index URI."""

DEPLOY_CHECKS: Final[dict[str, str]] = {
    "DEPLOY_SELECTION_NOT_READY": "the selection report holds error findings",
    "DEPLOY_GATE_NOT_PASSED": "the run ledger holds no PASS gate receipt of this selection",
    "DEPLOY_BUNDLE_NOT_PUBLISHED": "the bundle is not published for the run in the registry",
    "DEPLOY_RESULT_NOT_READY": "the selected result is not a ready test result",
    "DEPLOY_THRESHOLDS_OUT_OF_ORDER": "1 >= threshold >= abstention >= escalation >= 0 fails",
    "DEPLOY_ROLLBACK_REQUIRED": "a production deployment names no rollback package",
    "DEPLOY_ROLLBACK_IS_PACKAGE": "the rollback package is the package being deployed",
    "DEPLOY_BUNDLE_MISMATCH": "the bundle packages another run, model, result or selection",
    "DEPLOY_BINDING_MISMATCH": "the inputs belong to different customers/workspaces/tenants",
    "DEPLOY_CALIBRATION_MISMATCH": "the calibration result is not the one the thresholds came from",
    "DEPLOY_CALIBRATION_UNVERIFIED": "the calibration result cannot be read to verify it",
}
"""Every check whose failure is an error finding in the written manifest (exit 1)."""

_M = TypeVar("_M", bound=Manifest)
_R = TypeVar("_R", bound=BaseModel)


class DeployRequest(BaseModel):
    """Everything ``cmf deploy`` takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    selection: Path = Field(description="The selection report.")
    result: Path = Field(description="The selected candidate's (test) benchmark result.")
    calibration: Path | None = Field(
        default=None,
        description="The validation result the thresholds were calibrated on (default: read "
        "from the artefact store through the result's input link).",
    )
    bundle: Path | None = Field(default=None, description="The published model bundle.")
    deployment_id: str = Field(min_length=1)
    environment: Environment
    audit_log_uri: str = Field(min_length=1)
    evidence_pack_uri: str = Field(min_length=1)
    rollback_package_uri: str = Field(default="", description="'' when there is none.")
    retention_days: int = Field(ge=1)
    telemetry_mode: TelemetryMode
    require_citations: bool = False
    threshold: float | None = None
    abstention_threshold: float | None = None
    escalation_threshold: float | None = None
    package_uri: str = Field(min_length=1)
    package_version: str = Field(min_length=1)


def request_or_usage_error(cls: type[_R], **fields: object) -> _R:
    """Build a request model, turning a validation failure into one usage line (exit 2) naming
    the option, never echoing the value."""
    try:
        return cls.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "request"
        raise InputError(f"--{name.replace('_', '-')}: {first['msg']}", field=name) from None


def _error(code: str, message: str, field: str | None = None) -> Finding:
    return Finding(code=code, severity="error", message=message, field=field)


def check_threshold_order(threshold: float, abstention: float, escalation: float) -> list[Finding]:
    """``DEPLOY_THRESHOLDS_OUT_OF_ORDER`` unless ``1 >= threshold >= abstention >= escalation
    >= 0`` (an equality empties that band)."""
    if 1.0 >= threshold >= abstention >= escalation >= 0.0:
        return []
    return [
        _error(
            "DEPLOY_THRESHOLDS_OUT_OF_ORDER",
            f"thresholds must satisfy 1 >= threshold ({threshold:g}) >= abstention_threshold "
            f"({abstention:g}) >= escalation_threshold ({escalation:g}) >= 0",
            "policy.threshold",
        )
    ]


def _resolve_linked(
    links: tuple[InputLink, ...], cls: type[_M], digest: str, store: ArtefactStore
) -> _M | None:
    """Read the manifest of ``cls`` linked under ``digest`` from the artefact store, verified;
    ``None`` when it is not linked with a ``cmf://`` URI or not stored.

    :raises ManifestIntegrityError, DataFormatError: the stored bytes are not that manifest.
    """
    link = next((x for x in links if x.kind == cls.KIND and x.hash == digest), None)
    if link is None or link.uri is None:
        return None
    try:
        parsed = parse_artefact_uri(link.uri)
    except ArtefactError:
        return None
    if parsed.digest is None or not store.contains(parsed.digest):
        return None
    try:
        payload = orjson.loads(store.get_bytes(parsed.digest))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict):
        return None
    manifest = cls.from_payload(payload, path=link.uri)
    return manifest if manifest.content_digest == digest else None


def _load_stored(path: Path, cls: type[_M], store: ArtefactStore) -> tuple[_M, InputLink]:
    """Load a manifest file (hash verified), put the very bytes verified in the store, and
    return it and its link (read once, so the stored bytes are the verified ones)."""
    raw = read_manifest_bytes(path)
    payload = parse_manifest_payload(raw, path)
    manifest = cls.from_payload(payload, path=path)
    stored = store.put_bytes(raw)
    return manifest, manifest.link(stored.uri)


def _check_declared_uri(name: str, value: str) -> None:
    """A declared URI is written into the manifest: no control character, no credentials."""
    if any(ord(char) < 0x20 or char == "\x7f" for char in value):
        raise StageInputError(
            f"{name} holds a control character", code="DEPLOY_URI_INVALID", field=name
        )
    try:
        parts = urlsplit(value)
    except ValueError:
        raise StageInputError(
            f"{name} is not a URI", code="DEPLOY_URI_INVALID", field=name
        ) from None
    if parts.password is not None or (parts.username is not None and parts.scheme != "file"):
        raise StageInputError(
            f"{name} carries credentials (user:password@); name the location without them",
            code="DEPLOY_URI_INVALID",
            field=name,
        )


def _thresholds(
    request: DeployRequest, result: CustomerBenchmarkResult
) -> tuple[float, float, float, str]:
    given = (request.threshold, request.abstention_threshold, request.escalation_threshold)
    if any(value is not None for value in given):
        if any(value is None for value in given):
            raise StageInputError(
                "give --threshold, --abstention-threshold and --escalation-threshold together "
                "(or none, to use the selected run's calibration)",
                code="DEPLOY_THRESHOLDS_PARTIAL",
            )
        values = [float(v) for v in given if v is not None]
        _check_range(values)
        return values[0], values[1], values[2], "operator"
    recorded = result.thresholds
    if (
        recorded.threshold is None
        or recorded.abstention_threshold is None
        or recorded.escalation_threshold is None
    ):
        raise StageInputError(
            f"the selected result's decisions were {recorded.source}, so it carries no "
            "calibrated thresholds; give all three thresholds",
            code="DEPLOY_THRESHOLDS_UNAVAILABLE",
            path=request.result,
        )
    values = [recorded.threshold, recorded.abstention_threshold, recorded.escalation_threshold]
    _check_range(values)
    return values[0], values[1], values[2], "calibration"


def _check_range(values: list[float]) -> None:
    for name, value in zip(("threshold", "abstention", "escalation"), values, strict=True):
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise StageInputError(
                f"the {name} threshold must be a number in [0, 1]",
                code="DEPLOY_THRESHOLDS_OUT_OF_ORDER",
                field=f"policy.{name}",
            )


def _calibration(
    request: DeployRequest, result: CustomerBenchmarkResult, store: ArtefactStore
) -> tuple[list[Finding], list[InputLink], list[tuple[str, str, str]]]:
    """Check the validation result the selected result's thresholds came from."""
    expected = result.thresholds.calibration_result_hash
    findings: list[Finding] = []
    links: list[InputLink] = []
    bindings: list[tuple[str, str, str]] = []
    calibration: CustomerBenchmarkResult | None = None
    if request.calibration is not None:
        calibration, link = _load_stored(request.calibration, CustomerBenchmarkResult, store)
        links.append(link)
    elif expected is not None:
        calibration = _resolve_linked(result.inputs, CustomerBenchmarkResult, expected, store)
        if calibration is not None:
            uri = next(x.uri for x in result.inputs if x.hash == expected)
            links.append(calibration.link(uri))
    if calibration is None:
        if expected is None:
            findings.append(
                _error(
                    "DEPLOY_CALIBRATION_UNVERIFIED",
                    "the selected result names no calibration result, so its thresholds are "
                    "not calibrated; give the three thresholds",
                    "policy.calibration_result_hash",
                )
            )
        else:
            findings.append(
                _error(
                    "DEPLOY_CALIBRATION_UNVERIFIED",
                    f"the calibration result {expected} is not in the artefact store; give it "
                    "with --calibration",
                    "policy.calibration_result_hash",
                )
            )
        return findings, links, bindings
    bindings.append((calibration.customer_id, calibration.workspace_id, calibration.tenant_id))
    source = calibration.calibration
    recorded = result.thresholds
    problems = []
    if calibration.result_hash != expected:
        problems.append(f"it is {calibration.result_hash}, the result names {expected}")
    if calibration.split != "validation" or source is None:
        problems.append("it is not a calibrated validation result")
    elif (source.threshold, source.abstention_threshold, source.escalation_threshold) != (
        recorded.threshold,
        recorded.abstention_threshold,
        recorded.escalation_threshold,
    ):
        problems.append("its thresholds differ from the selected result's")
    if calibration.model_digest != result.model_digest:
        problems.append("it benchmarked another model")
    findings.extend(
        _error(
            "DEPLOY_CALIBRATION_MISMATCH",
            f"the calibration result does not match the selected run: {problem}",
            "policy.calibration_result_hash",
        )
        for problem in problems
    )
    return findings, links, bindings


def _model(
    result: CustomerBenchmarkResult, bundle: ModelBundle | None, store: ArtefactStore
) -> ModelArtefact:
    training = _resolve_linked(
        result.inputs, CustomerTrainingManifest, result.training_manifest_hash, store
    )
    candidates = (training.model if training else None, bundle.model if bundle else None)
    model = next((m for m in candidates if m is not None and m.digest == result.model_digest), None)
    if model is None:
        raise StageInputError(
            f"the selected model {result.model_digest} is neither in the training manifest the "
            "result links (from the artefact store) nor in the given bundle",
            code="DEPLOY_MODEL_UNAVAILABLE",
        )
    if sha256_bytes(model_index_bytes(model.lane, model.files)) != model.digest:
        raise StageInputError(
            "the model's file list does not hash to its index digest",
            code="DEPLOY_MODEL_UNAVAILABLE",
        )
    for digest in sorted(set(model.files.values())):
        store.verify(digest)  # a missing or corrupted file is exit 2, named by digest
    return model


def _ledger_findings(
    selection: CustomerModelSelectionReport, bundle: ModelBundle | None, context: RunContext
) -> list[Finding]:
    """The run ledger must hold a PASS gate receipt of the selected run given for this
    selection, and, when a bundle is deployed, its publication (a sealed bundle alone proves
    nothing: anyone can seal one)."""
    from customer_model_factory.ledger import RunLedger  # noqa: PLC0415

    run_id = selection.selected_train_run_id or ""
    try:
        with RunLedger(context.home) as ledger:
            detail = ledger.show(run_id)
    except LedgerError:
        detail = None
    receipt = detail.receipt if detail is not None else None
    findings: list[Finding] = []
    if not (
        receipt is not None
        and receipt.gate_status == "PASS"
        and selection.selection_hash in receipt.evidence_refs
    ):
        status = "no gate receipt" if receipt is None else f"a {receipt.gate_status} gate receipt"
        if receipt is not None and receipt.gate_status == "PASS":
            status = "a PASS gate receipt given for another selection"
        findings.append(
            _error(
                "DEPLOY_GATE_NOT_PASSED",
                f"the selected run has {status} in the run ledger of the factory home; only a "
                "run that passed the gate of this selection is deployed",
                "selected_train_run_id",
            )
        )
    published = {p.content_digest for p in detail.publications} if detail is not None else set()
    if bundle is not None and bundle.bundle_hash not in published:
        findings.append(
            _error(
                "DEPLOY_BUNDLE_NOT_PUBLISHED",
                f"the bundle {bundle.bundle_hash} is not published for the selected run in the "
                "registry of the factory home (cmf publish)",
                "bundle_hash",
            )
        )
    return findings


def _bundle_findings(
    bundle: ModelBundle, selection: CustomerModelSelectionReport, result: CustomerBenchmarkResult
) -> list[Finding]:
    checks = (
        ("train_run_id", bundle.train_run_id, result.train_run_id),
        ("model.digest", bundle.model.digest, result.model_digest),
        ("evaluation.result_hash", bundle.evaluation.result_hash, result.result_hash),
        ("lineage.selection_hash", bundle.lineage.selection_hash, selection.selection_hash),
    )
    return [
        _error(
            "DEPLOY_BUNDLE_MISMATCH",
            f"the bundle's {name} is {found}, the selected candidate's is {expected}",
            f"bundle.{name}",
        )
        for name, found, expected in checks
        if found != expected
    ]


def build_deployment(request: DeployRequest, context: RunContext) -> CustomerDeploymentManifest:
    """Build the deployment manifest of the selection's chosen model (see the module doc).

    :raises StageInputError: ``DEPLOY_SELECTION_EMPTY``, ``DEPLOY_RESULT_NOT_SELECTED``,
        ``DEPLOY_THRESHOLDS_PARTIAL``, ``DEPLOY_THRESHOLDS_UNAVAILABLE``,
        ``DEPLOY_MODEL_UNAVAILABLE``, ``DEPLOY_URI_INVALID`` (exit 2).
    :raises ManifestIntegrityError, DataFormatError, ArtefactError: a tampered or unreadable
        input, a model file missing or corrupted in the store (exit 2).
    """
    for name in ("audit_log_uri", "evidence_pack_uri", "rollback_package_uri", "package_uri"):
        _check_declared_uri(name, getattr(request, name))
    store = ArtefactStore(context.home)
    selection, selection_link = _load_stored(request.selection, CustomerModelSelectionReport, store)
    if selection.selected_result_hash is None:
        raise StageInputError(
            "the selection chose no candidate; there is nothing to deploy",
            code="DEPLOY_SELECTION_EMPTY",
            path=request.selection,
        )
    result, result_link = _load_stored(request.result, CustomerBenchmarkResult, store)
    if result.result_hash != selection.selected_result_hash:
        raise StageInputError(
            f"this result is {result.result_hash}, but the selection chose "
            f"{selection.selected_result_hash}; give the selected candidate's result",
            code="DEPLOY_RESULT_NOT_SELECTED",
            path=request.result,
        )
    threshold, abstention, escalation, source = _thresholds(request, result)
    findings: list[Finding] = []
    links = [selection_link, result_link]
    bindings = {
        (selection.customer_id, selection.workspace_id, selection.tenant_id),
        (result.customer_id, result.workspace_id, result.tenant_id),
    }
    if not selection.ready:
        findings.append(
            _error(
                "DEPLOY_SELECTION_NOT_READY",
                "the selection report holds error findings; fix them and select again",
                "selection_hash",
            )
        )
    calibration_hash: str | None = None
    if source == "calibration":
        calibration_hash = result.thresholds.calibration_result_hash
        problems, calibration_links, calibration_bindings = _calibration(request, result, store)
        findings += problems
        links += calibration_links
        bindings.update(calibration_bindings)
    findings += check_threshold_order(threshold, abstention, escalation)
    bundle: ModelBundle | None = None
    if request.bundle is not None:
        bundle, bundle_link = _load_stored(request.bundle, ModelBundle, store)
        links.append(bundle_link)
        bindings.add((bundle.customer_id, bundle.workspace_id, bundle.tenant_id))
        findings += _bundle_findings(bundle, selection, result)
    findings += _ledger_findings(selection, bundle, context)
    if not result.ready or result.split != "test":
        findings.append(
            _error(
                "DEPLOY_RESULT_NOT_READY",
                f"the selected result is a {result.split} result"
                + ("" if result.ready else " holding error findings")
                + "; only a ready test result is deployed",
                "selected_result_hash",
            )
        )
    if len(bindings) > 1:
        findings.append(
            _error(
                "DEPLOY_BINDING_MISMATCH",
                f"the selection, result, calibration and bundle belong to {len(bindings)} "
                "different customer / workspace / tenant bindings",
                "customer_id",
            )
        )
    if request.environment == "production" and not request.rollback_package_uri.strip():
        findings.append(
            _error(
                "DEPLOY_ROLLBACK_REQUIRED",
                "a production deployment needs a rollback package (--rollback-package-uri)",
                "policy.rollback_package_uri",
            )
        )
    if request.rollback_package_uri and request.rollback_package_uri == request.package_uri:
        findings.append(
            _error(
                "DEPLOY_ROLLBACK_IS_PACKAGE",
                "the rollback package is the package being deployed; roll back to another one",
                "policy.rollback_package_uri",
            )
        )
    model = _model(result, bundle, store)
    links.append(InputLink(kind=MODEL_LINK_KIND, hash=model.digest, uri=model.uri))
    policy = DeploymentPolicy(
        threshold=threshold,
        abstention_threshold=abstention,
        escalation_threshold=escalation,
        require_citations=request.require_citations,
        audit_log_uri=request.audit_log_uri,
        evidence_pack_uri=request.evidence_pack_uri,
        rollback_package_uri=request.rollback_package_uri,
        retention_days=request.retention_days,
        telemetry_mode=request.telemetry_mode,
        thresholds_source=source,  # type: ignore[arg-type]
        calibration_result_hash=calibration_hash,
    )
    return CustomerDeploymentManifest.seal(
        customer_id=selection.customer_id,
        workspace_id=selection.workspace_id,
        tenant_id=selection.tenant_id,
        inputs=links,
        findings=findings,
        deployment_id=request.deployment_id,
        environment=request.environment,
        selection_id=selection.selection_id,
        selection_hash=selection.selection_hash,
        selected_benchmark_id=result.benchmark_id,
        selected_result_hash=result.result_hash,
        selected_train_run_id=result.train_run_id,
        selected_model_artifact_uri=result.model_artifact_uri,
        model=model,
        bundle_hash=bundle.bundle_hash if bundle is not None else None,
        policy=policy,
        package_uri=request.package_uri,
        package_version=request.package_version,
    )
