"""The contribution table: one entry per hook drives collecting, listing, checking and rendering.

Adding a hook is one :class:`HookEntry` in :data:`HOOKS` (plus its spec in
:mod:`customer_model_factory.plugin_api.hookspecs`): :func:`collect` validates what the plugins
contribute, ``cmf plugins list`` shows each plugin's contributions under the entry's
``listing`` label, and ``cmf plugins check`` collects every contribution hook and calls every
call hook with the entry's ``samples``.

Ownership is never decided by name order: an id two plugins contribute is an error naming both,
and neither keeps it. For sectors the operator may choose the owner
(:attr:`~customer_model_factory.plugins.switches.PluginSwitches.sector_owners`); the others are
then *shadowed* for that sector (an info finding records it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ValidationError

from customer_model_factory.errors import InputError
from customer_model_factory.findings import Finding, pack_code_problem
from customer_model_factory.plugin_api.contracts import (
    HASHED_IDENTIFIER_RE,
    IDENTIFIER_HASH_SCHEME,
    BenchmarkPackage,
    EvidenceMappingSpec,
    ObjectiveProfile,
    ProprietaryIdentifiers,
    ReleaseDomain,
    RetrievalSchema,
    SectorEvidenceMapping,
    SectorPack,
    TrainingLaneSpec,
    build_sector_evidence_mapping,
)
from customer_model_factory.plugins.calling import invalid_contribution

if TYPE_CHECKING:
    from customer_model_factory.plugins.manager import CMFPluginManager

__all__ = [
    "HOOKS",
    "Collected",
    "HookEntry",
    "collect",
    "entry_for",
    "seal_evidence_mapping",
]


@dataclass(frozen=True)
class Collected:
    """What one contribution hook yielded: valid items by id, their owners, the problems met."""

    items: dict[str, Any] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    shadowed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """id → plugins whose claim the operator's choice of owner set aside."""


@dataclass(frozen=True)
class HookEntry:
    """How the core treats one hook.

    :param hook: the hook name.
    :param stage: the stage that calls it (shown by listings and the docs).
    :param label: what one contribution is called in messages (``"sector pack"``).
    :param listing: the key ``cmf plugins list`` shows contributions under; ``None`` for hooks
        that are called with arguments rather than collected.
    :param model: the contract each contributed item must validate as.
    :param key: the id attribute of an item; ``None`` when items have no unique id.
    :param check: an extra check of one valid item; returns a problem or ``None``.
    :param samples: for call hooks, the keyword arguments ``cmf plugins check`` calls it with.
    :param returns: for call hooks, the type every returned item must have.
    """

    hook: str
    stage: str
    label: str
    listing: str | None = None
    model: type[BaseModel] | None = None
    key: str | None = None
    check: Callable[[Any], str | None] | None = None
    samples: Callable[[CMFPluginManager], Iterable[dict[str, Any]]] | None = None
    returns: type | None = None


def _check_sector_pack(pack: SectorPack) -> str | None:
    from jsonschema import Draft202012Validator, SchemaError  # noqa: PLC0415

    schema = pack.trace_metadata_schema()
    if schema is None:
        return None
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        return f"sector {pack.id!r}: metadata schema is not a valid JSON Schema: {error.message}"
    for code in pack.finding_codes:
        problem = pack_code_problem(code)
        if problem is not None:
            return f"sector {pack.id!r}: {problem}"
    return None


def _check_retrieval_schema(schema: RetrievalSchema) -> str | None:
    from jsonschema import Draft202012Validator, SchemaError  # noqa: PLC0415

    try:
        Draft202012Validator.check_schema(schema.json_schema)
    except SchemaError as error:
        return f"retrieval schema {schema.id!r} is not a valid JSON Schema: {error.message}"
    return None


def _check_identifiers(rules: ProprietaryIdentifiers) -> str | None:
    if rules.hash_scheme != IDENTIFIER_HASH_SCHEME:
        return f"unknown hash scheme {rules.hash_scheme!r} (expected {IDENTIFIER_HASH_SCHEME})"
    if rules.hashed and not rules.salt:
        return f"source {rules.source!r}: hashed identifiers need a salt"
    bad = sum(1 for value in rules.hashed if not HASHED_IDENTIFIER_RE.match(value))
    if bad:
        return (
            f"source {rules.source!r}: {bad} hashed identifier(s) are not 'sha256:' + 64 "
            "lower-case hex digits"
        )
    return None


