"""The benchmark stage's entry points: score a split, import raw results, verify a result.

:func:`run_benchmark` loads the trained model named by a training manifest (every file copied out
of the artefact store and verified by digest, then handed to its lane's ``load``), scores every
trace of one split (``validation`` or ``test``; ``train`` is refused), takes decisions from
thresholds (calibrated on ``validation``; taken from a linked validation result on ``test``, never
calibrated there), writes the raw per-trace results as canonical JSONL into the store and computes
the metrics from them. :func:`import_benchmark` builds the same result from raw results produced
elsewhere; :func:`verify_benchmark` recomputes every metric from the stored raw results.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.canonical import sha256_bytes, sha256_file
from customer_model_factory.context import RunContext
from customer_model_factory.errors import (
    CalibrationError,
    CMFError,
    DataFormatError,
    StageInputError,
)
from customer_model_factory.findings import Finding
from customer_model_factory.io import JsonlReader
from customer_model_factory.manifest import InputLink, read_manifest_payload
from customer_model_factory.plugin_api.contracts import MetricConstraint, TrainedScorer
from customer_model_factory.stages.benchmark.calibration import (
    CalibratedThresholds,
    ThresholdObjective,
    calibrate_thresholds,
)
from customer_model_factory.stages.benchmark.metrics import (
    SEVERITIES,
    BenchmarkMetrics,
    RawResult,
    compute_benchmark_metrics,
    undefined_metric_findings,
)
from customer_model_factory.stages.benchmark.models import (
    BENCHMARK_SPLITS,
    CustomerBenchmarkResult,
    DecisionThresholds,
    Histogram,
    ReferenceHistograms,
    ScoringLatency,
    parse_raw_results,
    render_raw_results,
)
from customer_model_factory.stages.training.models import CustomerTrainingManifest, ModelArtefact
from customer_model_factory.store import (
    ArtefactStore,
    parse_artefact_uri,
    resolve_uri,
)

__all__ = [
    "ADHOC_BENCHMARK_ID",
    "SCORE_EDGES",
    "BenchmarkRequest",
    "BenchmarkVerification",
    "import_benchmark",
    "load_scorer",
    "reference_histograms",
    "run_benchmark",
    "score_histogram",
    "verify_benchmark",
]

ADHOC_BENCHMARK_ID: Final = "adhoc"
"""``benchmark_id`` of a benchmark run with ``--claim-boundary`` instead of a package."""
_MAX_LISTED: Final = 20
SCORE_EDGES: Final[tuple[float, ...]] = tuple(round(k / 10, 1) for k in range(1, 10))
"""Cut points of the reference score histogram: ten equal bins of [0, 1]."""
_DECILES: Final = tuple(round(k / 10, 1) for k in range(1, 10))
_FILE_NAME_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
)


class BenchmarkRequest(BaseModel):
    """What to benchmark, on which split, under which claim."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    training_manifest: Path = Field(description="The training manifest of the model.")
    split: str = Field(description="validation or test (train is refused).")
    traces: Path | None = Field(
        default=None, description="The traces (JSONL); default: the package's trace source."
    )
    package: str | None = Field(default=None, description="A benchmark package id (plugin).")
    claim_boundary: str | None = Field(
        default=None, description="The claim boundary when no package is used."
    )
    model_uri: str | None = Field(
        default=None, description="cmf:// URI of the model index (default: the manifest's)."
    )
    calibration: Path | None = Field(
        default=None, description="On test: the validation result whose thresholds decide."
    )
    objective: ThresholdObjective = Field(
        default=ThresholdObjective(kind="max_fnr", target=0.05),
        description="What the calibrated flag threshold must achieve on validation.",
    )
    alpha: float = Field(default=0.1, gt=0.0, lt=1.0, description="Conformal error level.")
    unsafe_labels: tuple[str, ...] = Field(default=("unsafe",), description="Unsafe labels.")
    safe_labels: tuple[str, ...] = Field(default=("safe",), description="Safe labels.")
    batch_size: int = Field(default=256, ge=1, le=65536, description="Traces per scoring call.")


