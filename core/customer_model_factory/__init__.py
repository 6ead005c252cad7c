"""customer-model-factory: release-gated, evidence-backed scorer packages from customer traces.

The public API is listed in ``__all__``. Names are imported on first use (PEP 562), so importing
the package, and running ``cmf --help``, stays fast.

A sector pack needs only::

    from customer_model_factory import hookimpl, SectorPack, Finding
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from customer_model_factory._version import __version__

if TYPE_CHECKING:
    from customer_model_factory.canonical import canonical_json, content_hash, sha256_file
    from customer_model_factory.contributions import (
        BenchmarkPackage,
        MetricConstraint,
        ObjectiveProfile,
        ProprietaryIdentifiers,
        RetrievalSchema,
        SectorPack,
        TrainingLaneSpec,
    )
    from customer_model_factory.errors import (
        BlockedError,
        CanonicalizationError,
        CMFError,
        ConfigError,
        DataFormatError,
        InputError,
        ManifestIntegrityError,
        PluginError,
        SchemaVersionError,
    )
    from customer_model_factory.findings import FINDING_CODES, Finding
    from customer_model_factory.hookspecs import CMF_PLUGIN_API, hookimpl
    from customer_model_factory.io import JsonlReader, atomic_write_bytes
    from customer_model_factory.manifest import Manifest, verify_manifest_file
    from customer_model_factory.plugins import call_isolated, get_plugin_manager
    from customer_model_factory.sector import (
        SectorEvidenceMapping,
        SectorMetadata,
        build_sector_evidence_mapping,
        validate_sector_trace_metadata,
    )
    from customer_model_factory.stages.dataset import (
        CustomerDatasetValidationReport,
        CustomerWorkspace,
        validate_customer_trace_dataset,
    )

__all__ = [
    "CMF_PLUGIN_API",
    "FINDING_CODES",
    "BenchmarkPackage",
    "BlockedError",
    "CMFError",
    "CanonicalizationError",
    "ConfigError",
    "CustomerDatasetValidationReport",
    "CustomerWorkspace",
    "DataFormatError",
    "Finding",
    "InputError",
    "JsonlReader",
    "Manifest",
    "ManifestIntegrityError",
    "MetricConstraint",
    "ObjectiveProfile",
    "PluginError",
    "ProprietaryIdentifiers",
    "RetrievalSchema",
    "SchemaVersionError",
    "SectorEvidenceMapping",
    "SectorMetadata",
    "SectorPack",
    "TrainingLaneSpec",
    "__version__",
    "atomic_write_bytes",
    "build_sector_evidence_mapping",
    "call_isolated",
    "canonical_json",
    "content_hash",
    "get_plugin_manager",
    "hookimpl",
    "sha256_file",
    "validate_customer_trace_dataset",
    "validate_sector_trace_metadata",
    "verify_manifest_file",
]

_LAZY: dict[str, str] = {
    "CMF_PLUGIN_API": "hookspecs",
    "FINDING_CODES": "findings",
    "BenchmarkPackage": "contributions",
    "BlockedError": "errors",
    "CMFError": "errors",
    "CanonicalizationError": "errors",
    "ConfigError": "errors",
    "CustomerDatasetValidationReport": "stages.dataset",
    "CustomerWorkspace": "stages.dataset",
    "DataFormatError": "errors",
    "Finding": "findings",
    "InputError": "errors",
    "JsonlReader": "io",
    "Manifest": "manifest",
    "ManifestIntegrityError": "errors",
    "MetricConstraint": "contributions",
    "ObjectiveProfile": "contributions",
    "PluginError": "errors",
    "ProprietaryIdentifiers": "contributions",
    "RetrievalSchema": "contributions",
    "SchemaVersionError": "errors",
    "SectorEvidenceMapping": "sector",
    "SectorMetadata": "sector",
    "SectorPack": "contributions",
    "TrainingLaneSpec": "contributions",
    "atomic_write_bytes": "io",
    "build_sector_evidence_mapping": "sector",
    "call_isolated": "plugins",
    "canonical_json": "canonical",
    "content_hash": "canonical",
    "get_plugin_manager": "plugins",
    "hookimpl": "hookspecs",
    "sha256_file": "canonical",
    "validate_customer_trace_dataset": "stages.dataset",
    "validate_sector_trace_metadata": "sector",
    "verify_manifest_file": "manifest",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'customer_model_factory' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"customer_model_factory.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
