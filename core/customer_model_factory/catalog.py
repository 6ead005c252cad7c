"""The catalog of every published model: stage manifests (keyed by their ``kind``) and input
contracts, by schema name. For a manifest the schema name *is* its kind.

Schemas are exported to ``schemas/customer-model-factory-<name>.schema.json`` from this catalog,
and ``cmf manifest verify`` imports the manifest classes through it. Entries are import paths so
nothing is imported until a schema or class is needed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel

from customer_model_factory.canonical import canonical_json
from customer_model_factory.manifest import Manifest, ManifestCheck, verify_manifest_file

if TYPE_CHECKING:
    from customer_model_factory.chain import ChainReport

__all__ = [
    "MANIFEST_KINDS",
    "SCHEMA_FILE_PREFIX",
    "SCHEMA_MODELS",
    "check_schemas",
    "export_schemas",
    "json_schema_of",
    "load_manifest_classes",
    "load_model",
    "render_schema",
    "verify_chain",
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
    "training-manifest": "customer_model_factory.stages.training:CustomerTrainingManifest",
    "sector-metadata": "customer_model_factory.stages.sector:SectorMetadata",
    "benchmark-result": "customer_model_factory.stages.benchmark.models:CustomerBenchmarkResult",
    "selection-report": (
        "customer_model_factory.stages.selection.models:CustomerModelSelectionReport"
    ),
    # The reference's file name for the selection report's schema (the same model).
    "selection": "customer_model_factory.stages.selection.models:CustomerModelSelectionReport",
    "model-bundle": "customer_model_factory.stages.selection.models:ModelBundle",
    "deployment": "customer_model_factory.stages.deployment.models:CustomerDeploymentManifest",
    "sector-evidence-mapping": "customer_model_factory.plugin_api.contracts:SectorEvidenceMapping",
    "evidence-pack": "customer_model_factory.stages.evidence.models:CustomerEvidencePackManifest",
    "runtime-package": "customer_model_factory.stages.runtime.models:CustomerRuntimePackage",
    "decision-record": "customer_model_factory.stages.runtime.models:DecisionRecord",
    "monitoring": "customer_model_factory.stages.monitoring.models:CustomerMonitoringManifest",
    "monitoring-review": "customer_model_factory.stages.monitoring.models:ReviewRecord",
    "monitoring-incident": "customer_model_factory.stages.monitoring.models:IncidentRecord",
    "risk-register": "customer_model_factory.stages.risk.models:CustomerRiskRegister",
    "enterprise-readiness": "customer_model_factory.stages.release.models:EnterpriseReadiness",
    "release-domain-record": "customer_model_factory.stages.release.models:DomainEvidenceRecord",
    "release-gate": "customer_model_factory.stages.release.models:CustomerReleaseGateManifest",
    "boundary-hashed-denylist": "customer_model_factory.boundary.rules:HashedDenylist",
    "boundary-report": "customer_model_factory.boundary.scanner:BoundaryReport",
}
"""Schema name → ``"module:Class"`` of every published model."""

MANIFEST_KINDS: Final[tuple[str, ...]] = (
    "dataset-report",
    "training-manifest",
    "sector-evidence-mapping",
    "benchmark-result",
    "selection-report",
    "model-bundle",
    "deployment",
    "evidence-pack",
    "runtime-package",
    "monitoring",
    "risk-register",
    "release-gate",
)
"""The schema names that are manifest kinds (``kind`` = schema name), in workflow order."""


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


def load_manifest_classes() -> dict[str, type[Manifest]]:
    """Import every manifest class of the catalog; return them by kind."""
    classes: dict[str, type[Manifest]] = {}
    for kind in MANIFEST_KINDS:
        model = load_model(kind)
        if not (issubclass(model, Manifest) and kind == model.KIND):
            raise TypeError(f"{SCHEMA_MODELS[kind]} is not the manifest of kind {kind!r}")
        classes[kind] = model
    return classes


def verify_manifest_files(paths: Iterable[str | Path]) -> list[ManifestCheck]:
    """Verify manifest files, each by its ``kind``, after importing every manifest class."""
    load_manifest_classes()
    return [verify_manifest_file(path) for path in paths]


def verify_chain(
    paths: Iterable[str | Path],
    *,
    follow: bool = True,
    search: Iterable[str | Path] = (),
    home: str | Path | None = None,
) -> ChainReport:
    """Verify manifests and (with ``follow``) every link of their chains.

    The one library call behind ``cmf manifest verify [--chain]``; see
    :func:`customer_model_factory.chain.verify_manifest_chain`.
    """
    from customer_model_factory.chain import verify_manifest_chain  # noqa: PLC0415

    load_manifest_classes()
    return verify_manifest_chain(paths, follow=follow, search=search, home=home)
