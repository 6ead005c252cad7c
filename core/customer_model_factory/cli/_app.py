"""The root typer app, its global options, the run context and the error boundary of every command.

The root callback builds one :class:`~customer_model_factory.context.RunContext` from the global
options and the operator's ``CMF_*`` switches and keeps it on the click context; commands fetch
it with :func:`run_context`. Nothing here writes the process environment.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from customer_model_factory._version import __version__
from customer_model_factory.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, CMFError

if TYPE_CHECKING:
    from customer_model_factory.context import RunContext

__all__ = ["app", "is_debug", "run_context"]

_DEBUG_ENV = "CMF_DEBUG"


def run_context(ctx: typer.Context) -> RunContext:
    """Return the run context the root callback built for this invocation.

    :param ctx: the command's typer context (commands declare a ``ctx: typer.Context``
        parameter; typer fills it in and shows no option for it).
    """
    root = ctx.find_root()
    if root.obj is None:  # a command invoked without the root callback (tests)
        from customer_model_factory.context import RunContext  # noqa: PLC0415

        root.obj = RunContext.from_environ()
    return root.obj


def is_debug(ctx: typer.Context | None = None) -> bool:
    """Return whether ``--debug`` (or ``CMF_DEBUG=1``) asked for tracebacks."""
    context = ctx.find_root().obj if ctx is not None else None
    if context is not None:
        return bool(context.output.debug)
    return os.environ.get(_DEBUG_ENV, "") not in ("", "0")


_COMMAND_ORDER: tuple[str, ...] = (
    "pipeline",
    "fixture",
    "dataset",
    "train",
    "runs",
    "benchmark",
    "select",
    "publish",
    "deploy",
    "evidence",
    "runtime",
    "score",
    "serve",
    "monitor",
    "risk",
    "release",
    "report",
    "manifest",
    "schemas",
    "plugins",
    "boundary",
)


class _ErrorBoundary(TyperGroup):
    """Turn library errors into one line on stderr and their exit code (tracebacks on --debug).

    Built once the whole command tree exists, it also gives every command plain help
    (:func:`customer_model_factory.cli._help.plainify`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from customer_model_factory.cli._help import plainify  # noqa: PLC0415

        plainify(self)

    def list_commands(self, ctx: Any) -> list[str]:
        """Commands in workflow order (the stages first, then the tools), not alphabetically."""
        names = list(super().list_commands(ctx))
        rank = {name: index for index, name in enumerate(_COMMAND_ORDER)}
        return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise
        except CMFError as error:
            if is_debug(ctx):
                traceback.print_exc()
            # An error that stands for a finding names its code, so scripts can match on it.
            code = getattr(error, "code", None)
            suffix = f" [{code}]" if isinstance(code, str) and code not in str(error) else ""
            typer.echo(f"error: {error}{suffix}", err=True)
            raise typer.Exit(error.exit_code) from None
        except OSError as error:
            # The operating system refused a path the user gave (unwritable directory, a file
            # where a directory is needed, a full disk): bad input, named, not an internal error.
            if is_debug(ctx):
                traceback.print_exc()
            where = f"{error.filename}: " if error.filename else ""
            reason = error.strerror or type(error).__name__
            typer.echo(f"error: {where}{reason}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except Exception as error:
            if is_debug(ctx):
                traceback.print_exc()
            typer.echo(
                f"internal error: {type(error).__name__}: {error} (run with --debug for the "
                "traceback)",
                err=True,
            )
            raise typer.Exit(EXIT_INTERNAL) from None


def progress_wanted() -> bool:
    """Progress bars are drawn on stderr only when it is a terminal, and never in CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"cmf (customer-model-factory) {__version__}")
        raise typer.Exit(0)


app = typer.Typer(
    cls=_ErrorBoundary,
    name="cmf",
    help=(
        "customer-model-factory: turn labelled customer traces into a release-gated, "
        "evidence-backed scorer package.\n\n"
        "Exit codes: 0 ready/clean, 1 blocked (findings, leaks, gate closed), 2 bad input or "
        "usage, 3 internal error."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show Python tracebacks for errors (or CMF_DEBUG=1).")
    ] = False,
    plugin: Annotated[
        list[str] | None,
        typer.Option(
            "--plugin",
            metavar="MODULE",
            help="Load this plugin module or .py file (repeatable; adds to CMF_PLUGINS).",
        ),
    ] = None,
    disable_plugin: Annotated[
        list[str] | None,
        typer.Option(
            "--disable-plugin",
            metavar="NAME",
            help="Do not load this plugin or distribution (repeatable; adds to "
            "CMF_DISABLE_PLUGINS). A disabled plugin is recorded in every report.",
        ),
    ] = None,
    sector_owner: Annotated[
        list[str] | None,
        typer.Option(
            "--sector-owner",
            metavar="SECTOR=DIST",
            help="Which distribution owns a sector two packs claim (repeatable; adds to "
            "CMF_SECTOR_OWNERS).",
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            metavar="DIR",
            help="The factory home: run ledger and artefact store (default .cmf, or CMF_HOME).",
            file_okay=False,
        ),
    ] = None,
) -> None:
    from customer_model_factory.context import OutputSettings, RunContext  # noqa: PLC0415
    from customer_model_factory.plugins.switches import parse_sector_owners  # noqa: PLC0415

    output = OutputSettings(
        debug=debug or os.environ.get(_DEBUG_ENV, "") not in ("", "0"),
        progress=progress_wanted(),
    )
    ctx.obj = RunContext.from_environ(
        extra_plugins=tuple(plugin or ()),
        disabled_plugins=tuple(disable_plugin or ()),
        sector_owners=parse_sector_owners(sector_owner or (), source="--sector-owner"),
        home=home,
        output=output,
    )


def _register_groups() -> None:
    # Each group module imports only typer at import time; the library loads inside commands.
    from customer_model_factory.cli import benchmark as benchmark_cli  # noqa: PLC0415
    from customer_model_factory.cli import (  # noqa: PLC0415
        boundary,
        dataset,
        manifest,
        plugins,
        runs,
        schemas,
        train,
    )
    from customer_model_factory.cli import deploy as deploy_cli  # noqa: PLC0415
    from customer_model_factory.cli import evidence as evidence_cli  # noqa: PLC0415
    from customer_model_factory.cli import fixture as fixture_cli  # noqa: PLC0415
    from customer_model_factory.cli import monitor as monitor_cli  # noqa: PLC0415
    from customer_model_factory.cli import pipeline as pipeline_cli  # noqa: PLC0415
    from customer_model_factory.cli import publish as publish_cli  # noqa: PLC0415
    from customer_model_factory.cli import release as release_cli  # noqa: PLC0415
    from customer_model_factory.cli import report as report_cli  # noqa: PLC0415
    from customer_model_factory.cli import risk as risk_cli  # noqa: PLC0415
    from customer_model_factory.cli import runtime as runtime_cli  # noqa: PLC0415
    from customer_model_factory.cli import score as score_cli  # noqa: PLC0415
    from customer_model_factory.cli import select as select_cli  # noqa: PLC0415

    app.add_typer(dataset.app, name="dataset")
    app.add_typer(train.app, name="train")
    app.add_typer(runs.app, name="runs")
    app.add_typer(manifest.app, name="manifest")
    app.add_typer(schemas.app, name="schemas")
    app.add_typer(plugins.app, name="plugins")
    app.add_typer(boundary.app, name="boundary")
    app.add_typer(benchmark_cli.app, name="benchmark")
    app.command("select")(select_cli.select)
    app.command("publish")(publish_cli.publish)
    app.add_typer(pipeline_cli.app, name="pipeline")
    app.add_typer(fixture_cli.app, name="fixture")
    app.command("deploy")(deploy_cli.deploy)
    app.add_typer(evidence_cli.app, name="evidence")
    app.add_typer(runtime_cli.app, name="runtime")
    app.command("score")(score_cli.score)
    app.command("serve")(score_cli.serve)
    app.command("monitor")(monitor_cli.monitor)
    app.command("risk")(risk_cli.risk)
    app.add_typer(release_cli.app, name="release")
    app.command("report")(report_cli.report)


_register_groups()
