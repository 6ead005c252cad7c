"""The plugin system: the manager, isolated calling, the contribution table, listing and checking.

* :mod:`.switches` — the operator's switches, read from the environment in one place;
* :mod:`.manager` — :class:`CMFPluginManager` and :func:`create_plugin_manager`;
* :mod:`.calling` — one implementation at a time, failures become findings;
* :mod:`.table` — one entry per hook drives collecting, listing and checking;
* :mod:`.listing` — ``cmf plugins list`` and ``cmf plugins check``.

The ``collect_*`` functions return the validated contributions of one hook, sorted by id, with
the findings met on the way; an id two plugins claim is kept by neither.
"""

from __future__ import annotations

from typing import Any

import pluggy

from customer_model_factory.errors import StageInputError
from customer_model_factory.findings import Finding, sort_findings
from customer_model_factory.plugin_api.contracts import (
    BenchmarkPackage,
    ObjectiveProfile,
    ProprietaryIdentifiers,
    ReleaseCheckInput,
    ReleaseDomain,
    RetrievalSchema,
    SectorEvidenceMapping,
    SectorPack,
    TrainingLaneSpec,
)
from customer_model_factory.plugins.calling import call_each, invalid_contribution
from customer_model_factory.plugins.listing import (
    PluginCheckReport,
    PluginInfo,
    PluginListing,
    check_plugins,
    list_plugins,
)
from customer_model_factory.plugins.manager import (
    ENTRY_POINT_GROUP,
    CMFPluginManager,
    PluginAPIError,
    PluginRecord,
    PluginSource,
    PluginStatus,
    SectorDispatch,
    create_plugin_manager,
    hook_names,
)
from customer_model_factory.plugins.switches import (
    ENV_DISABLE_PLUGINS,
    ENV_LOAD_PLUGINS,
    ENV_PLUGINS,
    ENV_SECTOR_OWNERS,
    ENV_TRACE_PLUGINS,
    PluginSwitches,
)
from customer_model_factory.plugins.table import HOOKS, HookEntry, collect, entry_for
from customer_model_factory.plugins.table import seal_evidence_mapping as _seal

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_DISABLE_PLUGINS",
    "ENV_LOAD_PLUGINS",
    "ENV_PLUGINS",
    "ENV_SECTOR_OWNERS",
    "ENV_TRACE_PLUGINS",
    "HOOKS",
    "CMFPluginManager",
    "HookEntry",
    "PluginAPIError",
    "PluginCheckReport",
    "PluginInfo",
    "PluginListing",
    "PluginRecord",
    "PluginSource",
    "PluginStatus",
    "PluginSwitches",
    "SectorDispatch",
    "call_isolated",
    "check_plugins",
    "collect_benchmark_packages",
    "collect_evidence_mappings",
    "collect_objective_profiles",
    "collect_proprietary_identifiers",
    "collect_release_checks",
    "collect_release_domains",
    "collect_retrieval_schemas",
    "collect_sector_packs",
    "collect_training_lanes",
    "create_plugin_manager",
    "hook_names",
    "list_plugins",
    "scoring_lane",
]


def call_isolated(
    pm: CMFPluginManager,
    hook: str | pluggy.HookCaller,
    /,
    *,
    owner: str | None = None,
    **kwargs: Any,
) -> tuple[list[Any], list[Finding]]:
    """Call every implementation of a hook on ``pm`` one at a time, isolating failures.

    :param owner: call only this plugin's implementation (sector dispatch).
    :returns: ``(non-None results in pluggy's call order, PLUGIN_HOOK_FAILED findings)``.
    """
    caller = getattr(pm.hook, hook) if isinstance(hook, str) else hook
    results, findings = call_each(caller, kwargs, trace=pm.trace_calls, owner=owner)
    return [value for _, value in results], findings


def _by_id(pm: CMFPluginManager, hook: str) -> tuple[dict[str, Any], list[Finding]]:
    collected = collect(pm, entry_for(hook))
    return dict(collected.items), list(collected.findings)


def collect_sector_packs(pm: CMFPluginManager) -> tuple[dict[str, SectorPack], list[Finding]]:
    """Return ``({sector id: SectorPack}, findings)``; a contested sector has no entry until the
    operator chooses its owner."""
    return _by_id(pm, "cmf_sector_packs")


def collect_retrieval_schemas(
    pm: CMFPluginManager,
) -> tuple[dict[str, RetrievalSchema], list[Finding]]:
    """Return ``({schema id: RetrievalSchema}, findings)``; invalid JSON Schemas are left out."""
    return _by_id(pm, "cmf_retrieval_schemas")


def collect_benchmark_packages(
    pm: CMFPluginManager,
) -> tuple[dict[str, BenchmarkPackage], list[Finding]]:
    """Return ``({package id: BenchmarkPackage}, findings)``."""
    return _by_id(pm, "cmf_benchmark_packages")


