"""``cmf report``: render the evidence report of a release gate as one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["report"]


def report(
    ctx: typer.Context,
    release_gate: Annotated[
        Path,
        typer.Argument(help="The release gate manifest.", show_default=False, metavar="FILE"),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            metavar="FILE",
            help="Where to write the HTML page.",
            show_default=False,
        ),
    ],
    search: Annotated[
        list[Path] | None,
        typer.Option(
            "--search", metavar="DIR", help="Where to look chain links up by hash (repeatable)."
        ),
    ] = None,
) -> None:
    """Verify the release gate's whole chain and render it for a compliance reviewer: blockers,
    every hash and link status, metrics by severity and sector, ROC / PR / calibration curves and
    the confusion matrix from the raw results, drift over time from the decision log, domain
    evidence and risks. No script, no external asset.

    Exits 0 when the page is written and the whole chain verifies; 1 when it is written but a
    link is missing or tampered (the page says which); 2 when the release gate is unreadable or
    tampered, or the output would overwrite an input.
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.cli._paths import (  # noqa: PLC0415
        refuse_clobbering,
        refuse_overwrite,
    )
    from customer_model_factory.io import atomic_write_bytes  # noqa: PLC0415
    from customer_model_factory.report import build_evidence_report  # noqa: PLC0415

    context = run_context(ctx)
    refuse_overwrite({"--output": output}, [release_gate])
    refuse_clobbering(output, "evidence-report")
    result = build_evidence_report(release_gate, search=search or (), home=context.home)
    refuse_overwrite({"--output": output}, [Path(path) for path in result.read_paths])
    atomic_write_bytes(output, result.html.encode("utf-8"))
    state = "promotion allowed" if result.promotion_allowed else "promotion blocked"
    chain = "chain verified" if result.chain_verified else "CHAIN NOT VERIFIED"
    typer.echo(f"wrote {output}: {state}, {chain}", err=not result.chain_verified)
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    raise typer.Exit(0 if result.chain_verified else 1)
