"""mkdocs hooks: fill the generated reference pages from the code, so the docs cannot drift.

A page asks for generated content with an HTML comment on a line of its own:

- ``<!-- cmf:cli-reference -->``: every command of the ``cmf`` typer app (usage, help, options);
- ``<!-- cmf:finding-codes -->``: every registered finding code and its meaning, by stage;
- ``<!-- cmf:schemas -->``: every published JSON Schema, with its top-level fields;
- ``<!-- cmf:schema-fields NAME -->``: the fields of one published schema;
- ``<!-- cmf:changelog -->``: ``CHANGELOG.md``.

An unknown marker fails the build (mkdocs runs with ``strict: true``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer
from typer.cli import get_docs_for_click

from customer_model_factory.catalog import (
    SCHEMA_FILE_PREFIX,
    SCHEMA_MODELS,
    json_schema_of,
    load_model,
)
from customer_model_factory.cli._app import app
from customer_model_factory.findings import FINDING_CODES, STAGE_PREFIXES

ROOT = Path(__file__).resolve().parents[1]
_MARKER = re.compile(r"^<!-- cmf:([a-z-]+)(?: ([a-z0-9-]+))? -->$", re.MULTILINE)


def cli_reference() -> str:
    """Markdown of every ``cmf`` command, generated from the typer app."""
    command = typer.main.get_command(app)
    ctx = typer.Context(command, info_name="cmf")
    text = get_docs_for_click(obj=command, ctx=ctx, name="cmf", title="Command-line reference")
    # The page has its own title; typer's starts at level 1.
    return text.split("\n", 1)[1] if text.startswith("# ") else text


def finding_codes() -> str:
    """A table of every registered finding code, grouped by stage prefix."""
    lines: list[str] = []
    for prefix in STAGE_PREFIXES:
        codes = sorted(code for code in FINDING_CODES if code.startswith(prefix))
        if not codes:
            continue
        lines += [f"## `{prefix}*`", "", "| Code | Meaning |", "| --- | --- |"]
        lines += [f"| `{code}` | {_cell(FINDING_CODES[code])} |" for code in codes]
        lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _type_of(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in prop:
        return " or ".join(_type_of(option) for option in prop["anyOf"])
    if "enum" in prop:
        return " \\| ".join(f"`{value}`" for value in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    kind = prop.get("type", "any")
    if kind == "array" and isinstance(prop.get("items"), dict):
        return f"list of {_type_of(prop['items'])}"
    return str(kind)


def schema_fields(name: str) -> str:
    """A table of the top-level fields of the schema published under ``name``."""
    schema = json_schema_of(name)
    required = set(schema.get("required", ()))
    lines = [
        f"Schema file: `schemas/{SCHEMA_FILE_PREFIX}{name}.schema.json`.",
        "",
        "| Field | Type | Required | Description |",
        "| --- | --- | --- | --- |",
    ]
    for field, prop in schema.get("properties", {}).items():
        description = _cell(prop.get("description", ""))
        mark = "yes" if field in required else ""
        lines.append(f"| `{field}` | {_cell(_type_of(prop))} | {mark} | {description} |")
    return "\n".join(lines) + "\n"


def schemas() -> str:
    """One section per published schema."""
    parts: list[str] = []
    for name in SCHEMA_MODELS:
        doc = (load_model(name).__doc__ or "").strip().split("\n\n", 1)[0]
        parts += [f"## `{name}`", "", " ".join(doc.split()), "", schema_fields(name)]
    return "\n".join(parts)


def changelog() -> str:
    """``CHANGELOG.md`` without its own title."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    return text.split("\n", 1)[1] if text.startswith("# ") else text


def render(markdown: str) -> str:
    """Replace every marker in ``markdown`` by its generated content."""

    def replace(match: re.Match[str]) -> str:
        what, argument = match.group(1), match.group(2)
        if what == "cli-reference":
            return cli_reference()
        if what == "finding-codes":
            return finding_codes()
        if what == "schemas":
            return schemas()
        if what == "schema-fields" and argument:
            return schema_fields(argument)
        if what == "changelog":
            return changelog()
        raise ValueError(f"unknown docs marker {match.group(0)!r}")

    return _MARKER.sub(replace, markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """mkdocs hook: fill the markers of a page."""
    return render(markdown)
