"""The typed contracts of the plugin API: what packs contribute, and what stages hand to packs.

Every contribution hook returns a list of these frozen models; the plugin manager validates them,
rejects duplicate ids naming both plugins, and sorts them by id before anything is hashed. The
objects a stage passes *to* a pack (:class:`ReleaseCheckInput`, :class:`TrainingExample`) are
frozen models with named fields, never mappings of guessed keys; a training lane is a
:class:`TrainingLane` protocol, never ``Callable[..., Any]``. Nothing here imports a stage, so a
pack importing :mod:`customer_model_factory.plugin_api` pulls in no stage code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal, Protocol, runtime_checkable

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from customer_model_factory.findings import Finding
from customer_model_factory.manifest import HASH_PATTERN, Manifest

__all__ = [
    "DEFAULT_CONTROL_EVIDENCE",
    "DEFAULT_SECTOR_FRAMEWORKS",
    "HASHED_IDENTIFIER_RE",
    "IDENTIFIER_HASH_SCHEME",
    "ArtefactRef",
    "BenchmarkPackage",
    "EvidenceMappingSpec",
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
    "build_sector_evidence_mapping",
]

_ID_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
IDENTIFIER_HASH_SCHEME: Final = "cmf-boundary-v1"
"""Hash scheme of hashed proprietary identifiers; see :mod:`customer_model_factory.boundary`."""
HASHED_IDENTIFIER_RE: Final = re.compile(r"^sha256:[0-9a-f]{64}$")
"""The form of one hashed identifier under :data:`IDENTIFIER_HASH_SCHEME`."""


def _check_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(f"{value!r} is not a lower-case id (a-z, 0-9, '.', '_', '-')")
    return value


LowerId = Annotated[str, AfterValidator(_check_id)]


class _Contribution(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class SectorPack(_Contribution):
    """A sector (vertical) a plugin provides: its id, version, frameworks and metadata contract."""

    id: LowerId = Field(description="Sector id traces name in their `vertical` field.")
    version: str = Field(description="Version of the sector pack's contract.")
    title: str = Field(description="Human-readable name.")
    jurisdiction: str = Field(description="Jurisdiction the pack targets (e.g. EU, US, UK).")
    frameworks: tuple[str, ...] = Field(default=(), description="Public frameworks it maps to.")
    metadata_model: type[BaseModel] | None = Field(
        default=None, description="Pydantic model of the sector's trace metadata."
    )
    metadata_schema: dict[str, Any] | None = Field(
        default=None, description="JSON Schema of the sector's trace metadata."
    )
    finding_codes: Mapping[str, str] = Field(
        default_factory=dict, description="Codes of the pack's own findings → meaning."
    )
    description: str = ""

    def trace_metadata_schema(self) -> dict[str, Any] | None:
        """Return the JSON Schema of the sector metadata (from the model when one is given)."""
        if self.metadata_schema is not None:
            return self.metadata_schema
        if self.metadata_model is not None:
            return self.metadata_model.model_json_schema()
        return None


class RetrievalSchema(_Contribution):
    """A private retrieval / database-class schema that `source_refs` entries are checked against.

    A trace `source_refs` entry names it either as an object ``{"schema": "<id>", ...}`` or as a
    string ``"<id>:<document-ref>"`` whose prefix is a registered schema id.
    """

    id: LowerId = Field(description="Schema id named by source_refs entries.")
    version: str = Field(description="Version of the schema.")
    sector_id: str | None = Field(default=None, description="Sector that owns it, if any.")
    json_schema: dict[str, Any] = Field(description="JSON Schema (Draft 2020-12) of an entry.")
    description: str = ""


class MetricConstraint(_Contribution):
    """A bound on one benchmark metric (``recall >= 0.9``)."""

    metric: str
    op: Literal[">=", "<=", "=="]
    value: float

    def holds(self, observed: float) -> bool:
        """Return whether ``observed`` satisfies the bound."""
        if self.op == ">=":
            return observed >= self.value
        if self.op == "<=":
            return observed <= self.value
        return observed == self.value


class BenchmarkPackage(_Contribution):
    """A benchmark package: labelled traces, the claim they support, and the thresholds to meet."""

    id: LowerId
    version: str
    sector_id: str | None = None
    trace_source: str = Field(description="Path or file:// URI of the package's JSONL traces.")
    claim_boundary: str = Field(description="What a pass does and does not claim.")
    thresholds: tuple[MetricConstraint, ...] = Field(default=())
    description: str = ""


class ObjectiveProfile(_Contribution):
    """A model-selection objective: eligibility constraints, then a weighted score to maximise."""

    name: LowerId
    description: str = ""
    constraints: tuple[MetricConstraint, ...] = Field(default=())
    score_weights: Mapping[str, float] = Field(
        description="metric → weight; the candidate with the largest weighted sum wins."
    )
    min_high_risk_samples: int = Field(
        default=0, ge=0, description="Minimum high-risk traces in the benchmark to be eligible."
    )


class TrainingExample(BaseModel):
    """One labelled trace as a training lane sees it (the core maps labels to ``unsafe``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trace_id: str
    prompt: str
    response: str
    unsafe: bool = Field(description="True when the trace's label maps to the unsafe class.")
    severity: Literal["low", "medium", "high", "critical"]
    vertical: str | None = None


@runtime_checkable
class TrainedScorer(Protocol):
    """A fitted scorer a lane returns: it scores batches and saves itself without pickle."""

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> Sequence[float]:
        """Return P(unsafe) in [0, 1] for each prompt/response pair, in order."""
        ...

    def save(self, directory: Path) -> Mapping[str, str]:
        """Write weights (arrays) and config (JSON) into ``directory``; never pickle.

        :returns: file name → ``sha256:<hex>`` of every file written.
        """
        ...


@runtime_checkable
class TrainingLane(Protocol):
    """A lane that really trains: fit on traces, load saved weights back."""

    def fit(
        self,
        examples: Sequence[TrainingExample],
        *,
        hyperparameters: Mapping[str, Any],
        seed: int,
    ) -> TrainedScorer:
        """Fit a scorer on the training split only, deterministically for a given seed."""
        ...

    def load(self, directory: Path) -> TrainedScorer:
        """Rebuild a saved scorer from the files :meth:`TrainedScorer.save` wrote."""
        ...


class TrainingLaneSpec(_Contribution):
    """A training lane: where and how a scorer is trained.

    ``lane`` is the :class:`TrainingLane` that trains in this process; a lane without one is
    manifest-only (training happens elsewhere, e.g. a private GPU cluster, and the produced
    artefact is imported by digest). ``train`` is the plugin API 1.0 form and is deprecated:
    it still loads, with a ``PLUGIN_DEPRECATED`` warning, and will be removed in API 2.0.
    """

    name: LowerId
    requires_private_execution: bool = Field(
        description="True when the lane must run inside the customer's environment."
    )
    lane: TrainingLane | None = Field(
        default=None, description="The lane object that trains here; None for manifest-only."
    )
    output_uri_schemes: tuple[str, ...] = Field(
        default=("cmf", "file"), description="URI schemes the lane's output may be written to."
    )
    train: Callable[..., Any] | None = Field(
        default=None, description="Deprecated (API 1.0): a train callable; use `lane`."
    )
    description: str = ""

    @model_validator(mode="after")
    def _lane_is_a_lane(self) -> TrainingLaneSpec:
        if self.lane is not None and not isinstance(self.lane, TrainingLane):
            raise ValueError("lane must implement the TrainingLane protocol (fit, load)")
        return self


class ProprietaryIdentifiers(_Contribution):
    """Identifiers, path globs and schema ids that must never appear in the public tree.

    Public packs publish identifiers only as ``hashed`` entries: ``sha256:<hex>`` of
    ``salt + normalised identifier`` under :data:`IDENTIFIER_HASH_SCHEME`. ``literals`` are for
    packs that are themselves private.
    """

    source: str = Field(description="Label naming where the rules come from (shown in reports).")
    literals: tuple[str, ...] = ()
    hashed: tuple[str, ...] = ()
    salt: str = ""
    hash_scheme: str = IDENTIFIER_HASH_SCHEME
    separator_insensitive: bool = False
    path_globs: tuple[str, ...] = ()
    schema_ids: tuple[str, ...] = ()


class SectorEvidenceMapping(Manifest):
    """How a sector's controls are proved: control id → evidence artefact kinds, per framework.

    A pack-level mapping (returned by ``cmf_evidence_mappings``) is bound to no customer; the
    evidence stage binds the mappings of the data's sectors into the customer's evidence pack.
    ``mapping_hash`` covers every other field.
    """

    KIND: ClassVar[str] = "sector-evidence-mapping"
    HASH_FIELD: ClassVar[str] = "mapping_hash"
    SCHEMA_NAME: ClassVar[str] = "sector-evidence-mapping"
    SCHEMA_VERSIONS: ClassVar[tuple[str, ...]] = ("2",)

    sector_id: str = Field(description="The sector (a pack's sector id).")
    jurisdiction: str = Field(description="Jurisdiction whose rules the mapping follows.")
    evidence_pack_uri: str = Field(description="Where the evidence pack lives (file:// or cmf://).")
    frameworks: tuple[str, ...] = Field(description="Frameworks the controls serve, sorted.")
    control_evidence: dict[str, tuple[str, ...]] = Field(
        description="Control id → evidence artefact kinds that prove it (sorted)."
    )
    mapping_hash: str = Field(default="", description="sha256 over every other field.")


DEFAULT_SECTOR_FRAMEWORKS: Final[tuple[str, ...]] = ("ISO27001", "ISO42001", "SOC2")
"""Frameworks a mapping claims when none are given."""

DEFAULT_CONTROL_EVIDENCE: Final[Mapping[str, tuple[str, ...]]] = {
    "audit_logging": ("decision_log_uri", "ledger_events"),
    "customer_data_protection": ("data_classification", "redaction_report"),
    "dataset_lineage": ("dataset_hash", "training_manifest_hash"),
    "document_grounding": ("evidence_refs", "source_refs"),
    "human_escalation": ("escalation_policy", "review_queue_uri"),
    "model_risk": ("benchmark_result_hash", "risk_register_hash"),
}
"""Control id → the evidence artefact kinds that prove it, when no mapping is given."""


def build_sector_evidence_mapping(
    *,
    sector_id: str,
    jurisdiction: str,
    evidence_pack_uri: str,
    frameworks: Sequence[str] = DEFAULT_SECTOR_FRAMEWORKS,
    control_evidence: Mapping[str, Sequence[str]] | None = None,
) -> SectorEvidenceMapping:
    """Build a deterministic, hashed evidence mapping.

    Frameworks and evidence kinds are de-duplicated and sorted. A control without evidence kinds
    (``SECTOR_EVIDENCE_CONTROL_EMPTY``) or a mapping without frameworks
    (``SECTOR_EVIDENCE_NO_FRAMEWORK``) is an error finding, so the mapping is not ready.
    """
    controls = DEFAULT_CONTROL_EVIDENCE if control_evidence is None else control_evidence
    normalised = {
        control: tuple(sorted({kind.strip() for kind in kinds if kind.strip()}))
        for control, kinds in sorted(controls.items())
    }
    findings = [
        Finding(
            code="SECTOR_EVIDENCE_CONTROL_EMPTY",
            severity="error",
            message=f"control {control} lists no evidence kind",
            field=f"control_evidence.{control}",
        )
        for control, kinds in normalised.items()
        if not kinds
    ]
    unique_frameworks = tuple(sorted({name.strip() for name in frameworks if name.strip()}))
    if not unique_frameworks:
        findings.append(
            Finding(
                code="SECTOR_EVIDENCE_NO_FRAMEWORK",
                severity="error",
                message="an evidence mapping names at least one framework",
                field="frameworks",
            )
        )
    return SectorEvidenceMapping.seal(
        sector_id=sector_id,
        jurisdiction=jurisdiction,
        evidence_pack_uri=evidence_pack_uri,
        frameworks=unique_frameworks,
        control_evidence=normalised,
        findings=findings,
    )


class EvidenceMappingSpec(_Contribution):
    """An unsealed evidence mapping a pack may return instead of a sealed one; the core seals it.

    ``frameworks`` and evidence kinds are de-duplicated and sorted when sealed.
    """

    sector_id: str
    jurisdiction: str
    evidence_pack_uri: str
    frameworks: tuple[str, ...] = DEFAULT_SECTOR_FRAMEWORKS
    control_evidence: Mapping[str, tuple[str, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_CONTROL_EVIDENCE)
    )


class ArtefactRef(BaseModel):
    """One artefact of the chain as a release check sees it: kind, hash, where, and content."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    hash: str = Field(pattern=HASH_PATTERN)
    uri: str | None = None
    manifest: Manifest | None = Field(
        default=None, description="The verified manifest, when the artefact is one."
    )


class ReleaseCheckInput(BaseModel):
    """Everything a release gate passes to ``cmf_release_checks``: every artefact of the chain
    by name, plus the binding, the sectors and the environment. Read-only.

    Fields of stages a release did not use are ``None`` (or empty). New stages add fields (a
    minor plugin API bump); none is ever renamed within a major version.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: str
    workspace_id: str
    tenant_id: str
    deployment_id: str | None = None
    environment: Literal["development", "staging", "production"] | None = None
    sector_ids: tuple[str, ...] = ()
    dataset_report: ArtefactRef | None = None
    training_manifest: ArtefactRef | None = None
    benchmark_results: tuple[ArtefactRef, ...] = ()
    selection: ArtefactRef | None = None
    deployment: ArtefactRef | None = None
    sector_evidence: tuple[ArtefactRef, ...] = ()
    evidence_pack: ArtefactRef | None = None
    runtime_package: ArtefactRef | None = None
    monitoring: ArtefactRef | None = None
    risk_register: ArtefactRef | None = None
    findings: tuple[Finding, ...] = Field(
        default=(), description="The core's own release findings so far."
    )

    def as_mapping(self) -> dict[str, Any]:
        """The plugin API 1.0 ``context`` mapping (deprecated), built from the typed fields."""

        def value(ref: Any) -> Any:
            if isinstance(ref, ArtefactRef):
                return ref.manifest if ref.manifest is not None else ref
            return ref

        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            field_value = getattr(self, name)
            out[name] = (
                tuple(value(item) for item in field_value)
                if isinstance(field_value, tuple)
                else value(field_value)
            )
        return out


class ReleaseDomain(_Contribution):
    """A release domain: the evidence record a release gate requires, declared, not coded.

    The core declares ten (observability, provenance, conformal routing, rollback, multimodal,
    federated privacy, edge, auto-redteam, formal, deployment hardening); a pack adds its own
    through ``cmf_release_domains``. A domain evidence record names the domain, the environment,
    a URI for each of ``required_uris``, a boolean for each of ``required_checks`` (each must be
    true), and an evidence file whose sha256 the gate recomputes. In an environment listed in
    ``required_in`` a missing record blocks promotion; elsewhere a record is checked when given.

    .. versionadded:: 1.2
    """

    name: LowerId = Field(description="The domain id records name in their `domain` field.")
    title: str = Field(default="", description="A short human title.")
    required_uris: tuple[LowerId, ...] = Field(
        default=(), description="URI names a record must give (each a URI with a scheme)."
    )
    required_checks: tuple[LowerId, ...] = Field(
        default=(), description="Boolean checks a record must give, each true."
    )
    required_in: tuple[Literal["development", "staging", "production"], ...] = Field(
        default=(), description="Environments where a release without a record is blocked."
    )
    description: str = ""

    @model_validator(mode="after")
    def _requires_something(self) -> ReleaseDomain:
        if not self.required_uris and not self.required_checks:
            raise ValueError("a release domain requires at least one URI or one check")
        for name, values in (
            ("required_uris", self.required_uris),
            ("required_checks", self.required_checks),
            ("required_in", self.required_in),
        ):
            if len(set(values)) != len(values):
                raise ValueError(f"{name} lists a name twice")
        return self


class SectorOwner(BaseModel):
    """Which pack validated a sector in a stage run: recorded in that stage's report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    plugin: str = Field(description="The plugin (entry-point) name.")
    distribution: str | None = Field(description="The distribution that ships it.")
    version: str | None = Field(description="That distribution's version.")
    pack_version: str = Field(description="The sector pack's own contract version.")
