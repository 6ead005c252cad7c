"""``cmf select``: choose a model among benchmark results under an objective profile (stage 3b)
and record the chosen run's gate receipt."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from customer_model_factory.cli._output import FormatOption, OutputFormat, emit, to_json_text

if TYPE_CHECKING:
    from customer_model_factory.stages.selection.select import SelectionRun

__all__ = ["render_text", "select"]


def render_text(run: SelectionRun) -> str:
    """A terminal summary of a selection and its gate receipt (non-printable characters
    escaped)."""
    from customer_model_factory.cli._paths import printable  # noqa: PLC0415

    report = run.report
    lines = [
        f"{'SELECTED' if report.selected_result_hash else 'NONE'}  profile "
        f"{report.objective_profile}: {len(report.candidates)} candidates",
        f"  selection  {report.selection_hash}",
    ]
    for candidate in report.candidates:
        rank = f"#{candidate.rank}" if candidate.rank else "--"
        score = "null" if candidate.score is None else f"{candidate.score:.4f}"
        why = "" if candidate.eligible else "  (" + "; ".join(candidate.reasons) + ")"
        lines.append(
            f"  {rank:>3} {candidate.result_hash[:19]} {candidate.benchmark_id} score {score}{why}"
        )
    lines.append(f"  {report.high_risk_statement}")
    if run.receipt is not None:
        receipt = run.receipt
        lines.append(
            f"  gate       {receipt.gate_status} for run {receipt.train_run_id[:16]} "
            f"({receipt.receipt_hash})"
        )
        lines.extend(f"    {reason}" for reason in receipt.reasons)
    for finding in report.findings:
        lines.append(f"{finding.severity} {finding.code}: {finding.message}")
    return "\n".join(printable(line) for line in lines) + "\n"


def _cutoffs(items: list[str]) -> dict[str, float]:
    cutoffs: dict[str, float] = {}
    for item in items:
        metric, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not metric.strip() or not math.isfinite(number):
            raise typer.BadParameter(f"--cutoff {item[:60]!r}: write METRIC=NUMBER")
        cutoffs[metric.strip()] = number
    return cutoffs


def select(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    results: Annotated[
        list[Path],
        typer.Argument(
            help="Benchmark results (test split).", show_default=False, metavar="RESULT..."
        ),
    ],
    objective: Annotated[
        str, typer.Option("--objective", help="The objective profile.", show_default=False)
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Write the selection report here.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    cutoff: Annotated[
        list[str] | None,
        typer.Option(
            "--cutoff",
            metavar="METRIC=VALUE",
            help="Replace the bound of one of the profile's constraints (repeatable).",
        ),
    ] = None,
    min_high_risk: Annotated[
        int | None,
        typer.Option(
            "--min-high-risk",
            min=0,
            help="High-risk unsafe traces a candidate must hold (profile default).",
        ),
    ] = None,
    selection_id: Annotated[
        str | None, typer.Option("--selection-id", help="Default: derived from the inputs.")
    ] = None,
    receipt_output: Annotated[
        Path | None,
        typer.Option("--receipt", help="Also write the gate receipt (JSON) here.", dir_okay=False),
    ] = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Select a model among benchmark results and record the chosen run's gate receipt.

    Candidates are judged from their raw results (a result whose raw results do not reproduce
    its metrics is refused); ties go to fewer approved high-risk unsafe traces, then the smaller
    result_hash. Exits 0 when a model is selected and its gate receipt is PASS, 1 when no
    candidate is eligible or the receipt is FAIL, 2 for bad input (unknown profile, tampered
    result, a run not in the ledger of --home).
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.cli._paths import refuse_overwrite  # noqa: PLC0415
    from customer_model_factory.stages.selection.select import run_selection  # noqa: PLC0415

    refuse_overwrite({"--output": output, "--receipt": receipt_output}, list(results))
    run = run_selection(
        results,
        objective,
        context=run_context(ctx),
        cutoffs=_cutoffs(cutoff or []),
        min_high_risk_samples=min_high_risk,
        selection_id=selection_id,
    )
    run.report.write(output)
    if receipt_output is not None and run.receipt is not None:
        from customer_model_factory.io import atomic_write_bytes  # noqa: PLC0415

        atomic_write_bytes(
            receipt_output, to_json_text(run.receipt.model_dump(mode="json")).encode()
        )
    if output_format is OutputFormat.json:
        payload = {
            "report": run.report.payload(),
            "receipt": None if run.receipt is None else run.receipt.model_dump(mode="json"),
        }
        emit(to_json_text(payload))
    else:
        emit(render_text(run))
    raise typer.Exit(run.exit_code)