class BenchmarkVerification(BaseModel):
    """The outcome of recomputing a benchmark result from its raw results."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(description="The result verified.")
    result_hash: str = Field(description="Its result_hash (verified).")
    raw_result_digest: str = Field(description="The raw results' digest (verified).")
    trace_count: int = Field(description="Raw results read.")
    differences: tuple[str, ...] = Field(description="Every recorded value that differs.")
    ok: bool = Field(description="True when every recorded value was recomputed identically.")
    exit_code: int = Field(description="0 identical; 1 a recorded value differs.")


@dataclass(frozen=True)
class _Trace:
    trace_id: str
    prompt: str
    response: str
    label: str | bool
    is_unsafe: bool
    severity: str
    sector: str | None


@dataclass(frozen=True)
class _Claim:
    benchmark_id: str
    version: str | None
    boundary: str
    thresholds: tuple[MetricConstraint, ...]
    trace_source: Path | None


@dataclass(frozen=True)
class _Loaded:
    manifest: CustomerTrainingManifest
    link: InputLink


# ---- inputs ----


def _check_split(split: str) -> Literal["validation", "test"]:
    if split == "train":
        raise StageInputError(
            "the train split is never benchmarked (the model was fitted on it); use "
            "validation or test",
            code="BENCH_TRAIN_SPLIT_REFUSED",
            field="split",
        )
    if split not in BENCHMARK_SPLITS:
        raise StageInputError(
            f"unknown split {split[:40]!r}; use validation or test",
            code="BENCH_SPLIT_UNKNOWN",
            field="split",
        )
    return split  # type: ignore[return-value]


def _claim(request: BenchmarkRequest, context: RunContext) -> tuple[_Claim, list[Finding]]:
    from customer_model_factory.plugins import collect_benchmark_packages  # noqa: PLC0415

    text = (request.claim_boundary or "").strip()
    if request.package is None:
        if not text:
            raise StageInputError(
                "a claim boundary is required: give --package PKG or --claim-boundary TEXT",
                code="BENCH_CLAIM_BOUNDARY_MISSING",
            )
        return _Claim(ADHOC_BENCHMARK_ID, None, text, (), None), []
    if request.claim_boundary is not None:
        raise StageInputError(
            "give either a package (its claim boundary applies) or a claim boundary, not both",
            code="BENCH_CLAIM_BOUNDARY_CONFLICT",
        )
    packages, findings = collect_benchmark_packages(context.plugin_manager)
    package = packages.get(request.package)
    if package is None:
        known = ", ".join(sorted(packages)) or "none"
        raise StageInputError(
            f"no benchmark package {request.package[:60]!r} is installed (known: {known})",
            code="BENCH_PACKAGE_UNKNOWN",
        )
    source = package.trace_source
    path = Path(source[len("file://") :]) if source.startswith("file://") else Path(source)
    claim = _Claim(package.id, package.version, package.claim_boundary, package.thresholds, path)
    return claim, findings


def _read_manifest_bytes(path: Path) -> tuple[bytes, dict[str, Any]]:
    payload = read_manifest_payload(path)
    return path.read_bytes(), payload


def _load_training(path: Path, store: ArtefactStore) -> _Loaded:
    raw, payload = _read_manifest_bytes(path)
    manifest = CustomerTrainingManifest.from_payload(payload, path=path)
    stored = store.put_bytes(raw)
    return _Loaded(manifest, manifest.link(stored.uri))


def _model_index(uri: str, store: ArtefactStore, lane: str) -> ModelArtefact:
    parsed = parse_artefact_uri(uri)
    if parsed.scheme != "cmf" or parsed.digest is None:
        raise StageInputError(
            "a model is named by its cmf://sha256/<hex> index URI", code="BENCH_MODEL_INVALID"
        )
    data = store.get_bytes(parsed.digest)
    try:
        index = orjson.loads(data)
    except orjson.JSONDecodeError:
        index = None
    if not (
        isinstance(index, dict)
        and isinstance(index.get("files"), dict)
        and index.get("lane") == lane
    ):
        raise StageInputError(
            f"{uri} is not the model index of a {lane!r} model ({{lane, files}})",
            code="BENCH_MODEL_INVALID",
        )
    try:
        return ModelArtefact(lane=lane, uri=uri, digest=parsed.digest, files=index["files"])
    except ValueError:
        raise StageInputError(
            f"{uri}: the model index's files are not name -> sha256 digest",
            code="BENCH_MODEL_INVALID",
        ) from None


def _resolve_model(
    manifest: CustomerTrainingManifest, model_uri: str | None, store: ArtefactStore
) -> ModelArtefact:
    model = manifest.model
    if model is None and model_uri is None:
        raise StageInputError(
            "the training manifest names no trained model; give --model cmf://sha256/<hex> "
            "(the imported model's index)",
            code="BENCH_MODEL_MISSING",
        )
    if model is not None and model_uri is not None and model_uri != model.uri:
        raise StageInputError(
            f"--model {model_uri} is not the model the training manifest names ({model.uri})",
            code="BENCH_MODEL_MISMATCH",
        )
    if model is not None:
        # The index the manifest names must hold exactly the files it lists.
        index = _model_index(model.uri, store, model.lane)
        if index.files != model.files or index.digest != model.digest:
            raise StageInputError(
                f"the model index {model.uri} does not list the files the manifest records",
                code="BENCH_MODEL_INVALID",
            )
        return model
    assert model_uri is not None
    return _model_index(model_uri, store, manifest.lane)


def load_scorer(
    model: ModelArtefact, *, context: RunContext, store: ArtefactStore | None = None
) -> tuple[TrainedScorer, list[Finding]]:
    """Load a stored model through its lane: copy each file out of the store (verified by
    digest) into a private directory and call the lane's ``load``.

    :returns: ``(scorer, lane findings)``.
    :raises StageInputError: ``BENCH_LANE_UNKNOWN`` (no such lane installed),
        ``BENCH_LANE_CANNOT_SCORE`` (a manifest-only lane), ``BENCH_MODEL_INVALID`` (a file name
        that is not a plain name), ``BENCH_MODEL_LOAD_FAILED`` (the lane's ``load`` raised).
    :raises ArtefactError: a file is not stored, or its bytes differ from its digest.
    """
    from customer_model_factory.plugins import scoring_lane  # noqa: PLC0415

    store = store if store is not None else ArtefactStore(context.home)
    spec, findings = scoring_lane(context.plugin_manager, model.lane, stage="BENCH")
    with tempfile.TemporaryDirectory(prefix="cmf-model-") as directory:
        for name, digest in sorted(model.files.items()):
            if not name or name in {".", ".."} or not set(name) <= _FILE_NAME_CHARS:
                raise StageInputError(
                    f"model file name {name[:60]!r} is not a plain file name",
                    code="BENCH_MODEL_INVALID",
                )
            store.copy_to(digest, Path(directory) / name)
        try:
            scorer = spec.lane.load(Path(directory))
        except CMFError:
            raise
        except Exception as error:
            raise StageInputError(
                f"lane {model.lane!r} could not load the model: {type(error).__name__}: "
                f"{str(error)[:200]}",
                code="BENCH_MODEL_LOAD_FAILED",
            ) from None
    return scorer, findings


def _label(value: Any, unsafe: frozenset[str], safe: frozenset[str]) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in unsafe:
            return True
        if value in safe:
            return False
    return None


def _read_split(path: Path, split: str, request: BenchmarkRequest) -> tuple[list[_Trace], str, int]:
    """Return the traces of ``split``, the file's digest, and the number of rows read."""
    if not path.is_file():
        raise DataFormatError("the traces must be one regular JSONL file", path=path)
    data = path.read_bytes()
    digest = sha256_bytes(data)
    unsafe, safe = frozenset(request.unsafe_labels), frozenset(request.safe_labels)
    reader = JsonlReader(path)
    traces: list[_Trace] = []
    first_line: dict[str, int] = {}
    rows = 0
    for row in reader:
        rows += 1
        value = row.value
        if value.get("split") != split:
            continue
        where = {"path": path, "line": row.line}
        trace_id = value.get("trace_id")
        if not isinstance(trace_id, str) or not trace_id:
            raise DataFormatError("trace_id must be a non-empty string", field="trace_id", **where)
        if trace_id in first_line:
            raise DataFormatError(
                f"trace_id is also used on line {first_line[trace_id]}", field="trace_id", **where
            )
        first_line[trace_id] = row.line
        for name in ("prompt", "response"):
            if not isinstance(value.get(name), str):
                raise DataFormatError(f"{name} must be a string", field=name, **where)
        is_unsafe = _label(value.get("label"), unsafe, safe)
        if is_unsafe is None:
            raise DataFormatError(
                "label is not one of the unsafe or safe labels (--unsafe-label, --safe-label)",
                field="label",
                **where,
            )
        severity = value.get("severity")
        if severity not in SEVERITIES:
            raise DataFormatError(
                "severity must be low, medium, high or critical", field="severity", **where
            )
        sector = value.get("vertical")
        if sector is not None and not isinstance(sector, str):
            raise DataFormatError("vertical must be a string", field="vertical", **where)
        traces.append(
            _Trace(
                trace_id,
                value["prompt"],
                value["response"],
                value["label"],
                is_unsafe,
                severity,
                sector or None,
            )
        )
    if reader.problems:
        problem = reader.problems[0]
        raise DataFormatError(problem.message, path=problem.path, line=problem.line)
    if sha256_file(path) != digest:
        raise DataFormatError("the traces changed while they were read; run again", path=path)
    return traces, digest, rows


def _load_calibration(
    path: Path, model: ModelArtefact, store: ArtefactStore
) -> tuple[CustomerBenchmarkResult, InputLink]:
    raw, payload = _read_manifest_bytes(path)
    result = CustomerBenchmarkResult.from_payload(payload, path=path)
    if result.split != "validation" or result.thresholds.source != "calibrated":
        raise StageInputError(
            "thresholds come from a benchmark of the validation split that calibrated them "
            f"(this one is a {result.split} result, thresholds {result.thresholds.source})",
            code="BENCH_CALIBRATION_INVALID",
            path=path,
        )
    if not result.ready or result.calibration is None:
        raise StageInputError(
            "the validation result is not ready, so it holds no usable thresholds",
            code="BENCH_CALIBRATION_INVALID",
            path=path,
        )
    if result.model_digest != model.digest:
        raise StageInputError(
            f"the validation result benchmarked model {result.model_digest}, not {model.digest}",
            code="BENCH_CALIBRATION_OTHER_MODEL",
            path=path,
        )
    stored = store.put_bytes(raw)
    return result, result.link(stored.uri)


# ---- results ----


def _histogram(values: np.ndarray, edges: Sequence[float]) -> Histogram:
    # side="right" counts the edges <= v: bin i is [edges[i-1], edges[i]), as Histogram says.
    bins = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return Histogram(
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in counts),
        total=len(values),
    )


