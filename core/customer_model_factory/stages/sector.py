"""Sector extension: the generic sector metadata contract, dispatch to the owning sector pack,
and the sector evidence mapping.

Every trace naming a sector (its ``vertical``) is checked in two steps by
:func:`validate_sector_trace_metadata`:

1. the generic contract every sector shares (:class:`SectorMetadata`): ``metadata`` holds
   ``sector_class``, ``knowledge_class`` and ``jurisdiction``; ``requires_citation`` needs
   non-empty ``evidence_refs``; ``requires_numeric_evidence`` needs non-empty
   ``numeric_evidence_refs``; ``requires_escalation`` needs ``expected_decision == "escalate"``;
2. the metadata model or JSON Schema the owning pack declares (enforced by the core:
   ``SECTOR_METADATA_SCHEMA`` findings located at the row and field), then the rules of that pack
   (its ``cmf_validate_sector_metadata``; only the owner is called, and only when its schema
   accepted the row). A sector no pack provides is ``SECTOR_UNKNOWN``; a sector two packs claim
   has no owner until the operator chooses one (the stage's ``PLUGIN_SECTOR_CONFLICT`` error).

:class:`~customer_model_factory.plugin_api.SectorEvidenceMapping` maps a sector's controls to the
evidence artefact kinds that prove them (a hashed manifest, ``mapping_hash``); it is part of the
plugin API, re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from customer_model_factory.findings import Finding
from customer_model_factory.plugin_api.contracts import (
    DEFAULT_CONTROL_EVIDENCE,
    DEFAULT_SECTOR_FRAMEWORKS,
    SectorEvidenceMapping,
    build_sector_evidence_mapping,
)

if TYPE_CHECKING:
    from customer_model_factory.plugins import CMFPluginManager

__all__ = [
    "DEFAULT_CONTROL_EVIDENCE",
    "DEFAULT_SECTOR_FRAMEWORKS",
    "SectorEvidenceMapping",
    "SectorMetadata",
    "build_sector_evidence_mapping",
    "sector_evidence_mappings",
    "validate_generic_sector_metadata",
    "validate_sector_trace_metadata",
]

_REQUIRED_TEXT: Final = ("sector_class", "knowledge_class", "jurisdiction")
_FLAGS: Final = ("requires_citation", "requires_numeric_evidence", "requires_escalation")
_RULES: Final = (
    ("requires_citation", "evidence_refs", "SECTOR_CITATION_REQUIRED", "a citation"),
    (
        "requires_numeric_evidence",
        "numeric_evidence_refs",
        "SECTOR_NUMERIC_EVIDENCE_MISSING",
        "numeric evidence",
    ),
)


_NonBlank = Annotated[str, StringConstraints(strict=True, min_length=1, pattern=r"\S")]


class SectorMetadata(BaseModel):
    """The generic sector metadata every trace naming a sector carries in ``metadata``.

    Sector packs add their own fields (extra keys are allowed) and rules.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    sector_class: _NonBlank = Field(description="The sector's class of the trace.")
    knowledge_class: _NonBlank = Field(description="The class of knowledge the answer draws on.")
    jurisdiction: _NonBlank = Field(description="Jurisdiction whose rules apply.")
    requires_citation: StrictBool = Field(
        default=False, description="True when the answer must cite: evidence_refs non-empty."
    )
    requires_numeric_evidence: StrictBool = Field(
        default=False,
        description="True when figures must be backed: numeric_evidence_refs non-empty.",
    )
    requires_escalation: StrictBool = Field(
        default=False, description="True when the trace must be escalated to a human."
    )
    evidence_refs: tuple[_NonBlank, ...] = Field(
        default=(), description="Documents the answer cites (ids or URIs)."
    )
    numeric_evidence_refs: tuple[_NonBlank, ...] = Field(
        default=(), description="Sources of the figures the answer states."
    )


def _finding(
    code: str, message: str, trace_id: str | None, field: str, location: str | None
) -> Finding:
    return Finding(
        code=code,
        severity="error",
        message=message,
        trace_id=trace_id,
        field=field,
        location=location,
    )


def _non_empty_refs(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(isinstance(item, str) and item.strip() for item in value)
    )


def _refs_fast(value: Any) -> bool:
    # A plain loop over exact types: a generator expression costs more than the rest of the
    # fast path. ``False`` only sends the trace to the full check.
    if value.__class__ is not list and value.__class__ is not tuple:
        return False
    for item in value:
        if item.__class__ is not str or not item or item.isspace():
            return False
    return len(value) > 0


