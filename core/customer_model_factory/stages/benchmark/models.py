"""The benchmark result (``kind: benchmark-result``) and the raw-results file it is computed from.

Field names follow the reference ``CustomerBenchmarkResult`` (``benchmark_id``,
``training_manifest_hash``, ``model_artifact_uri``, ``metrics``, ``raw_result_uri``,
``claim_boundary``, ``result_hash``); we add the split, the trace counts, how decisions were taken
(``thresholds``: calibrated here on ``validation``, taken from a linked validation result on
``test``), scoring latency, and the digest of the raw results so anyone can recompute every metric.

The raw results are **canonical JSONL**: one :class:`RawResult` a line, as RFC 8785 canonical
JSON, sorted by ``trace_id``, each line ending in ``\\n``. :func:`render_raw_results` writes that
form and :func:`parse_raw_results` reads it back strictly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, Final, Literal, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from customer_model_factory.canonical import canonical_json
from customer_model_factory.errors import DataFormatError
from customer_model_factory.manifest import HASH_PATTERN, BoundManifest
from customer_model_factory.plugin_api.contracts import MetricConstraint
from customer_model_factory.stages.benchmark.calibration import CalibratedThresholds
from customer_model_factory.stages.benchmark.metrics import BenchmarkMetrics, RawResult

__all__ = [
    "BENCHMARK_SPLITS",
    "CustomerBenchmarkResult",
    "DecisionThresholds",
    "Histogram",
    "ReferenceHistograms",
    "ScoringLatency",
    "es_number",
    "parse_raw_results",
    "render_raw_results",
]

BENCHMARK_SPLITS: Final = ("validation", "test")
"""The splits a benchmark may score; ``train`` is always refused."""


class DecisionThresholds(BaseModel):
    """The thresholds decisions were taken with (the reference ``DeploymentPolicy`` order).

    Block at or above ``threshold``, abstain from ``abstention_threshold``, escalate from
    ``escalation_threshold``, approve below.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Literal["calibrated", "validation-result", "imported"] = Field(
        description="calibrated: on this result's validation split; validation-result: taken "
        "from the linked validation result; imported: decisions came with the raw results."
    )
    threshold: float | None = Field(description="Block when score >= threshold.")
    abstention_threshold: float | None = Field(description="Abstain from this score.")
    escalation_threshold: float | None = Field(description="Escalate from this score.")
    calibration_result_hash: str | None = Field(
        default=None, description="result_hash of the validation result they come from."
    )


class ScoringLatency(BaseModel):
    """How long scoring took (measured; it differs between runs)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_size: int = Field(
        description="Traces scored per call; each trace's latency_ms is its "
        "batch's wall time divided by the batch's size."
    )
    total_seconds: float = Field(description="Wall time of all scoring calls.")
    throughput_traces_per_s: float | None = Field(
        description="Traces scored per second (null when nothing was scored)."
    )


class Histogram(BaseModel):
    """Counts of values in bins cut at ``edges``: bin 0 is ``(-inf, edges[0])``, bin *i* is
    ``[edges[i-1], edges[i])`` and the last bin is ``[edges[-1], +inf)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    edges: tuple[float, ...] = Field(min_length=1, description="Increasing cut points.")
    counts: tuple[int, ...] = Field(description="len(edges) + 1 counts, one per bin.")
    total: int = Field(ge=0, description="The number of values counted (sum of counts).")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("histogram edges must increase strictly")
        if len(self.counts) != len(self.edges) + 1:
            raise ValueError("a histogram has one more count than edges")
        if any(count < 0 for count in self.counts) or sum(self.counts) != self.total:
            raise ValueError("histogram counts must be non-negative and sum to total")
        return self


