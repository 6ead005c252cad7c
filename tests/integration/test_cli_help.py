"""Every command's help is plain and consistent (walking the whole command tree, so commands
added later are held to the same rules)."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from customer_model_factory.cli._app import app
from customer_model_factory.cli._help import plain_text

runner = CliRunner()


def _paths(command, prefix=()):
    yield prefix, command
    for name, child in sorted(getattr(command, "commands", {}).items()):
        yield from _paths(child, (*prefix, name))


COMMANDS = [path for path, _ in _paths(typer.main.get_command(app))]
_BAD = re.compile(r"\{[a-z_]+\}|<(?:path|str|int|float|file|dir)\b|list\[|``|:(?:class|func|meth):")


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "cmf")
def test_help_has_plain_placeholders_and_no_markup(path) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert not _BAD.findall(result.output), result.output


def test_every_output_option_is_spelled_the_same() -> None:
    for path, command in _paths(typer.main.get_command(app)):
        for param in command.params:
            if param.name == "output":
                assert sorted(param.opts) == ["--output", "-o"], path


def test_a_bad_format_value_names_the_choices_without_internal_prefixes() -> None:
    result = runner.invoke(app, ["dataset", "validate", "x.jsonl", "--format", "xml"])
    assert result.exit_code == 2
    assert "'xml' is not one of 'text', 'json'" in result.output
    assert "Value error" not in result.output


def test_plain_text_drops_roles_and_double_backquotes() -> None:
    assert plain_text("Use :func:`customer_model_factory.io.same_file` on ``kind``.") == (
        "Use `same_file` on `kind`."
    )
    assert plain_text(None) is None
