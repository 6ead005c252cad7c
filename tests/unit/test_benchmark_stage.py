"""The benchmark stage: scoring a split through a lane, thresholds from validation only, raw
results in the store, import of raw results produced elsewhere, and verification by recompute."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from customer_model_factory.canonical import canonical_json
from customer_model_factory.context import RunContext
from customer_model_factory.errors import ArtefactIntegrityError, CalibrationError, StageInputError
from customer_model_factory.plugin_api import CMF_PLUGIN_API, TrainingLaneSpec, hookimpl
from customer_model_factory.stages.benchmark.metrics import compute_benchmark_metrics
from customer_model_factory.stages.benchmark.models import (
    CustomerBenchmarkResult,
    parse_raw_results,
    render_raw_results,
)
from customer_model_factory.stages.benchmark.run import (
    BenchmarkRequest,
    import_benchmark,
    run_benchmark,
    verify_benchmark,
)
from customer_model_factory.stages.dataset import (
    CustomerWorkspace,
    validate_customer_trace_dataset,
)
from customer_model_factory.stages.training.models import ModelArtefact
from customer_model_factory.store import ArtefactStore
from customer_model_factory.testing import fresh_plugin_manager

from ..stage3_support import (
    WORKSPACE_TOML,
    ensure_linear_lane,
    example_traces,
    seal_training_manifest,
    write_jsonl,
)

pytest.importorskip("cmf_example_retail_banking", reason="the example pack is not installed")

PACKAGE = "example-retail-banking.conduct-v1"
FAST = {"classifier": "sgd", "word_features_log2": 14, "char_features_log2": 14}


class _Ticks:
    """A deterministic scoring clock: each call advances 1 ms."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


class _ConstantScorer:
    def __init__(self, value: float) -> None:
        self.value = value

    def score(self, prompts: Any, responses: Any) -> list[float]:
        return [self.value] * len(prompts)

    def save(self, directory: Path) -> dict[str, str]:  # pragma: no cover - not trained here
        raise NotImplementedError


class _ConstantLane:
    """A tiny real lane: its model file holds one score it gives every trace."""

    def fit(self, examples: Any, *, hyperparameters: Any, seed: int) -> _ConstantScorer:
        return _ConstantScorer(float(hyperparameters.get("score", 0.5)))

    def load(self, directory: Path) -> _ConstantScorer:
        return _ConstantScorer(json.loads((directory / "score.json").read_text())["score"])