def score_histogram(scores: Sequence[float] | np.ndarray) -> Histogram:
    """Scores counted in ten equal bins of [0, 1] (cut at 0.1, 0.2, ..., 0.9)."""
    return _histogram(np.asarray(scores, dtype=np.float64), SCORE_EDGES)


def reference_histograms(
    scores: Sequence[float] | np.ndarray, input_chars: Sequence[int] | np.ndarray, split: str
) -> ReferenceHistograms | None:
    """The histograms a runtime package carries for drift monitoring (None for no trace).

    ``input_chars`` (characters of prompt + response, one per trace) is cut at the split's
    deciles (numpy's default linear quantiles), duplicates dropped so the edges increase
    strictly; scores are cut as :func:`score_histogram` does.
    """
    chars = np.asarray(input_chars, dtype=np.float64)
    if chars.size == 0:
        return None
    edges = np.unique(np.quantile(chars, _DECILES))
    return ReferenceHistograms(
        score=score_histogram(scores),
        input_chars=_histogram(chars, [float(e) for e in edges]),
        source_split=split,
    )


def _score(
    scorer: TrainedScorer,
    traces: Sequence[_Trace],
    batch_size: int,
    timer: Callable[[], float],
) -> tuple[np.ndarray, np.ndarray, ScoringLatency]:
    scores = np.empty(len(traces), dtype=np.float64)
    latencies = np.empty(len(traces), dtype=np.float64)
    total = 0.0
    for start in range(0, len(traces), batch_size):
        batch = traces[start : start + batch_size]
        began = timer()
        try:
            out = scorer.score([t.prompt for t in batch], [t.response for t in batch])
            values = np.asarray(out, dtype=np.float64)
        except CMFError:
            raise
        except Exception as error:
            raise StageInputError(
                f"the scorer failed: {type(error).__name__}: {str(error)[:200]}",
                code="BENCH_SCORE_INVALID",
            ) from None
        elapsed = max(0.0, timer() - began)
        if values.shape != (len(batch),):
            raise StageInputError(
                f"the scorer returned {values.size} scores for {len(batch)} traces",
                code="BENCH_SCORE_INVALID",
            )
        if not (np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()):
            raise StageInputError(
                "the scorer returned a score outside [0, 1] (or NaN)", code="BENCH_SCORE_INVALID"
            )
        scores[start : start + len(batch)] = values
        latencies[start : start + len(batch)] = elapsed * 1000.0 / len(batch)
        total += elapsed
    latency = ScoringLatency(
        batch_size=batch_size,
        total_seconds=total,
        throughput_traces_per_s=(len(traces) / total) if traces and total > 0 else None,
    )
    return scores, latencies, latency


