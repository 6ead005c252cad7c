"""Options and rendering helpers shared by the command groups."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["FormatOption", "OutputFormat", "OutputOption", "command_group", "emit", "to_json_text"]


class OutputFormat(enum.StrEnum):
    """How a report is rendered."""

    text = "text"
    json = "json"


FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="Render the report as text or JSON.")
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o", help="Write the report to this file (atomically).", dir_okay=False
    ),
]


def command_group(help_text: str) -> typer.Typer:
    """Return the typer app of a command group, with the settings every group shares.

    Help is rendered without rich markup: rich's help renderer alone costs ~90 ms of start-up.
    """
    return typer.Typer(
        help=help_text,
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


def to_json_text(value: Any) -> str:
    """Render a JSON value with sorted keys and two-space indent.

    Characters JSON leaves raw but a terminal acts on (DEL, C1 controls, line and paragraph
    separators, bidirectional controls) are written as ``\\uXXXX`` escapes: the same JSON value,
    and nothing from the data can move the cursor or forge a line.
    """
    import re  # noqa: PLC0415

    import orjson  # noqa: PLC0415

    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    text = re.sub(
        "[\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]",
        lambda match: f"\\u{ord(match.group()):04x}",
        text,
    )
    return text + "\n"


def emit(text: str, output: Path | None = None) -> None:
    """Print ``text`` to stdout, or write it atomically to ``output``."""
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    from customer_model_factory.io import atomic_write_bytes  # noqa: PLC0415

    atomic_write_bytes(output, text.encode("utf-8"))