def _sector_samples(pm: CMFPluginManager) -> Iterable[dict[str, Any]]:
    from customer_model_factory.plugins.samples import sector_samples  # noqa: PLC0415

    return sector_samples(pm)


def _evidence_samples(pm: CMFPluginManager) -> Iterable[dict[str, Any]]:
    return [{"sector_id": sector_id} for sector_id in pm.sector_packs()]


def _release_samples(pm: CMFPluginManager) -> Iterable[dict[str, Any]]:
    from customer_model_factory.plugins.samples import release_sample  # noqa: PLC0415

    sample = release_sample(pm)
    return [{"release": sample, "context": sample.as_mapping()}]


HOOKS: Final[tuple[HookEntry, ...]] = (
    HookEntry(
        "cmf_sector_packs",
        "every stage",
        "sector pack",
        listing="sectors",
        model=SectorPack,
        key="id",
        check=_check_sector_pack,
    ),
    HookEntry(
        "cmf_retrieval_schemas",
        "every stage",
        "retrieval schema",
        listing="retrieval schemas",
        model=RetrievalSchema,
        key="id",
        check=_check_retrieval_schema,
    ),
    HookEntry(
        "cmf_validate_sector_metadata",
        "dataset",
        "sector finding",
        samples=_sector_samples,
        returns=Finding,
    ),
    HookEntry(
        "cmf_training_lanes",
        "training",
        "training lane",
        listing="lanes",
        model=TrainingLaneSpec,
        key="name",
    ),
    HookEntry(
        "cmf_benchmark_packages",
        "benchmark",
        "benchmark package",
        listing="benchmark packages",
        model=BenchmarkPackage,
        key="id",
    ),
    HookEntry(
        "cmf_objective_profiles",
        "selection",
        "objective profile",
        listing="objective profiles",
        model=ObjectiveProfile,
        key="name",
    ),
    HookEntry(
        "cmf_evidence_mappings",
        "sector evidence",
        "evidence mapping",
        samples=_evidence_samples,
        returns=SectorEvidenceMapping,
    ),
    HookEntry(
        "cmf_release_checks",
        "release",
        "release finding",
        samples=_release_samples,
        returns=Finding,
    ),
    HookEntry(
        "cmf_release_domains",
        "release",
        "release domain",
        listing="release domains",
        model=ReleaseDomain,
        key="name",
    ),
    HookEntry(
        "cmf_proprietary_identifiers",
        "boundary",
        "identifier rule set",
        listing="identifier sources",
        model=ProprietaryIdentifiers,
        key=None,
        check=_check_identifiers,
    ),
)
"""Every hook, in the order of the factory's stages."""

_BY_HOOK: Final = {entry.hook: entry for entry in HOOKS}


def entry_for(hook: str) -> HookEntry:
    """Return the table entry of ``hook``.

    :raises InputError: no hook has that name.
    """
    try:
        return _BY_HOOK[hook]
    except KeyError:
        raise InputError(f"unknown hook {hook!r}; known: {', '.join(sorted(_BY_HOOK))}") from None


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _validate(raw: Any, model: type[BaseModel]) -> BaseModel:
    return raw if isinstance(raw, model) else model.model_validate(raw)


