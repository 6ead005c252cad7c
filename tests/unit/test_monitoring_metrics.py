"""Monitoring arithmetic: PSI, the nearest-rank p95, cost, thresholds and health precedence."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.stages.monitoring.metrics import (
    BREACH_RULES,
    PSI_EPSILON,
    bin_counts,
    cost_per_1k_decisions,
    evaluate_thresholds,
    health_status,
    nearest_rank_p95,
    population_stability_index,
)
from customer_model_factory.stages.monitoring.models import (
    MonitoringMetrics,
    MonitoringThresholds,
    ThresholdBreach,
)
from customer_model_factory.stages.runtime.models import CostModel

counts = st.lists(st.integers(min_value=0, max_value=10_000), min_size=2, max_size=12).filter(
    lambda c: sum(c) > 0
)


@given(counts)
def test_psi_of_identical_distributions_is_zero(values: list[int]) -> None:
    assert population_stability_index(values, values) == pytest.approx(0.0, abs=1e-12)
    scaled = [3 * v for v in values]  # same proportions, other totals
    assert population_stability_index(values, scaled) == pytest.approx(0.0, abs=1e-12)


@given(st.data())
def test_psi_is_non_negative_and_symmetric(data: st.DataObject) -> None:
    first = data.draw(counts)
    second = data.draw(
        st.lists(
            st.integers(min_value=0, max_value=10_000), min_size=len(first), max_size=len(first)
        ).filter(lambda c: sum(c) > 0)
    )
    forward = population_stability_index(first, second)
    assert forward >= 0.0
    assert math.isfinite(forward)
    assert population_stability_index(second, first) == pytest.approx(forward, rel=1e-12)


def test_psi_matches_the_documented_formula_with_the_epsilon_floor() -> None:
    observed, reference = [0, 50, 50], [20, 30, 50]
    p = [max(o / 100, PSI_EPSILON) for o in observed]
    q = [max(r / 100, PSI_EPSILON) for r in reference]
    expected = sum((a - b) * math.log(a / b) for a, b in zip(p, q, strict=True))
    assert population_stability_index(observed, reference) == pytest.approx(expected)
    # An empty bin on one side gives a large but finite term.
    assert population_stability_index([0, 100], [100, 0]) > 10


def test_psi_refuses_mismatched_bins_and_empty_sides() -> None:
    with pytest.raises(ValueError, match="same bins"):
        population_stability_index([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least one count"):
        population_stability_index([0, 0], [1, 1])


def test_bin_counts_follow_the_histogram_convention() -> None:
    edges = (0.1, 0.5)
    # (-inf, 0.1), [0.1, 0.5), [0.5, inf): an edge value falls in the bin it opens.
    values = np.array([-1.0, 0.0, 0.1, 0.3, 0.5, 0.9, 2.0])
    assert bin_counts(edges, values).tolist() == [2, 2, 3]


@settings(max_examples=200)
@given(
    st.lists(
        st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=300,
    )
)
def test_p95_is_numpy_inverted_cdf(values: list[float]) -> None:
    array = np.array(values, dtype=np.float64)
    expected = float(np.percentile(array, 95, method="inverted_cdf"))
    assert nearest_rank_p95(array.copy()) == expected
    assert nearest_rank_p95(array) in values  # always an observed latency


def test_p95_of_nothing_is_zero_and_of_twenty_values_is_the_nineteenth() -> None:
    assert nearest_rank_p95(np.array([], dtype=np.float64)) == 0.0
    assert nearest_rank_p95(np.arange(1.0, 21.0)) == 19.0


def test_cost_per_1k_decisions() -> None:
    model = CostModel(per_decision=0.002, per_compute_second=0.5)
    # 4 decisions of 10 ms: 4 * 0.002 + 0.5 * 0.04 s = 0.028 -> per decision 0.007 -> per 1k 7.
    assert cost_per_1k_decisions(model, 4, 40.0) == pytest.approx(7.0)
    assert cost_per_1k_decisions(model, 0, 0.0) == 0.0


def _metrics(**over: float) -> MonitoringMetrics:
    base = {
        "total_decisions": 100,
        "input_drift_score": 0.0,
        "source_corpus_drift_score": 0.0,
        "false_positive_review_count": 0,
        "false_negative_incident_count": 0,
        "abstention_rate": 0.0,
        "escalation_rate": 0.0,
        "latency_p95_ms": 1.0,
        "cost_per_1k_decisions": 0.0,
        "decision_counts": {"approve": 100, "escalate": 0, "abstain": 0, "block": 0},
        "block_rate": 0.0,
        "high_severity_incident_count": 0,
    }
    base.update(over)
    return MonitoringMetrics.model_validate(base)


def test_a_metric_at_its_limit_is_no_breach_and_above_is_one() -> None:
    limits = MonitoringThresholds()
    at = _metrics(abstention_rate=limits.max_abstention_rate)
    assert evaluate_thresholds(at, limits)[0] == ()
    breaches, recommendations, findings = evaluate_thresholds(_metrics(abstention_rate=0.5), limits)
    assert [b.metric for b in breaches] == ["abstention_rate"]
    assert recommendations[0].action == "review"
    assert findings[0].code == "MONITOR_ABSTENTION_RATE_BREACH"
    assert findings[0].severity == "warning"


def test_a_false_negative_breach_is_an_error_with_its_own_code_and_asks_retraining() -> None:
    breaches, recommendations, findings = evaluate_thresholds(
        _metrics(false_negative_incident_count=1), MonitoringThresholds()
    )
    assert [f.code for f in findings] == ["MONITOR_FALSE_NEGATIVE_BREACH"]
    assert findings[0].severity == "error"
    assert recommendations[0].action == "retrain"
    assert breaches[0].observed == 1.0


def test_every_threshold_has_a_rule_and_every_rule_code_is_registered() -> None:
    from customer_model_factory.findings import FINDING_CODES

    assert {rule.limit_field for rule in BREACH_RULES} == set(MonitoringThresholds.model_fields)
    assert all(rule.code in FINDING_CODES for rule in BREACH_RULES)


def test_health_precedence() -> None:
    breach = ThresholdBreach(metric="x", observed=2.0, limit=1.0)
    assert health_status(evidence_blocked=True, breaches=[breach]) == "evidence_blocked"
    assert health_status(evidence_blocked=True, breaches=[]) == "evidence_blocked"
    assert health_status(evidence_blocked=False, breaches=[breach]) == "review_required"
    assert health_status(evidence_blocked=False, breaches=[]) == "within_control"