def collect_training_lanes(
    pm: CMFPluginManager,
) -> tuple[dict[str, TrainingLaneSpec], list[Finding]]:
    """Return ``({lane name: TrainingLaneSpec}, findings)``; a lane still using the deprecated
    ``train`` callable adds a ``PLUGIN_DEPRECATED`` warning."""
    lanes, findings = _by_id(pm, "cmf_training_lanes")
    owners = collect(pm, entry_for("cmf_training_lanes")).owners
    for name, spec in lanes.items():
        if spec.train is not None and spec.lane is None:
            findings.append(
                Finding(
                    code="PLUGIN_DEPRECATED",
                    severity="warning",
                    message=(
                        f"plugin {owners[name]!r} lane {name!r} gives a train callable (plugin "
                        "API 1.0); give a TrainingLane as `lane` (removed in API 2.0)"
                    ),
                )
            )
    return lanes, findings


def scoring_lane(
    pm: CMFPluginManager, name: str, *, stage: str
) -> tuple[TrainingLaneSpec, list[Finding]]:
    """The installed lane ``name`` that can load a model to score, with the lanes' findings.

    :param stage: the finding-code prefix of the calling stage (``BENCH``, ``RUNTIME``).
    :raises StageInputError: ``<stage>_LANE_UNKNOWN`` (no such lane installed) or
        ``<stage>_LANE_CANNOT_SCORE`` (a manifest-only lane).
    """
    lanes, findings = collect_training_lanes(pm)
    spec = lanes.get(name)
    if spec is None:
        known = ", ".join(sorted(lanes)) or "none"
        raise StageInputError(
            f"no training lane {name[:60]!r} is installed to load the model (known: {known})",
            code=f"{stage}_LANE_UNKNOWN",
        )
    if spec.lane is None:
        raise StageInputError(
            f"lane {name!r} is manifest-only: it cannot load a model to score here",
            code=f"{stage}_LANE_CANNOT_SCORE",
        )
    return spec, findings


def collect_objective_profiles(
    pm: CMFPluginManager,
) -> tuple[dict[str, ObjectiveProfile], list[Finding]]:
    """Return ``({profile name: ObjectiveProfile}, findings)``, built-in profiles included."""
    return _by_id(pm, "cmf_objective_profiles")


def collect_proprietary_identifiers(
    pm: CMFPluginManager,
) -> tuple[list[ProprietaryIdentifiers], list[Finding]]:
    """Return ``(identifier rule sets sorted by source, findings)``.

    A rule set with a malformed hash, hashes without a salt, or an unknown hash scheme is
    reported as an error and left out (the boundary run fails closed on the error).
    """
    items, findings = _by_id(pm, "cmf_proprietary_identifiers")
    rule_sets = sorted(items.values(), key=lambda rules: (rules.source, rules.model_dump_json()))
    return rule_sets, findings


def collect_release_checks(
    release: ReleaseCheckInput, pm: CMFPluginManager
) -> tuple[list[Finding], list[Finding]]:
    """Run every plugin's release checks on the typed release input.

    :returns: ``(the release findings the plugins raised, sorted; plugin problems)``.
    """
    results, problems = pm.call_each(
        "cmf_release_checks", {"release": release, "context": release.as_mapping()}
    )
    blockers: list[Finding] = []
    for plugin, value in results:
        if not isinstance(value, list | tuple):
            problems.append(
                invalid_contribution(
                    plugin, "cmf_release_checks", f"returned {type(value).__name__}"
                )
            )
            continue
        for raw in value:
            if isinstance(raw, Finding):
                blockers.append(raw)
            else:
                problems.append(
                    invalid_contribution(
                        plugin, "cmf_release_checks", f"returned a {type(raw).__name__} item"
                    )
                )
    return list(sort_findings(blockers)), problems


def collect_release_domains(
    pm: CMFPluginManager,
) -> tuple[dict[str, ReleaseDomain], list[Finding]]:
    """Return ``({domain name: ReleaseDomain}, findings)`` of the release domains packs add
    (the core's own domains are declared in ``customer_model_factory.stages.release.domains``)."""
    return _by_id(pm, "cmf_release_domains")


def collect_evidence_mappings(
    sector_id: str, pm: CMFPluginManager
) -> tuple[list[SectorEvidenceMapping], list[Finding]]:
    """Return ``(the SectorEvidenceMappings the sector's owner gives, findings)``.

    Only the plugin that owns ``sector_id`` is asked. Each mapping must be a sealed mapping whose
    hash verifies, its JSON form, or an ``EvidenceMappingSpec`` (sealed here); others are reported
    and left out. Sorted by mapping hash.
    """
    hook = "cmf_evidence_mappings"
    dispatch = pm.sector_dispatch(sector_id)
    if dispatch is None:
        return [], []
    results, findings = pm.call_each(hook, {"sector_id": sector_id}, owner=dispatch.plugin_name)
    mappings: dict[str, SectorEvidenceMapping] = {}
    for plugin, value in results:
        if not isinstance(value, list | tuple):
            findings.append(
                invalid_contribution(plugin, hook, f"returned {type(value).__name__}, not a list")
            )
            continue
        for raw in value:
            mapping = _seal(raw, sector_id)
            if isinstance(mapping, str):
                findings.append(invalid_contribution(plugin, hook, mapping))
                continue
            mappings[mapping.content_digest] = mapping
    return [mappings[digest] for digest in sorted(mappings)], findings
