"""The selection report (``kind: selection-report``) and the model bundle (``kind: model-bundle``).

Field names of the selection report follow the reference ``CustomerModelSelectionReport``
(``selection_id``, ``objective_profile``, ``selected_benchmark_id``,
``selected_model_artifact_uri``, ``candidates``, ``selection_hash``). Candidates are summaries
(their ``result_hash``, eligibility, score and reasons), each result linked by hash in ``inputs``;
the full results stay where they are, verifiable by ``cmf manifest verify --chain``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.manifest import HASH_PATTERN, BoundManifest
from customer_model_factory.plugin_api.contracts import MetricConstraint
from customer_model_factory.stages.benchmark.models import DecisionThresholds
from customer_model_factory.stages.training.models import ModelArtefact

__all__ = [
    "BundleCompatibility",
    "BundleEvaluation",
    "BundleInputSchema",
    "BundleLineage",
    "CandidateSummary",
    "CustomerModelSelectionReport",
    "ModelBundle",
]


class CandidateSummary(BaseModel):
    """One candidate benchmark result as the selection judged it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    result_hash: str = Field(pattern=HASH_PATTERN, description="The result's result_hash.")
    benchmark_id: str = Field(description="Its benchmark id.")
    split: str = Field(description="The split it measured (only test results are eligible).")
    training_manifest_hash: str = Field(description="The training manifest it benchmarked.")
    train_run_id: str = Field(description="The training run.")
    model_artifact_uri: str = Field(description="The model benchmarked.")
    trace_count: int = Field(description="Traces measured.")
    eligible: bool = Field(description="True when every constraint held (from raw results).")
    score: float | None = Field(description="The profile's weighted score (null if undefined).")
    rank: int | None = Field(description="1 = selected; null for an ineligible candidate.")
    observed: dict[str, float | None] = Field(
        description="The metrics the profile reads, recomputed from the raw results."
    )
    high_risk_unsafe_count: int = Field(description="Unsafe traces of severity high/critical.")
    high_risk_silent_unsafe_passes: int = Field(
        description="Of those, approved (counted from the raw results)."
    )
    high_risk_miss_rate_upper_95: float | None = Field(
        description="One-sided 95% Clopper-Pearson upper bound of the high-risk miss rate."
    )
    reasons: tuple[str, ...] = Field(description="Why it is ineligible (empty when eligible).")


class CustomerModelSelectionReport(BoundManifest):
    """Stage 3b's manifest: the candidate chosen under an objective profile, and why."""

    KIND: ClassVar[str] = "selection-report"
    HASH_FIELD: ClassVar[str] = "selection_hash"
    SCHEMA_NAME: ClassVar[str] = "selection-report"
    SCHEMA_VERSIONS: ClassVar[tuple[str, ...]] = ("1",)

    selection_id: str = Field(min_length=1, description="The selection's id.")
    objective_profile: str = Field(description="The objective profile's name.")
    profile_constraints: tuple[MetricConstraint, ...] = Field(
        description="The profile's constraints, with the cut-offs given on the command line."
    )
    score_weights: dict[str, float] = Field(description="metric -> weight of the score.")
    min_high_risk_samples: int = Field(description="High-risk unsafe traces a candidate needs.")
    tie_break: str = Field(description="How equal scores are ordered (never input order).")
    candidates: tuple[CandidateSummary, ...] = Field(
        description="Every candidate: eligible ones by rank, then the others by result_hash."
    )
    selected_benchmark_id: str | None = Field(description="The chosen result's benchmark id.")
    selected_result_hash: str | None = Field(description="The chosen result's result_hash.")
    selected_model_artifact_uri: str | None = Field(description="The chosen model.")
    selected_train_run_id: str | None = Field(description="The chosen training run.")
    gate_criteria: tuple[MetricConstraint, ...] = Field(
        description="What the gate receipt of the chosen run checks: the profile's constraints, "
        "the minimum high-risk sample count, and the benchmark package's thresholds."
    )
    high_risk_miss_rate_upper_95: float | None = Field(
        description="The chosen result's one-sided 95% upper bound of the high-risk miss rate."
    )
    high_risk_statement: str = Field(description="What the high-risk figures do and do not say.")
    selection_hash: str = Field(default="", description="sha256 over every other field.")


class BundleLineage(BaseModel):
    """Where the bundled model comes from, by hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset_hash: str = Field(description="Digest of the data bytes trained on.")
    dataset_report_hash: str = Field(description="report_hash of the dataset report.")
    training_manifest_hash: str = Field(description="manifest_hash of the training manifest.")
    selection_hash: str = Field(description="selection_hash of the selection report.")
    hyperparameters: dict[str, Any] = Field(description="The lane's hyperparameters.")
    seed: int = Field(description="The training seed.")


class BundleEvaluation(BaseModel):
    """The evaluation evidence the bundle was released on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    benchmark_id: str
    result_hash: str = Field(description="The selected test result.")
    raw_result_uri: str
    raw_result_digest: str
    calibration_result_hash: str | None = Field(description="The validation result calibrated on.")
    gate_status: str = Field(description="PASS (only PASS runs are published).")
    gate_receipt_hash: str
    claim_boundary: str
    metrics: dict[str, float | None] = Field(description="Headline metrics of the test result.")


class BundleInputSchema(BaseModel):
    """What a caller of the bundled scorer must provide, and what it returns."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required_fields: tuple[str, ...] = ("prompt", "response")
    field_type: str = "string (UTF-8 text)"
    score: str = "P(unsafe) in [0, 1]"
    decisions: tuple[str, ...] = ("approve", "escalate", "abstain", "block")
    positive_class: str = "unsafe"


class BundleCompatibility(BaseModel):
    """What a runtime must provide to load the bundle."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lane: str = Field(description="The lane whose load() rebuilds the scorer.")
    core_version: str = Field(description="customer-model-factory version that built it.")
    plugin_api: str = Field(description="Plugin API version of the lane contract.")
    requires_private_execution: bool


class ModelBundle(BoundManifest):
    """A published model: artefact digests, lineage, evaluation refs, input schema, policy."""

    KIND: ClassVar[str] = "model-bundle"
    HASH_FIELD: ClassVar[str] = "bundle_hash"
    SCHEMA_NAME: ClassVar[str] = "model-bundle"
    SCHEMA_VERSIONS: ClassVar[tuple[str, ...]] = ("1",)

    bundle_id: str = Field(description="The bundle's id in the registry.")
    version: str = Field(description="The bundle's version; (bundle_id, version) is immutable.")
    train_run_id: str = Field(description="The PASS run it packages.")
    model: ModelArtefact = Field(description="The model: index URI and every file's digest.")
    artefact_digests: dict[str, str] = Field(description="Every bundled artefact -> its digest.")
    lineage: BundleLineage
    evaluation: BundleEvaluation
    decision_policy: DecisionThresholds = Field(description="The thresholds decisions use.")
    input_schema: BundleInputSchema
    compatibility: BundleCompatibility
    bundle_hash: str = Field(default="", description="sha256 over every other field.")
