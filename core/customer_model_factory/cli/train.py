"""``cmf train``: train a customer scorer from a ready dataset report (stage 2), or import one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from customer_model_factory.cli._output import FormatOption, OutputFormat, emit, to_json_text

if TYPE_CHECKING:
    from customer_model_factory.stages.training import CustomerTrainingManifest

__all__ = ["app", "render_text"]

app = typer.Typer(
    help="Train a customer scorer on the train split of a ready dataset report and write the "
    "training manifest (stage 2), or import a model trained elsewhere (cmf train import).\n\n"
    "The same request again converges on the same run and the same manifest bytes; an "
    "interrupted run resumes. Exit codes: 0 ready; 1 blocked (report not ready, base model not "
    "pinned, no train rows of both classes, a plugin that failed, a lane that raised); 2 refused "
    "(unknown lane or objective, tampered report, traces changed, bad output URI, an output over "
    "an input).",
    no_args_is_help=True,
    invoke_without_command=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def render_text(manifest: CustomerTrainingManifest) -> str:
    """A terminal summary of a training manifest (the JSON form is the file itself)."""
    verdict = "READY" if manifest.ready else "BLOCKED"
    model = manifest.model
    lines = [
        f"{verdict}  lane {manifest.lane}: {manifest.training_rows} train rows "
        f"({', '.join(f'{k} {v}' for k, v in manifest.label_class_counts.items()) or '-'})",
        f"  run        {manifest.train_run_id}",
        f"  dataset    {manifest.dataset_hash}",
        f"  report     {manifest.dataset_report_hash}",
        f"  model      {model.digest if model else '- (trained elsewhere: cmf train import)'}",
        f"  output     {manifest.output_uri or '-'}",
        f"  manifest   {manifest.manifest_hash}",
    ]
    for finding in manifest.findings:
        where = f"{finding.location}: " if finding.location else ""
        lines.append(f"{where}{finding.severity} {finding.code}: {finding.message}")
    return "\n".join(lines) + "\n"


def _finish(manifest: CustomerTrainingManifest, output_format: OutputFormat) -> None:
    if output_format is OutputFormat.json:
        emit(to_json_text(manifest.payload()))
    else:
        emit(render_text(manifest))
    raise typer.Exit(0 if manifest.ready else 1)


@app.callback()
def train(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    dataset_report: Annotated[
        Path | None,
        typer.Option("--dataset-report", help="A ready dataset report (cmf dataset validate -o)."),
    ] = None,
    traces: Annotated[
        Path | None,
        typer.Option(
            "--traces",
            help="The traces (default: the report's redacted copy, else its source); their "
            "bytes must hash to the digest the report recorded.",
        ),
    ] = None,
    lane: Annotated[str | None, typer.Option("--lane", help="The training lane.")] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="train.toml: hyperparameters, base model...", dir_okay=False),
    ] = None,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            help="The workspace TOML the report was validated with (its label map).",
            dir_okay=False,
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Training seed.")] = None,
    objective: Annotated[
        str | None, typer.Option("--objective", help="Objective profile (default balanced).")
    ] = None,
    output_uri: Annotated[
        str | None,
        typer.Option("--output-uri", help="Where the model goes (the lane's URI rules)."),
    ] = None,
    package_id: Annotated[
        str | None, typer.Option("--package-id", help="Training package id.")
    ] = None,
    actor: Annotated[
        str, typer.Option("--actor", help="Who asks, recorded in the run ledger.")
    ] = "cmf",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the training manifest here.", dir_okay=False),
    ] = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Train on the train split of a ready dataset report and write the training manifest.

    The same request again converges on the same run and the same manifest bytes; an
    interrupted run resumes. Exits 0 when the manifest is ready, 1 when it is blocked (report
    not ready, base model not pinned, no train rows of both classes, a plugin that failed), 2 for
    a refused request (unknown lane, tampered report, traces changed, bad output URI).
    """
    if ctx.invoked_subcommand is not None:
        return
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.errors import ConfigError  # noqa: PLC0415
    from customer_model_factory.stages.training import (  # noqa: PLC0415
        TrainingRequest,
        train_to_file,
    )

    if dataset_report is None or output is None:
        missing = "--dataset-report" if dataset_report is None else "--output"
        raise ConfigError(f"missing option {missing}")
    request = TrainingRequest.from_options(
        dataset_report=dataset_report,
        config=config,
        workspace=workspace,
        traces=traces,
        lane=lane,
        seed=seed,
        objective_profile=objective,
        output_uri=output_uri,
        package_id=package_id,
        actor=actor,
    )
    _finish(train_to_file(request, output, context=run_context(ctx)), output_format)


@app.command("import")
def import_artefact(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    training_manifest: Annotated[
        Path,
        typer.Option(
            "--training-manifest",
            help="The manifest a manifest-only lane emitted.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    artefact: Annotated[
        Path,
        typer.Option("--artefact", help="The model file or directory produced elsewhere."),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Write the completed manifest here.", dir_okay=False),
    ],
    expect_digest: Annotated[
        str | None,
        typer.Option(
            "--expect-digest",
            help="sha256:<hex> of the file, or of the model index for a directory.",
        ),
    ] = None,
    actor: Annotated[str, typer.Option("--actor", help="Who imports.")] = "cmf",
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Import a model trained elsewhere into the store by digest; write the completed manifest.

    Exits 0 when imported, 1 when a plugin problem blocks it (a manifest with the findings is
    written, nothing is stored), 2 when refused (digest mismatch, not a pending manifest-only run,
    an artefact that is not regular files).
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.stages.training import (  # noqa: PLC0415
        TrainingImport,
        import_trained_model,
    )

    job = TrainingImport(training_manifest, artefact, expect_digest=expect_digest, actor=actor)
    _finish(import_trained_model(job, output, context=run_context(ctx)), output_format)
