"""``cmf runs``: the training runs of the factory home's run ledger."""

from __future__ import annotations

from typing import Annotated

import typer

from customer_model_factory.cli._output import (
    FormatOption,
    OutputFormat,
    command_group,
    emit,
    to_json_text,
)

__all__ = ["app"]

app = command_group("Show the training runs of the run ledger (QUEUED ... PUBLISHED).")


@app.command("list")
def list_runs(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option("--status", help="Only runs with this status (e.g. INTERRUPTED)."),
    ] = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """List every run, most recently changed first. Always exits 0."""
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.stages.training import list_training_runs  # noqa: PLC0415

    runs = list_training_runs(context=run_context(ctx), status=status)
    if output_format is OutputFormat.json:
        emit(to_json_text([run.model_dump(mode="json") for run in runs]))
        return
    if not runs:
        emit("no runs\n")
        return
    lines = [
        f"{run.run_id[:16]}  {run.status:<12} {run.lane:<14} {run.updated_at}  {run.dataset_hash}"
        for run in runs
    ]
    emit("\n".join(lines) + "\n")


@app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="A run id, or a unique prefix of 8+ hex digits.")],
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Show one run: its request, events, outputs, receipt and counters.

    Exits 0, or 1 when the run is interrupted (left RUNNING with no live owner: retry the same
    request to resume it), 2 for an unknown run.
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.stages.training import show_training_run  # noqa: PLC0415

    detail = show_training_run(run_id, context=run_context(ctx))
    if output_format is OutputFormat.json:
        emit(to_json_text(detail.model_dump(mode="json")))
    else:
        request = detail.request
        lines = [
            f"{detail.status}  run {detail.run_id}",
            f"  lane       {request.lane}   seed {request.seed}   objective "
            f"{request.objective_profile}",
            f"  dataset    {request.dataset_hash}",
            f"  created    {detail.created_at} by {detail.created_by}",
        ]
        if detail.interrupted:
            lines.append(f"  interrupted: {detail.interruption_reason}; retry to resume")
        model = detail.outputs.get("model")
        if isinstance(model, dict):
            lines.append(f"  model      {model.get('digest')}")
        lines += [f"  {e.seq:>6}  {e.state:<11} {e.at}  {e.actor}" for e in detail.events]
        if detail.receipt is not None:
            lines.append(f"  gate       {detail.receipt.gate_status} {detail.receipt.receipt_hash}")
        emit("\n".join(lines) + "\n")
    raise typer.Exit(1 if detail.interrupted else 0)
