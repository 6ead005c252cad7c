"""``cmf manifest``: verify the hashes of manifest files and the links of their chain."""

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

app = command_group("Verify stage manifests and the hash chain that links them.")


@app.command("verify")
def verify(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(help="Manifest files to verify.", show_default=False, metavar="FILE..."),
    ],
    chain: Annotated[
        bool,
        typer.Option(
            "--chain",
            help="Also follow every input link (by uri, else by hash in --search / the files' "
            "directories / the factory home) and verify each linked artefact.",
        ),
    ] = False,
    search: Annotated[
        list[Path] | None,
        typer.Option(
            "--search", metavar="DIR", help="Where to look links up by hash (repeatable)."
        ),
    ] = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Recompute each manifest's hash and validate it against the model of its ``kind``.

    Exits 0 when everything verifies; 2 when a manifest or a linked artefact was tampered with,
    has an unknown kind or schema version, or is unreadable (the message names the file, the
    link and both hashes); 1 when a link of the chain cannot be found (named).
    """
    from customer_model_factory.catalog import verify_chain  # noqa: PLC0415
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415

    context = run_context(ctx)
    report = verify_chain(files, follow=chain, search=search or (), home=context.home)
    if output_format is OutputFormat.json:
        emit(to_json_text(report.model_dump(mode="json")))
    else:
        for check in report.manifests:
            if check.ok:
                typer.echo(f"ok    {check.path}: {check.kind} {check.hash_field} {check.actual}")
            else:
                typer.echo(f"FAIL  {check.error}", err=True)
        for link in report.links:
            label = "ok   " if link.status == "ok" else link.status.upper()
            stream_err = link.status != "ok"
            typer.echo(f"{label} {link.message}", err=stream_err)
        if report.first_problem is not None and chain:
            typer.echo(f"first problem: {report.first_problem}", err=True)
    raise typer.Exit(report.exit_code)
