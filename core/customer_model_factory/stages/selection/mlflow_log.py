"""Log a published bundle to MLflow (extra ``mlflow``), for teams that already run it.

The local registry (the run ledger) stays the source of truth; MLflow gets a copy: one MLflow
run per bundle, with the training run's parameters, the bundle's headline metrics, tags naming
every hash, and the bundle manifest as the artefact ``bundle.json``. Logging the same bundle
again finds the MLflow run tagged with its ``bundle_hash`` and adds nothing, so a retried publish
never duplicates it.

MLflow's file store (``file:///path/mlruns``) refuses to open unless the operator sets
``MLFLOW_ALLOW_FILE_STORE=true``; this module never sets it.
"""

from __future__ import annotations

from typing import Any, Final

from customer_model_factory.errors import ConfigError
from customer_model_factory.stages.selection.models import ModelBundle

__all__ = ["DEFAULT_EXPERIMENT", "log_bundle_to_mlflow"]

DEFAULT_EXPERIMENT: Final = "customer-model-factory"
_MAX_PARAM: Final = 500  # MLflow's limit on a parameter value


def _client(tracking_uri: str) -> Any:
    try:
        from mlflow.tracking import MlflowClient  # noqa: PLC0415
    except ImportError:
        raise ConfigError(
            "--mlflow-uri needs MLflow: pip install 'customer-model-factory[mlflow]'"
        ) from None
    return MlflowClient(tracking_uri=tracking_uri)


def _params(bundle: ModelBundle) -> dict[str, str]:
    params = {
        "lane": bundle.model.lane,
        "seed": str(bundle.lineage.seed),
        "bundle_id": bundle.bundle_id,
        "version": bundle.version,
    }
    for name, value in sorted(bundle.lineage.hyperparameters.items()):
        params[f"hp.{name}"] = str(value)[:_MAX_PARAM]
    return params


def log_bundle_to_mlflow(
    bundle: ModelBundle, *, tracking_uri: str, experiment: str = DEFAULT_EXPERIMENT
) -> str:
    """Log ``bundle`` to the MLflow tracking server (or store) at ``tracking_uri``; idempotent.

    :returns: the MLflow run id (the existing one when the bundle was logged before).
    :raises ConfigError: MLflow is not installed, or the tracking URI cannot be used (exit 2).
    """
    try:
        client = _client(tracking_uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        existing = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`cmf.bundle_hash` = '{bundle.bundle_hash}'",
            max_results=1,
        )
        if existing:
            return str(existing[0].info.run_id)
        tags = {
            "cmf.bundle_id": bundle.bundle_id,
            "cmf.version": bundle.version,
            "cmf.bundle_hash": bundle.bundle_hash,
            "cmf.train_run_id": bundle.train_run_id,
            "cmf.gate_status": bundle.evaluation.gate_status,
            "cmf.selection_hash": bundle.lineage.selection_hash,
            "cmf.result_hash": bundle.evaluation.result_hash,
            "cmf.model_digest": bundle.model.digest,
        }
        run = client.create_run(
            experiment_id, tags=tags, run_name=f"{bundle.bundle_id}-{bundle.version}"
        )
        run_id = run.info.run_id
        for name, value in _params(bundle).items():
            client.log_param(run_id, name, value)
        for name, value in sorted(bundle.evaluation.metrics.items()):
            if value is not None:
                client.log_metric(run_id, name, float(value))
        client.log_dict(run_id, bundle.payload(), "bundle.json")
        client.set_terminated(run_id)
    except ConfigError:
        raise
    except Exception as error:
        message = " ".join(str(error).split())[:300]
        raise ConfigError(f"MLflow at {tracking_uri}: {type(error).__name__}: {message}") from None
    return str(run_id)
