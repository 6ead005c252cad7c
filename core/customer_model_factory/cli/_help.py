"""Plain, consistent help text for every command: click-style placeholders, no doc markup.

Typer renders argument placeholders as ``{traces}`` and types as ``<path>`` or
``<list[Path]>``, and copies docstrings with their reStructuredText roles. The root group calls
:func:`plainify` on the command tree once it is built, so every command, present and future,
shows ``FILE``, ``DIR``, ``TEXT``, ``INTEGER``, ``text|json`` and an argument's own metavar, and
help free of double back-quotes and ``:class:`` roles.
"""

from __future__ import annotations

import re
from typing import Any, Final, get_args

import typer

__all__ = ["plain_text", "plainify"]

_ROLE: Final = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`~?([^`]+)`")


def plain_text(text: str | None) -> str | None:
    """``text`` without reStructuredText markup: roles become their target's last name and
    double back-quotes single ones."""
    if not text:
        return text
    text = _ROLE.sub(lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    return text.replace("``", "`")


_TYPE_WORDS: Final = {
    "int": "INTEGER",
    "float": "NUMBER",
    "str": "TEXT",
    "datetime": "TIME",
    "bool": "BOOLEAN",
}
_PATH_WORDS: Final = {"file": "FILE", "dir": "DIR", "path": "PATH"}


def _is_argument(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "argument"


def _placeholder(param: Any) -> str:
    """The click-style placeholder of a parameter's value: its metavar, else ``FILE``,
    ``DIR``, ``PATH``, ``INTEGER``, ``NUMBER``, ``TEXT`` or its choices as ``a|b``."""
    if getattr(param, "metavar", None):
        return str(param.metavar)
    desc = getattr(param, "type_descriptor", None)
    if desc is None:
        return "VALUE"
    choices = desc.choices
    if choices is not None:
        return "|".join(str(getattr(choice, "value", choice)) for choice in choices)
    if desc.is_path:
        return _PATH_WORDS.get(desc.path_type, "PATH")
    annotation = desc.annotation
    if desc.is_list:
        args = get_args(annotation)
        annotation = args[0] if args else str
    name = getattr(annotation, "__name__", str(annotation))
    return _TYPE_WORDS.get(name, "VALUE")


def _argument_name(param: Any) -> str:
    name = param.metavar or str(param.name or "").upper()
    if param.nargs != 1 and not name.endswith("..."):
        name += "..."
    return name


def _plain_error(param: Any) -> Any:
    original = type(param).process_value

    def process_value(ctx: Any, value: Any) -> Any:
        try:
            return original(param, ctx, value)
        except typer.BadParameter as error:
            error.message = re.sub(r"^(?:Value|Type|Assertion) error, ", "", error.message)
            raise

    return process_value


def _plain_parameter(param: Any) -> None:
    """Bind plain rendering to one parameter (instance attributes shadow typer's methods)."""
    if getattr(param, "_cmf_plain", False):
        return
    values = vars(param)
    if _is_argument(param):
        values["display_type_rich"] = lambda ctx: ""
        values["_rich_display_name"] = lambda: _argument_name(param)
        values["_usage_display_name"] = lambda: (
            _argument_name(param) if param.required else f"[{_argument_name(param)}]"
        )
    else:
        values["display_type_rich"] = lambda ctx: _placeholder(param)
    values["display_type"] = values["display_type_rich"]
    values["process_value"] = _plain_error(param)
    values["_cmf_plain"] = True


def plainify(command: Any) -> None:
    """Give ``command`` and every subcommand plain placeholders and markup-free help."""
    command.help = plain_text(command.help)
    command.short_help = plain_text(command.short_help)
    for param in command.params:
        _plain_parameter(param)
        if getattr(param, "help", None):
            param.help = plain_text(param.help)
    for child in getattr(command, "commands", {}).values():
        plainify(child)
