"""Stage 8: a monitoring manifest computed from a runtime's decision log.

:func:`build_monitoring` loads the runtime package (hash recomputed), reads the review and
incident files, streams the decision log once (:func:`~.log.scan_decision_log`), computes the
metrics (:mod:`.metrics`), checks them against the thresholds and seals a
:class:`~.models.CustomerMonitoringManifest`. Nothing is written: the CLI writes the manifest.

Health: ``evidence_blocked`` when the evidence cannot be trusted (an empty or unreadable log, a
malformed line in the log or a queue file, lines another runtime wrote, a reference histogram
with no count); else ``review_required`` when any threshold is breached; else
``within_control``. Only a missing file, a directory, a tampered runtime package or a malformed
thresholds file is bad input (:class:`~customer_model_factory.errors.InputError`, exit 2).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import tomllib
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from customer_model_factory.canonical import content_hash
from customer_model_factory.context import RunContext
from customer_model_factory.errors import ConfigError, DataFormatError
from customer_model_factory.findings import Finding
from customer_model_factory.io import read_text_strict
from customer_model_factory.manifest import InputLink
from customer_model_factory.stages.monitoring.log import (
    ExpectedRuntime,
    LogSummary,
    scan_decision_log,
)
from customer_model_factory.stages.monitoring.metrics import (
    cost_per_1k_decisions,
    evaluate_thresholds,
    health_status,
    nearest_rank_p95,
    population_stability_index,
)
from customer_model_factory.stages.monitoring.models import (
    CustomerMonitoringManifest,
    IncidentRecord,
    MonitoringMetrics,
    MonitoringThresholds,
    ReviewRecord,
)
from customer_model_factory.stages.monitoring.queues import (
    QueueFile,
    read_incidents,
    read_reviews,
)
from customer_model_factory.stages.runtime.models import CustomerRuntimePackage
from customer_model_factory.store import build_file_uri

__all__ = [
    "DECISION_LOG_KIND",
    "INCIDENTS_KIND",
    "REVIEWS_KIND",
    "RUNTIME_PACKAGE_FILE",
    "MonitorRequest",
    "build_monitoring",
    "load_runtime_package",
    "load_thresholds",
]

RUNTIME_PACKAGE_FILE: Final = "runtime_package.json"
"""The manifest file inside a runtime package directory."""
DECISION_LOG_KIND: Final = "decision-log"
REVIEWS_KIND: Final = "review-queue"
INCIDENTS_KIND: Final = "incident-queue"
_FLAGGED: Final = frozenset({"block", "escalate", "abstain"})


class MonitorRequest(BaseModel):
    """Everything ``cmf monitor`` takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runtime: Path = Field(description="A runtime package directory, or its runtime_package.json.")
    decision_log: Path = Field(description="The decision log (JSONL of DecisionRecord).")
    reviews: Path | None = Field(default=None, description="Review file (JSONL of ReviewRecord).")
    incidents: Path | None = Field(
        default=None, description="Incident file (JSONL of IncidentRecord)."
    )
    thresholds: MonitoringThresholds | None = Field(
        default=None, description="Limits; default MonitoringThresholds() (or thresholds_file)."
    )
    thresholds_file: Path | None = Field(
        default=None, description="TOML or JSON file overriding some default limits."
    )
    monitoring_id: str | None = Field(
        default=None, min_length=1, description="Default: derived from the runtime and log."
    )
    output: Path | None = Field(
        default=None,
        description="Where the manifest will be written: input URIs are then relative to its "
        "directory (else file:// URIs).",
    )


def load_runtime_package(path: str | Path) -> tuple[CustomerRuntimePackage, Path]:
    """Load a runtime package (hash recomputed) from its directory or its manifest file.

    :raises DataFormatError, ManifestIntegrityError: missing, malformed or tampered.
    """
    target = Path(path)
    if target.is_dir():
        target = target / RUNTIME_PACKAGE_FILE
    return CustomerRuntimePackage.load(target), target