def _raw_results(
    traces: Sequence[_Trace], scores: np.ndarray, decisions: Sequence[str], latencies: np.ndarray
) -> list[RawResult]:
    return [
        RawResult(
            trace_id=trace.trace_id,
            label=trace.label,
            is_unsafe=trace.is_unsafe,
            severity=trace.severity,  # type: ignore[arg-type]
            sector=trace.sector,
            score=float(score),
            decision=decision,  # type: ignore[arg-type]
            latency_ms=float(latency),
        )
        for trace, score, decision, latency in zip(
            traces, scores, decisions, latencies, strict=True
        )
    ]


def _threshold_findings(
    metrics: BenchmarkMetrics, thresholds: Sequence[MetricConstraint], split: str
) -> list[Finding]:
    findings = []
    severity = "error" if split == "test" else "warning"
    for criterion in thresholds:
        value = getattr(metrics, criterion.metric, None)
        if not isinstance(value, int | float) or isinstance(value, bool):
            message = f"{criterion.metric} is undefined, required {criterion.op} {criterion.value}"
        elif criterion.holds(float(value)):
            continue
        else:
            message = f"{criterion.metric} = {value:.6g} fails {criterion.op} {criterion.value}"
        findings.append(
            Finding(
                code="BENCH_THRESHOLD_FAILED",
                severity=severity,  # type: ignore[arg-type]
                message=f"package threshold not met: {message}",
                field=criterion.metric,
            )
        )
    return findings


