"""Every hook a plugin can implement, in the order of the factory's stages.

A plugin is a module (or object) with functions decorated by
:data:`customer_model_factory.hookimpl` whose names start with ``cmf_``, and a module-level
``CMF_PLUGIN_API`` naming the plugin API version it targets (``"MAJOR.MINOR"``, see
:mod:`.version`). Unprefixed functions are ignored. Contribution hooks return lists of the typed
objects of :mod:`.contracts`; the core validates them and sorts them before hashing. Two plugins
claiming one id is a ``PLUGIN_DUPLICATE_ID`` error naming both, and neither keeps it: ownership is
never decided by name order. A hook implementation that raises becomes a ``PLUGIN_HOOK_FAILED``
error finding; the other plugins still run and every stage run fails closed.

Specs only grow by adding arguments (an implementation may accept a subset); removing or renaming
one bumps the major version. An argument on its way out is declared in the spec's
``warn_on_impl_args``: an implementation still asking for it loads, with a ``PLUGIN_DEPRECATED``
warning finding, until the next major version removes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pluggy

from customer_model_factory.findings import Finding
from customer_model_factory.plugin_api.contracts import (
    BenchmarkPackage,
    EvidenceMappingSpec,
    ObjectiveProfile,
    ProprietaryIdentifiers,
    ReleaseCheckInput,
    ReleaseDomain,
    RetrievalSchema,
    SectorEvidenceMapping,
    SectorPack,
    TrainingLaneSpec,
)
from customer_model_factory.plugin_api.version import CMF_PLUGIN_API

__all__ = ["CMF_PLUGIN_API", "PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME: Final = "customer_model_factory"
"""The pluggy project name; also the entry-point group packs register under."""

hookspec: Final = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl: Final = pluggy.HookimplMarker(PROJECT_NAME)
"""Decorator that marks a pack's ``cmf_*`` functions as hook implementations."""


# ---- every stage: what a pack provides ----


@hookspec
def cmf_sector_packs() -> list[SectorPack]:
    """Declare the sector packs (verticals) this plugin provides.

    Called once per plugin manager (cached until a plugin is registered or unregistered), by
    every stage run with plugins on (a pack whose hook raises fails that run closed), and by
    ``cmf plugins list``. Two plugins declaring the same sector id is a ``PLUGIN_SECTOR_CONFLICT``
    error naming both distributions; neither owns the sector until the operator chooses one
    (``--sector-owner SECTOR=DIST``, ``CMF_SECTOR_OWNERS`` or the workspace's ``sector_owners``).

    :returns: ``list[SectorPack]``: each pack's id, version, jurisdiction, frameworks, its trace
        metadata model or JSON Schema (enforced by the core on every row of the sector), and the
        finding codes of its own rules.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 1.0
    """


@hookspec
def cmf_retrieval_schemas() -> list[RetrievalSchema]:
    """Declare the private retrieval / database-class schemas of this plugin.

    Called once per plugin manager. Trace ``source_refs`` entries that name one of these schema
    ids, and runtime retrieval records, are validated against its JSON Schema.

    :returns: ``list[RetrievalSchema]``.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 1.0
    """


# ---- stage 1: dataset contract ----


@hookspec
def cmf_validate_sector_metadata(
    sector_id: str, trace: Mapping[str, Any], metadata: Mapping[str, Any]
) -> list[Finding] | None:
    """Check one trace's sector metadata against the pack's own rules.

    Called for every trace whose ``vertical`` (or the forced ``--vertical``) names a sector, after
    the core's generic sector contract and the pack's declared metadata model / schema accepted
    the row, and only on the plugin that owns that sector. Return ``None`` (or an empty list) for
    a sector this plugin does not own.

    :param sector_id: the sector the trace belongs to.
    :param trace: the whole trace object, read-only.
    :param metadata: the trace's ``metadata`` object (empty when absent), read-only.
    :returns: ``list[Finding]`` with codes prefixed ``SECTOR_``, or ``None``. The core fills in
        ``trace_id`` and ``location`` when a finding leaves them empty.

    Not ``firstresult``, and not broadcast: the owner's implementation is resolved once per
    sector and called directly; if it raises, the trace gets a ``PLUGIN_HOOK_FAILED`` finding.

    .. versionadded:: 1.0
    """