def load_thresholds(path: str | Path) -> MonitoringThresholds:
    """Read limits from a TOML or JSON file (an object of MonitoringThresholds fields, each
    optional: the others keep their defaults; a TOML file may also put them under a
    ``[thresholds]`` table).

    :raises ConfigError: unreadable, not TOML/JSON, an unknown key or a bad value.
    """
    target = Path(path)
    try:
        text = read_text_strict(target)
    except DataFormatError as error:
        raise ConfigError(f"thresholds {error.message}", path=target, line=error.line) from None
    data: Any
    if target.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"invalid JSON: {error.msg}", path=target, line=error.lineno
            ) from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"invalid TOML: {error}", path=target) from None
        if isinstance(data.get("thresholds"), dict) and len(data) == 1:
            data = data["thresholds"]
    if not isinstance(data, dict):
        raise ConfigError("thresholds must be an object of limits", path=target)
    for key, value in data.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError("a limit must be a finite number", path=target, field=str(key)[:60])
    try:
        return MonitoringThresholds.model_validate(data, strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or None
        if first["type"] == "extra_forbidden":
            known = ", ".join(sorted(MonitoringThresholds.model_fields))
            raise ConfigError(
                f"unknown key (known: {known})", path=target, field=str(where)[:60]
            ) from None
        raise ConfigError(str(first["msg"]), path=target, field=where) from None


def _uri(path: Path, output: Path | None) -> str:
    absolute = Path(os.path.abspath(path))
    if output is None:
        return build_file_uri(absolute)
    base = Path(os.path.abspath(output)).parent
    return Path(os.path.relpath(absolute, base)).as_posix()


def _instant_text(moment: dt.datetime) -> str:
    """The instant in UTC (``...Z``); as written, with its offset, when UTC would leave the
    calendar (year 1 at +01:00, year 9999 at -01:00)."""
    try:
        return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    except OverflowError:
        return moment.isoformat()


def _drift(
    label: str, observed: tuple[int, ...], reference: tuple[int, ...], findings: list[Finding]
) -> float:
    if sum(observed) == 0:
        return 0.0  # no decision: MONITOR_LOG_EMPTY says so
    if sum(reference) == 0:
        findings.append(
            Finding(
                code="MONITOR_REFERENCE_EMPTY",
                severity="error",
                message=f"the runtime package's {label} reference histogram holds no count; "
                "drift cannot be measured",
                field=f"runtime_config.reference_histograms.{label}",
            )
        )
        return 0.0
    return population_stability_index(observed, reference)


def _review_count(
    reviews: QueueFile[ReviewRecord], seen: dict[str, str], findings: list[Finding]
) -> int:
    """False-positive reviews of flagged decisions in the log, one per trace (the latest review
    of a trace counts)."""
    latest: dict[str, tuple[dt.datetime, int, ReviewRecord]] = {}
    for line, record, instant in reviews.records:
        location = f"{reviews.path}:{line}"
        decision = seen.get(record.trace_id)
        if decision is None or decision not in _FLAGGED:
            findings.append(
                Finding(
                    code="MONITOR_REVIEW_UNKNOWN_TRACE",
                    severity="warning",
                    message="the review names a trace that is not a flagged decision of this log"
                    if decision is None
                    else "the review names a decision that was approved, not flagged",
                    field="trace_id",
                    location=location,
                )
            )
            continue
        previous = latest.get(record.trace_id)
        if previous is not None:
            findings.append(
                Finding(
                    code="MONITOR_REVIEW_DUPLICATE",
                    severity="warning",
                    message=f"the trace was reviewed before (line {previous[1]}); the latest "
                    "review counts",
                    field="trace_id",
                    location=location,
                )
            )
            if (instant, line) < (previous[0], previous[1]):
                continue
        latest[record.trace_id] = (instant, line, record)
    return sum(1 for _, _, record in latest.values() if record.outcome == "false_positive")


def _incident_counts(
    incidents: QueueFile[IncidentRecord], seen: dict[str, str], findings: list[Finding]
) -> tuple[int, int]:
    """Every incident counts once (an incident is never dropped for naming an unknown trace:
    that is a warning); an incident_id used twice is an error."""
    first_line: dict[str, int] = {}
    total = high = 0
    for line, record, _ in incidents.records:
        location = f"{incidents.path}:{line}"
        if record.incident_id in first_line:
            findings.append(
                Finding(
                    code="MONITOR_INCIDENT_DUPLICATE",
                    severity="error",
                    message=f"the incident_id is used before (line "
                    f"{first_line[record.incident_id]}); the queue is ambiguous",
                    field="incident_id",
                    location=location,
                )
            )
            continue
        first_line[record.incident_id] = line
        total += 1
        high += record.severity in {"high", "critical"}
        if seen.get(record.trace_id) != "approve":
            findings.append(
                Finding(
                    code="MONITOR_INCIDENT_UNKNOWN_TRACE",
                    severity="warning",
                    message="the incident names a trace that is not an approved decision of "
                    "this log (it still counts)",
                    field="trace_id",
                    location=location,
                )
            )
    return total, high


def _metrics(
    summary: LogSummary,
    package: CustomerRuntimePackage,
    fp_reviews: int,
    incidents: tuple[int, int],
    findings: list[Finding],
) -> MonitoringMetrics:
    total = summary.decisions
    counts = summary.decision_counts
    reference = package.runtime_config.reference_histograms

    def rate(decision: str) -> float:
        return counts[decision] / total if total else 0.0

    return MonitoringMetrics(
        total_decisions=total,
        input_drift_score=_drift(
            "input_chars", summary.input_counts, reference.input_chars.counts, findings
        ),
        source_corpus_drift_score=_drift(
            "score", summary.score_counts, reference.score.counts, findings
        ),
        false_positive_review_count=fp_reviews,
        false_negative_incident_count=incidents[0],
        abstention_rate=rate("abstain"),
        escalation_rate=rate("escalate"),
        latency_p95_ms=nearest_rank_p95(summary.latencies),
        cost_per_1k_decisions=cost_per_1k_decisions(
            package.runtime_config.cost_model, total, summary.latency_sum
        ),
        decision_counts=dict(counts),
        block_rate=rate("block"),
        high_severity_incident_count=incidents[1],
    )


def build_monitoring(request: MonitorRequest, context: RunContext) -> CustomerMonitoringManifest:
    """Compute the monitoring manifest of a decision log (see the module docstring).

    :raises InputError: a missing or unopenable file, a tampered runtime package, a malformed
        thresholds file (exit 2).
    """
    package, package_path = load_runtime_package(request.runtime)
    thresholds = request.thresholds
    if thresholds is None:
        thresholds = (
            load_thresholds(request.thresholds_file)
            if request.thresholds_file is not None
            else MonitoringThresholds()
        )
    reviews = read_reviews(request.reviews) if request.reviews is not None else None
    incidents = read_incidents(request.incidents) if request.incidents is not None else None
    watched = frozenset(
        record.trace_id
        for queue in (reviews, incidents)
        if queue is not None
        for _, record, _ in queue.records
    )
    config = package.runtime_config
    expected = ExpectedRuntime(package.runtime_id, package.runtime_hash, config.package_version)
    summary = scan_decision_log(
        request.decision_log, expected, config.reference_histograms, watched=watched
    )
    findings: list[Finding] = list(summary.findings)
    if summary.decisions == 0:
        findings.append(
            Finding(
                code="MONITOR_LOG_EMPTY",
                severity="error",
                message="the decision log holds no valid decision of this runtime; nothing "
                "was measured",
                location=str(request.decision_log),
            )
        )
    evidence_findings = [f for f in findings if f.severity == "error"]
    fp_reviews = 0
    incident_counts = (0, 0)
    if reviews is not None:
        findings.extend(reviews.findings)
        evidence_findings.extend(reviews.findings)
        fp_reviews = _review_count(reviews, summary.watched_decisions, findings)
    if incidents is not None:
        findings.extend(incidents.findings)
        evidence_findings.extend(incidents.findings)
        before = len(findings)
        incident_counts = _incident_counts(incidents, summary.watched_decisions, findings)
        evidence_findings.extend(f for f in findings[before:] if f.severity == "error")
    before = len(findings)
    metrics = _metrics(summary, package, fp_reviews, incident_counts, findings)
    evidence_findings.extend(findings[before:])
    breaches, recommendations, breach_findings = evaluate_thresholds(metrics, thresholds)
    findings.extend(breach_findings)
    health = health_status(evidence_blocked=bool(evidence_findings), breaches=breaches)

    output = request.output
    log_uri = _uri(request.decision_log, output)
    inputs = [
        package.link(_uri(package_path, output)),
        InputLink(kind=DECISION_LOG_KIND, hash=summary.digest, uri=log_uri),
    ]
    review_uri = incident_uri = ""
    review_digest = incident_digest = None
    if request.reviews is not None and reviews is not None:
        review_uri, review_digest = _uri(request.reviews, output), reviews.digest
        inputs.append(InputLink(kind=REVIEWS_KIND, hash=review_digest, uri=review_uri))
    if request.incidents is not None and incidents is not None:
        incident_uri, incident_digest = _uri(request.incidents, output), incidents.digest
        inputs.append(InputLink(kind=INCIDENTS_KIND, hash=incident_digest, uri=incident_uri))
    window = (
        f"{_instant_text(summary.first)}/{_instant_text(summary.last)}"
        if summary.first is not None and summary.last is not None
        else ""
    )
    monitoring_id = (
        request.monitoring_id
        or "monitoring-"
        + content_hash(
            [package.runtime_hash, summary.digest, review_digest, incident_digest]
        ).removeprefix("sha256:")[:16]
    )
    return CustomerMonitoringManifest.seal(
        customer_id=package.customer_id,
        workspace_id=package.workspace_id,
        tenant_id=package.tenant_id,
        inputs=inputs,
        findings=findings,
        monitoring_id=monitoring_id,
        health_status=health,
        runtime_id=package.runtime_id,
        runtime_hash=package.runtime_hash,
        deployment_id=package.deployment_id,
        evidence_hash=package.evidence_hash,
        decision_log_uri=log_uri,
        decision_log_digest=summary.digest,
        review_queue_uri=review_uri,
        review_queue_digest=review_digest,
        incident_queue_uri=incident_uri,
        incident_queue_digest=incident_digest,
        observation_window=window,
        monitored_at=context.now(),
        metrics=metrics,
        thresholds=thresholds,
        threshold_breaches=breaches,
        package_version={
            "runtime_id": package.runtime_id,
            "runtime_hash": package.runtime_hash,
            "package_version": config.package_version,
        },
        retraining_recommended=any(r.action == "retrain" for r in recommendations),
        recommendations=recommendations,
    )
