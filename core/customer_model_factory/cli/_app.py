"""The root typer app, its global options and the error boundary of every command."""

from __future__ import annotations

import os
import traceback
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from customer_model_factory._version import __version__
from customer_model_factory.errors import EXIT_INTERNAL, CMFError

__all__ = ["app", "is_debug"]

_DEBUG_ENV = "CMF_DEBUG"


def is_debug() -> bool:
    """Return whether ``--debug`` (or ``CMF_DEBUG=1``) asked for tracebacks."""
    return os.environ.get(_DEBUG_ENV, "") not in ("", "0")


class _ErrorBoundary(TyperGroup):
    """Turn library errors into one line on stderr and their exit code (tracebacks on --debug)."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise
        except CMFError as error:
            if is_debug():
                traceback.print_exc()
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(error.exit_code) from None
        except Exception as error:
            if is_debug():
                traceback.print_exc()
            typer.echo(
                f"internal error: {type(error).__name__}: {error} (run with --debug for the "
                "traceback)",
                err=True,
            )
            raise typer.Exit(EXIT_INTERNAL) from None


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
def _root(
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
        bool, typer.Option("--debug", help="Show Python tracebacks for errors.")
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
            help="Do not load this plugin (repeatable; adds to CMF_DISABLE_PLUGINS).",
        ),
    ] = None,
) -> None:
    if debug:
        os.environ[_DEBUG_ENV] = "1"
    # Passed on through the environment so the plugin manager, built later by whichever stage
    # needs it, sees them without this callback importing it (keeps `cmf --help` fast).
    for variable, values in (("CMF_PLUGINS", plugin), ("CMF_DISABLE_PLUGINS", disable_plugin)):
        if values:
            os.environ[variable] = ",".join(filter(None, [os.environ.get(variable), *values]))


def _register_groups() -> None:
    # Each group module imports only typer at import time; the library loads inside commands.
    from customer_model_factory.cli import (  # noqa: PLC0415
        boundary,
        dataset,
        manifest,
        plugins,
        schemas,
    )

    app.add_typer(dataset.app, name="dataset")
    app.add_typer(manifest.app, name="manifest")
    app.add_typer(schemas.app, name="schemas")
    app.add_typer(plugins.app, name="plugins")
    app.add_typer(boundary.app, name="boundary")


_register_groups()
