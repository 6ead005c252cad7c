"""The release gate (``kind: release-gate``), its blockers and domain evidence records.

Field names follow the reference ``CustomerReleaseGateManifest`` (``release_id``,
``promotion_allowed``, ``deployment_id``, ``generated_at``, ``enterprise_ready``,
``enterprise_blocking_debt_ids``, ``artifact_hashes``, ``blockers``, ``release_hash``).
Promotion is allowed only when there is no blocker; every blocker names its source artefact and
a registered ``RELEASE_*`` (or plugin) code, and is also an error finding.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from customer_model_factory.manifest import HASH_PATTERN, BoundManifest
from customer_model_factory.stages.deployment.models import Environment

__all__ = [
    "Blocker",
    "CustomerReleaseGateManifest",
    "DomainEvidenceRecord",
    "DomainEvidenceResult",
    "EnterpriseReadiness",
]


class EnterpriseReadiness(BaseModel):
    """The enterprise readiness input: ``{"ready": bool, "blocking_debt_ids": [...]}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ready: StrictBool = Field(description="The enterprise's readiness verdict (a JSON boolean).")
    blocking_debt_ids: tuple[str, ...] = Field(
        default=(), description="Debt items that block promotion; any one blocks."
    )


class DomainEvidenceRecord(BaseModel):
    """A domain evidence record, as an operator writes it (one JSON object a file).

    ``evidence_uri`` names the evidence file (``file:///absolute/path``, a path relative to the
    record's directory, or ``cmf://sha256/<hex>`` in the factory home's store); the gate reads
    it and recomputes its sha256, which must equal ``evidence_hash``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    domain: str = Field(min_length=1, description="The release domain (observability, ...).")
    environment: Environment = Field(description="The environment the evidence was taken in.")
    uris: dict[str, str] = Field(default_factory=dict, description="URI name -> URI.")
    checks: dict[str, StrictBool] = Field(
        default_factory=dict, description="Check name -> its result (JSON booleans only)."
    )
    evidence_uri: str = Field(min_length=1, description="Where the evidence file is.")
    evidence_hash: str = Field(pattern=HASH_PATTERN, description="sha256 of its bytes.")


class Blocker(BaseModel):
    """One reason promotion is not allowed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(description="A registered finding code (RELEASE_* or a plugin's code).")
    source: str = Field(
        description="The artefact it comes from: a manifest kind (runtime-package, monitoring, "
        "...), enterprise-readiness, domain.<name> or plugin.<name>."
    )
    source_hash: str | None = Field(
        default=None, pattern=HASH_PATTERN, description="That artefact's hash, if known."
    )
    message: str


class DomainEvidenceResult(BaseModel):
    """One domain evidence record as the gate checked it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    domain: str
    definition_source: str = Field(description="'core' or the plugin that added the domain.")
    environment: str
    uris: dict[str, str] = Field(description="Required URI name -> URI.")
    checks: dict[str, bool] = Field(description="Required check name -> result.")
    evidence_uri: str
    evidence_hash: str = Field(description="The hash the record claims.")
    recomputed_hash: str | None = Field(
        description="sha256 of the referenced file's bytes (None when it could not be read)."
    )
    status: Literal["pass", "blocked"]


class CustomerReleaseGateManifest(BoundManifest):
    """Stage 10's manifest: the promotion decision over the whole chain."""

    KIND: ClassVar[str] = "release-gate"
    HASH_FIELD: ClassVar[str] = "release_hash"
    SCHEMA_NAME: ClassVar[str] = "release-gate"
    SCHEMA_VERSIONS: ClassVar[tuple[str, ...]] = ("1",)

    release_id: str = Field(min_length=1)
    promotion_allowed: bool = Field(description="True only when there is no blocker.")
    deployment_id: str
    environment: str
    generated_at: str = Field(description="RFC 3339 UTC instant of the decision.")
    enterprise_ready: bool
    enterprise_blocking_debt_ids: tuple[str, ...]
    artifact_hashes: dict[str, str] = Field(
        description="Every artefact of the chain (manifest kind or role) -> its verified hash."
    )
    chain_verified: bool = Field(
        description="Every hash link back to the dataset report was recomputed and matched."
    )
    monitoring_health: str
    domain_evidence: tuple[DomainEvidenceResult, ...] = Field(description="Sorted by domain.")
    blockers: tuple[Blocker, ...] = Field(description="Sorted by source, then code.")
    release_hash: str = Field(default="", description="sha256 over every other field.")