def validate_generic_sector_metadata(
    trace: Mapping[str, Any], *, location: str | None = None
) -> list[Finding]:
    """Check the generic sector contract (:class:`SectorMetadata`) of one trace.

    Written as plain look-ups rather than a model validation because it runs once per trace
    over datasets of a million rows; a test keeps it in step with :class:`SectorMetadata`.
    """
    if _generic_contract_holds(trace, trace.get("metadata")):
        return []
    return _generic_findings(trace, location)


def _generic_findings(trace: Mapping[str, Any], location: str | None) -> list[Finding]:
    trace_id = trace.get("trace_id")
    trace_id = trace_id if isinstance(trace_id, str) else None
    metadata = trace.get("metadata")
    if not isinstance(metadata, Mapping):
        return [
            _finding(
                "SECTOR_METADATA_MISSING",
                "a trace naming a sector needs a metadata object with sector_class, "
                "knowledge_class and jurisdiction",
                trace_id,
                "metadata",
                location,
            )
        ]
    findings: list[Finding] = []
    for name in _REQUIRED_TEXT:
        value = metadata.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            findings.append(
                _finding(
                    "SECTOR_METADATA_MISSING",
                    f"sector metadata field {name} is missing or blank",
                    trace_id,
                    f"metadata.{name}",
                    location,
                )
            )
        elif not isinstance(value, str):
            findings.append(
                _finding(
                    "SECTOR_METADATA_INVALID",
                    f"sector metadata field {name} must be a string, not {type(value).__name__}",
                    trace_id,
                    f"metadata.{name}",
                    location,
                )
            )
    for name in _FLAGS:
        value = metadata.get(name, False)
        if not isinstance(value, bool):
            findings.append(
                _finding(
                    "SECTOR_METADATA_INVALID",
                    f"sector metadata flag {name} must be true or false",
                    trace_id,
                    f"metadata.{name}",
                    location,
                )
            )
    for flag, refs, code, what in _RULES:
        if metadata.get(flag) is True and not _non_empty_refs(metadata.get(refs)):
            findings.append(
                _finding(
                    code,
                    f"{flag} is set, so {refs} must list {what} (non-empty strings)",
                    trace_id,
                    f"metadata.{refs}",
                    location,
                )
            )
    if metadata.get("requires_escalation") is True and trace.get("expected_decision") != (
        "escalate"
    ):
        findings.append(
            _finding(
                "SECTOR_ESCALATION_REQUIRED",
                "requires_escalation is set, so expected_decision must be escalate",
                trace_id,
                "expected_decision",
                location,
            )
        )
    return findings


def _complete(finding: Any, trace_id: str | None, location: str | None) -> Finding:
    update: dict[str, str] = {}
    if finding.trace_id is None and trace_id is not None:
        update["trace_id"] = trace_id
    if finding.location is None and location is not None:
        update["location"] = location
    return finding.model_copy(update=update) if update else finding


def _generic_contract_holds(trace: Mapping[str, Any], metadata: Any) -> bool:
    """The common case of the generic contract, decided with a handful of look-ups.

    ``False`` only means "look closer": :func:`validate_generic_sector_metadata` then names the
    problems. Unrolled by hand because it runs once per trace over a million rows.
    """
    if metadata.__class__ is not dict:
        return False
    get = metadata.get
    sector_class = get("sector_class")
    knowledge_class = get("knowledge_class")
    jurisdiction = get("jurisdiction")
    if not (
        sector_class.__class__ is str
        and knowledge_class.__class__ is str
        and jurisdiction.__class__ is str
        and sector_class.strip()
        and knowledge_class.strip()
        and jurisdiction.strip()
    ):
        return False
    citation = get("requires_citation", False)
    numeric = get("requires_numeric_evidence", False)
    escalation = get("requires_escalation", False)
    if citation is False and numeric is False and escalation is False:
        return True
    return (
        (citation is False or (citation is True and _refs_fast(get("evidence_refs"))))
        and (numeric is False or (numeric is True and _refs_fast(get("numeric_evidence_refs"))))
        and (
            escalation is False
            or (escalation is True and trace.get("expected_decision") == "escalate")
        )
    )


