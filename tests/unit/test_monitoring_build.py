"""Monitoring stage pieces: the thresholds file, queue bookkeeping, health from findings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from customer_model_factory.context import RunContext
from customer_model_factory.errors import ConfigError
from customer_model_factory.stages.monitoring.build import (
    MonitorRequest,
    build_monitoring,
    load_thresholds,
)
from customer_model_factory.stages.monitoring.log import ExpectedRuntime, scan_decision_log
from customer_model_factory.stages.monitoring.models import MonitoringThresholds

from ..conftest import validate_against_committed_schema
from ..stage_monitoring_support import (
    decision,
    reference_histograms,
    write_jsonl,
    write_log,
    write_runtime,
)

CONTEXT = RunContext(clock=lambda: dt.datetime(2026, 5, 19, 12, tzinfo=dt.UTC))


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("t.toml", "max_latency_p95_ms = 5\nmax_false_negative_incidents = 2\n"),
        ("t.toml", "[thresholds]\nmax_latency_p95_ms = 5.0\nmax_false_negative_incidents = 2\n"),
        ("t.json", '{"max_latency_p95_ms": 5, "max_false_negative_incidents": 2}'),
    ],
)
def test_thresholds_files_override_some_defaults(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    limits = load_thresholds(path)
    assert limits.max_latency_p95_ms == 5.0
    assert limits.max_false_negative_incidents == 2
    assert limits.max_abstention_rate == MonitoringThresholds().max_abstention_rate


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("max_latency = 5\n", "max_latency"),
        ("max_latency_p95_ms = -1\n", "max_latency_p95_ms"),
        ("max_latency_p95_ms = true\n", "max_latency_p95_ms"),
        ('max_latency_p95_ms = "5"\n', "max_latency_p95_ms"),
        ("max_abstention_rate = 1.5\n", "max_abstention_rate"),
        ("max_latency_p95_ms = nan\n", "max_latency_p95_ms"),
    ],
)
def test_a_bad_thresholds_file_is_a_located_config_error(
    tmp_path: Path, text: str, field: str
) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_thresholds(path)
    assert caught.value.field == field
    assert caught.value.path == str(path)


def test_reviews_count_flagged_traces_once_latest_review_wins(tmp_path: Path) -> None:
    package = write_runtime(tmp_path / "rt")
    rows = [decision(package, i) for i in range(100)]
    write_jsonl(tmp_path / "log.jsonl", rows)
    flagged = [r["trace_id"] for r in rows if r["decision"] != "approve"][:3]
    approved = next(r["trace_id"] for r in rows if r["decision"] == "approve")

    def review(trace: str, at: str, outcome: str) -> dict[str, str]:
        return {"trace_id": trace, "reviewed_at": at, "outcome": outcome}

    write_jsonl(
        tmp_path / "reviews.jsonl",
        [
            review(flagged[0], "2026-05-18T12:00:00Z", "confirmed"),
            review(flagged[0], "2026-05-18T14:00:00+02:00", "false_positive"),  # 12:00Z: a tie
            review(flagged[1], "2026-05-18T15:00:00Z", "false_positive"),
            review(flagged[1], "2026-05-18T13:00:00Z", "confirmed"),  # older: ignored
            review(flagged[2], "2026-05-18T12:00:00Z", "confirmed"),
            review(approved, "2026-05-18T12:00:00Z", "false_positive"),
        ],
    )
    manifest = build_monitoring(
        MonitorRequest(
            runtime=tmp_path / "rt",
            decision_log=tmp_path / "log.jsonl",
            reviews=tmp_path / "reviews.jsonl",
        ),
        CONTEXT,
    )
    # flagged[0]: same instant, the later line wins (false_positive); flagged[1]: the later
    # instant wins (false_positive); flagged[2]: confirmed; the approved trace does not count.
    assert manifest.metrics.false_positive_review_count == 2
    codes = sorted(f.code for f in manifest.findings)
    assert codes == [
        "MONITOR_REVIEW_DUPLICATE",
        "MONITOR_REVIEW_DUPLICATE",
        "MONITOR_REVIEW_UNKNOWN_TRACE",
    ]
    assert manifest.health_status == "within_control"
    validate_against_committed_schema("monitoring", manifest.payload())


def test_an_empty_reference_histogram_blocks_the_evidence(tmp_path: Path) -> None:
    histograms = reference_histograms(score_counts=(0,) * 10)
    package = write_runtime(tmp_path / "rt", histograms=histograms)
    write_log(tmp_path / "log.jsonl", package, 50)
    manifest = build_monitoring(
        MonitorRequest(runtime=tmp_path / "rt", decision_log=tmp_path / "log.jsonl"), CONTEXT
    )
    assert manifest.health_status == "evidence_blocked"
    assert [f.code for f in manifest.findings] == ["MONITOR_REFERENCE_EMPTY"]


def test_drift_against_a_shifted_reference_recommends_retraining(tmp_path: Path) -> None:
    # The reference saw only low scores: the log's spread-out scores drift far from it.
    histograms = reference_histograms(score_counts=(100,) + (0,) * 9)
    package = write_runtime(tmp_path / "rt", histograms=histograms)
    write_log(tmp_path / "log.jsonl", package, 200)
    manifest = build_monitoring(
        MonitorRequest(runtime=tmp_path / "rt", decision_log=tmp_path / "log.jsonl"), CONTEXT
    )
    assert manifest.metrics.source_corpus_drift_score > 0.25
    assert manifest.health_status == "review_required"
    assert manifest.retraining_recommended
    assert manifest.ready  # a drift breach is a warning: review, not a release blocker
    assert [r.action for r in manifest.recommendations] == ["retrain"]


def test_watched_traces_keep_their_decision(tmp_path: Path) -> None:
    package = write_runtime(tmp_path / "rt")
    rows = [decision(package, i) for i in range(30)]
    write_jsonl(tmp_path / "log.jsonl", rows)
    expected = ExpectedRuntime(
        package.runtime_id, package.runtime_hash, package.runtime_config.package_version
    )
    watched = frozenset({rows[3]["trace_id"], "absent"})
    summary = scan_decision_log(
        tmp_path / "log.jsonl",
        expected,
        package.runtime_config.reference_histograms,
        watched=watched,
    )
    assert summary.watched_decisions == {rows[3]["trace_id"]: rows[3]["decision"]}
