"""The deployment manifest (``kind: deployment``) and its runtime policy.

Field names follow the reference ``CustomerDeploymentManifest`` and ``DeploymentPolicy``
(``deployment_id``, ``selection_hash``, ``selected_benchmark_id``, ``selected_model_artifact_uri``,
``policy``, ``environment``, ``package_uri``, ``deployment_hash``). Unlike the reference, the
deployment's identity comes from the *selected* candidate, its thresholds default to the
calibration of the selected run, and the model is recorded with every file's digest.
"""

from __future__ import annotations

from typing import ClassVar, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.manifest import HASH_PATTERN, BoundManifest
from customer_model_factory.stages.training.models import ModelArtefact

__all__ = [
    "ENVIRONMENTS",
    "TELEMETRY_MODES",
    "CustomerDeploymentManifest",
    "DeploymentPolicy",
    "Environment",
    "TelemetryMode",
]

Environment = Literal["development", "staging", "production"]
TelemetryMode = Literal["disabled", "customer_controlled", "internal_only"]
ENVIRONMENTS: Final[tuple[str, ...]] = get_args(Environment)
"""Deployment environments, least to most guarded."""
TELEMETRY_MODES: Final[tuple[str, ...]] = get_args(TelemetryMode)
"""Where runtime telemetry may go."""


class DeploymentPolicy(BaseModel):
    """The runtime policy of a deployment (the reference ``DeploymentPolicy``, plus provenance).

    Decisions: block when ``score >= threshold``, abstain when ``score >= abstention_threshold``,
    escalate when ``score >= escalation_threshold``, approve below; so
    ``1 >= threshold >= abstention_threshold >= escalation_threshold >= 0`` (an equality empties
    that band).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float = Field(ge=0.0, le=1.0, description="Block when score >= threshold.")
    abstention_threshold: float = Field(
        ge=0.0, le=1.0, description="Abstain when score is in [this, threshold)."
    )
    escalation_threshold: float = Field(
        ge=0.0, le=1.0, description="Escalate when score is in [this, abstention_threshold)."
    )
    require_citations: bool = Field(
        description="A request without citations (source refs) is never approved: it escalates."
    )
    audit_log_uri: str = Field(description="Where the runtime appends its decision log.")
    evidence_pack_uri: str = Field(description="Where the evidence pack is exported.")
    rollback_package_uri: str = Field(
        description="The package to roll back to (required in production; '' when none)."
    )
    retention_days: int = Field(ge=1, description="Days decision logs are kept.")
    telemetry_mode: TelemetryMode = Field(description="Where runtime telemetry may go.")
    thresholds_source: Literal["calibration", "operator"] = Field(
        description="calibration: the selected run's calibrated thresholds; operator: given."
    )
    calibration_result_hash: str | None = Field(
        default=None,
        pattern=HASH_PATTERN,
        description="result_hash of the validation result the calibrated thresholds come from.",
    )


class CustomerDeploymentManifest(BoundManifest):
    """Stage 4's manifest: the selected model, its policy, its environment and its package."""

    KIND: ClassVar[str] = "deployment"
    HASH_FIELD: ClassVar[str] = "deployment_hash"
    SCHEMA_NAME: ClassVar[str] = "deployment"
    SCHEMA_VERSIONS: ClassVar[tuple[str, ...]] = ("1",)

    deployment_id: str = Field(min_length=1, description="The deployment's id.")
    environment: Environment = Field(description="Where the package is deployed.")
    selection_id: str = Field(description="The selection report's id.")
    selection_hash: str = Field(pattern=HASH_PATTERN, description="Its selection_hash.")
    selected_benchmark_id: str = Field(description="The selected candidate's benchmark id.")
    selected_result_hash: str = Field(
        pattern=HASH_PATTERN, description="The selected candidate's (test) result_hash."
    )
    selected_train_run_id: str = Field(description="The selected training run.")
    selected_model_artifact_uri: str = Field(description="cmf://sha256/<hex> of the model index.")
    model: ModelArtefact = Field(description="The selected model: lane, index URI, file digests.")
    bundle_hash: str | None = Field(
        default=None,
        pattern=HASH_PATTERN,
        description="bundle_hash of the published model bundle, when one was published.",
    )
    policy: DeploymentPolicy = Field(description="The runtime policy.")
    package_uri: str = Field(description="Where the deployable package is (the runtime package).")
    package_version: str = Field(
        min_length=1, description="The package version every runtime decision records."
    )
    deployment_hash: str = Field(default="", description="sha256 over every other field.")