def _base_findings(manifest: CustomerTrainingManifest, traces: Sequence[_Trace]) -> list[Finding]:
    findings = []
    if not manifest.ready or not manifest.dataset_ready:
        why = "it holds error findings" if not manifest.ready else "its dataset report was not"
        findings.append(
            Finding(
                code="BENCH_TRAINING_NOT_READY",
                severity="error",
                message=f"the training manifest is not ready ({why})",
                field="training_manifest_hash",
            )
        )
    if not traces:
        findings.append(
            Finding(
                code="BENCH_SPLIT_EMPTY",
                severity="error",
                message="the split holds no trace: nothing was measured",
                field="split",
            )
        )
    return findings


def _seal(
    *,
    loaded: _Loaded,
    model: ModelArtefact,
    claim: _Claim,
    split: str,
    traces_digest: str,
    results: Sequence[RawResult],
    thresholds: DecisionThresholds,
    calibration: CalibratedThresholds | None,
    latency: ScoringLatency | None,
    findings: list[Finding],
    extra_links: Sequence[InputLink],
    store: ArtefactStore,
    histograms: ReferenceHistograms | None = None,
) -> CustomerBenchmarkResult:
    # Metrics are computed in the stored (trace id) order, so float sums are the same whatever
    # order the results came in, and equal what anyone recomputes from the stored file.
    results = sorted(results, key=lambda result: result.trace_id)
    raw = render_raw_results(results)
    stored = store.put_bytes(raw)
    metrics = compute_benchmark_metrics(results)
    findings = [
        *findings,
        *undefined_metric_findings(metrics),
        *_threshold_findings(metrics, claim.thresholds, split),
    ]
    manifest = loaded.manifest
    classes = Counter("unsafe" if r.is_unsafe else "safe" for r in results)
    return CustomerBenchmarkResult.seal(
        customer_id=manifest.customer_id,
        workspace_id=manifest.workspace_id,
        tenant_id=manifest.tenant_id,
        inputs=[
            loaded.link,
            InputLink(kind="raw-results", hash=stored.digest, uri=stored.uri),
            *extra_links,
        ],
        findings=list(dict.fromkeys(findings)),  # a plugin problem can be reported twice
        benchmark_id=claim.benchmark_id,
        benchmark_version=claim.version,
        training_manifest_hash=manifest.manifest_hash,
        train_run_id=manifest.train_run_id,
        lane=model.lane,
        model_artifact_uri=model.uri,
        model_digest=model.digest,
        split=split,
        traces_digest=traces_digest,
        trace_count=len(results),
        label_class_counts={"safe": classes["safe"], "unsafe": classes["unsafe"]},
        metrics=metrics,
        raw_result_uri=stored.uri,
        raw_result_digest=stored.digest,
        claim_boundary=claim.boundary,
        package_thresholds=tuple(sorted(claim.thresholds, key=lambda c: (c.metric, c.op, c.value))),
        thresholds=thresholds,
        calibration=calibration,
        latency=latency,
        reference_histograms=histograms,
    )