def collect(pm: CMFPluginManager, entry: HookEntry) -> Collected:
    """Collect a contribution hook on ``pm`` (cached on the manager until plugins change)."""
    cached = pm.cache.get(("collect", entry.hook))
    if cached is not None:
        return cached
    assert entry.model is not None, f"{entry.hook} is a call hook, not a contribution hook"
    results, findings = pm.call_each(entry.hook)
    claims: dict[str, list[tuple[str, Any]]] = {}
    unkeyed: list[tuple[str, Any]] = []
    for plugin, value in sorted(results, key=lambda result: result[0]):
        if not isinstance(value, list | tuple):
            findings.append(
                invalid_contribution(
                    plugin, entry.hook, f"returned {type(value).__name__}, not a list"
                )
            )
            continue
        for raw in value:
            try:
                item = _validate(raw, entry.model)
            except ValidationError as error:
                findings.append(
                    invalid_contribution(
                        plugin, entry.hook, f"invalid {entry.label}: {_first_error(error)}"
                    )
                )
                continue
            problem = entry.check(item) if entry.check is not None else None
            if problem is not None:
                findings.append(invalid_contribution(plugin, entry.hook, problem))
                continue
            if entry.key is None:
                if (plugin, item) not in unkeyed:
                    unkeyed.append((plugin, item))
                continue
            claims.setdefault(str(getattr(item, entry.key)), []).append((plugin, item))
    collected = Collected(findings=findings)
    if entry.key is None:
        for index, (plugin, item) in enumerate(
            sorted(unkeyed, key=lambda pair: (pair[0], pair[1].model_dump_json()))
        ):
            collected.items[str(index)] = item
            collected.owners[str(index)] = plugin
    for ident in sorted(claims):
        _settle(pm, entry, ident, claims[ident], collected)
    pm.cache[("collect", entry.hook)] = collected
    return collected


def _settle(
    pm: CMFPluginManager,
    entry: HookEntry,
    ident: str,
    claims: list[tuple[str, Any]],
    collected: Collected,
) -> None:
    """Decide who owns ``ident``: the only claimant, the operator's choice, or nobody."""
    plugins = [plugin for plugin, _ in claims]
    if len(claims) == 1:
        collected.items[ident], collected.owners[ident] = claims[0][1], plugins[0]
        return
    names = " and ".join(repr(pm.display_name(plugin)) for plugin in plugins)
    if entry.hook == "cmf_sector_packs":
        chosen = pm.switches.sector_owners.get(ident)
        winner = next((p for p in plugins if chosen and pm.is_named(p, chosen)), None)
        if winner is not None:
            collected.items[ident] = next(item for p, item in claims if p == winner)
            collected.owners[ident] = winner
            others = tuple(p for p in plugins if p != winner)
            collected.shadowed[ident] = others
            collected.findings.append(
                Finding(
                    code="PLUGIN_SECTOR_SHADOWED",
                    severity="info",
                    message=(
                        f"sector {ident!r} is claimed by {names}; the operator chose "
                        f"{pm.display_name(winner)!r}, so "
                        + ", ".join(repr(pm.display_name(p)) for p in others)
                        + " does not validate it"
                    ),
                )
            )
            return
        unknown = f" (the chosen owner {chosen!r} is not one of them)" if chosen else ""
        collected.findings.append(
            Finding(
                code="PLUGIN_SECTOR_CONFLICT",
                severity="error",
                message=(
                    f"sector {ident!r} is claimed by both {names}{unknown}; no pack validates "
                    f"it until the operator chooses one (--sector-owner {ident}=DISTRIBUTION, "
                    "CMF_SECTOR_OWNERS, or the workspace's sector_owners)"
                ),
            )
        )
        return
    collected.findings.append(
        Finding(
            code="PLUGIN_DUPLICATE_ID",
            severity="error",
            message=(
                f"{entry.label} {ident!r} is claimed by both {names}; neither is used until "
                "one of them is disabled"
            ),
        )
    )


def seal_evidence_mapping(raw: Any, sector_id: str) -> SectorEvidenceMapping | str:
    """Return a verified mapping from what a pack returned, or the problem with it."""
    if isinstance(raw, EvidenceMappingSpec):
        mapping = build_sector_evidence_mapping(
            sector_id=raw.sector_id,
            jurisdiction=raw.jurisdiction,
            evidence_pack_uri=raw.evidence_pack_uri,
            frameworks=raw.frameworks,
            control_evidence=dict(raw.control_evidence),
        )
    elif isinstance(raw, Mapping):
        try:
            mapping = SectorEvidenceMapping.from_payload(dict(raw))
        except InputError as error:
            return f"invalid evidence mapping: {error}"
    elif isinstance(raw, SectorEvidenceMapping):
        if raw.compute_hash() != raw.content_digest:
            return (
                "evidence mapping hash does not verify (build it with "
                "build_sector_evidence_mapping)"
            )
        mapping = raw
    else:
        return f"returned {type(raw).__name__}, not a SectorEvidenceMapping"
    if mapping.sector_id != sector_id:
        return f"returned a mapping for another sector than {sector_id!r}"
    return mapping
