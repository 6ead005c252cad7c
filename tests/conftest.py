"""Shared test helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas"


def validate_against_committed_schema(name: str, payload: Any) -> None:
    """Validate a JSON payload against ``schemas/customer-model-factory-<name>.schema.json``."""
    schema = json.loads((SCHEMAS / f"customer-model-factory-{name}.schema.json").read_text())
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(payload)


@pytest.fixture
def committed_schema():
    """The :func:`validate_against_committed_schema` helper, as a fixture."""
    return validate_against_committed_schema
