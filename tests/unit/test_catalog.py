"""The catalog of published schemas: committed files are fresh and valid Draft 2020-12."""

from __future__ import annotations

import json

import jsonschema
import pytest

from customer_model_factory.catalog import (
    SCHEMA_MODELS,
    check_schemas,
    json_schema_of,
    load_model,
    render_schema,
)
from customer_model_factory.manifest import Manifest

from ..conftest import SCHEMAS


def test_committed_schemas_are_fresh():
    problems = check_schemas(SCHEMAS)
    assert problems == [], (
        "schemas/ is out of date; regenerate it with `cmf schemas export`:\n" + "\n".join(problems)
    )


@pytest.mark.parametrize("name", sorted(SCHEMA_MODELS))
def test_every_schema_is_valid_draft_2020_12(name):
    schema = json_schema_of(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"].endswith(f"customer-model-factory-{name}.schema.json")
    assert json.loads(render_schema(name)) == schema


@pytest.mark.parametrize("name", sorted(SCHEMA_MODELS))
def test_every_manifest_schema_names_its_hash_field(name):
    model = load_model(name)
    if issubclass(model, Manifest):
        assert model.HASH_FIELD in json_schema_of(name)["properties"]
        assert model.HASH_FIELD.endswith("_hash")
