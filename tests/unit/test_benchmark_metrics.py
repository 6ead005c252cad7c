"""Benchmark metrics from raw results: equal to scikit-learn's, defined on every edge case."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sklearn import metrics as skm

from customer_model_factory.stages.benchmark.metrics import (
    CALIBRATION_BINS,
    HIGH_RISK_SEVERITIES,
    SEVERITIES,
    BenchmarkMetrics,
    RawResult,
    SliceMetrics,
    binomial_cdf,
    clopper_pearson_upper,
    compute_benchmark_metrics,
)

_METRIC_FIELDS = [
    name for name, info in SliceMetrics.model_fields.items() if info.annotation == (float | None)
]


def _result(
    index: int,
    unsafe: bool,
    score: float,
    decision: str = "approve",
    *,
    severity: str = "medium",
    sector: str | None = None,
    latency: float = 1.0,
) -> RawResult:
    return RawResult(
        trace_id=f"t-{index}",
        label="unsafe" if unsafe else "safe",
        is_unsafe=unsafe,
        severity=severity,
        sector=sector,
        score=score,
        decision=decision,
        latency_ms=latency,
    )


def _results(labels, scores, decisions, *, severities=None, sectors=None, latencies=None):
    return [
        _result(
            i,
            bool(labels[i]),
            float(scores[i]),
            decisions[i],
            severity=severities[i] if severities is not None else "medium",
            sector=sectors[i] if sectors is not None else None,
            latency=float(latencies[i]) if latencies is not None else 1.0,
        )
        for i in range(len(labels))
    ]


def _assert_finite(metrics: SliceMetrics) -> None:
    for name in _METRIC_FIELDS:
        value = getattr(metrics, name)
        assert value is None or math.isfinite(value), name
        assert (value is None) == (name in metrics.undefined), name


def _assert_equals_sklearn(metrics: SliceMetrics, labels, scores, flagged) -> None:
    y = np.asarray(labels, dtype=bool)
    pred = np.asarray(flagged, dtype=bool)
    s = np.asarray(scores, dtype=float)
    assert metrics.total_samples == len(y)
    if y.any() and (~y).any():
        assert metrics.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(y, pred))
        assert metrics.roc_auc == pytest.approx(skm.roc_auc_score(y, s))
        tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[False, True]).ravel()
        assert metrics.false_positive_rate == pytest.approx(fp / (fp + tn))
        assert metrics.false_negative_rate == pytest.approx(fn / (fn + tp))
    if y.any():
        assert metrics.recall == pytest.approx(skm.recall_score(y, pred))
        assert metrics.pr_auc == pytest.approx(skm.average_precision_score(y, s))
    if pred.any():
        assert metrics.precision == pytest.approx(skm.precision_score(y, pred))
    if y.any() or pred.any():
        assert metrics.f1 == pytest.approx(skm.f1_score(y, pred))
    if len(y):
        assert metrics.brier_score == pytest.approx(skm.brier_score_loss(y, s, pos_label=True))


def test_metrics_equal_scikit_learn_on_a_fixed_benchmark():
    rng = np.random.default_rng(7)
    n = 500
    labels = rng.random(n) < 0.35
    scores = np.clip(labels * 0.3 + rng.random(n) * 0.7, 0, 1).round(3)
    decisions = np.where(scores > 0.6, "block", np.where(scores > 0.5, "abstain", "approve"))
    decisions = decisions.astype("<U8")
    decisions[::17] = "escalate"
    metrics = compute_benchmark_metrics(_results(labels, scores, decisions))
    _assert_equals_sklearn(metrics, labels, scores, decisions != "approve")
    _assert_finite(metrics)
    assert metrics.abstention_rate == pytest.approx(np.mean(decisions == "abstain"))
    assert metrics.escalation_rate == pytest.approx(np.mean(decisions == "escalate"))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])),
            st.sampled_from(["approve", "block", "abstain", "escalate"]),
        ),
        min_size=0,
        max_size=80,
    )
)
def test_metrics_equal_scikit_learn_on_random_vectors(rows):
    labels = [row[0] for row in rows]
    scores = [row[1] for row in rows]
    decisions = [row[2] for row in rows]
    metrics = compute_benchmark_metrics(_results(labels, scores, decisions))
    _assert_finite(metrics)
    _assert_equals_sklearn(metrics, labels, scores, [d != "approve" for d in decisions])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1)), min_size=1, max_size=60), st.randoms())
def test_metrics_do_not_depend_on_the_order_of_results(rows, random):
    results = [
        _result(i, unsafe, score, "block" if score > 0.5 else "approve")
        for i, (unsafe, score) in enumerate(rows)
    ]
    shuffled = list(results)
    random.shuffle(shuffled)
    first, second = compute_benchmark_metrics(results), compute_benchmark_metrics(shuffled)
    for name in _METRIC_FIELDS:
        a, b = getattr(first, name), getattr(second, name)
        assert (a is None and b is None) or a == pytest.approx(b), name


def test_empty_input_gives_null_metrics_with_reasons_never_nan():
    metrics = compute_benchmark_metrics([])
    assert metrics.total_samples == 0
    assert metrics.balanced_accuracy is None
    assert metrics.undefined["balanced_accuracy"] == "no results"
    assert metrics.severity_counts == dict.fromkeys(SEVERITIES, 0)
    assert metrics.by_severity == {} and metrics.by_sector == {}
    _assert_finite(metrics)
    # The JSON form holds no NaN: every undefined metric is null.
    assert "NaN" not in metrics.model_dump_json()


def test_no_positives_leaves_recall_and_auc_undefined():
    metrics = compute_benchmark_metrics([_result(0, False, 0.1), _result(1, False, 0.9, "block")])
    assert metrics.recall is None and metrics.undefined["recall"] == "no unsafe trace"
    assert metrics.roc_auc is None and metrics.pr_auc is None
    assert metrics.false_positive_rate == 0.5
    assert metrics.precision == 0.0  # one flagged trace, and it is safe
    assert metrics.f1 == 0.0
    _assert_finite(metrics)


def test_no_negatives_leaves_fpr_undefined_and_ap_defined():
    metrics = compute_benchmark_metrics([_result(0, True, 0.2), _result(1, True, 0.9, "block")])
    assert metrics.false_positive_rate is None
    assert metrics.balanced_accuracy is None
    assert metrics.recall == 0.5
    assert metrics.pr_auc == pytest.approx(skm.average_precision_score([1, 1], [0.2, 0.9]))
    _assert_finite(metrics)


def test_all_abstained_counts_every_trace_as_flagged():
    results = [_result(i, i % 2 == 0, 0.5, "abstain") for i in range(10)]
    metrics = compute_benchmark_metrics(results)
    assert metrics.abstention_rate == 1.0
    assert metrics.recall == 1.0 and metrics.false_negative_rate == 0.0
    assert metrics.false_positive_rate == 1.0
    assert metrics.precision == 0.5
    assert metrics.roc_auc == 0.5  # every score tied
    _assert_finite(metrics)


def test_all_approved_is_defined_with_precision_null():
    results = [_result(i, i % 2 == 0, 0.5) for i in range(6)]
    metrics = compute_benchmark_metrics(results)
    assert metrics.precision is None
    assert (
        "nothing" in metrics.undefined["precision"] or "no trace" in metrics.undefined["precision"]
    )
    assert metrics.recall == 0.0 and metrics.f1 == 0.0
    assert metrics.false_negative == 3


def test_silent_unsafe_pass_and_high_risk_rates():
    results = [
        _result(0, True, 0.9, "block", severity="critical"),
        _result(1, True, 0.3, "approve", severity="high"),  # a high-risk silent unsafe pass
        _result(2, True, 0.3, "approve", severity="medium"),  # a miss, not high-risk
        _result(3, True, 0.8, "escalate", severity="high"),
        _result(4, False, 0.1, "approve", severity="low"),
    ]
    metrics = compute_benchmark_metrics(results)
    assert metrics.high_risk_unsafe_count == 3
    assert metrics.high_risk_silent_unsafe_passes == 1
    assert metrics.high_risk_false_negative_rate == pytest.approx(1 / 3)
    assert metrics.false_negative == 2
    assert metrics.high_risk_miss_rate_upper_95 == pytest.approx(clopper_pearson_upper(1, 3))
    assert {"high", "critical"} == set(HIGH_RISK_SEVERITIES)


def test_zero_misses_in_twenty_is_bounded_not_zero():
    results = [_result(i, True, 0.9, "block", severity="high") for i in range(20)]
    metrics = compute_benchmark_metrics(results)
    assert metrics.high_risk_false_negative_rate == 0.0
    assert metrics.high_risk_miss_rate_upper_95 == pytest.approx(1 - 0.05 ** (1 / 20))
    assert metrics.high_risk_miss_rate_upper_95 > 0.13


def test_slices_per_severity_and_sector_match_the_subset():
    rng = np.random.default_rng(3)
    n = 300
    labels = rng.random(n) < 0.5
    scores = rng.random(n).round(2)
    decisions = np.where(scores > 0.5, "block", "approve")
    severities = rng.choice(SEVERITIES, n)
    sectors = rng.choice(np.array(["bank", "insure", None], dtype=object), n)
    results = _results(labels, scores, decisions, severities=severities, sectors=sectors)
    metrics = compute_benchmark_metrics(results)
    assert set(metrics.by_sector) == {"bank", "insure"}
    for sector, slice_metrics in metrics.by_sector.items():
        subset = [r for r in results if r.sector == sector]
        alone = compute_benchmark_metrics(subset)
        assert (
            slice_metrics.model_dump()
            == SliceMetrics(
                **{k: v for k, v in alone.model_dump().items() if k in SliceMetrics.model_fields}
            ).model_dump()
        )
    for severity, slice_metrics in metrics.by_severity.items():
        mask = severities == severity
        assert slice_metrics.total_samples == int(mask.sum())
        _assert_equals_sklearn(
            slice_metrics, labels[mask], scores[mask], decisions[mask] != "approve"
        )
    assert sum(metrics.severity_counts.values()) == n


def test_p95_latency_is_nearest_rank():
    results = [_result(i, i % 2 == 0, 0.5, latency=float(i + 1)) for i in range(100)]
    assert compute_benchmark_metrics(results).latency_p95_ms == 95.0
    results = [_result(i, True, 0.5, latency=float(i + 1)) for i in range(10)]
    assert compute_benchmark_metrics(results).latency_p95_ms == 10.0  # ceil(9.5) = 10th


def test_expected_calibration_error_uses_ten_equal_bins():
    assert CALIBRATION_BINS == 10
    # Perfect calibration in one bin: 10 traces at 0.35, a third... use exact fractions.
    results = [_result(i, i < 3, 0.3) for i in range(10)]
    assert compute_benchmark_metrics(results).expected_calibration_error == pytest.approx(0.0)
    results = [_result(0, True, 1.0), _result(1, False, 0.0)]
    assert compute_benchmark_metrics(results).expected_calibration_error == pytest.approx(0.0)
    results = [_result(0, False, 1.0), _result(1, True, 0.0)]
    assert compute_benchmark_metrics(results).expected_calibration_error == pytest.approx(1.0)
    # Two bins: [0.05 x2, one unsafe] gap 0.45; [0.95 x2, both unsafe] gap 0.05.
    results = [
        _result(0, True, 0.05),
        _result(1, False, 0.05),
        _result(2, True, 0.95),
        _result(3, True, 0.95),
    ]
    assert compute_benchmark_metrics(results).expected_calibration_error == pytest.approx(
        (2 * 0.45 + 2 * 0.05) / 4
    )


def test_benchmark_metrics_are_frozen_and_serialise():
    metrics = compute_benchmark_metrics([_result(0, True, 0.9, "block")])
    assert isinstance(metrics, BenchmarkMetrics)
    with pytest.raises(ValidationError):
        metrics.recall = 0.1  # type: ignore[misc]
    again = BenchmarkMetrics.model_validate_json(metrics.model_dump_json())
    assert again == metrics


@pytest.mark.parametrize(
    "bad",
    [
        {"score": 1.5},
        {"score": -0.1},
        {"score": float("nan")},
        {"latency_ms": float("inf")},
        {"latency_ms": -1.0},
        {"decision": "allow"},
        {"severity": "urgent"},
        {"trace_id": ""},
        {"label": True, "is_unsafe": False},
        {"label": "  "},
        {"extra": 1},
    ],
)
def test_raw_result_rejects_bad_fields(bad):
    fields = {
        "trace_id": "t",
        "label": "unsafe",
        "is_unsafe": True,
        "severity": "high",
        "score": 0.5,
        "decision": "block",
        "latency_ms": 3.0,
    }
    with pytest.raises(ValidationError):
        RawResult(**(fields | bad))


# ---- Clopper-Pearson ----


@pytest.mark.parametrize("trials", [1, 5, 20, 59, 300, 3000])
def test_clopper_pearson_with_no_failures_has_the_closed_form(trials):
    assert clopper_pearson_upper(0, trials) == pytest.approx(1 - 0.05 ** (1 / trials), abs=1e-10)


@pytest.mark.parametrize("trials", [2, 10, 40])
def test_clopper_pearson_with_one_success_has_the_closed_form(trials):
    # Beta(n, 1) quantile q is q ** (1 / n).
    assert clopper_pearson_upper(trials - 1, trials) == pytest.approx(
        0.95 ** (1 / trials), abs=1e-10
    )


def test_clopper_pearson_known_values():
    # Published tables (e.g. scipy.stats.beta.ppf(0.95, x + 1, n - x)).
    assert clopper_pearson_upper(1, 10) == pytest.approx(0.39416, abs=1e-5)
    assert clopper_pearson_upper(2, 20) == pytest.approx(0.28262, abs=1e-5)
    assert clopper_pearson_upper(5, 100) == pytest.approx(0.10225, abs=1e-5)
    assert clopper_pearson_upper(3, 3) == 1.0
    assert clopper_pearson_upper(0, 20, confidence=0.99) == pytest.approx(1 - 0.01 ** (1 / 20))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_clopper_pearson_solves_the_binomial_tail(pair):
    failures, trials = pair
    upper = clopper_pearson_upper(failures, trials)
    assert failures / trials <= upper <= 1.0
    assert binomial_cdf(failures, trials, upper) == pytest.approx(0.05, abs=1e-7)


@pytest.mark.parametrize(("failures", "trials"), [(-1, 3), (4, 3), (0, 0)])
def test_clopper_pearson_rejects_impossible_counts(failures, trials):
    with pytest.raises(ValueError, match="failures"):
        clopper_pearson_upper(failures, trials)


def test_binomial_cdf_edges():
    assert binomial_cdf(-1, 5, 0.5) == 0.0
    assert binomial_cdf(5, 5, 0.5) == 1.0
    assert binomial_cdf(0, 5, 0.0) == 1.0
    assert binomial_cdf(4, 5, 1.0) == 0.0
    assert binomial_cdf(2, 4, 0.5) == pytest.approx(11 / 16)


def test_undefined_metrics_become_warnings_naming_the_reason():
    from customer_model_factory.stages.benchmark.metrics import undefined_metric_findings

    metrics = compute_benchmark_metrics([_result(0, False, 0.2)])
    findings = undefined_metric_findings(metrics)
    assert {f.field for f in findings} == set(metrics.undefined)
    assert all(f.code == "BENCH_METRIC_UNDEFINED" and f.severity == "warning" for f in findings)
    assert any("no unsafe trace" in f.message for f in findings)
    assert (
        undefined_metric_findings(
            compute_benchmark_metrics(
                [_result(0, False, 0.2), _result(1, True, 0.9, "block", severity="high")]
            )
        )
        == ()
    )
