"""``cmf fixture``: generate the deterministic end-to-end fixture of the whole factory."""

from __future__ import annotations

from pathlib import Path
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

app = command_group(
    "Generate a deterministic end-to-end fixture: synthetic traces and every manifest of the "
    "chain, byte-identical on every run and machine."
)


@app.command("generate")
def generate(
    ctx: typer.Context,
    output_dir: Annotated[
        Path,
        typer.Option(
            "--output-dir",
            "-o",
            help="A new (or empty) directory.",
            file_okay=False,
            show_default=False,
        ),
    ],
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Write synthetic traces, the later stages' inputs and a reproducible factory.toml into a
    new directory, and run the pipeline there with the built-in plugins only.

    Exits 0 when the chain reaches its last step ready (promotion allowed when the release gate
    runs), 1 when a step is blocked, 2 when the directory exists and is not empty.
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.fixture import generate_fixture  # noqa: PLC0415

    outcome = generate_fixture(output_dir, context=run_context(ctx))
    if output_format is OutputFormat.json:
        emit(to_json_text(outcome.model_dump(mode="json")))
    else:
        state = "READY" if outcome.exit_code == 0 else "BLOCKED"
        release = f"; release {outcome.release_hash}" if outcome.release_hash else ""
        emit(f"{state}  fixture in {output_dir}: {len(outcome.files)} files{release}\n")
    raise typer.Exit(outcome.exit_code)
