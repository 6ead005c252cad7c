"""``cmf schemas``: export the JSON Schemas of every published model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from customer_model_factory.cli._output import command_group

__all__ = ["app"]

app = command_group("Export and check the published JSON Schemas.")


@app.command("export")
def export(
    directory: Annotated[
        Path, typer.Option("--dir", "-d", help="Directory of the schema files.", file_okay=False)
    ] = Path("schemas"),
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Write nothing; exit 1 naming each schema that differs from its model."
        ),
    ] = False,
) -> None:
    """Regenerate ``schemas/customer-model-factory-*.schema.json`` from the models."""
    from customer_model_factory.catalog import check_schemas, export_schemas  # noqa: PLC0415

    if check:
        problems = check_schemas(directory)
        for problem in problems:
            typer.echo(problem, err=True)
        if problems:
            typer.echo("run `cmf schemas export` to regenerate the schemas", err=True)
            raise typer.Exit(1)
        typer.echo(f"schemas in {directory} are fresh")
        return
    for path in export_schemas(directory):
        typer.echo(f"wrote {path}")
