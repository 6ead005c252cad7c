"""``cmf benchmark``: score a split (stage 3a), import raw results, verify a result."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from customer_model_factory.cli._output import (
    FormatOption,
    OutputFormat,
    command_group,
    emit,
    to_json_text,
)

if TYPE_CHECKING:
    from customer_model_factory.stages.benchmark.models import CustomerBenchmarkResult
    from customer_model_factory.stages.benchmark.run import BenchmarkRequest

__all__ = ["app", "render_text"]

app = command_group(
    "Benchmark a trained model on one split from raw per-trace results (stage 3a); import raw "
    "results produced elsewhere; verify a result by recomputing it."
)

TrainingOption = Annotated[
    Path,
    typer.Option(
        "--training-manifest", "-m", help="The training manifest (JSON).", show_default=False
    ),
]
SplitOption = Annotated[
    str,
    typer.Option("--split", help="validation or test (train is refused).", show_default=False),
]
TracesOption = Annotated[
    Path | None,
    typer.Option("--traces", "-t", help="Traces JSONL (default: the package's traces)."),
]
PackageOption = Annotated[
    str | None,
    typer.Option("--package", help="A benchmark package id: its claim boundary and thresholds."),
]
ClaimOption = Annotated[
    str | None,
    typer.Option("--claim-boundary", help="What a pass claims and does not (without a package)."),
]
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="cmf://sha256/<hex> model index (default: the manifest's)."),
]
UnsafeOption = Annotated[
    list[str] | None,
    typer.Option("--unsafe-label", help="A label meaning unsafe (repeatable; default unsafe)."),
]
SafeOption = Annotated[
    list[str] | None,
    typer.Option("--safe-label", help="A label meaning safe (repeatable; default safe)."),
]
ResultOutput = Annotated[
    Path,
    typer.Option(
        "--output",
        "-o",
        help="Write the result manifest here.",
        dir_okay=False,
        show_default=False,
    ),
]


def render_text(result: CustomerBenchmarkResult) -> str:
    """A terminal summary of a benchmark result (non-printable characters escaped)."""
    from customer_model_factory.cli._paths import printable  # noqa: PLC0415

    metrics = result.metrics

    def fmt(value: float | None) -> str:
        return "null" if value is None else f"{value:.4f}"

    verdict = "READY" if result.ready else "BLOCKED"
    lines = [
        f"{verdict}  {result.benchmark_id} on {result.split}: {result.trace_count} traces "
        f"(unsafe {result.label_class_counts.get('unsafe', 0)}, "
        f"safe {result.label_class_counts.get('safe', 0)})",
        f"  result     {result.result_hash}",
        f"  raw        {result.raw_result_uri}",
        f"  model      {result.model_artifact_uri} (lane {result.lane})",
        f"  balanced accuracy {fmt(metrics.balanced_accuracy)}  recall {fmt(metrics.recall)}  "
        f"FPR {fmt(metrics.false_positive_rate)}  high-risk FNR "
        f"{fmt(metrics.high_risk_false_negative_rate)} (95% upper "
        f"{fmt(metrics.high_risk_miss_rate_upper_95)})",
        f"  abstention {fmt(metrics.abstention_rate)}  escalation {fmt(metrics.escalation_rate)}"
        f"  p95 latency {fmt(metrics.latency_p95_ms)} ms",
        f"  thresholds {result.thresholds.source}: block >= {fmt(result.thresholds.threshold)}, "
        f"abstain >= {fmt(result.thresholds.abstention_threshold)}, escalate >= "
        f"{fmt(result.thresholds.escalation_threshold)}",
    ]
    if result.calibration is not None:
        lines.append(f"  guarantee  {result.calibration.coverage_guarantee}")
    for finding in result.findings:
        trace = f" [{finding.trace_id}]" if finding.trace_id else ""
        lines.append(f"{finding.severity} {finding.code}{trace}: {finding.message}")
    return "\n".join(printable(line) for line in lines) + "\n"


def _finish(result: CustomerBenchmarkResult, output: Path, output_format: OutputFormat) -> None:
    result.write(output)
    emit(
        to_json_text(result.payload())
        if output_format is OutputFormat.json
        else render_text(result)
    )
    raise typer.Exit(0 if result.ready else 1)


def _objective(max_fnr: float | None, max_fpr: float | None) -> dict[str, object]:
    if max_fnr is not None and max_fpr is not None:
        raise typer.BadParameter("give --max-fnr or --max-fpr, not both")
    if max_fpr is not None:
        return {"objective": {"kind": "max_fpr", "target": max_fpr}}
    if max_fnr is not None:
        return {"objective": {"kind": "max_fnr", "target": max_fnr}}
    return {}


def _request(**fields: object) -> BenchmarkRequest:
    from pydantic import ValidationError  # noqa: PLC0415

    from customer_model_factory.stages.benchmark.run import BenchmarkRequest  # noqa: PLC0415

    given = {key: value for key, value in fields.items() if value is not None}
    try:
        return BenchmarkRequest.model_validate(given)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise typer.BadParameter(f"{where}: {first['msg']}") from None


@app.command("run")
def run(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    training_manifest: TrainingOption,
    split: SplitOption,
    output: ResultOutput,
    traces: TracesOption = None,
    package: PackageOption = None,
    claim_boundary: ClaimOption = None,
    model: ModelOption = None,
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            help="On test: the validation result whose calibrated thresholds decide.",
        ),
    ] = None,
    max_fnr: Annotated[
        float | None,
        typer.Option(
            "--max-fnr",
            help="Calibrate so at most this share of unsafe validation "
            "traces is approved (default 0.05).",
        ),
    ] = None,
    max_fpr: Annotated[
        float | None,
        typer.Option(
            "--max-fpr",
            help="Calibrate so at most this share of safe validation traces is flagged.",
        ),
    ] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="Conformal error level.")] = 0.1,
    unsafe_label: UnsafeOption = None,
    safe_label: SafeOption = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Traces per call.")] = 256,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Score every trace of a split and write the benchmark result.

    On validation the block / abstain / escalate thresholds are calibrated (split-conformal band
    at --alpha, objective --max-fnr or --max-fpr); on test they come from --calibration, never
    from test. Exits 0 ready, 1 blocked (a finding such as a package threshold not met on test,
    or a validation split too small to calibrate), 2 bad input (train split, no claim boundary,
    unknown package or lane, tampered manifest or model).
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.cli._paths import refuse_overwrite  # noqa: PLC0415
    from customer_model_factory.stages.benchmark.run import run_benchmark  # noqa: PLC0415

    refuse_overwrite({"--output": output}, [training_manifest, traces, calibration])
    request = _request(
        training_manifest=training_manifest,
        split=split,
        traces=traces,
        package=package,
        claim_boundary=claim_boundary,
        model_uri=model,
        calibration=calibration,
        alpha=alpha,
        unsafe_labels=tuple(unsafe_label) if unsafe_label else None,
        safe_labels=tuple(safe_label) if safe_label else None,
        batch_size=batch_size,
        **_objective(max_fnr, max_fpr),
    )
    _finish(run_benchmark(request, context=run_context(ctx)), output, output_format)


@app.command("import")
def import_(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    raw: Annotated[
        Path,
        typer.Argument(
            help="Raw per-trace results (JSONL) produced elsewhere.", show_default=False
        ),
    ],
    training_manifest: TrainingOption,
    split: SplitOption,
    output: ResultOutput,
    traces: TracesOption = None,
    package: PackageOption = None,
    claim_boundary: ClaimOption = None,
    model: ModelOption = None,
    unsafe_label: UnsafeOption = None,
    safe_label: SafeOption = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Turn raw results produced elsewhere into a benchmark result (decisions as given).

    Every trace of the split needs exactly one raw result agreeing with its label and severity;
    a missing, duplicated or unknown trace is an error finding (exit 1, the result is written
    and not ready). Exits 2 for bad input.
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.cli._paths import refuse_overwrite  # noqa: PLC0415
    from customer_model_factory.stages.benchmark.run import import_benchmark  # noqa: PLC0415

    refuse_overwrite({"--output": output}, [raw, training_manifest, traces])
    request = _request(
        training_manifest=training_manifest,
        split=split,
        traces=traces,
        package=package,
        claim_boundary=claim_boundary,
        model_uri=model,
        unsafe_labels=tuple(unsafe_label) if unsafe_label else None,
        safe_labels=tuple(safe_label) if safe_label else None,
    )
    _finish(import_benchmark(raw, request, context=run_context(ctx)), output, output_format)


@app.command("verify")
def verify(
    ctx: typer.Context,
    result: Annotated[Path, typer.Argument(help="A benchmark result.", show_default=False)],
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Recompute every metric, decision and calibrated threshold from the stored raw results.

    Exits 0 when everything recomputes identically, 1 when a recorded value differs (each one
    named), 2 when the result or the raw results were tampered with or are missing (--home).
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.stages.benchmark.run import verify_benchmark  # noqa: PLC0415

    report = verify_benchmark(result, context=run_context(ctx))
    if output_format is OutputFormat.json:
        emit(to_json_text(report.model_dump(mode="json")))
    else:
        verdict = "ok   " if report.ok else "DIFFERS"
        lines = [
            f"{verdict} {report.path}: {report.trace_count} raw results "
            f"({report.raw_result_digest}) recompute result {report.result_hash}"
            if report.ok
            else f"{verdict} {report.path}: {len(report.differences)} recorded values differ",
            *(f"  {difference}" for difference in report.differences),
        ]
        emit("\n".join(lines) + "\n")
    raise typer.Exit(report.exit_code)
