"""The arithmetic of monitoring: histogram counts, PSI, the p95 latency, cost, thresholds, health.

Pure functions over numbers; the decision-log reader (:mod:`.log`) feeds them.

**PSI.** The population stability index of observed counts ``o`` against reference counts ``r``
over the same ``k`` bins::

    p_i = max(o_i / sum(o), ε)        q_i = max(r_i / sum(r), ε)        ε = PSI_EPSILON = 1e-4
    PSI = Σ_i (p_i − q_i) · ln(p_i / q_i)

The floor ``ε`` keeps an empty bin finite (an empty bin on one side only adds
``(p − ε) · ln(p / ε)``, a large but finite term); a bin empty on both sides adds 0. Every term
is ≥ 0 (``p − q`` and ``ln(p / q)`` have the same sign), so PSI ≥ 0, PSI = 0 for identical
proportions, and PSI is exactly symmetric: swapping the two histograms gives the same value.
Common reading: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 significant shift (the default
limit).

**p95.** The nearest-rank 95th percentile: the ``ceil(0.95 · n)``-th smallest latency (numpy's
``percentile(..., method="inverted_cdf")``), the same definition the benchmark stage uses, so the
runtime's p95 is compared with a like figure. Always a latency that was observed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, NamedTuple

import numpy as np

from customer_model_factory.findings import Finding
from customer_model_factory.stages.benchmark.models import Histogram
from customer_model_factory.stages.monitoring.models import (
    HealthStatus,
    MonitoringMetrics,
    MonitoringThresholds,
    Recommendation,
    ThresholdBreach,
)
from customer_model_factory.stages.runtime.models import CostModel

__all__ = [
    "BREACH_RULES",
    "PSI_EPSILON",
    "BreachRule",
    "bin_counts",
    "cost_per_1k_decisions",
    "evaluate_thresholds",
    "health_status",
    "nearest_rank_p95",
    "population_stability_index",
    "psi_against",
]

PSI_EPSILON: Final = 1e-4
"""Floor of a bin's proportion in :func:`population_stability_index`."""