# ---- stage 2: training ----


@hookspec
def cmf_training_lanes() -> list[TrainingLaneSpec]:
    """Declare training lanes: a name, whether private execution is required, and the
    :class:`~.contracts.TrainingLane` that trains (none for a manifest-only lane).

    Called when a training manifest is built or a lane is run; the built-in lanes are contributed
    through this same hook.

    :returns: ``list[TrainingLaneSpec]``.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 1.0
    .. versionchanged:: 1.1 ``TrainingLaneSpec.lane`` (a ``TrainingLane``) replaces ``train``.
    """


# ---- stage 3: benchmark and selection ----


@hookspec
def cmf_benchmark_packages() -> list[BenchmarkPackage]:
    """Declare benchmark packages: a trace source, a claim boundary and metric thresholds.

    Called when benchmarks are listed or run, and by ``cmf plugins check`` (whose sample traces
    come from a pack's own benchmark package).

    :returns: ``list[BenchmarkPackage]``.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 1.0
    """


@hookspec
def cmf_objective_profiles() -> list[ObjectiveProfile]:
    """Declare model-selection objective profiles.

    Called when a selection report is built; the built-in profiles are contributed through this
    same hook.

    :returns: ``list[ObjectiveProfile]``.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 1.0
    """


# ---- stage 5: sector evidence ----


@hookspec
def cmf_evidence_mappings(
    sector_id: str,
) -> list[SectorEvidenceMapping | EvidenceMappingSpec] | None:
    """Map a sector's controls to the evidence artefact kinds that prove them.

    Called when the evidence pack of a deployment in ``sector_id`` is built, and by
    ``cmf plugins check``.

    :param sector_id: the sector whose mappings are asked for.
    :returns: sealed ``SectorEvidenceMapping`` objects or unsealed ``EvidenceMappingSpec``
        objects (the core seals them), or ``None`` for a sector this plugin does not own.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 1.0
    .. versionchanged:: 1.1 may return ``EvidenceMappingSpec``.
    """


# ---- stage 10: release gate ----


@hookspec(
    warn_on_impl_args={
        "context": DeprecationWarning(
            "cmf_release_checks(context=...) is the plugin API 1.0 mapping of guessed keys; "
            "take `release: ReleaseCheckInput` instead (the mapping goes away in API 2.0)"
        )
    }
)
def cmf_release_checks(
    release: ReleaseCheckInput, context: Mapping[str, Any]
) -> list[Finding] | None:
    """Add release-gate blockers.

    Called once per release gate, after the core's own checks, on every plugin; and by
    ``cmf plugins check`` with a sample input, so a check that raises fails the check.

    :param release: every artefact of the chain, typed (:class:`~.contracts.ReleaseCheckInput`).
    :param context: deprecated since 1.1: the same as a read-only mapping
        (``release.as_mapping()``).
    :returns: ``list[Finding]`` with codes prefixed ``RELEASE_`` (errors block promotion), or
        ``None``.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 1.0
    .. versionchanged:: 1.1 ``release``; ``context`` deprecated.
    """


@hookspec
def cmf_release_domains() -> list[ReleaseDomain]:
    """Declare release domains: evidence records a release gate requires, declaratively.

    Called once per plugin manager (cached until plugins change), by every release gate and by
    ``cmf plugins list`` / ``cmf plugins check``. Each domain names the URIs and boolean checks a
    record must give and the environments where a missing record blocks promotion. A name the
    core already declares (``observability``, ``provenance``, ...) is refused with a
    ``RELEASE_DOMAIN_CONFLICT`` blocker; two plugins declaring one name is
    ``PLUGIN_DUPLICATE_ID`` and neither keeps it.

    :returns: ``list[ReleaseDomain]``.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 1.2
    """


# ---- boundary verifier ----


@hookspec
def cmf_proprietary_identifiers() -> list[ProprietaryIdentifiers]:
    """Declare identifiers, path globs and schema ids that must never appear in the public tree.

    Called by ``cmf boundary verify``. Packs that are themselves public must publish identifiers
    only as salted hashes (``hashed`` + ``salt``), never in plain text.

    :returns: ``list[ProprietaryIdentifiers]``.

    Not ``firstresult``: every implementation is called, one at a time, in isolation.

    .. versionadded:: 1.0
    """
