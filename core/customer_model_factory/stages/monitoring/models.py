"""The monitoring manifest (``kind: monitoring``), its metrics, thresholds and queue records.

Field names follow the reference ``CustomerMonitoringManifest``, ``MonitoringMetrics`` and
``MonitoringThresholds``. Every metric is computed here from the decision log (and the review
and incident files), streaming; drift is the population stability index (PSI) of the log's
input-length distribution (``input_drift_score``) and score distribution
(``source_corpus_drift_score``) against the reference histograms the runtime package carries.
"""

from __future__ import annotations

from typing import ClassVar, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.manifest import HASH_PATTERN, BoundManifest

__all__ = [
    "HEALTH_STATUSES",
    "CustomerMonitoringManifest",
    "HealthStatus",
    "IncidentRecord",
    "MonitoringMetrics",
    "MonitoringThresholds",
    "Recommendation",
    "ReviewRecord",
    "ThresholdBreach",
]

HealthStatus = Literal["within_control", "review_required", "evidence_blocked"]
HEALTH_STATUSES: Final[tuple[str, ...]] = get_args(HealthStatus)
"""Monitoring health, best to worst."""


class ReviewRecord(BaseModel):
    """One line of a review file: a human review of a flagged decision."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trace_id: str = Field(min_length=1)
    reviewed_at: str = Field(description="RFC 3339 instant of the review.")
    outcome: Literal["false_positive", "confirmed"] = Field(
        description="false_positive: the flag was wrong; confirmed: it was right."
    )
    reviewer_role: str = Field(default="", description="Who reviewed (a role, never a name).")


class IncidentRecord(BaseModel):
    """One line of an incident file: an unsafe output that was approved (a false negative)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    incident_id: str = Field(min_length=1)
    trace_id: str = Field(min_length=1)
    reported_at: str = Field(description="RFC 3339 instant of the report.")
    severity: Literal["low", "medium", "high", "critical"]
    kind: Literal["false_negative"] = "false_negative"


class MonitoringMetrics(BaseModel):
    """Observed runtime metrics of one window (the reference fields, plus counts)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    total_decisions: int = Field(ge=0)
    input_drift_score: float = Field(ge=0.0, description="PSI of input length vs the reference.")
    source_corpus_drift_score: float = Field(ge=0.0, description="PSI of score vs the reference.")
    false_positive_review_count: int = Field(ge=0, description="Reviews marking a false positive.")
    false_negative_incident_count: int = Field(ge=0, description="False-negative incidents.")
    abstention_rate: float = Field(ge=0.0, le=1.0)
    escalation_rate: float = Field(ge=0.0, le=1.0)
    latency_p95_ms: float = Field(ge=0.0)
    cost_per_1k_decisions: float = Field(ge=0.0)
    decision_counts: dict[str, int] = Field(description="approve/escalate/abstain/block -> count.")
    block_rate: float = Field(ge=0.0, le=1.0)
    high_severity_incident_count: int = Field(ge=0, description="Incidents of high/critical.")


class MonitoringThresholds(BaseModel):
    """Limits that trigger review or retraining (the reference fields)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_input_drift_score: float = Field(default=0.25, ge=0.0)
    max_source_corpus_drift_score: float = Field(default=0.25, ge=0.0)
    max_false_negative_incidents: int = Field(default=0, ge=0)
    max_abstention_rate: float = Field(default=0.2, ge=0.0, le=1.0)
    max_escalation_rate: float = Field(default=0.3, ge=0.0, le=1.0)
    max_latency_p95_ms: float = Field(default=1000.0, ge=0.0)
    max_cost_per_1k_decisions: float = Field(default=10.0, ge=0.0)


class ThresholdBreach(BaseModel):
    """One metric over its limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    observed: float
    limit: float


class Recommendation(BaseModel):
    """One recommendation (the reference's ``recommendations`` items, typed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(description="A registered MONITOR_* finding code.")
    metric: str
    action: Literal["review", "retrain", "investigate"]
    message: str


class CustomerMonitoringManifest(BoundManifest):
    """Stage 8's manifest: metrics of a decision log against thresholds, and what to do."""

    KIND: ClassVar[str] = "monitoring"
    HASH_FIELD: ClassVar[str] = "monitoring_hash"
    SCHEMA_NAME: ClassVar[str] = "monitoring"
    SCHEMA_VERSIONS: ClassVar[tuple[str, ...]] = ("1",)

    monitoring_id: str = Field(min_length=1)
    health_status: HealthStatus
    runtime_id: str
    runtime_hash: str = Field(pattern=HASH_PATTERN)
    deployment_id: str
    evidence_hash: str = Field(pattern=HASH_PATTERN)
    decision_log_uri: str
    decision_log_digest: str = Field(pattern=HASH_PATTERN, description="sha256 of the log bytes.")
    review_queue_uri: str = Field(description="'' when no review file was given.")
    review_queue_digest: str | None = Field(default=None, pattern=HASH_PATTERN)
    incident_queue_uri: str = Field(description="'' when no incident file was given.")
    incident_queue_digest: str | None = Field(default=None, pattern=HASH_PATTERN)
    observation_window: str = Field(
        description="'<first decided_at>/<last decided_at>' (RFC 3339 interval) of the log."
    )
    monitored_at: str = Field(description="RFC 3339 UTC instant of this run (the run clock).")
    metrics: MonitoringMetrics
    thresholds: MonitoringThresholds
    threshold_breaches: tuple[ThresholdBreach, ...]
    package_version: dict[str, str] = Field(
        description="runtime_id, runtime_hash and package_version the log was written by."
    )
    retraining_recommended: bool
    recommendations: tuple[Recommendation, ...]
    monitoring_hash: str = Field(default="", description="sha256 over every other field.")
