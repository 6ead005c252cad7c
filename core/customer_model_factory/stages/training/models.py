"""The training manifest (``kind: training-manifest``): what was trained, from what, and where.

Field names follow the reference ``CustomerTrainingManifest``; we add the run identity
(``train_run_id``, ``seed``), the base model's digest, and the produced model as a
content-addressed artefact (:class:`ModelArtefact`). The manifest links the dataset report it
trained from by the report's ``report_hash`` (an ``inputs`` entry of kind ``dataset-report``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.canonical import canonical_json, sha256_bytes
from customer_model_factory.manifest import HASH_PATTERN, BoundManifest

if TYPE_CHECKING:
    from customer_model_factory.store import ArtefactStore

__all__ = [
    "BaseModelRef",
    "CustomerTrainingManifest",
    "ModelArtefact",
    "export_model_files",
    "model_index_bytes",
]


class BaseModelRef(BaseModel):
    """The base model a lane starts from; immutable (a digest or a pinned revision)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, description="Base model id (e.g. a hub name or 'none').")
    revision: str = Field(min_length=1, description="Pinned revision (a commit or tag).")
    artifact_uri: str = Field(description="Where the base model's artefact is (may be empty).")
    digest: str | None = Field(
        default=None, pattern=HASH_PATTERN, description="sha256 of the base model artefact."
    )


class ModelArtefact(BaseModel):
    """A trained model in the artefact store: every file by digest, and the index's URI.

    ``uri`` is ``cmf://sha256/<hex>`` of the index (canonical JSON of ``lane`` and ``files``), so
    one digest names the whole model; loading re-verifies every file.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lane: str = Field(description="The lane that trained it (and can load it).")
    uri: str = Field(description="cmf://sha256/<hex> of the model index.")
    digest: str = Field(pattern=HASH_PATTERN, description="sha256 of the model index.")
    files: dict[str, str] = Field(description="File name → sha256 of each stored file.")

    @classmethod
    def build(cls, lane: str, files: dict[str, str]) -> ModelArtefact:
        """The artefact of ``files`` (relative POSIX name → digest) trained by ``lane``; its
        digest is that of :func:`model_index_bytes` (store those bytes under it)."""
        from customer_model_factory.store import build_cmf_uri  # noqa: PLC0415

        ordered = dict(sorted(files.items()))
        digest = sha256_bytes(model_index_bytes(lane, ordered))
        return cls(lane=lane, uri=build_cmf_uri(digest), digest=digest, files=ordered)


def model_index_bytes(lane: str, files: dict[str, str]) -> bytes:
    """The index of a model: RFC 8785 canonical JSON of ``{"files": {...}, "lane": ...}``.

    Recompute a model's digest with ``sha256(rfc8785.dumps({"files": files, "lane": lane}))``.
    """
    return canonical_json({"files": dict(files), "lane": lane})


def export_model_files(store: ArtefactStore, model: ModelArtefact, directory: str | Path) -> Path:
    """Copy every file of ``model`` from the store into ``directory``, each verified against its
    digest (a corrupted object leaves no file), and return the directory; a lane's ``load`` reads
    it back. File names are checked so none can leave ``directory``.

    :raises ArtefactError: a file name that is absolute or holds ``..``, or an object not stored.
    :raises ArtefactIntegrityError: a stored file no longer matches its digest.
    """
    from customer_model_factory.errors import ArtefactError  # noqa: PLC0415

    root = Path(directory)
    for name, digest in sorted(model.files.items()):
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in {"", ".", ".."} for p in parts):
            raise ArtefactError(f"model file name {name[:80]!r} is not a relative POSIX path")
        target = root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        store.copy_to(digest, target)
    return root


class CustomerTrainingManifest(BoundManifest):
    """Stage 2's manifest: a training package bound to a customer and a ready dataset report."""

    KIND: ClassVar[str] = "training-manifest"
    HASH_FIELD: ClassVar[str] = "manifest_hash"
    SCHEMA_NAME: ClassVar[str] = "training-manifest"
    SCHEMA_VERSIONS: ClassVar[tuple[str, ...]] = ("1",)

    package_id: str = Field(min_length=1, description="The training package's id.")
    dataset_hash: str = Field(description="Digest of the data bytes trained on.")
    dataset_report_hash: str = Field(description="report_hash of the dataset report.")
    dataset_ready: bool = Field(description="Whether the dataset report was ready.")
    lane: str = Field(min_length=1, description="The training lane.")
    base_model_id: str = Field(description="Base model id (reference field).")
    base_model_revision: str = Field(description="Pinned base model revision (reference field).")
    base_model_artifact_uri: str = Field(description="Base model artefact URI (reference field).")
    base_model_digest: str | None = Field(
        default=None, description="sha256 of the base model artefact, when it has one."
    )
    output_uri: str = Field(description="Where the trained model is written (lane's rules).")
    hyperparameters: dict[str, Any] = Field(description="The lane's hyperparameters.")
    objective_profile: str = Field(description="The selection objective the run targets.")
    requires_private_execution: bool = Field(
        description="True when the lane must run inside the customer's environment."
    )
    seed: int = Field(ge=0, description="Seed of every random choice in training.")
    train_run_id: str = Field(description="Deterministic run id in the run ledger.")
    training_rows: int = Field(ge=0, description="Rows of the train split used.")
    label_class_counts: dict[str, int] = Field(
        default_factory=dict, description="Train rows per class (unsafe/safe)."
    )
    model: ModelArtefact | None = Field(
        default=None,
        description="The trained model; None for a manifest-only lane until it is imported.",
    )
    manifest_hash: str = Field(default="", description="sha256 over every other field.")