class ReferenceHistograms(BaseModel):
    """The reference distributions drift is measured against (PSI)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    score: Histogram = Field(description="Scores of the split, in ten equal bins of [0, 1].")
    input_chars: Histogram = Field(
        description="Characters of prompt + response, cut at the split's deciles."
    )
    source_split: str = Field(description="The split the histograms were counted on.")


class CustomerBenchmarkResult(BoundManifest):
    """Stage 3a's manifest: one model's metrics on one split, computed from stored raw results."""

    KIND: ClassVar[str] = "benchmark-result"
    HASH_FIELD: ClassVar[str] = "result_hash"
    SCHEMA_NAME: ClassVar[str] = "benchmark-result"
    SCHEMA_VERSIONS: ClassVar[tuple[str, ...]] = ("1",)

    benchmark_id: str = Field(min_length=1, description="The benchmark package id (or 'adhoc').")
    benchmark_version: str | None = Field(
        default=None, description="The benchmark package's version, when one was used."
    )
    training_manifest_hash: str = Field(
        pattern=HASH_PATTERN, description="manifest_hash of the training manifest benchmarked."
    )
    train_run_id: str = Field(description="The training run (the manifest's train_run_id).")
    lane: str = Field(description="The lane that trained the model.")
    model_artifact_uri: str = Field(description="cmf://sha256/<hex> of the model index.")
    model_digest: str = Field(pattern=HASH_PATTERN, description="sha256 of the model index.")
    split: Literal["validation", "test"] = Field(description="The split scored.")
    traces_digest: str = Field(
        pattern=HASH_PATTERN, description="sha256 of the traces file's bytes."
    )
    trace_count: int = Field(ge=0, description="Traces of the split (each scored once).")
    label_class_counts: dict[str, int] = Field(description="Traces of the split per class.")
    metrics: BenchmarkMetrics = Field(description="Metrics recomputable from the raw results.")
    raw_result_uri: str = Field(description="cmf://sha256/<hex> of the canonical JSONL results.")
    raw_result_digest: str = Field(pattern=HASH_PATTERN, description="sha256 of those bytes.")
    claim_boundary: str = Field(min_length=1, description="What a pass claims and does not.")
    package_thresholds: tuple[MetricConstraint, ...] = Field(
        default=(), description="The benchmark package's thresholds (gate criteria)."
    )
    thresholds: DecisionThresholds = Field(description="How the decisions were taken.")
    calibration: CalibratedThresholds | None = Field(
        default=None,
        description="On the validation split: the calibrated thresholds, the conformal band "
        "(alpha, calibration set size) and the coverage guarantee.",
    )
    latency: ScoringLatency | None = Field(
        default=None, description="Scoring time (null for imported raw results)."
    )
    reference_histograms: ReferenceHistograms | None = Field(
        default=None,
        description="Score and input-length histograms of the scored split: the reference a "
        "runtime package carries so monitoring never re-reads the benchmark data.",
    )
    result_hash: str = Field(default="", description="sha256 over every other field.")


def es_number(value: float) -> str:
    """The ECMAScript ``Number.prototype.toString`` form of a finite float, which RFC 8785
    prescribes: the shortest round-trip digits, no exponent from 1e-6 to 1e21, ``1`` for 1.0.

    :raises ValueError: NaN or an infinity.
    """
    if not math.isfinite(value):
        raise ValueError(f"{value!r} has no JSON form")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    text = repr(abs(value))  # the shortest round-trip digits, as Python writes them
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    # value = 0.<digits> * 10**point
    point = len(whole) + int(exponent or 0) - (len(whole + fraction) - len(digits))
    digits = digits.rstrip("0")
    size = len(digits)
    if size <= point <= 21:
        body = digits + "0" * (point - size)
    elif 0 < point <= 21:
        body = f"{digits[:point]}.{digits[point:]}"
    elif -6 < point <= 0:
        body = "0." + "0" * -point + digits
    else:
        power = point - 1
        mark = "+" if power >= 0 else "-"
        head = digits if size == 1 else f"{digits[0]}.{digits[1:]}"
        body = f"{head}e{mark}{abs(power)}"
    return sign + body


def _raw_line(result: RawResult) -> bytes:
    """One raw result as RFC 8785 canonical JSON, written directly (keys in UTF-16 order).

    Strings go through orjson, whose minimal escaping is RFC 8785's; numbers through
    :func:`es_number`. A string orjson refuses takes the reference implementation; a test checks
    both give the same bytes.
    """
    try:
        text = orjson.dumps
        label = result.label
        parts = (
            b'{"decision":',
            text(result.decision),
            b',"is_unsafe":',
            b"true" if result.is_unsafe else b"false",
            b',"label":',
            (b"true" if label else b"false") if isinstance(label, bool) else text(label),
            b',"latency_ms":',
            es_number(result.latency_ms).encode(),
            b',"score":',
            es_number(result.score).encode(),
            b',"sector":',
            b"null" if result.sector is None else text(result.sector),
            b',"severity":',
            text(result.severity),
            b',"trace_id":',
            text(result.trace_id),
            b"}",
        )
    except orjson.JSONEncodeError:
        return canonical_json(result.model_dump(mode="json"))
    return b"".join(parts)


def render_raw_results(results: Sequence[RawResult]) -> bytes:
    """Return the canonical JSONL of raw results: sorted by trace id, one canonical line each."""
    ordered = sorted(results, key=lambda result: result.trace_id)
    return b"".join(_raw_line(result) + b"\n" for result in ordered)


def parse_raw_results(data: bytes, *, source: str) -> list[RawResult]:
    """Read raw results from JSONL bytes (any key order; blank lines skipped), strictly.

    :raises DataFormatError: a line that is not a JSON object or not a :class:`RawResult`, named
        by ``source:line`` and field.
    """
    results: list[RawResult] = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise DataFormatError(f"invalid JSON: {error.msg}", path=source, line=number) from None
        if not isinstance(value, dict):
            raise DataFormatError("a raw result is a JSON object", path=source, line=number)
        try:
            results.append(RawResult.model_validate(value))
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or None
            raise DataFormatError(
                f"{first['msg']} (raw result)", path=source, line=number, field=field
            ) from None
    return results