def _trace_path(request: BenchmarkRequest, claim: _Claim) -> Path:
    path = request.traces or claim.trace_source
    if path is None:
        raise StageInputError("give the traces to score (--traces)", code="BENCH_TRACES_MISSING")
    return path


def run_benchmark(
    request: BenchmarkRequest,
    *,
    context: RunContext,
    timer: Callable[[], float] = time.perf_counter,
) -> CustomerBenchmarkResult:
    """Score every trace of one split and return the sealed :class:`CustomerBenchmarkResult`.

    :param timer: the clock scoring latency is measured with (seconds).
    :raises StageInputError: the train split (``BENCH_TRAIN_SPLIT_REFUSED``), no claim boundary,
        an unknown package or lane, a missing or mismatched model or calibration result, a
        scorer that returns invalid scores (each with its ``BENCH_*`` code; exit 2).
    :raises CalibrationError: the validation split is too small to calibrate on (exit 1).
    :raises DataFormatError: unreadable traces or manifest (exit 2).
    """
    split = _check_split(request.split)
    claim, findings = _claim(request, context)
    findings = [*context.plugin_manager.stage_findings(), *findings]
    store = ArtefactStore(context.home)
    loaded = _load_training(request.training_manifest, store)
    model = _resolve_model(loaded.manifest, request.model_uri, store)
    links: list[InputLink] = []
    calibration_result: CustomerBenchmarkResult | None = None
    if split == "test":
        if request.calibration is None:
            raise StageInputError(
                "the test split is decided with thresholds calibrated on validation: give "
                "--calibration VALIDATION_RESULT (thresholds are never calibrated on test)",
                code="BENCH_CALIBRATION_MISSING",
            )
        calibration_result, link = _load_calibration(request.calibration, model, store)
        links.append(link)
    elif request.calibration is not None:
        raise StageInputError(
            "the validation split calibrates its own thresholds; --calibration is for test",
            code="BENCH_CALIBRATION_INVALID",
        )
    traces, traces_digest, _ = _read_split(_trace_path(request, claim), split, request)
    scorer, lane_findings = load_scorer(model, context=context, store=store)
    findings += lane_findings + _base_findings(loaded.manifest, traces)
    scores, latencies, latency = _score(scorer, traces, request.batch_size, timer)
    calibration: CalibratedThresholds | None = None
    if calibration_result is not None:
        source = calibration_result.calibration
        assert source is not None
        thresholds = DecisionThresholds(
            source="validation-result",
            threshold=source.threshold,
            abstention_threshold=source.abstention_threshold,
            escalation_threshold=source.escalation_threshold,
            calibration_result_hash=calibration_result.result_hash,
        )
        decisions = source.decide(scores)
    elif traces:
        undecided = _raw_results(traces, scores, ["approve"] * len(traces), latencies)
        calibration = calibrate_thresholds(
            undecided, split="validation", objective=request.objective, alpha=request.alpha
        )
        thresholds = DecisionThresholds(
            source="calibrated",
            threshold=calibration.threshold,
            abstention_threshold=calibration.abstention_threshold,
            escalation_threshold=calibration.escalation_threshold,
        )
        decisions = calibration.decide(scores)
    else:
        thresholds = DecisionThresholds(
            source="calibrated",
            threshold=None,
            abstention_threshold=None,
            escalation_threshold=None,
        )
        decisions = np.array([], dtype="<U8")
    results = _raw_results(traces, scores, [str(d) for d in decisions], latencies)
    return _seal(
        loaded=loaded,
        model=model,
        claim=claim,
        split=split,
        traces_digest=traces_digest,
        results=results,
        thresholds=thresholds,
        calibration=calibration,
        latency=latency,
        findings=findings,
        extra_links=links,
        store=store,
        histograms=reference_histograms(
            scores, [len(t.prompt) + len(t.response) for t in traces], split
        ),
    )


