"""The plugin API: everything a sector pack imports, versioned (see :mod:`.version`).

A pack needs only::

    from customer_model_factory.plugin_api import hookimpl, SectorPack, Finding

(the package root re-exports the same names). :mod:`.hookspecs` holds every hook spec ordered by
stage; :mod:`.contracts` the typed, frozen objects that packs contribute and that stages hand to
packs. Nothing here imports a stage, the plugin manager or the CLI.
"""

from __future__ import annotations

from customer_model_factory.findings import Finding
from customer_model_factory.plugin_api.contracts import (
    DEFAULT_CONTROL_EVIDENCE,
    DEFAULT_SECTOR_FRAMEWORKS,
    HASHED_IDENTIFIER_RE,
    IDENTIFIER_HASH_SCHEME,
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
)
from customer_model_factory.plugin_api.hookspecs import PROJECT_NAME, hookimpl, hookspec
from customer_model_factory.plugin_api.version import (
    API_HISTORY,
    CMF_PLUGIN_API,
    api_compatibility_problem,
    parse_api_version,
)

__all__ = [
    "API_HISTORY",
    "CMF_PLUGIN_API",
    "DEFAULT_CONTROL_EVIDENCE",
    "DEFAULT_SECTOR_FRAMEWORKS",
    "HASHED_IDENTIFIER_RE",
    "IDENTIFIER_HASH_SCHEME",
    "PROJECT_NAME",
    "ArtefactRef",
    "BenchmarkPackage",
    "EvidenceMappingSpec",
    "Finding",
    "MetricConstraint",
    "ObjectiveProfile",
    "ProprietaryIdentifiers",
    "ReleaseCheckInput",
    "ReleaseDomain",
    "RetrievalSchema",
    "SectorEvidenceMapping",
    "SectorOwner",
    "SectorPack",
    "TrainedScorer",
    "TrainingExample",
    "TrainingLane",
    "TrainingLaneSpec",
    "api_compatibility_problem",
    "build_sector_evidence_mapping",
    "hookimpl",
    "hookspec",
    "parse_api_version",
]
