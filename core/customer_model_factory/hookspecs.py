"""Every hook a plugin can implement, in the order of the factory's stages.

A plugin is a module (or object) with functions decorated by
:data:`customer_model_factory.hookimpl` whose names start with ``cmf_``, and a module-level
``CMF_PLUGIN_API`` naming the plugin API version it targets (:data:`CMF_PLUGIN_API`). Unprefixed
functions are ignored. Contribution hooks return lists of the typed objects of
:mod:`customer_model_factory.contributions`; the core validates them, rejects duplicate ids naming
both plugins, and sorts them before hashing. A hook implementation that raises becomes a
``PLUGIN_HOOK_FAILED`` error finding; the other plugins still run and the run fails closed.

Specs only grow by adding arguments (an implementation may accept a subset); removing or renaming
one bumps :data:`CMF_PLUGIN_API`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import pluggy

if TYPE_CHECKING:
    from customer_model_factory.contributions import (
        BenchmarkPackage,
        ObjectiveProfile,
        ProprietaryIdentifiers,
        RetrievalSchema,
        SectorPack,
        TrainingLaneSpec,
    )
    from customer_model_factory.findings import Finding
    from customer_model_factory.sector import SectorEvidenceMapping

__all__ = ["CMF_PLUGIN_API", "PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME: Final = "customer_model_factory"
"""The pluggy project name; also the entry-point group packs register under."""

CMF_PLUGIN_API: Final = 1
"""The plugin API version this release provides. A plugin declaring another one is rejected."""

hookspec: Final = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl: Final = pluggy.HookimplMarker(PROJECT_NAME)


# ---- sector extension ----


@hookspec
def cmf_sector_packs() -> list[SectorPack]:
    """Declare the sector packs (verticals) this plugin provides.

    Called on first use of a plugin manager (the result is cached until a plugin is registered
    or unregistered), and by ``cmf plugins list``. Two plugins declaring the same sector id is a
    ``PLUGIN_DUPLICATE_ID`` error naming both; the plugin first by name keeps the id.

    :returns: ``list[SectorPack]``: each pack's id, version, jurisdiction, frameworks, its trace
        metadata model or JSON Schema, and the finding codes of its own rules.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 0.1
    """


@hookspec
def cmf_validate_sector_metadata(
    sector_id: str, trace: Mapping[str, Any], metadata: Mapping[str, Any]
) -> list[Finding] | None:
    """Check one trace's sector metadata against the pack's own rules.

    Called for every trace whose ``vertical`` (or the forced ``--vertical``) names a sector, after
    the core's generic sector contract, and only on the plugin that declared that sector. Return
    ``None`` (or an empty list) for a sector this plugin does not own.

    :param sector_id: the sector the trace belongs to.
    :param trace: the whole trace object, read-only.
    :param metadata: the trace's ``metadata`` object (empty when absent), read-only.
    :returns: ``list[Finding]`` with codes prefixed ``SECTOR_``, or ``None``. The core fills in
        ``trace_id`` and ``location`` when a finding leaves them empty.

    Not ``firstresult``, and not broadcast: the owner's implementation is resolved once per
    sector and called directly (see ``sector.validate_sector_trace_metadata``); if it raises,
    the trace gets a ``PLUGIN_HOOK_FAILED`` finding.

    .. versionadded:: 0.1
    """


@hookspec
def cmf_evidence_mappings(sector_id: str) -> list[SectorEvidenceMapping] | None:
    """Map a sector's controls to the evidence artefact kinds that prove them.

    Called when the evidence pack of a deployment in ``sector_id`` is built, and by
    ``cmf plugins check``.

    :param sector_id: the sector whose mappings are asked for.
    :returns: ``list[SectorEvidenceMapping]`` (control id → required evidence kinds, frameworks,
        jurisdiction), or ``None`` for a sector this plugin does not own.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 0.1
    """


@hookspec
def cmf_retrieval_schemas() -> list[RetrievalSchema]:
    """Declare the private retrieval / database-class schemas of this plugin.

    Called once when the plugin manager is built. Trace ``source_refs`` entries that name one of
    these schema ids, and runtime retrieval records, are validated against its JSON Schema.

    :returns: ``list[RetrievalSchema]``.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 0.1
    """


# ---- benchmark and selection ----


@hookspec
def cmf_benchmark_packages() -> list[BenchmarkPackage]:
    """Declare benchmark packages: a trace source, a claim boundary and metric thresholds.

    Called when benchmarks are listed or run.

    :returns: ``list[BenchmarkPackage]``.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 0.1
    """


@hookspec
def cmf_objective_profiles() -> list[ObjectiveProfile]:
    """Declare model-selection objective profiles.

    Called when a selection report is built; the built-in profiles are contributed through this
    same hook.

    :returns: ``list[ObjectiveProfile]``.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 0.1
    """


# ---- training ----


@hookspec
def cmf_training_lanes() -> list[TrainingLaneSpec]:
    """Declare training lanes: a name, whether private execution is required, a train callable.

    Called when a training manifest is built or a lane is run; the built-in lanes are contributed
    through this same hook.

    :returns: ``list[TrainingLaneSpec]``.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 0.1
    """


# ---- release gate ----


@hookspec
def cmf_release_checks(context: Mapping[str, Any]) -> list[Finding] | None:
    """Add release-gate blockers.

    Called once per release gate, after the core's own checks, on every plugin.

    :param context: the release inputs by name (runtime package, evidence pack, monitoring,
        risk register, sector ids), read-only.
    :returns: ``list[Finding]`` with codes prefixed ``RELEASE_`` (errors block promotion), or
        ``None``.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 0.1
    """


# ---- boundary verifier ----


@hookspec
def cmf_proprietary_identifiers() -> list[ProprietaryIdentifiers]:
    """Declare identifiers, path globs and schema ids that must never appear in the public tree.

    Called by ``cmf boundary verify``. Packs that are themselves public must publish identifiers
    only as salted hashes (``hashed`` + ``salt``), never in plain text.

    :returns: ``list[ProprietaryIdentifiers]``.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 0.1
    """
