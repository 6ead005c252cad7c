"""The mkdocs hooks that generate the reference pages from the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from customer_model_factory.catalog import SCHEMA_MODELS
from customer_model_factory.findings import FINDING_CODES

HOOKS_FILE = Path(__file__).resolve().parents[2] / "tools" / "mkdocs_hooks.py"


@pytest.fixture(scope="module")
def hooks():
    spec = importlib.util.spec_from_file_location("cmf_mkdocs_hooks", HOOKS_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_registered_finding_code_is_on_the_reference_page(hooks) -> None:
    page = hooks.render("# Codes\n\n<!-- cmf:finding-codes -->\n")
    missing = [code for code in FINDING_CODES if f"`{code}`" not in page]
    assert missing == []


def test_the_cli_reference_lists_every_command_group(hooks) -> None:
    page = hooks.render("<!-- cmf:cli-reference -->")
    for group in ("dataset", "train", "benchmark", "select", "manifest", "boundary", "plugins"):
        assert f"cmf {group}" in page


def test_every_published_schema_gets_a_section(hooks) -> None:
    page = hooks.render("<!-- cmf:schemas -->")
    assert [name for name in SCHEMA_MODELS if f"## `{name}`" not in page] == []


def test_schema_fields_name_required_fields(hooks) -> None:
    table = hooks.render("<!-- cmf:schema-fields trace -->")
    assert "| `trace_id` |" in table and "| yes |" in table


def test_an_unknown_marker_fails_the_build(hooks) -> None:
    with pytest.raises(ValueError, match="unknown docs marker"):
        hooks.render("<!-- cmf:no-such-thing -->")


def test_text_without_markers_is_unchanged(hooks) -> None:
    text = "# Title\n\n<!-- an ordinary comment -->\n"
    assert hooks.render(text) == text
