"""``cmf dataset``: validate a customer trace dataset against its workspace (stage 1)."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
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
    from customer_model_factory.stages.dataset import CustomerDatasetValidationReport

__all__ = ["app", "render_text"]

app = command_group("Validate customer trace datasets (stage 1: the dataset contract).")

_DEFAULT_CAP = 5


def render_text(report: CustomerDatasetValidationReport, *, per_code: int = _DEFAULT_CAP) -> str:
    """Render a report for a terminal: a summary, then at most ``per_code`` findings per code
    with a count of the rest (the JSON form is always complete)."""
    from customer_model_factory.stages.dataset.rules import printable as safe  # noqa: PLC0415

    verdict = "READY" if report.ready else "BLOCKED"
    counts = report.finding_counts
    lines = [
        f"{verdict}  {safe(report.source)}: {report.row_count} rows, "
        f"{counts.get('error', 0)} errors, {counts.get('warning', 0)} warnings",
        f"  workspace  {safe(report.customer_id)}/{safe(report.workspace_id)}/"
        f"{safe(report.tenant_id)}",
        f"  dataset    {report.dataset_hash}",
        f"  report     {report.report_hash}",
        "  splits     " + _pairs(report.split_counts),
        "  labels     " + _pairs(report.label_class_counts),
        "  severity   " + _pairs(report.severity_counts) + f" (high risk {report.high_risk_count})",
    ]
    if report.sector_counts:
        lines.append("  sectors    " + _pairs(report.sector_counts))
    if report.redacted_copy is not None:
        copy = report.redacted_copy
        lines.append(
            f"  redacted   {safe(copy.path)}: {copy.rows_redacted} rows, {copy.redactions} spans "
            f"({copy.sha256})"
        )
    shown: Counter[str] = Counter()
    total = Counter(finding.code for finding in report.findings)
    for finding in report.findings:
        shown[finding.code] += 1
        if shown[finding.code] > per_code:
            continue
        # Every value that came from the data is escaped: a control character in a trace id
        # could otherwise forge a line of this output.
        where = f"{safe(finding.location)}: " if finding.location else ""
        trace = f" [{safe(finding.trace_id)}]" if finding.trace_id else ""
        field = f" ({safe(finding.field)})" if finding.field else ""
        message = safe(finding.message)
        lines.append(f"{where}{finding.severity} {finding.code}{trace}{field}: {message}")
    for code, count in sorted(total.items()):
        if count > per_code:
            lines.append(f"... and {count - per_code} more {code} (see --format json)")
    return "\n".join(lines) + "\n"


def _pairs(counts: dict[str, int]) -> str:
    from customer_model_factory.stages.dataset.rules import printable  # noqa: PLC0415

    return ", ".join(f"{printable(key)} {value}" for key, value in counts.items()) or "-"


@contextlib.contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal outside CI, else nothing."""
    if not enabled:
        yield None
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn  # noqa: PLC0415

    # No auto-refresh: its thread would keep the validator from forking worker processes.
    with Progress(
        "validating",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        auto_refresh=False,
    ) as progress:
        task = progress.add_task("validate", total=None)
        last = [0.0]

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)
            now = time.monotonic()
            if now - last[0] > 0.1 or done >= total:
                last[0] = now
                progress.refresh()

        yield update


@app.command("validate")
def validate(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    traces: Annotated[
        Path,
        typer.Argument(help="A .jsonl file or a directory of *.jsonl shards.", show_default=False),
    ],
    workspace: Annotated[
        Path,
        typer.Option(
            "--workspace",
            "-w",
            help="Workspace TOML (a [workspace] table or the whole file).",
            show_default=False,
        ),
    ],
    vertical: Annotated[
        str | None,
        typer.Option("--vertical", help="Validate every row against this sector."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the report manifest (JSON) here, atomically.",
            dir_okay=False,
        ),
    ] = None,
    redacted_copy: Annotated[
        Path | None,
        typer.Option(
            "--redacted-copy",
            help="Write a copy with detected secrets/PII replaced by [REDACTED:<kind>].",
            dir_okay=False,
        ),
    ] = None,
    output_format: FormatOption = OutputFormat.text,
    per_code: Annotated[
        int,
        typer.Option("--max-per-code", min=1, help="Findings shown per code in text output."),
    ] = _DEFAULT_CAP,
    max_depth: Annotated[
        int,
        typer.Option(
            "--max-depth",
            min=1,
            max=512,
            help="Deepest nesting of arrays and objects a line may hold.",
        ),
    ] = 64,
    follow_symlinks: Annotated[
        bool,
        typer.Option(
            "--follow-symlinks",
            help="Read shards that link to files outside the shard directory.",
        ),
    ] = False,
) -> None:
    """Check a trace dataset against its workspace contract.

    Exits 0 when the dataset is ready, 1 when findings block it (bad rows, leakage, secrets,
    a plugin that failed to load or two packs claiming one sector, ...), 2 for bad input
    (missing or empty file, directory without shards, bad workspace).
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.stages.dataset.validate import (  # noqa: PLC0415
        validate_dataset_to_files,
    )

    context = run_context(ctx)
    with _progress_bar(context.output.progress) as progress:
        report = validate_dataset_to_files(
            traces,
            workspace,
            output=output,
            redacted_copy=redacted_copy,
            vertical=vertical,
            progress=progress,
            max_depth=max_depth,
            follow_symlinks=follow_symlinks,
            context=context,
        )
    if output_format is OutputFormat.json:
        emit(to_json_text(report.payload()))
    else:
        emit(render_text(report, per_code=per_code))
    raise typer.Exit(0 if report.ready else 1)
