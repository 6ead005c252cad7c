"""The typed objects plugins contribute through the hooks of :mod:`.hookspecs`.

Every contribution hook returns a list of these frozen models; the plugin manager validates them,
rejects duplicate ids naming both plugins, and sorts them by id before anything is hashed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "HASHED_IDENTIFIER_RE",
    "IDENTIFIER_HASH_SCHEME",
    "BenchmarkPackage",
    "MetricConstraint",
    "ObjectiveProfile",
    "ProprietaryIdentifiers",
    "RetrievalSchema",
    "SectorPack",
    "TrainingLaneSpec",
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


class TrainingLaneSpec(_Contribution):
    """A training lane: where and how a scorer is trained."""

    name: LowerId
    requires_private_execution: bool = Field(
        description="True when the lane must run inside the customer's environment."
    )
    train: Callable[..., Any] = Field(description="The callable that trains a scorer.")
    description: str = ""


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
