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
    from customer_model_factory.catalog import verify_chain
    from customer_model_factory.context import RunContext
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
    from customer_model_factory.io import JsonlReader, atomic_write_bytes
    from customer_model_factory.manifest import (
        BoundManifest,
        InputLink,
        Manifest,
        verify_manifest_file,
    )
    from customer_model_factory.plugin_api import (
        CMF_PLUGIN_API,
        ArtefactRef,
        BenchmarkPackage,
        EvidenceMappingSpec,
        MetricConstraint,
        ObjectiveProfile,
        ProprietaryIdentifiers,
        ReleaseCheckInput,
        ReleaseDomain,
        RetrievalSchema,
        SectorEvidenceMapping,
        SectorOwner,
        SectorPack,
        TrainedScorer,
        TrainingExample,
        TrainingLane,
        TrainingLaneSpec,
        build_sector_evidence_mapping,
        hookimpl,
    )
    from customer_model_factory.plugins import (
        PluginSwitches,
        call_isolated,
        create_plugin_manager,
    )
    from customer_model_factory.stages.dataset import (
        CustomerDatasetValidationReport,
        CustomerWorkspace,
        validate_customer_trace_dataset,
    )
    from customer_model_factory.stages.sector import SectorMetadata, validate_sector_trace_metadata

__all__ = [
    "CMF_PLUGIN_API",
    "FINDING_CODES",
    "ArtefactRef",
    "BenchmarkPackage",
    "BlockedError",
    "BoundManifest",
    "CMFError",
    "CanonicalizationError",
    "ConfigError",
    "CustomerDatasetValidationReport",
    "CustomerWorkspace",
    "DataFormatError",
    "EvidenceMappingSpec",
    "Finding",
    "InputError",
    "InputLink",
    "JsonlReader",
    "Manifest",
    "ManifestIntegrityError",
    "MetricConstraint",
    "ObjectiveProfile",
    "PluginError",
    "PluginSwitches",
    "ProprietaryIdentifiers",
    "ReleaseCheckInput",
    "ReleaseDomain",
    "RetrievalSchema",
    "RunContext",
    "SchemaVersionError",
    "SectorEvidenceMapping",
    "SectorMetadata",
    "SectorOwner",
    "SectorPack",
    "TrainedScorer",
    "TrainingExample",
    "TrainingLane",
    "TrainingLaneSpec",
    "__version__",
    "atomic_write_bytes",
    "build_sector_evidence_mapping",
    "call_isolated",
    "canonical_json",
    "content_hash",
    "create_plugin_manager",
    "hookimpl",
    "sha256_file",
    "validate_customer_trace_dataset",
    "validate_sector_trace_metadata",
    "verify_chain",
    "verify_manifest_file",
]

_LAZY: dict[str, str] = {
    "CMF_PLUGIN_API": "plugin_api",
    "FINDING_CODES": "findings",
    "ArtefactRef": "plugin_api",
    "BenchmarkPackage": "plugin_api",
    "BlockedError": "errors",
    "BoundManifest": "manifest",
    "CMFError": "errors",
    "CanonicalizationError": "errors",
    "ConfigError": "errors",
    "CustomerDatasetValidationReport": "stages.dataset",
    "CustomerWorkspace": "stages.dataset",
    "DataFormatError": "errors",
    "EvidenceMappingSpec": "plugin_api",
    "Finding": "findings",
    "InputError": "errors",
    "InputLink": "manifest",
    "JsonlReader": "io",
    "Manifest": "manifest",
    "ManifestIntegrityError": "errors",
    "MetricConstraint": "plugin_api",
    "ObjectiveProfile": "plugin_api",
    "PluginError": "errors",
    "PluginSwitches": "plugins",
    "ProprietaryIdentifiers": "plugin_api",
    "ReleaseCheckInput": "plugin_api",
    "ReleaseDomain": "plugin_api",
    "RetrievalSchema": "plugin_api",
    "RunContext": "context",
    "SchemaVersionError": "errors",
    "SectorEvidenceMapping": "plugin_api",
    "SectorMetadata": "stages.sector",
    "SectorOwner": "plugin_api",
    "SectorPack": "plugin_api",
    "TrainedScorer": "plugin_api",
    "TrainingExample": "plugin_api",
    "TrainingLane": "plugin_api",
    "TrainingLaneSpec": "plugin_api",
    "atomic_write_bytes": "io",
    "build_sector_evidence_mapping": "plugin_api",
    "call_isolated": "plugins",
    "canonical_json": "canonical",
    "content_hash": "canonical",
    "create_plugin_manager": "plugins",
    "hookimpl": "plugin_api",
    "sha256_file": "canonical",
    "validate_customer_trace_dataset": "stages.dataset",
    "validate_sector_trace_metadata": "stages.sector",
    "verify_chain": "catalog",
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