def _listed(code: str, what: str, ids: Sequence[str]) -> list[Finding]:
    findings = [
        Finding(code=code, severity="error", message=f"{what}", trace_id=trace_id)
        for trace_id in ids[:_MAX_LISTED]
    ]
    if len(ids) > _MAX_LISTED:
        findings.append(
            Finding(
                code=code,
                severity="error",
                message=f"{what}: {len(ids) - _MAX_LISTED} more traces not listed",
            )
        )
    return findings


def import_benchmark(
    raw_results: Path, request: BenchmarkRequest, *, context: RunContext
) -> CustomerBenchmarkResult:
    """Build a benchmark result from raw results produced elsewhere (decisions included).

    Every trace of the split must have exactly one raw result whose label and severity agree
    with the trace: a missing trace (``BENCH_RAW_MISSING_TRACE``), a duplicated trace id
    (``BENCH_RAW_DUPLICATE_TRACE``), a trace id outside the split (``BENCH_RAW_UNKNOWN_TRACE``)
    or a disagreeing label (``BENCH_RAW_LABEL_MISMATCH``) is an error finding, so the result is
    not ready. Metrics are computed over the first result of each known trace.

    :raises StageInputError: as :func:`run_benchmark` (no scoring, so no lane is needed).
    :raises DataFormatError: a raw results line that is not a raw result (file, line, field).
    """
    split = _check_split(request.split)
    if request.calibration is not None:
        raise StageInputError(
            "imported raw results carry their decisions; --calibration does not apply",
            code="BENCH_CALIBRATION_INVALID",
        )
    claim, findings = _claim(request, context)
    findings = [*context.plugin_manager.stage_findings(), *findings]
    store = ArtefactStore(context.home)
    loaded = _load_training(request.training_manifest, store)
    model = _resolve_model(loaded.manifest, request.model_uri, store)
    traces, traces_digest, _ = _read_split(_trace_path(request, claim), split, request)
    if not raw_results.is_file():
        raise DataFormatError("the raw results must be one regular JSONL file", path=raw_results)
    given = parse_raw_results(raw_results.read_bytes(), source=str(raw_results))
    by_id = {trace.trace_id: trace for trace in traces}
    seen: dict[str, RawResult] = {}
    duplicates: list[str] = []
    unknown: list[str] = []
    mismatched: list[str] = []
    for result in given:
        trace = by_id.get(result.trace_id)
        if trace is None:
            unknown.append(result.trace_id)
        elif result.trace_id in seen:
            duplicates.append(result.trace_id)
        else:
            seen[result.trace_id] = result
            if (result.is_unsafe, result.severity, result.label) != (
                trace.is_unsafe,
                trace.severity,
                trace.label,
            ):
                mismatched.append(result.trace_id)
    missing = [trace.trace_id for trace in traces if trace.trace_id not in seen]
    findings += _base_findings(loaded.manifest, traces)
    findings += _listed("BENCH_RAW_MISSING_TRACE", f"no raw result for this {split} trace", missing)
    findings += _listed(
        "BENCH_RAW_DUPLICATE_TRACE", "more than one raw result for this trace", duplicates
    )
    findings += _listed("BENCH_RAW_UNKNOWN_TRACE", f"not a trace of the {split} split", unknown)
    findings += _listed(
        "BENCH_RAW_LABEL_MISMATCH",
        "the raw result's label, class or severity differs from the trace's",
        mismatched,
    )
    return _seal(
        loaded=loaded,
        model=model,
        claim=claim,
        split=split,
        traces_digest=traces_digest,
        results=list(seen.values()),
        thresholds=DecisionThresholds(
            source="imported",
            threshold=None,
            abstention_threshold=None,
            escalation_threshold=None,
        ),
        calibration=None,
        latency=None,
        findings=findings,
        extra_links=(),
        store=store,
    )


