"""``cmf publish``: register the selected model's bundle in the local registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from customer_model_factory.cli._output import FormatOption, OutputFormat, emit, to_json_text

__all__ = ["publish"]


def publish(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    selection: Annotated[
        Path, typer.Option("--selection", "-s", help="The selection report.", show_default=False)
    ],
    bundle_id: Annotated[
        str, typer.Option("--bundle-id", help="The bundle's id.", show_default=False)
    ],
    version: Annotated[str, typer.Option("--version", help="Its version.", show_default=False)],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write the bundle manifest here.", dir_okay=False),
    ] = None,
    mlflow_uri: Annotated[
        str | None,
        typer.Option(
            "--mlflow-uri",
            help="Also log params, metrics and the bundle to this MLflow tracking URI "
            "(extra mlflow; a file store needs MLFLOW_ALLOW_FILE_STORE=true).",
        ),
    ] = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Publish the selected model as (bundle id, version); the same bundle again is a no-op.

    Exits 0 published (or already published with the same content); 1 refused: the run's gate
    receipt is missing or FAIL (TRAIN_PUBLISH_NOT_PASSED) or other content holds that version
    (TRAIN_PUBLISH_CONFLICT); 2 bad input (tampered selection, missing artefact, bad version).
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.cli._paths import refuse_overwrite  # noqa: PLC0415
    from customer_model_factory.stages.selection.publish import publish_bundle  # noqa: PLC0415

    refuse_overwrite({"--output": output}, [selection])
    outcome = publish_bundle(
        selection,
        bundle_id=bundle_id,
        version=version,
        context=run_context(ctx),
        mlflow_uri=mlflow_uri,
    )
    if output is not None:
        outcome.bundle.write(output)
    if output_format is OutputFormat.json:
        emit(
            to_json_text(
                {
                    "bundle": outcome.bundle.payload(),
                    "publication": outcome.publication.model_dump(mode="json"),
                    "mlflow_run_id": outcome.mlflow_run_id,
                }
            )
        )
    else:
        entry = outcome.publication
        emit(
            f"PUBLISHED {entry.bundle_id} {entry.version}: {entry.content_digest} "
            f"(run {entry.train_run_id[:16]}, {entry.at})\n"
        )
        if outcome.mlflow_run_id is not None:
            emit(f"  mlflow run {outcome.mlflow_run_id}\n")