class _ConstantPlugin:
    CMF_PLUGIN_API = CMF_PLUGIN_API

    @hookimpl
    def cmf_training_lanes(self) -> list[TrainingLaneSpec]:
        return [
            TrainingLaneSpec(
                name="constant", requires_private_execution=False, lane=_ConstantLane()
            )
        ]


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A factory home with a trained linear model, its training manifest and a dataset."""
    root = tmp_path_factory.mktemp("bench")
    home = root / ".cmf"
    pm = fresh_plugin_manager()
    from cmf_example_retail_banking import plugin as pack

    pm.register(pack, "example-pack")
    ensure_linear_lane(pm)
    pm.register(_ConstantPlugin(), "constant-lane")
    context = RunContext.for_plugin_manager(pm, home=home)
    traces = example_traces()
    traces_path = write_jsonl(root / "traces.jsonl", traces)
    workspace = CustomerWorkspace.model_validate(tomllib.loads(WORKSPACE_TOML)["workspace"])
    report = validate_customer_trace_dataset(traces_path, workspace, context=context)
    report.write(root / "report.json")
    manifest = seal_training_manifest(
        traces=traces,
        report=report,
        report_path=root / "report.json",
        home=home,
        scratch=root / "model",
        hyperparameters=FAST,
    )
    manifest.write(root / "training.json")
    validation = run_benchmark(
        BenchmarkRequest(
            training_manifest=root / "training.json",
            traces=traces_path,
            split="validation",
            package=PACKAGE,
        ),
        context=context,
        timer=_Ticks(),
    )
    validation.write(root / "validation.json")
    return {
        "root": root,
        "home": home,
        "context": context,
        "traces": traces,
        "traces_path": traces_path,
        "manifest": manifest,
        "validation": validation,
    }


def _request(factory: dict[str, Any], **fields: Any) -> BenchmarkRequest:
    base: dict[str, Any] = {
        "training_manifest": factory["root"] / "training.json",
        "traces": factory["traces_path"],
        "split": "test",
        "package": PACKAGE,
        "calibration": factory["root"] / "validation.json",
    }
    base.update(fields)
    return BenchmarkRequest(**{k: v for k, v in base.items() if v is not None})


def _test_result(factory: dict[str, Any]) -> CustomerBenchmarkResult:
    return run_benchmark(_request(factory), context=factory["context"], timer=_Ticks())


def test_validation_calibrates_and_test_reuses_those_thresholds(factory):
    validation = factory["validation"]
    assert validation.ready and validation.split == "validation"
    assert validation.calibration is not None
    assert validation.calibration.calibration_size == 200
    assert validation.calibration.alpha == 0.1
    assert "probability at least 0.9" in validation.calibration.coverage_guarantee
    result = _test_result(factory)
    assert result.ready, result.findings
    assert result.split == "test" and result.calibration is None
    assert result.thresholds.source == "validation-result"
    assert result.thresholds.calibration_result_hash == validation.result_hash
    assert result.thresholds.threshold == validation.calibration.threshold
    kinds = {link.kind: link for link in result.inputs}
    assert kinds["training-manifest"].hash == factory["manifest"].manifest_hash
    assert kinds["benchmark-result"].hash == validation.result_hash
    assert kinds["raw-results"].hash == result.raw_result_digest
    assert result.metrics.balanced_accuracy is not None
    assert result.metrics.balanced_accuracy >= 0.9
    assert result.train_run_id == factory["manifest"].train_run_id


def test_raw_results_are_canonical_sorted_and_recompute_the_metrics(factory):
    result = _test_result(factory)
    data = ArtefactStore(factory["home"]).get_bytes(result.raw_result_digest)
    rows = parse_raw_results(data, source="raw")
    assert [r.trace_id for r in rows] == sorted(r.trace_id for r in rows)
    assert render_raw_results(rows) == data
    first = orjson.loads(data.splitlines()[0])
    assert set(first) == {
        "trace_id", "label", "is_unsafe", "severity", "sector", "score", "decision", "latency_ms",
    }  # fmt: skip
    assert compute_benchmark_metrics(rows) == result.metrics
    assert len(rows) == result.trace_count == 200


def test_the_same_benchmark_twice_gives_the_same_result_hash(factory):
    assert _test_result(factory).result_hash == _test_result(factory).result_hash


def test_verify_recomputes_every_metric(factory):
    result = _test_result(factory)
    result.write(factory["root"] / "test.json")
    check = verify_benchmark(factory["root"] / "test.json", context=factory["context"])
    assert check.ok and check.exit_code == 0 and check.differences == ()
    check = verify_benchmark(factory["root"] / "validation.json", context=factory["context"])
    assert check.ok, check.differences


def test_verify_names_a_forged_metric_even_with_a_recomputed_hash(factory, tmp_path):
    result = _test_result(factory)
    payload = result.payload()
    payload["metrics"]["recall"] = 0.5
    payload.pop("result_hash")
    forged = CustomerBenchmarkResult.seal(**{k: v for k, v in payload.items() if k != "ready"})
    forged.write(tmp_path / "forged.json")
    check = verify_benchmark(tmp_path / "forged.json", context=factory["context"])
    assert not check.ok and check.exit_code == 1
    assert any(d.startswith("metrics.recall: recorded 0.5") for d in check.differences)


def test_verify_refuses_raw_results_that_changed_in_the_store(factory, tmp_path):
    home = tmp_path / ".cmf"
    result = _test_result(factory)
    result.write(tmp_path / "test.json")
    data = ArtefactStore(factory["home"]).get_bytes(result.raw_result_digest)
    store = ArtefactStore(home)
    path = store.path_for(result.raw_result_digest)
    path.parent.mkdir(parents=True)
    path.write_bytes(data.replace(b'"decision":"block"', b'"decision":"approve"', 1))
    with pytest.raises(ArtefactIntegrityError):
        verify_benchmark(tmp_path / "test.json", context=RunContext(home=home))


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"split": "train"}, "BENCH_TRAIN_SPLIT_REFUSED"),
        ({"split": "holdout"}, "BENCH_SPLIT_UNKNOWN"),
        ({"package": None}, "BENCH_CLAIM_BOUNDARY_MISSING"),
        ({"package": None, "claim_boundary": "   "}, "BENCH_CLAIM_BOUNDARY_MISSING"),
        ({"claim_boundary": "mine"}, "BENCH_CLAIM_BOUNDARY_CONFLICT"),
        ({"package": "no-such-package"}, "BENCH_PACKAGE_UNKNOWN"),
        ({"calibration": None}, "BENCH_CALIBRATION_MISSING"),
        ({"split": "validation"}, "BENCH_CALIBRATION_INVALID"),
        ({"model_uri": "cmf://sha256/" + "0" * 64}, "BENCH_MODEL_MISMATCH"),
    ],
)
def test_refusals_carry_their_finding_code(factory, fields, code):
    with pytest.raises(StageInputError) as caught:
        run_benchmark(_request(factory, **fields), context=factory["context"])
    assert caught.value.code == code
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(code) or code in str(caught.value)


def test_a_test_result_is_refused_as_calibration(factory, tmp_path):
    _test_result(factory).write(tmp_path / "test.json")
    with pytest.raises(StageInputError) as caught:
        run_benchmark(
            _request(factory, calibration=tmp_path / "test.json"), context=factory["context"]
        )
    assert caught.value.code == "BENCH_CALIBRATION_INVALID"


def _manifest_with_model(
    factory: dict[str, Any], tmp_path: Path, lane: str, files: dict[str, bytes]
) -> Path:
    store = ArtefactStore(factory["home"])
    digests = {name: store.put_bytes(data).digest for name, data in files.items()}
    index = store.put_bytes(canonical_json({"lane": lane, "files": digests}))
    model = ModelArtefact(lane=lane, uri=index.uri, digest=index.digest, files=digests)
    payload = factory["manifest"].payload()
    payload.update(model=model.model_dump(mode="json"), lane=lane)
    for key in ("manifest_hash", "ready", "kind"):
        payload.pop(key)
    manifest = type(factory["manifest"]).seal(**payload)
    return manifest.write(tmp_path / f"training-{lane}.json")


def test_all_abstained_and_empty_splits_give_defined_values_never_nan(factory, tmp_path):
    path = _manifest_with_model(factory, tmp_path, "constant", {"score.json": b'{"score": 0.5}'})
    validation = run_benchmark(
        _request(factory, training_manifest=path, split="validation", calibration=None),
        context=factory["context"],
        timer=_Ticks(),
    )
    assert validation.metrics.abstention_rate == 1.0
    assert validation.metrics.false_negative_rate == 0.0
    assert validation.metrics.roc_auc == 0.5
    assert b"NaN" not in validation.to_json_bytes()
    empty = write_jsonl(tmp_path / "empty.jsonl", [dict(factory["traces"][0], split="train")])
    result = run_benchmark(
        _request(factory, training_manifest=path, split="validation", calibration=None,
                 traces=empty),
        context=factory["context"],
    )  # fmt: skip
    assert not result.ready
    assert "BENCH_SPLIT_EMPTY" in {f.code for f in result.findings}
    assert result.metrics.balanced_accuracy is None
    assert result.metrics.undefined["balanced_accuracy"] == "no results"
    assert b"NaN" not in result.to_json_bytes()


def test_a_small_validation_split_cannot_be_calibrated(factory, tmp_path):
    few = [t for t in factory["traces"] if t["split"] == "validation"][:20]
    path = write_jsonl(tmp_path / "few.jsonl", few)
    with pytest.raises(CalibrationError) as caught:
        run_benchmark(
            _request(factory, split="validation", calibration=None, traces=path),
            context=factory["context"],
        )
    assert caught.value.code == "SELECT_CALIBRATION_TOO_SMALL"


def test_an_unknown_lane_and_a_tampered_model_are_refused(factory, tmp_path):
    path = _manifest_with_model(factory, tmp_path, "nowhere", {"score.json": b'{"score": 0.5}'})
    with pytest.raises(StageInputError) as caught:
        run_benchmark(
            _request(factory, training_manifest=path, split="validation", calibration=None),
            context=factory["context"],
        )
    assert caught.value.code == "BENCH_LANE_UNKNOWN"
    path = _manifest_with_model(factory, tmp_path, "constant", {"score.json": b'{"score": 0.25}'})
    digest = json.loads(path.read_text())["model"]["files"]["score.json"]
    ArtefactStore(factory["home"]).path_for(digest).write_bytes(b'{"score": 0.99}')
    with pytest.raises(ArtefactIntegrityError):
        run_benchmark(
            _request(factory, training_manifest=path, split="validation", calibration=None),
            context=factory["context"],
        )


def test_a_scorer_returning_scores_outside_0_1_is_refused(factory, tmp_path):
    path = _manifest_with_model(factory, tmp_path, "constant", {"score.json": b'{"score": 1.5}'})
    with pytest.raises(StageInputError) as caught:
        run_benchmark(
            _request(factory, training_manifest=path, split="validation", calibration=None),
            context=factory["context"],
        )
    assert caught.value.code == "BENCH_SCORE_INVALID"


# ---- import ----


def _raw_lines(factory: dict[str, Any]) -> list[bytes]:
    result = _test_result(factory)
    return ArtefactStore(factory["home"]).get_bytes(result.raw_result_digest).splitlines()


def _import(factory: dict[str, Any], tmp_path: Path, lines: list[bytes]) -> CustomerBenchmarkResult:
    raw = tmp_path / "raw.jsonl"
    raw.write_bytes(b"".join(line + b"\n" for line in lines))
    return import_benchmark(raw, _request(factory, calibration=None), context=factory["context"])


def test_import_of_complete_raw_results_gives_the_same_metrics(factory, tmp_path):
    lines = _raw_lines(factory)
    imported = _import(factory, tmp_path, list(reversed(lines)))
    assert imported.ready, imported.findings
    assert imported.metrics == _test_result(factory).metrics
    assert imported.thresholds.source == "imported" and imported.latency is None


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda lines: lines[1:], "BENCH_RAW_MISSING_TRACE"),
        (lambda lines: [*lines, lines[3]], "BENCH_RAW_DUPLICATE_TRACE"),
        (
            lambda lines: [*lines, lines[0].replace(b'"rb-0001"', b'"rb-9999"')],
            "BENCH_RAW_UNKNOWN_TRACE",
        ),
        (
            lambda lines: [
                lines[0].replace(b'"severity":"medium"', b'"severity":"critical"'),
                *lines[1:],
            ],
            "BENCH_RAW_LABEL_MISMATCH",
        ),
    ],
)
def test_import_fails_closed_on_missing_duplicate_unknown_or_relabelled_traces(
    factory, tmp_path, edit, code
):
    imported = _import(factory, tmp_path, edit(_raw_lines(factory)))
    assert not imported.ready
    assert code in {f.code for f in imported.findings if f.severity == "error"}


def test_import_names_a_malformed_raw_line(factory, tmp_path):
    from customer_model_factory.errors import DataFormatError

    lines = _raw_lines(factory)
    lines[2] = lines[2].replace(b'"score":', b'"scores":')
    with pytest.raises(DataFormatError) as caught:
        _import(factory, tmp_path, lines)
    assert caught.value.line == 3


def test_latency_is_the_batch_time_per_trace(factory):
    result = _test_result(factory)
    assert result.latency is not None and result.latency.batch_size == 256
    assert result.metrics.latency_p95_ms == pytest.approx(1.0 / 200, rel=1e-9)
    assert np.isfinite(result.latency.throughput_traces_per_s)


def test_a_training_manifest_from_a_dataset_that_was_not_ready_blocks_the_result(factory, tmp_path):
    payload = factory["manifest"].payload()
    for key in ("manifest_hash", "ready", "kind"):
        payload.pop(key)
    payload["dataset_ready"] = False
    path = type(factory["manifest"]).seal(**payload).write(tmp_path / "training.json")
    result = run_benchmark(
        _request(factory, training_manifest=path, split="validation", calibration=None),
        context=factory["context"],
    )
    assert not result.ready
    assert "BENCH_TRAINING_NOT_READY" in {f.code for f in result.findings}


class _BrokenPackages:
    CMF_PLUGIN_API = CMF_PLUGIN_API

    @hookimpl
    def cmf_benchmark_packages(self) -> list[Any]:
        raise RuntimeError("the package index is unreachable")


def test_a_failing_plugin_blocks_the_result_once(factory):
    from customer_model_factory.testing import registered

    with registered(_BrokenPackages(), factory["context"].plugin_manager, name="broken"):
        result = run_benchmark(
            _request(factory, split="validation", calibration=None), context=factory["context"]
        )
    failed = [f for f in result.findings if f.code == "PLUGIN_HOOK_FAILED"]
    assert not result.ready
    assert len(failed) == 1 and "broken" in failed[0].message


def test_a_scored_result_carries_reference_histograms_of_its_split(factory):
    result = _test_result(factory)
    histograms = result.reference_histograms
    assert histograms is not None and histograms.source_split == "test"
    assert histograms.score.edges == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    assert histograms.score.total == histograms.input_chars.total == result.trace_count
    rows = parse_raw_results(
        ArtefactStore(factory["home"]).get_bytes(result.raw_result_digest), source="raw"
    )
    scores = np.array([r.score for r in rows])
    expected = [
        int(((scores >= lo) & (scores < hi)).sum())
        for lo, hi in zip(
            (-np.inf, *histograms.score.edges), (*histograms.score.edges, np.inf), strict=True
        )
    ]
    assert list(histograms.score.counts) == expected
    tests = [t for t in factory["traces"] if t["split"] == "test"]
    chars = np.array([len(t["prompt"]) + len(t["response"]) for t in tests], dtype=float)
    edges = histograms.input_chars.edges
    assert list(edges) == sorted(set(edges)) and len(edges) <= 9
    assert edges[0] == pytest.approx(np.quantile(chars, 0.1))
    assert histograms.input_chars.counts[0] == int((chars < edges[0]).sum())
    assert histograms.input_chars.counts[-1] == int((chars >= edges[-1]).sum())


def test_imported_raw_results_carry_no_reference_histograms(factory, tmp_path):
    imported = _import(factory, tmp_path, _raw_lines(factory))
    assert imported.reference_histograms is None


def test_verify_names_a_forged_score_histogram(factory, tmp_path):
    result = _test_result(factory)
    payload = result.payload()
    counts = payload["reference_histograms"]["score"]["counts"]
    moved = next(i for i, c in enumerate(counts) if c > 0)
    counts[moved] -= 1
    counts[(moved + 1) % len(counts)] += 1
    payload.pop("result_hash")
    forged = CustomerBenchmarkResult.seal(**{k: v for k, v in payload.items() if k != "ready"})
    forged.write(tmp_path / "forged.json")
    check = verify_benchmark(tmp_path / "forged.json", context=factory["context"])
    assert not check.ok
    assert any(d.startswith("reference_histograms.score.counts") for d in check.differences)
