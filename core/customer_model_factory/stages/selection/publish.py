"""Publish the selected model as a :class:`ModelBundle` into the local registry (the run ledger).

:func:`publish_bundle` verifies the selection report, follows its links to the selected result and
the training manifest (both read from the artefact store, verified), checks every model file is
stored intact, builds the bundle (no time in it, so the same selection gives the same
``bundle_hash``), stores it, and registers ``(bundle_id, version) -> bundle_hash`` for the chosen
run. The ledger refuses a run whose gate receipt is not PASS (``TRAIN_PUBLISH_NOT_PASSED``) and
other content under a taken version (``TRAIN_PUBLISH_CONFLICT``); both exit 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict

from customer_model_factory._version import __version__
from customer_model_factory.context import RunContext
from customer_model_factory.errors import PublishError, StageInputError
from customer_model_factory.ledger import Publication, RunLedger
from customer_model_factory.manifest import InputLink, Manifest
from customer_model_factory.plugin_api import CMF_PLUGIN_API
from customer_model_factory.stages.benchmark.models import CustomerBenchmarkResult
from customer_model_factory.stages.selection.models import (
    BundleCompatibility,
    BundleEvaluation,
    BundleInputSchema,
    BundleLineage,
    CustomerModelSelectionReport,
    ModelBundle,
)
from customer_model_factory.stages.training.models import CustomerTrainingManifest
from customer_model_factory.store import ArtefactStore, parse_artefact_uri

__all__ = ["PUBLISH_ACTOR", "PublishOutcome", "build_model_bundle", "publish_bundle"]

PUBLISH_ACTOR: Final = "cmf-publish"
_M = TypeVar("_M", bound=Manifest)
_HEADLINE: Final = (
    "balanced_accuracy",
    "recall",
    "false_positive_rate",
    "high_risk_false_negative_rate",
    "high_risk_miss_rate_upper_95",
    "latency_p95_ms",
)


class PublishOutcome(BaseModel):
    """The bundle and its registry entry."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    bundle: ModelBundle
    publication: Publication
    mlflow_run_id: str | None = None


def _linked(
    links: tuple[InputLink, ...], cls: type[_M], digest: str, store: ArtefactStore, what: str
) -> _M:
    link = next((x for x in links if x.kind == cls.KIND and x.hash == digest), None)
    if link is None or link.uri is None:
        raise StageInputError(
            f"{what} {digest} is not linked with a store URI", code="SELECT_LINK_MISSING"
        )
    parsed = parse_artefact_uri(link.uri)
    if parsed.digest is None:
        raise StageInputError(
            f"{what} {digest} is linked at {link.uri}, not in the store",
            code="SELECT_LINK_MISSING",
        )
    payload = orjson.loads(store.get_bytes(parsed.digest))
    manifest = cls.from_payload(payload, path=link.uri)
    if manifest.content_digest != digest:
        raise StageInputError(
            f"{link.uri} holds the {what} {manifest.content_digest}, not the linked {digest}",
            code="SELECT_LINK_MISSING",
        )
    return manifest


