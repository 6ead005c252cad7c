"""The risk register (``kind: risk-register``) and its risk exceptions.

Field names follow the reference ``CustomerRiskRegister`` and ``CustomerRiskException``. Times are
RFC 3339 strings in the file and are always compared as parsed UTC instants, never as text.
"""

from __future__ import annotations

from typing import ClassVar, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.manifest import HASH_PATTERN, BoundManifest

__all__ = [
    "RISK_STATUSES",
    "CustomerRiskException",
    "CustomerRiskRegister",
    "RiskStatus",
]

RiskStatus = Literal["accepted", "mitigated", "rejected"]
RISK_STATUSES: Final[tuple[str, ...]] = get_args(RiskStatus)
"""What was decided about a risk."""


class CustomerRiskException(BaseModel):
    """One risk or exception decision (the reference fields)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    risk_id: str = Field(min_length=1)
    status: RiskStatus
    severity: Literal["low", "medium", "high", "critical"]
    owner: str = Field(description="Who owns the risk (a role or team; required when accepted).")
    accepted_at: str = Field(description="RFC 3339 instant of acceptance ('' when not accepted).")
    expires_at: str = Field(description="RFC 3339 instant the acceptance expires ('' if none).")
    compensating_controls: tuple[str, ...] = Field(
        description="Controls that hold while the risk is accepted."
    )
    linked_artifact_hashes: dict[str, str] = Field(
        description="Artefact kind -> hash this decision was taken against (evidence-pack and "
        "monitoring at least, for an accepted risk)."
    )
    rationale: str


class CustomerRiskRegister(BoundManifest):
    """Stage 9's manifest: every risk decision, checked against the current evidence."""

    KIND: ClassVar[str] = "risk-register"
    HASH_FIELD: ClassVar[str] = "register_hash"
    SCHEMA_NAME: ClassVar[str] = "risk-register"
    SCHEMA_VERSIONS: ClassVar[tuple[str, ...]] = ("1",)

    register_id: str = Field(min_length=1)
    deployment_id: str
    evidence_hash: str = Field(pattern=HASH_PATTERN, description="The current evidence pack.")
    monitoring_hash: str = Field(pattern=HASH_PATTERN, description="The current monitoring.")
    generated_at: str = Field(description="RFC 3339 UTC instant expiry is judged at.")
    risks: tuple[CustomerRiskException, ...] = Field(description="Sorted by risk_id.")
    register_hash: str = Field(default="", description="sha256 over every other field.")