def _differences(recorded: Any, recomputed: Any, path: str) -> list[str]:
    if isinstance(recorded, Mapping) and isinstance(recomputed, Mapping):
        out: list[str] = []
        for key in sorted(set(recorded) | set(recomputed)):
            out += _differences(recorded.get(key), recomputed.get(key), f"{path}.{key}")
        return out
    if recorded != recomputed or type(recorded) is not type(recomputed):
        return [f"{path}: recorded {recorded!r}, recomputed {recomputed!r}"]
    return []


def verify_benchmark(path: Path, *, context: RunContext) -> BenchmarkVerification:
    """Recompute every metric (and decision, and calibrated threshold) of a benchmark result from
    its raw results, after checking the result's hash and the raw results' digest.

    :raises ManifestIntegrityError: the result file was modified after it was written.
    :raises ArtefactError: the raw results are not stored (give ``--home``), or their bytes differ
        from the recorded digest.
    """
    result = CustomerBenchmarkResult.load(path)
    store = ArtefactStore(context.home)
    data = resolve_uri(result.raw_result_uri, store=store, expected_digest=result.raw_result_digest)
    results = parse_raw_results(data, source=result.raw_result_uri)
    differences: list[str] = []
    if render_raw_results(results) != data:
        differences.append("raw results: not in canonical form (sorted, canonical JSON lines)")
    ids = [r.trace_id for r in results]
    if len(set(ids)) != len(ids):
        differences.append("raw results: a trace id occurs more than once")
    metrics = compute_benchmark_metrics(results)
    differences += _differences(
        result.metrics.model_dump(mode="json"), metrics.model_dump(mode="json"), "metrics"
    )
    if result.trace_count != len(results):
        differences.append(f"trace_count: recorded {result.trace_count}, recomputed {len(results)}")
    classes = Counter("unsafe" if r.is_unsafe else "safe" for r in results)
    recomputed_classes = {"safe": classes["safe"], "unsafe": classes["unsafe"]}
    differences += _differences(result.label_class_counts, recomputed_classes, "label_class_counts")
    histograms = result.reference_histograms
    if histograms is not None:
        # The score histogram is recomputed from the raw results; the input-length one needs
        # the trace texts, which raw results do not hold, so only its total is checked.
        scores = np.fromiter((r.score for r in results), dtype=np.float64, count=len(results))
        differences += _differences(
            histograms.score.model_dump(mode="json"),
            score_histogram(scores).model_dump(mode="json"),
            "reference_histograms.score",
        )
        if histograms.input_chars.total != len(results):
            differences.append(
                f"reference_histograms.input_chars.total: recorded "
                f"{histograms.input_chars.total}, raw results {len(results)}"
            )
    thresholds = result.thresholds
    if thresholds.source != "imported" and thresholds.threshold is not None:
        assert thresholds.abstention_threshold is not None
        assert thresholds.escalation_threshold is not None
        scores = np.fromiter((r.score for r in results), dtype=np.float64, count=len(results))
        policy = CalibratedThresholds.model_construct(
            threshold=thresholds.threshold,
            abstention_threshold=thresholds.abstention_threshold,
            escalation_threshold=thresholds.escalation_threshold,
        )
        decided = policy.decide(scores)
        wrong = [r.trace_id for r, d in zip(results, decided, strict=True) if r.decision != d]
        if wrong:
            differences.append(
                f"decisions: {len(wrong)} differ from the recorded thresholds "
                f"(first: trace {wrong[0]})"
            )
    if result.calibration is not None:
        undecided = [r.model_copy(update={"decision": "approve"}) for r in results]
        try:
            recalibrated = calibrate_thresholds(
                undecided,
                split="validation",
                objective=result.calibration.objective,
                alpha=result.calibration.alpha,
            )
        except CalibrationError as error:
            differences.append(f"calibration: cannot be recomputed ({error})")
        else:
            differences += _differences(
                result.calibration.model_dump(mode="json"),
                recalibrated.model_dump(mode="json"),
                "calibration",
            )
    return BenchmarkVerification(
        path=str(path),
        result_hash=result.result_hash,
        raw_result_digest=result.raw_result_digest,
        trace_count=len(results),
        differences=tuple(differences),
        ok=not differences,
        exit_code=0 if not differences else 1,
    )