def bin_counts(edges: Sequence[float], values: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the bins of a :class:`Histogram` cut at ``edges``: bin 0 is
    ``(-inf, edges[0])``, bin *i* is ``[edges[i-1], edges[i])``, the last ``[edges[-1], +inf)``.
    Returns ``len(edges) + 1`` counts (int64)."""
    cuts = np.asarray(edges, dtype=np.float64)
    index = np.searchsorted(cuts, np.asarray(values, dtype=np.float64), side="right")
    return np.bincount(index, minlength=len(cuts) + 1).astype(np.int64)


def population_stability_index(observed: Sequence[int], reference: Sequence[int]) -> float:
    """PSI of ``observed`` counts against ``reference`` counts over the same bins (see the
    module docstring for the definition and the ``ε`` floor).

    :raises ValueError: the two have different lengths, or either holds no count.
    """
    obs = np.asarray(observed, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if obs.shape != ref.shape:
        raise ValueError(f"PSI needs the same bins on both sides ({obs.size} vs {ref.size})")
    if obs.sum() <= 0 or ref.sum() <= 0:
        raise ValueError("PSI needs at least one count on each side")
    p = np.maximum(obs / obs.sum(), PSI_EPSILON)
    q = np.maximum(ref / ref.sum(), PSI_EPSILON)
    value = float(np.sum((p - q) * np.log(p / q)))
    return max(value, 0.0)  # each term is >= 0; clamp the last ulp of rounding


def psi_against(histogram: Histogram, counts: np.ndarray) -> float:
    """PSI of ``counts`` (from :func:`bin_counts` over ``histogram.edges``) vs ``histogram``."""
    return population_stability_index(counts.tolist(), list(histogram.counts))


def nearest_rank_p95(latencies: np.ndarray) -> float:
    """The ``ceil(0.95 n)``-th smallest value (0.0 for no value)."""
    size = int(latencies.size)
    if size == 0:
        return 0.0
    rank = math.ceil(0.95 * size)
    return float(np.partition(latencies, rank - 1)[rank - 1])


def cost_per_1k_decisions(model: CostModel, decisions: int, latency_ms_sum: float) -> float:
    """Cost of 1,000 decisions: ``per_decision + per_compute_second × mean latency (s)``, × 1000.

    The total is ``per_decision × n + per_compute_second × Σ latency_ms / 1000``; divided by
    ``n`` and multiplied by 1000. 0.0 for no decision.
    """
    if decisions <= 0:
        return 0.0
    total = model.per_decision * decisions + model.per_compute_second * (latency_ms_sum / 1000.0)
    return total / decisions * 1000.0


class BreachRule(NamedTuple):
    """One threshold: the metric it reads, the limit field, the code and action of a breach."""

    metric: str
    limit_field: str
    code: str
    action: str
    message: str
    severity: str = "warning"


BREACH_RULES: Final[tuple[BreachRule, ...]] = (
    BreachRule(
        "input_drift_score",
        "max_input_drift_score",
        "MONITOR_INPUT_DRIFT_BREACH",
        "retrain",
        "input lengths drifted from the reference (PSI); retrain on recent traffic",
    ),
    BreachRule(
        "source_corpus_drift_score",
        "max_source_corpus_drift_score",
        "MONITOR_SOURCE_DRIFT_BREACH",
        "retrain",
        "the score distribution drifted from the reference (PSI); retrain and re-benchmark",
    ),
    BreachRule(
        "false_negative_incident_count",
        "max_false_negative_incidents",
        "MONITOR_FALSE_NEGATIVE_BREACH",
        "retrain",
        "approved unsafe outputs were reported; investigate each incident and retrain on them",
        severity="error",
    ),
    BreachRule(
        "abstention_rate",
        "max_abstention_rate",
        "MONITOR_ABSTENTION_RATE_BREACH",
        "review",
        "the runtime abstains more than allowed; review the abstention threshold and traffic",
    ),
    BreachRule(
        "escalation_rate",
        "max_escalation_rate",
        "MONITOR_ESCALATION_RATE_BREACH",
        "review",
        "the runtime escalates more than allowed; review the escalation threshold and queue",
    ),
    BreachRule(
        "latency_p95_ms",
        "max_latency_p95_ms",
        "MONITOR_LATENCY_BREACH",
        "investigate",
        "p95 latency is over its limit; investigate the runtime's resources",
    ),
    BreachRule(
        "cost_per_1k_decisions",
        "max_cost_per_1k_decisions",
        "MONITOR_COST_BREACH",
        "investigate",
        "cost per 1,000 decisions is over its limit; investigate compute use",
    ),
)
"""Every threshold, in the order breaches are reported. A metric breaches when it is strictly
greater than its limit."""


def evaluate_thresholds(
    metrics: MonitoringMetrics, thresholds: MonitoringThresholds
) -> tuple[tuple[ThresholdBreach, ...], tuple[Recommendation, ...], list[Finding]]:
    """Breaches (metric > limit), one recommendation and one finding per breach.

    A false-negative incident breach is an error finding (the release gate blocks on it); the
    other breaches are warnings (review required, release not blocked by monitoring).
    """
    breaches: list[ThresholdBreach] = []
    recommendations: list[Recommendation] = []
    findings: list[Finding] = []
    for rule in BREACH_RULES:
        observed = float(getattr(metrics, rule.metric))
        limit = float(getattr(thresholds, rule.limit_field))
        if not observed > limit:
            continue
        breaches.append(ThresholdBreach(metric=rule.metric, observed=observed, limit=limit))
        recommendations.append(
            Recommendation(
                code=rule.code, metric=rule.metric, action=rule.action, message=rule.message
            )
        )
        findings.append(
            Finding(
                code=rule.code,
                severity=rule.severity,  # type: ignore[arg-type]
                message=f"{rule.metric} {observed:.6g} is over its limit {limit:.6g}",
                field=f"metrics.{rule.metric}",
            )
        )
    return tuple(breaches), tuple(recommendations), findings


def health_status(*, evidence_blocked: bool, breaches: Sequence[ThresholdBreach]) -> HealthStatus:
    """``evidence_blocked`` (the log or queues cannot be trusted) over ``review_required`` (any
    breach) over ``within_control``."""
    if evidence_blocked:
        return "evidence_blocked"
    if breaches:
        return "review_required"
    return "within_control"