def build_model_bundle(
    selection: CustomerModelSelectionReport,
    *,
    bundle_id: str,
    version: str,
    context: RunContext,
    gate_receipt_hash: str,
    gate_status: str,
) -> ModelBundle:
    """Build the bundle of a selection's chosen model (every linked artefact verified).

    :raises StageInputError: the selection is not ready or selected nothing, or a link is missing.
    :raises ArtefactError: an artefact is not stored, or its bytes differ from its digest.
    """
    if not selection.ready or selection.selected_result_hash is None:
        raise StageInputError(
            "the selection is not ready or selected no model; nothing to publish",
            code="SELECT_NO_ELIGIBLE_CANDIDATE",
        )
    store = ArtefactStore(context.home)
    result = _linked(
        selection.inputs,
        CustomerBenchmarkResult,
        selection.selected_result_hash,
        store,
        "benchmark result",
    )
    training = _linked(
        result.inputs,
        CustomerTrainingManifest,
        result.training_manifest_hash,
        store,
        "training manifest",
    )
    model = training.model
    if model is None or model.digest != result.model_digest:
        raise StageInputError(
            "the selected result benchmarked a model the training manifest does not record",
            code="SELECT_LINK_MISSING",
        )
    digests = {"model-index": store.verify(model.digest).digest}
    for name, digest in sorted(model.files.items()):
        digests[f"model/{name}"] = store.verify(digest).digest
    digests["raw-results"] = store.verify(result.raw_result_digest).digest
    metrics = {name: getattr(result.metrics, name) for name in _HEADLINE}
    return ModelBundle.seal(
        customer_id=selection.customer_id,
        workspace_id=selection.workspace_id,
        tenant_id=selection.tenant_id,
        inputs=[
            selection.link(),
            *(x for x in selection.inputs if x.hash == result.result_hash),
            *(x for x in result.inputs if x.kind == CustomerTrainingManifest.KIND),
        ],
        bundle_id=bundle_id,
        version=version,
        train_run_id=result.train_run_id,
        model=model,
        artefact_digests=digests,
        lineage=BundleLineage(
            dataset_hash=training.dataset_hash,
            dataset_report_hash=training.dataset_report_hash,
            training_manifest_hash=training.manifest_hash,
            selection_hash=selection.selection_hash,
            hyperparameters=training.hyperparameters,
            seed=training.seed,
        ),
        evaluation=BundleEvaluation(
            benchmark_id=result.benchmark_id,
            result_hash=result.result_hash,
            raw_result_uri=result.raw_result_uri,
            raw_result_digest=result.raw_result_digest,
            calibration_result_hash=result.thresholds.calibration_result_hash,
            gate_status=gate_status,
            gate_receipt_hash=gate_receipt_hash,
            claim_boundary=result.claim_boundary,
            metrics=metrics,
        ),
        decision_policy=result.thresholds,
        input_schema=BundleInputSchema(),
        compatibility=BundleCompatibility(
            lane=model.lane,
            core_version=__version__,
            plugin_api=str(CMF_PLUGIN_API),
            requires_private_execution=training.requires_private_execution,
        ),
    )


def publish_bundle(
    selection_path: Path,
    *,
    bundle_id: str,
    version: str,
    context: RunContext,
    mlflow_uri: str | None = None,
) -> PublishOutcome:
    """Publish the model a selection chose as ``(bundle_id, version)``; idempotent.

    With ``mlflow_uri``, the bundle is then also logged to MLflow
    (:func:`~customer_model_factory.stages.selection.mlflow_log.log_bundle_to_mlflow`; also
    idempotent), after the local registry accepted it.

    :raises PublishError: the chosen run's gate receipt is missing or FAIL (exit 1).
    :raises PublishConflictError: other content is published under that version (exit 1).
    :raises LedgerError: a malformed bundle id or version, or an unknown run (exit 2).
    :raises ConfigError: MLflow is not installed or refused the logging (exit 2; the bundle is
        published, so running the command again only retries the logging).
    """
    selection = CustomerModelSelectionReport.load(selection_path)
    run_id = selection.selected_train_run_id
    with RunLedger(context.home) as ledger:
        if run_id is None:
            raise StageInputError(
                "the selection selected no model; nothing to publish",
                code="SELECT_NO_ELIGIBLE_CANDIDATE",
                path=selection_path,
            )
        receipt = ledger.show(run_id).receipt
        if receipt is None or receipt.gate_status != "PASS":
            status = "no gate receipt" if receipt is None else "a FAIL gate receipt"
            raise PublishError(
                f"cannot publish: the run has {status}; only a PASS run is published",
                code="TRAIN_PUBLISH_NOT_PASSED",
                run_id=run_id,
            )
        if selection.selection_hash not in receipt.evidence_refs:
            raise PublishError(
                "the run's PASS receipt was given for another selection; publish that one",
                code="TRAIN_PUBLISH_NOT_PASSED",
                run_id=run_id,
            )
        bundle = build_model_bundle(
            selection,
            bundle_id=bundle_id,
            version=version,
            context=context,
            gate_receipt_hash=receipt.receipt_hash,
            gate_status=receipt.gate_status,
        )
        ArtefactStore(context.home).put_bytes(bundle.to_json_bytes())
        publication = ledger.publish(
            run_id,
            bundle_id=bundle_id,
            version=version,
            content_digest=bundle.bundle_hash,
            at=context.now(),
            actor=PUBLISH_ACTOR,
        )
    mlflow_run_id = None
    if mlflow_uri is not None:
        from customer_model_factory.stages.selection.mlflow_log import (  # noqa: PLC0415
            log_bundle_to_mlflow,
        )

        mlflow_run_id = log_bundle_to_mlflow(bundle, tracking_uri=mlflow_uri)
    return PublishOutcome(bundle=bundle, publication=publication, mlflow_run_id=mlflow_run_id)
