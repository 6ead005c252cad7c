"""Publishing to MLflow (extra ``mlflow``): params, metrics and the bundle, logged once."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from customer_model_factory.errors import ConfigError
from customer_model_factory.stages.benchmark.models import DecisionThresholds
from customer_model_factory.stages.selection.models import (
    BundleCompatibility,
    BundleEvaluation,
    BundleInputSchema,
    BundleLineage,
    ModelBundle,
)
from customer_model_factory.stages.training.models import ModelArtefact

H = "sha256:" + "a" * 64


def _bundle(version: str = "1.0.0") -> ModelBundle:
    return ModelBundle.seal(
        customer_id="acme",
        workspace_id="ws",
        tenant_id="t1",
        bundle_id="retail-scorer",
        version=version,
        train_run_id="b" * 64,
        model=ModelArtefact(lane="linear", uri="cmf://sha256/" + "c" * 64, digest=H, files={}),
        artefact_digests={"model-index": H},
        lineage=BundleLineage(
            dataset_hash=H,
            dataset_report_hash=H,
            training_manifest_hash=H,
            selection_hash=H,
            hyperparameters={"classifier": "sgd", "c": 10.0},
            seed=0,
        ),
        evaluation=BundleEvaluation(
            benchmark_id="pkg",
            result_hash=H,
            raw_result_uri="cmf://sha256/" + "d" * 64,
            raw_result_digest=H,
            calibration_result_hash=None,
            gate_status="PASS",
            gate_receipt_hash=H,
            claim_boundary="synthetic",
            metrics={"recall": 0.95, "balanced_accuracy": 0.97, "latency_p95_ms": None},
        ),
        decision_policy=DecisionThresholds(
            source="validation-result",
            threshold=0.9,
            abstention_threshold=0.5,
            escalation_threshold=0.3,
        ),
        input_schema=BundleInputSchema(),
        compatibility=BundleCompatibility(
            lane="linear", core_version="0", plugin_api="1.1", requires_private_execution=False
        ),
    )


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return mlflow, (tmp_path / "mlruns").as_uri()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_a_bundle_is_logged_once_with_params_metrics_and_the_manifest(mlflow_store, tmp_path):
    from customer_model_factory.stages.selection.mlflow_log import (
        log_bundle_to_mlflow,
    )

    mlflow, uri = mlflow_store
    bundle = _bundle()
    run_id = log_bundle_to_mlflow(bundle, tracking_uri=uri)
    assert log_bundle_to_mlflow(bundle, tracking_uri=uri) == run_id  # idempotent
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.data.params["lane"] == "linear"
    assert run.data.params["hp.classifier"] == "sgd"
    assert run.data.metrics == {"recall": 0.95, "balanced_accuracy": 0.97}
    assert run.data.tags["cmf.bundle_hash"] == bundle.bundle_hash
    assert run.data.tags["cmf.gate_status"] == "PASS"
    path = client.download_artifacts(run_id, "bundle.json", str(tmp_path))
    assert json.loads(Path(path).read_text())["bundle_hash"] == bundle.bundle_hash
    other = log_bundle_to_mlflow(_bundle("1.0.1"), tracking_uri=uri)
    assert other != run_id


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_an_unusable_tracking_uri_is_a_configuration_error(mlflow_store, monkeypatch):
    from customer_model_factory.stages.selection.mlflow_log import (
        log_bundle_to_mlflow,
    )

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    _, uri = mlflow_store
    with pytest.raises(ConfigError, match="MLflow at"):
        log_bundle_to_mlflow(_bundle(), tracking_uri=uri)
