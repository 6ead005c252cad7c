"""Model selection: judged from raw results, deterministic whatever the candidate order, fail
closed when nothing is eligible, with the Clopper-Pearson bound of the high-risk miss rate."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.errors import StageInputError
from customer_model_factory.plugins import collect_objective_profiles
from customer_model_factory.stages.benchmark.metrics import RawResult, compute_benchmark_metrics
from customer_model_factory.stages.benchmark.models import (
    CustomerBenchmarkResult,
    DecisionThresholds,
    render_raw_results,
)
from customer_model_factory.stages.selection.select import (
    Candidate,
    apply_cutoffs,
    select_model,
)
from customer_model_factory.store import ArtefactStore
from customer_model_factory.testing import fresh_plugin_manager

BINDING = {"customer_id": "acme", "workspace_id": "ws", "tenant_id": "t1"}
PROFILES, _ = collect_objective_profiles(fresh_plugin_manager())


def _raw(spec: list[tuple[bool, str, str]], prefix: str = "t") -> list[RawResult]:
    """(is_unsafe, severity, decision) per trace; scores follow the decision."""
    return [
        RawResult(
            trace_id=f"{prefix}-{index:04d}",
            label="unsafe" if unsafe else "safe",
            is_unsafe=unsafe,
            severity=severity,
            score=0.9 if decision != "approve" else 0.1,
            decision=decision,
            latency_ms=1.0,
        )
        for index, (unsafe, severity, decision) in enumerate(spec)
    ]


def _candidate(
    store: ArtefactStore,
    raw: list[RawResult],
    *,
    run: str = "run-a",
    split: str = "test",
    binding: dict[str, str] = BINDING,
    metrics: Any = None,
) -> Candidate:
    raw = sorted(raw, key=lambda r: r.trace_id)
    stored = store.put_bytes(render_raw_results(raw))
    digest = "sha256:" + hashlib.sha256(run.encode()).hexdigest()
    result = CustomerBenchmarkResult.seal(
        **binding,
        inputs=[{"kind": "raw-results", "hash": stored.digest, "uri": stored.uri}],
        benchmark_id="pkg",
        training_manifest_hash=digest,
        train_run_id=run,
        lane="linear",
        model_artifact_uri="cmf://sha256/" + digest[7:],
        model_digest=digest,
        split=split,
        traces_digest=digest,
        trace_count=len(raw),
        label_class_counts={"safe": 0, "unsafe": 0},
        metrics=metrics or compute_benchmark_metrics(raw),
        raw_result_uri=stored.uri,
        raw_result_digest=stored.digest,
        claim_boundary="synthetic",
        thresholds=DecisionThresholds(
            source="imported",
            threshold=None,
            abstention_threshold=None,
            escalation_threshold=None,
        ),
    )
    return Candidate(result=result, raw=tuple(raw), link=result.link())


def _spec(
    tp: int, fn: int, fp: int, tn: int, severity: str = "high"
) -> list[tuple[bool, str, str]]:
    return (
        [(True, severity, "block")] * tp
        + [(True, severity, "approve")] * fn
        + [(False, "low", "block")] * fp
        + [(False, "low", "approve")] * tn
    )


def test_the_best_eligible_candidate_is_selected_and_every_candidate_linked(tmp_path):
    store = ArtefactStore(tmp_path)
    good = _candidate(store, _raw(_spec(19, 1, 2, 18)), run="good")
    weak = _candidate(store, _raw(_spec(15, 5, 0, 20)), run="weak")
    report = select_model([weak, good], PROFILES["high_recall"])
    assert report.ready
    assert report.selected_result_hash == good.result.result_hash
    assert report.selected_train_run_id == "good"
    assert {link.hash for link in report.inputs} == {
        good.result.result_hash,
        weak.result.result_hash,
    }
    first, second = report.candidates
    assert (first.rank, first.eligible) == (1, True)
    assert not second.eligible and second.rank is None
    assert second.reasons == ("recall = 0.75 fails >= 0.9",)


def test_no_eligible_candidate_is_a_typed_finding_and_not_ready(tmp_path):
    store = ArtefactStore(tmp_path)
    weak = _candidate(store, _raw(_spec(10, 10, 0, 20)), run="weak")
    report = select_model([weak], PROFILES["high_recall"])
    assert not report.ready
    assert report.selected_result_hash is None and report.selected_train_run_id is None
    assert "SELECT_NO_ELIGIBLE_CANDIDATE" in {f.code for f in report.findings}
    assert b"NaN" not in report.to_json_bytes()


def test_zero_silent_unsafe_pass_disqualifies_any_approved_high_risk_unsafe_trace(tmp_path):
    store = ArtefactStore(tmp_path)
    missed = _candidate(store, _raw(_spec(29, 1, 0, 30)), run="missed")
    clean = _candidate(store, _raw(_spec(20, 0, 5, 25)), run="clean")
    report = select_model([missed, clean], PROFILES["zero_silent_unsafe_pass"])
    assert report.selected_train_run_id == "clean"
    judged = {c.train_run_id: c for c in report.candidates}
    assert "1 high-risk unsafe traces approved (silent unsafe passes)" in judged["missed"].reasons
    assert judged["missed"].high_risk_silent_unsafe_passes == 1
    # 0 misses in 20 reads as "at most 13.9 %", not as zero.
    assert report.high_risk_miss_rate_upper_95 == pytest.approx(0.1391, abs=1e-4)
    assert "at most 0.1391" in report.high_risk_statement
    assert "not a guarantee" in report.high_risk_statement


def test_too_few_high_risk_samples_is_a_finding(tmp_path):
    store = ArtefactStore(tmp_path)
    low_only = _candidate(store, _raw(_spec(20, 0, 0, 20, severity="low")), run="low")
    report = select_model([low_only], PROFILES["zero_silent_unsafe_pass"])
    assert not report.ready
    codes = {f.code for f in report.findings}
    assert {"SELECT_TOO_FEW_HIGH_RISK", "SELECT_NO_ELIGIBLE_CANDIDATE"} <= codes
    strict = apply_cutoffs(PROFILES["high_recall"], {}, min_high_risk_samples=50)
    report = select_model([_candidate(store, _raw(_spec(20, 0, 0, 20)), run="x")], strict)
    assert "SELECT_TOO_FEW_HIGH_RISK" in {f.code for f in report.findings}
    assert ("high_risk_unsafe_count", ">=", 50.0) in {
        (c.metric, c.op, c.value) for c in report.gate_criteria
    }


def test_metrics_that_the_raw_results_do_not_reproduce_are_refused(tmp_path):
    store = ArtefactStore(tmp_path)
    raw = _raw(_spec(10, 10, 0, 20))
    forged = compute_benchmark_metrics(_raw(_spec(20, 0, 0, 20)))
    candidate = _candidate(store, raw, run="forged", metrics=forged)
    report = select_model([candidate], PROFILES["balanced"])
    assert not report.ready
    assert "SELECT_RAW_MISMATCH" in {f.code for f in report.findings}
    assert not report.candidates[0].eligible


def test_only_test_results_of_one_binding_are_selected(tmp_path):
    store = ArtefactStore(tmp_path)
    validation = _candidate(store, _raw(_spec(20, 0, 0, 20)), run="v", split="validation")
    report = select_model([validation], PROFILES["balanced"])
    assert report.candidates[0].reasons == (
        "a validation result: selection reads test results only",
    )
    other = dict(BINDING, tenant_id="t2")
    report = select_model(
        [
            _candidate(store, _raw(_spec(20, 0, 0, 20)), run="a"),
            _candidate(store, _raw(_spec(20, 0, 0, 20)), run="b", binding=other),
        ],
        PROFILES["balanced"],
    )
    assert "SELECT_BINDING_MISMATCH" in {f.code for f in report.findings}
    assert not report.ready


def test_ties_go_to_fewer_high_risk_misses_then_the_smaller_result_hash(tmp_path):
    store = ArtefactStore(tmp_path)
    # Same confusion matrix (same F1); one misses a high-risk unsafe trace, the other a low one.
    high_miss = _candidate(
        store,
        _raw([(True, "high", "approve"), (True, "low", "block"), *_spec(10, 0, 1, 10)]),
        run="high-miss",
    )
    low_miss = _candidate(
        store,
        _raw([(True, "low", "approve"), (True, "high", "block"), *_spec(10, 0, 1, 10)]),
        run="low-miss",
    )
    for order in ([high_miss, low_miss], [low_miss, high_miss]):
        report = select_model(order, PROFILES["balanced"])
        assert report.selected_train_run_id == "low-miss"
        assert report.candidates[0].score == report.candidates[1].score
    twins = [_candidate(store, _raw(_spec(10, 0, 1, 10)), run=f"twin-{i}") for i in range(3)]
    smallest = min(c.result.result_hash for c in twins)
    for order in (twins, twins[::-1]):
        assert select_model(order, PROFILES["balanced"]).selected_result_hash == smallest


_DECISIONS = st.sampled_from(["approve", "block", "abstain", "escalate"])
_TRACE = st.tuples(
    st.booleans(), st.sampled_from(["low", "medium", "high", "critical"]), _DECISIONS
)


@settings(max_examples=25, deadline=None)
@given(
    specs=st.lists(st.lists(_TRACE, min_size=1, max_size=12), min_size=2, max_size=5),
    permutation_seed=st.randoms(use_true_random=False),
    profile=st.sampled_from(sorted(PROFILES)),
)
def test_selection_is_the_same_under_any_candidate_order(
    tmp_path_factory, specs, permutation_seed, profile
):
    store = ArtefactStore(tmp_path_factory.mktemp("perm"))
    candidates = [_candidate(store, _raw(spec), run=f"run-{i}") for i, spec in enumerate(specs)]
    shuffled = list(candidates)
    permutation_seed.shuffle(shuffled)
    first = select_model(candidates, PROFILES[profile])
    second = select_model(shuffled, PROFILES[profile])
    assert first.selection_hash == second.selection_hash
    assert first.selected_result_hash == second.selected_result_hash
    assert select_model([*candidates, candidates[0]], PROFILES[profile]) == first


def test_max_recall_at_fpr_is_built_in_with_a_configurable_cutoff(tmp_path):
    store = ArtefactStore(tmp_path)
    noisy = _candidate(store, _raw(_spec(20, 0, 2, 18)), run="noisy")  # FPR 0.1, recall 1
    quiet = _candidate(store, _raw(_spec(18, 2, 0, 20)), run="quiet")  # FPR 0, recall 0.9
    profile = PROFILES["max_recall_at_fpr"]
    assert select_model([noisy, quiet], profile).selected_train_run_id == "quiet"
    relaxed = apply_cutoffs(profile, {"false_positive_rate": 0.2})
    assert select_model([noisy, quiet], relaxed).selected_train_run_id == "noisy"
    with pytest.raises(StageInputError) as caught:
        apply_cutoffs(profile, {"recall": 0.5})
    assert caught.value.code == "SELECT_CUTOFF_UNKNOWN"


def test_no_candidate_at_all_is_refused():
    with pytest.raises(StageInputError) as caught:
        select_model([], PROFILES["balanced"])
    assert caught.value.code == "SELECT_NO_CANDIDATE"