def validate_sector_trace_metadata(
    trace: Mapping[str, Any],
    *,
    sector_id: str | None = None,
    pm: CMFPluginManager,
    location: str | None = None,
) -> list[Finding]:
    """Validate one trace's sector metadata: the generic contract, then the owning pack's rules.

    :param trace: the trace object (read-only).
    :param sector_id: the sector to validate against; defaults to ``trace["vertical"]``. A trace
        with neither has no sector and gets no finding.
    :param pm: the run's plugin manager.
    :param location: ``file:line`` put on every finding.
    :returns: findings carrying ``trace_id``, ``field`` and ``location``: ``SECTOR_*`` from the
        generic contract and the pack, ``SECTOR_METADATA_SCHEMA`` where the pack's declared
        metadata model or schema rejects the row, ``SECTOR_UNKNOWN`` for a sector no pack owns,
        ``PLUGIN_HOOK_FAILED`` when the pack's validator raises or returns a non-finding.
    """
    if sector_id is None:
        vertical = trace.get("vertical")
        if vertical is None or vertical == "":
            return []
        sector_id = vertical if vertical.__class__ is str else str(vertical)
    metadata = trace.get("metadata")
    findings = (
        [] if _generic_contract_holds(trace, metadata) else _generic_findings(trace, location)
    )
    # The resolved owner is cached on the manager; look there before paying for a method call.
    dispatch = pm.sector_dispatches.get(sector_id) or pm.sector_dispatch(sector_id)
    if dispatch is None:
        findings.append(_unknown_sector(trace, sector_id, location))
        return findings
    if metadata.__class__ is not dict and not isinstance(metadata, Mapping):
        metadata = {}
    # A field the generic contract already reported is not reported twice.
    reported = {finding.field for finding in findings}
    problems = [p for p in dispatch.metadata_problems(metadata) if p[0] not in reported]
    if problems:
        trace_id = _trace_id_of(trace)
        findings.extend(
            Finding(
                code="SECTOR_METADATA_SCHEMA",
                severity="error",
                message=f"sector {sector_id!r} metadata does not match the pack's schema: {text}",
                trace_id=trace_id,
                field=field,
                location=location,
            )
            for field, text in problems
        )
        return findings
    call = dispatch.call
    if call is None:
        return findings
    try:
        result = call(sector_id, trace, metadata)
    except Exception as error:
        findings.append(_hook_failed(dispatch.plugin_name, trace, location, error=error))
        return findings
    if result:
        findings.extend(_pack_findings(result, dispatch.plugin_name, trace, location))
    return findings


def _trace_id_of(trace: Mapping[str, Any]) -> str | None:
    trace_id = trace.get("trace_id")
    return trace_id if isinstance(trace_id, str) else None


def _unknown_sector(trace: Mapping[str, Any], sector_id: str, location: str | None) -> Finding:
    return Finding(
        code="SECTOR_UNKNOWN",
        severity="error",
        message=f"sector {sector_id!r} is not owned by any loaded sector pack "
        "(see `cmf plugins list`)",
        trace_id=_trace_id_of(trace),
        field="vertical",
        location=location,
    )


def _hook_failed(
    plugin: str,
    trace: Mapping[str, Any],
    location: str | None,
    *,
    error: Exception | None = None,
    returned: object = None,
) -> Finding:
    if error is not None:
        problem = f"raised {type(error).__name__}: {' '.join(str(error).split())[:200]}"
    else:
        problem = f"returned a {type(returned).__name__}, not a Finding"
    return Finding(
        code="PLUGIN_HOOK_FAILED",
        severity="error",
        message=f"plugin {plugin!r} hook cmf_validate_sector_metadata {problem}",
        trace_id=_trace_id_of(trace),
        location=location,
    )


def _pack_findings(
    result: Any, plugin: str, trace: Mapping[str, Any], location: str | None
) -> list[Finding]:
    trace_id = _trace_id_of(trace)
    if not isinstance(result, list | tuple):
        return [_hook_failed(plugin, trace, location, returned=result)]
    return [
        _complete(item, trace_id, location)
        if isinstance(item, Finding)
        else _hook_failed(plugin, trace, location, returned=item)
        for item in result
    ]


def sector_evidence_mappings(
    sector_id: str, pm: CMFPluginManager
) -> tuple[list[SectorEvidenceMapping], list[Finding]]:
    """Return the evidence mappings the owner of ``sector_id`` gives, with the findings met."""
    from customer_model_factory.plugins import collect_evidence_mappings  # noqa: PLC0415

    return collect_evidence_mappings(sector_id, pm)
