"""``cmf pipeline``: the whole factory from one ``factory.toml`` (init, run, status)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
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
    from customer_model_factory.pipeline import PipelineOutcome, PipelineStatus

__all__ = ["PAUSE_ENV", "app", "render_status", "render_summary"]

PAUSE_ENV = "CMF_PIPELINE_PAUSE_AT"
"""Testing aid: ``CMF_PIPELINE_PAUSE_AT=<step>`` makes ``cmf pipeline run`` print
``paused at <step>`` on stderr when that step has started, then wait until it is killed."""

app = command_group(
    "Run the whole factory from one configuration file: write it (init), run every stage from "
    "the traces to the release gate, resumably (run), and show where it stands (status)."
)


_STAGE_COMMANDS = {
    "deploy": ("deploy",),
    "evidence": ("evidence", "build"),
    "runtime": ("runtime", "build"),
    "score": ("score",),
    "monitor": ("monitor",),
    "risk": ("risk",),
    "release": ("release", "assemble"),
}


def _option_help() -> dict[str, dict[str, str]]:
    """step -> option name -> its help, read from the stage commands themselves (typer ships
    its own click, so commands and options are recognised by their attributes)."""
    from typing import Any  # noqa: PLC0415

    from customer_model_factory.cli._app import app as root  # noqa: PLC0415

    found: dict[str, dict[str, str]] = {}
    top: Any = typer.main.get_command(root)
    for step, path in _STAGE_COMMANDS.items():
        command: Any = top
        for part in path:
            command = (getattr(command, "commands", None) or {}).get(part)
        if command is None:
            continue
        found[step] = {
            param.name: " ".join(param.help.split())
            for param in command.params
            if getattr(param, "param_type_name", "") == "option" and param.name and param.help
        }
    return found


@app.command("init")
def init(
    traces: Annotated[
        Path, typer.Option("--traces", "-t", help="The traces (JSONL file or shard directory).")
    ],
    workspace: Annotated[
        Path, typer.Option("--workspace", "-w", help="The workspace TOML.", dir_okay=False)
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The configuration to write.", dir_okay=False),
    ] = Path("factory.toml"),
) -> None:
    """Write a commented factory.toml with a table for every stage (1 to 10).

    Never overwrites an existing file or an input. Exits 0 written, 2 refused.
    """
    from customer_model_factory.pipeline import write_pipeline_config  # noqa: PLC0415

    write_pipeline_config(traces, workspace, output, option_help=_option_help())
    emit(f"wrote {output}: edit it, then run `cmf pipeline run {output}`\n")


def render_summary(outcome: PipelineOutcome) -> str:
    """The final summary table: step, stage, status, output hash, reused or ran, seconds."""
    from customer_model_factory.cli._paths import printable  # noqa: PLC0415

    rows = [("step", "stage", "status", "output hash", "how", "seconds")]
    for report in outcome.steps:
        rows.append(
            (
                report.step,
                report.stage,
                report.status,
                report.output_hash[:23] if report.output_hash else "-",
                report.how,
                f"{report.seconds:.2f}" if report.seconds is not None else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    if outcome.blocked_step is not None:
        blocked = next(r for r in outcome.steps if r.step == outcome.blocked_step)
        lines.append(f"BLOCKED at step {blocked.step}: {printable(blocked.message)}")
    elif outcome.promotion_allowed:
        lines.append(f"READY  promotion allowed; release {outcome.release_hash}")
    else:
        lines.append(f"READY  every configured step finished (record {outcome.record_path})")
    counters = ", ".join(f"{k} {v}" for k, v in sorted(outcome.counters.items()))
    lines.append(f"  counters   {counters}")
    lines.append(f"  pipeline   {outcome.pipeline_id}")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _display(enabled: bool, steps: int) -> Iterator[Callable[[str, str], None] | None]:
    """A progress display on stderr when it is a terminal outside CI, else nothing."""
    if not enabled:
        yield None
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("pipeline", total=steps)

        def update(step: str, event: str) -> None:
            if event == "started":
                progress.update(task, description=f"running {step}")
            else:
                progress.update(task, advance=1, description=f"{step} {event}")

        yield update


def _pause_hook() -> Callable[[str], None] | None:
    target = os.environ.get(PAUSE_ENV, "").strip()
    if not target:
        return None

    def pause(step: str) -> None:
        if step == target:
            sys.stderr.write(f"paused at {step}\n")
            sys.stderr.flush()
            while True:  # until the test kills the process
                time.sleep(3600)

    return pause


@app.command("run")
def run(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Argument(help="The factory.toml to run.", dir_okay=False, show_default=False)
    ],
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Run every stage from the traces to the release gate; reuse steps already done.

    Each step's completion is recorded in the run ledger with the hashes of its inputs and its
    table; on a re-run a step with unchanged inputs is reused once its outputs' digests check
    out (a missing or altered output is made again). Exits 0 when every configured step is
    ready and the release gate allows promotion, 1 when a step is blocked (named), 2 for a bad
    configuration (file, line and key) or an input a step refused.
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.pipeline import STEP_NAMES, run_pipeline  # noqa: PLC0415

    context = run_context(ctx)
    with _display(context.output.progress, len(STEP_NAMES)) as update:
        outcome = run_pipeline(config, context=context, on_step=update, before_step=_pause_hook())
    if output_format is OutputFormat.json:
        emit(to_json_text(outcome.model_dump(mode="json")))
    else:
        emit(render_summary(outcome))
    raise typer.Exit(outcome.exit_code)


def render_status(status: PipelineStatus) -> str:
    """Each step's state as the ledger records it."""
    from customer_model_factory.cli._paths import printable  # noqa: PLC0415

    if not status.known:
        head = f"NOT RUN  pipeline {status.pipeline_id}: the ledger holds no run of this config"
    else:
        head = f"pipeline {status.pipeline_id}"
    lines = [head]
    for row in status.steps:
        hash_text = (row["output_hash"] or "-")[:23]
        message = f"  {printable(row['message'])[:120]}" if row["message"] else ""
        lines.append(
            f"  {row['step']:<10} {row['stage']:>2}  {row['state']:<8} {hash_text}{message}"
        )
    if status.counters:
        lines.append("  counters   " + ", ".join(f"{k} {v}" for k, v in status.counters.items()))
    return "\n".join(lines) + "\n"


@app.command("status")
def status(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="The factory.toml.", dir_okay=False)] = Path(
        "factory.toml"
    ),
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Show each step's state (PENDING, STARTED, DONE, REUSED, BLOCKED, FAILED) from the ledger.

    Exits 0 when every step is done, 1 otherwise, 2 for a bad configuration.
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.pipeline import pipeline_status  # noqa: PLC0415

    report = pipeline_status(config, context=run_context(ctx))
    if output_format is OutputFormat.json:
        emit(to_json_text(report.model_dump(mode="json")))
    else:
        emit(render_status(report))
    done = report.known and all(row["state"] in ("DONE", "REUSED") for row in report.steps)
    raise typer.Exit(0 if done else 1)
