"""``cmf manifest``: verify the hashes of manifest files."""

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

app = command_group("Verify stage manifests.")


@app.command("verify")
def verify(
    files: Annotated[
        list[Path], typer.Argument(help="Manifest files to verify.", show_default=False)
    ],
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Recompute each manifest's hash and validate it against its model.

    Exits 0 when every file verifies, 2 when any is tampered, of an unknown schema version, or
    unreadable (the message names the file and both hashes).
    """
    from customer_model_factory.catalog import verify_manifest_files  # noqa: PLC0415

    checks = verify_manifest_files(files)
    if output_format is OutputFormat.json:
        emit(to_json_text([check.model_dump(mode="json") for check in checks]))
    else:
        for check in checks:
            if check.ok:
                typer.echo(f"ok    {check.path}: {check.hash_field} {check.actual}")
            else:
                typer.echo(f"FAIL  {check.error}", err=True)
    raise typer.Exit(max((check.exit_code for check in checks), default=0))
