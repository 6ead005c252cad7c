"""The catalog of every published model: stage manifests and input contracts, by schema name.

Schemas are exported to ``schemas/customer-model-factory-<name>.schema.json`` from this catalog,
and ``cmf manifest verify`` imports the manifest classes through it. Entries are import paths so
nothing is imported until a schema or class is needed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel

from customer_model_factory.canonical import canonical_json
from customer_model_factory.manifest import ManifestCheck, verify_manifest_file

__all__ = [
    "SCHEMA_FILE_PREFIX",
    "SCHEMA_MODELS",
    "check_schemas",
    "export_schemas",
    "json_schema_of",
    "load_model",
    "render_schema",
    "verify_manifest_files",
]

SCHEMA_FILE_PREFIX: Final = "customer-model-factory-"
_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
_SCHEMA_BASE_URI: Final = "https://customer-model-factory.dev/schemas/"

SCHEMA_MODELS: Final[dict[str, str]] = {
    # name -> "module:Class", in workflow order.
    "workspace": "customer_model_factory.stages.dataset:CustomerWorkspace",
    "trace": "customer_model_factory.stages.dataset:CustomerTrace",
    "dataset-report": "customer_model_factory.stages.dataset:CustomerDatasetValidationReport",
    "sector-metadata": "customer_model_factory.sector:SectorMetadata",
    "sector-evidence-mapping": "customer_model_factory.sector:SectorEvidenceMapping",
    "boundary-hashed-denylist": "customer_model_factory.boundary.rules:HashedDenylist",
    "boundary-report": "customer_model_factory.boundary.scanner:BoundaryReport",
}
"""Schema name → ``"module:Class"`` of every published model."""


def load_model(name: str) -> type[BaseModel]:
    """Import and return the model published under schema ``name``."""
    module_name, _, class_name = SCHEMA_MODELS[name].partition(":")
    model = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{SCHEMA_MODELS[name]} is not a pydantic model")
    return model


def json_schema_of(name: str) -> dict[str, Any]:
    """Return the JSON Schema (Draft 2020-12) of the model published under ``name``."""
    schema = load_model(name).model_json_schema(mode="serialization")
    return {
        "$schema": _SCHEMA_DIALECT,
        "$id": f"{_SCHEMA_BASE_URI}{SCHEMA_FILE_PREFIX}{name}.schema.json",
        **schema,
    }


def render_schema(name: str) -> bytes:
    """Return the committed file form of a schema: sorted keys, two-space indent, final newline."""
    import orjson  # noqa: PLC0415

    schema = json_schema_of(name)
    canonical_json(schema)  # rejects anything without a JSON form
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _schema_path(directory: Path, name: str) -> Path:
    return directory / f"{SCHEMA_FILE_PREFIX}{name}.schema.json"


def export_schemas(directory: str | Path) -> list[Path]:
    """Write every schema of the catalog into ``directory`` (atomically) and return the paths.

    Files of this catalog's prefix that no model publishes any more are removed.
    """
    from customer_model_factory.io import atomic_write_bytes  # noqa: PLC0415

    root = Path(directory)
    written = [
        atomic_write_bytes(_schema_path(root, name), render_schema(name)) for name in SCHEMA_MODELS
    ]
    expected = set(written)
    for stale in root.glob(f"{SCHEMA_FILE_PREFIX}*.schema.json"):
        if stale not in expected:
            stale.unlink()
    return written


def check_schemas(directory: str | Path) -> list[str]:
    """Compare committed schemas with fresh ones; return one message per stale, missing or extra
    file (empty when all are fresh)."""
    root = Path(directory)
    problems: list[str] = []
    expected: set[Path] = set()
    for name in SCHEMA_MODELS:
        path = _schema_path(root, name)
        expected.add(path)
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_bytes() != render_schema(name):
            problems.append(f"{path}: stale (differs from the {SCHEMA_MODELS[name]} model)")
    problems.extend(
        f"{extra}: no model publishes this schema"
        for extra in sorted(root.glob(f"{SCHEMA_FILE_PREFIX}*.schema.json"))
        if extra not in expected
    )
    return problems


def verify_manifest_files(paths: Iterable[str | Path]) -> list[ManifestCheck]:
    """Verify manifest files after importing every manifest class of the catalog."""
    for name in SCHEMA_MODELS:
        load_model(name)
    return [verify_manifest_file(path) for path in paths]
