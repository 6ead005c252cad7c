"""The runtime package (``kind: runtime-package``) and the decision log a runtime writes.

Field names follow the reference ``CustomerRuntimePackage`` (``runtime_id``, ``deployment_id``,
``evidence_hash``, ``runtime_mode``, ``runtime_config``, ``runtime_hash``). ``runtime_config`` is
typed here: the model (every file by digest, verified when loaded), the deployment policy, the
callback policy of the evidence pack, a cost model, and the reference histograms monitoring
measures drift against, carried from the selected benchmark result so the reference data is
never re-read.

A runtime appends one :class:`DecisionRecord` per scored trace to its decision log (JSONL, one
object a line); ``cmf monitor`` reads that log.
"""

from __future__ import annotations

from typing import ClassVar, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from customer_model_factory.manifest import HASH_PATTERN, BoundManifest
from customer_model_factory.stages.benchmark.models import ReferenceHistograms
from customer_model_factory.stages.deployment.models import DeploymentPolicy, Environment
from customer_model_factory.stages.training.models import ModelArtefact

__all__ = [
    "DECISIONS",
    "RUNTIME_MODES",
    "CallbackPolicy",
    "CostModel",
    "CustomerRuntimePackage",
    "DecisionRecord",
    "RuntimeConfig",
    "RuntimeMode",
]

RuntimeMode = Literal["offline_private", "customer_cloud_private", "on_prem"]
RUNTIME_MODES: Final[tuple[str, ...]] = get_args(RuntimeMode)
"""Where the runtime runs (the reference's runtime modes)."""
DECISIONS: Final[tuple[str, ...]] = ("approve", "escalate", "abstain", "block")
"""Runtime decisions, least to most restrictive."""


class CallbackPolicy(BaseModel):
    """The evidence pack's callback policy, as the runtime enforces it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    external_callbacks_allowed: bool
    callback_endpoints: tuple[str, ...]


class CostModel(BaseModel):
    """How monitoring prices decisions: a fixed cost each plus compute time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: str = Field(default="USD", min_length=1)
    per_decision: float = Field(default=0.0, ge=0.0, description="Fixed cost of one decision.")
    per_compute_second: float = Field(
        default=0.0, ge=0.0, description="Cost of one second of scoring time."
    )


class RuntimeConfig(BaseModel):
    """Everything a runtime needs to score: model, policy, callbacks, cost, drift reference."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelArtefact = Field(description="The deployed model; every file digest-verified.")
    model_dir: str = Field(
        description="Relative POSIX directory (inside the runtime package directory) that holds "
        "the model files."
    )
    environment: Environment
    package_version: str = Field(description="Recorded in every decision.")
    policy: DeploymentPolicy
    callbacks: CallbackPolicy
    cost_model: CostModel
    reference_histograms: ReferenceHistograms = Field(
        description="Score and input-length histograms from the selected benchmark result."
    )
    reference_result_hash: str = Field(
        pattern=HASH_PATTERN, description="result_hash of the benchmark result they come from."
    )

    @field_validator("model_dir")
    @classmethod
    def _model_dir_stays_inside(cls, value: str) -> str:
        # The package directory is the root: an absolute path or a '..' would let a forged
        # package load weights from anywhere.
        parts = value.split("/")
        if not value or value.startswith("/") or any(p in {"", ".", ".."} for p in parts):
            raise ValueError("model_dir must be a relative POSIX path without '.' or '..'")
        if "\\" in value or "\x00" in value:
            raise ValueError("model_dir must be a relative POSIX path without '.' or '..'")
        return value


class CustomerRuntimePackage(BoundManifest):
    """Stage 7's manifest: a runtime configuration bound to a deployment and an evidence pack."""

    KIND: ClassVar[str] = "runtime-package"
    HASH_FIELD: ClassVar[str] = "runtime_hash"
    SCHEMA_NAME: ClassVar[str] = "runtime-package"
    SCHEMA_VERSIONS: ClassVar[tuple[str, ...]] = ("1",)

    runtime_id: str = Field(min_length=1, description="The runtime package's id.")
    deployment_id: str
    deployment_hash: str = Field(pattern=HASH_PATTERN)
    evidence_hash: str = Field(pattern=HASH_PATTERN)
    runtime_mode: RuntimeMode
    runtime_config: RuntimeConfig
    runtime_hash: str = Field(default="", description="sha256 over every other field.")


class DecisionRecord(BaseModel):
    """One line of a decision log: what the runtime decided for one trace."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trace_id: str = Field(min_length=1)
    decided_at: str = Field(description="RFC 3339 UTC instant of the decision.")
    score: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, description="P(unsafe).")
    decision: Literal["approve", "escalate", "abstain", "block"]
    reason: str = Field(
        description="Why: threshold band (block/abstain/escalate/approve) or citations_required."
    )
    latency_ms: float = Field(ge=0.0, allow_inf_nan=False)
    input_chars: int = Field(ge=0, description="Characters of prompt + response.")
    package_version: str
    runtime_id: str
    runtime_hash: str = Field(pattern=HASH_PATTERN)
