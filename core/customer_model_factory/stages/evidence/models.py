"""The evidence pack manifest (``kind: evidence-pack``).

Field names follow the reference ``CustomerEvidencePackManifest`` (``package_id``,
``deployment_id``, ``environment``, ``classification``, ``export_uri``,
``external_callbacks_allowed``, ``callback_endpoints``, ``artefacts``, ``control_evidence``,
``evidence_hash``). We add every artefact's digest, size and place in the exported pack, the
sector evidence mappings it was checked against (by hash and owning pack) and, for every control
of every mapping, which evidence kinds are present and which are missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from customer_model_factory.manifest import HASH_PATTERN, BoundManifest
from customer_model_factory.stages.deployment.models import Environment

__all__ = [
    "BUILTIN_EVIDENCE",
    "CLASSIFICATIONS",
    "DEFERRED_EVIDENCE",
    "PACK_PATH_PATTERN",
    "Classification",
    "ControlCoverage",
    "CustomerEvidencePackManifest",
    "EvidenceArtefact",
    "SectorMappingRef",
    "check_pack_path",
]

PACK_PATH_PATTERN: Final = r"^[^/\\\x00-\x1f\x7f]+(/[^/\\\x00-\x1f\x7f]+)*$"
"""A relative POSIX path: no leading, doubled or trailing slash, no backslash or control
character (``.`` and ``..`` segments are refused by the model's validator too)."""


def check_pack_path(value: str) -> str:
    """Return ``value`` when it is a relative POSIX path that stays inside the pack's root.

    :raises ValueError: an absolute path, an empty, ``.`` or ``..`` segment, a backslash or a
        control character.
    """
    if not re.match(PACK_PATH_PATTERN, value) or any(
        part in {".", ".."} for part in value.split("/")
    ):
        raise ValueError("a pack path is relative POSIX with no '.', '..' or empty segment")
    return value


BUILTIN_EVIDENCE: Final[Mapping[str, str]] = {
    "benchmark_result_hash": "benchmark",
    "bundle_hash": "bundle",
    "calibration_result_hash": "calibration",
    "data_classification": "field:classification",
    "dataset_hash": "dataset_report",
    "decision_log_uri": "audit_log",
    "deployment_hash": "deployment",
    "escalation_policy": "deployment",
    "evidence_refs": "dataset_report",
    "ledger_events": "gate_receipt",
    "model_digest": "model",
    "numeric_evidence_refs": "dataset_report",
    "raw_result_digest": "raw_results",
    "redaction_report": "dataset_report",
    "rollback_package_uri": "rollback",
    "selection_hash": "selection",
    "source_refs": "dataset_report",
    "telemetry_mode": "telemetry",
    "training_manifest_hash": "training_manifest",
}
"""Evidence kind -> the role of the pack artefact (or ``field:<name>`` of the manifest) that
proves it. ``dataset_report`` proves the per-row kinds (``source_refs``, ``evidence_refs``,
``numeric_evidence_refs``, ``redaction_report``) because the dataset contract checked them on
every row (a ready report has no row missing them and no unredacted secret)."""

DEFERRED_EVIDENCE: Final[Mapping[str, str]] = {
    "monitoring_hash": "monitoring",
    "review_queue_uri": "monitoring",
    "risk_register_hash": "risk-register",
    "runtime_hash": "runtime-package",
}
"""Evidence kinds only a later stage produces -> the manifest kind that proves them. The pack
records them as deferred (``ControlCoverage.deferred``, ``evidence_kinds[kind] ==
"deferred:<manifest kind>"``); the release gate checks them against that manifest."""

Classification = Literal["internal", "confidential", "restricted"]
CLASSIFICATIONS: Final[tuple[str, ...]] = get_args(Classification)
"""Evidence pack classifications, least to most restricted."""


class EvidenceArtefact(BaseModel):
    """One file of the evidence pack."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: str = Field(
        min_length=1,
        description="What it is in the pack: deployment, selection, benchmark, model, audit_log, "
        "rollback, telemetry, dataset_report, training_manifest, sector_mapping.<sector>, ...",
    )
    kind: str = Field(description="Its manifest kind, or the artefact kind for a plain file.")
    digest: str = Field(pattern=HASH_PATTERN, description="sha256 of its bytes.")
    size_bytes: int = Field(ge=0, description="Its size.")
    path: str = Field(
        pattern=PACK_PATH_PATTERN,
        max_length=512,
        description="Its relative POSIX path inside an exported pack (no '.', '..' or empty "
        "segment, no backslash or control character).",
    )

    @field_validator("path")
    @classmethod
    def _path_stays_inside(cls, value: str) -> str:
        return check_pack_path(value)

    source_uri: str = Field(description="Where it was read from when the pack was built.")
    manifest_hash: str | None = Field(
        default=None,
        pattern=HASH_PATTERN,
        description="The manifest's own hash field value, when the artefact is a manifest.",
    )


class SectorMappingRef(BaseModel):
    """A sector evidence mapping the pack was checked against."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sector_id: str
    mapping_hash: str = Field(pattern=HASH_PATTERN)
    jurisdiction: str
    frameworks: tuple[str, ...]
    plugin: str | None = Field(description="The pack that owns the sector (None: the default).")
    distribution: str | None = None
    version: str | None = None


class ControlCoverage(BaseModel):
    """For one control of one sector mapping: the evidence kinds it needs, has and lacks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sector_id: str
    control: str
    required: tuple[str, ...] = Field(description="Evidence kinds the mapping requires (sorted).")
    present: tuple[str, ...] = Field(description="Of those, the ones the pack holds (sorted).")
    deferred: tuple[str, ...] = Field(
        default=(),
        description="Of those, the ones only a later stage produces (risk register, monitoring, "
        "runtime package): not an error here, checked by the release gate (sorted).",
    )
    missing: tuple[str, ...] = Field(description="Required but absent: each is an error finding.")


class CustomerEvidencePackManifest(BoundManifest):
    """Stage 6's manifest: every artefact of the chain by digest, and the controls they prove."""

    KIND: ClassVar[str] = "evidence-pack"
    HASH_FIELD: ClassVar[str] = "evidence_hash"
    SCHEMA_NAME: ClassVar[str] = "evidence-pack"
    SCHEMA_VERSIONS: ClassVar[tuple[str, ...]] = ("1",)

    package_id: str = Field(min_length=1, description="The evidence pack's id.")
    deployment_id: str = Field(description="The deployment it documents.")
    deployment_hash: str = Field(pattern=HASH_PATTERN, description="Its deployment_hash.")
    environment: Environment
    classification: Classification
    export_uri: str = Field(description="Where the pack is exported (directory or .tar.gz).")
    external_callbacks_allowed: bool = Field(description="Off unless the operator opts in.")
    callback_endpoints: tuple[str, ...] = Field(
        description="https endpoints that may receive callbacks (each on the allow list)."
    )
    callback_allowlist: tuple[str, ...] = Field(
        default=(), description="Hosts the operator allowed callbacks to."
    )
    artefacts: dict[str, str] = Field(description="role -> digest of every artefact (reference).")
    artefact_files: tuple[EvidenceArtefact, ...] = Field(
        description="Every artefact, sorted by role."
    )
    evidence_kinds: dict[str, str] = Field(
        description="Evidence kind -> the role of the artefact (or the field) that proves it."
    )
    control_evidence: dict[str, tuple[str, ...]] = Field(
        description="Control id -> evidence kinds present for it, over every mapping."
    )
    sector_mappings: tuple[SectorMappingRef, ...] = Field(
        description="The evidence mappings of the packs that own the data's sectors."
    )
    control_coverage: tuple[ControlCoverage, ...] = Field(
        description="Every control of every mapping, sorted by sector then control."
    )
    evidence_hash: str = Field(default="", description="sha256 over every other field.")
