"""The base class of every stage manifest: hashed on write, verified on load.

A manifest is a frozen pydantic model. Its hash field (``report_hash``, ``manifest_hash``, ...,
named by :attr:`Manifest.HASH_FIELD`) holds ``sha256:<hex>`` over the RFC 8785 canonical JSON of
every *other* field, so anyone can recompute it::

    payload = json.load(open(path)); stored = payload.pop("manifest_hash")
    assert "sha256:" + sha256(rfc8785.dumps(payload)).hexdigest() == stored

:meth:`Manifest.write` is atomic and byte-deterministic (sorted keys, two-space indent, trailing
newline). :meth:`Manifest.load` checks ``schema_version`` first, then recomputes the hash over the
file's content as read (so an added, removed or edited field is caught), then validates the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from customer_model_factory.canonical import content_hash
from customer_model_factory.errors import (
    CMFError,
    DataFormatError,
    ManifestIntegrityError,
    SchemaVersionError,
)
from customer_model_factory.findings import Finding, has_errors, sort_findings
from customer_model_factory.io import atomic_write_bytes

__all__ = [
    "Manifest",
    "ManifestCheck",
    "hash_field_of",
    "manifest_classes",
    "recompute_manifest_hash",
    "verify_manifest_file",
]

_CLASSES: dict[str, type[Manifest]] = {}


class Manifest(BaseModel):
    """Base class of every stage output.

    Subclasses set :attr:`HASH_FIELD`, :attr:`SCHEMA_NAME` and :attr:`SCHEMA_VERSIONS`, declare
    their hash field as ``<name>: str = ""``, and are built with :meth:`seal`, which sorts the
    findings, derives ``ready`` and fills the hash.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    HASH_FIELD: ClassVar[str] = ""
    SCHEMA_NAME: ClassVar[str] = ""
    SCHEMA_VERSIONS: ClassVar[tuple[str, ...]] = ("1",)

    schema_version: str = Field(description="Version of this manifest's schema.")
    customer_id: str = Field(description="The customer this manifest is bound to.")
    workspace_id: str = Field(description="The customer workspace (isolation boundary).")
    tenant_id: str = Field(description="The tenant inside the customer.")
    ready: bool = Field(description="True when no finding has severity error.")
    findings: tuple[Finding, ...] = Field(
        default=(), description="Every finding of this stage, sorted by location then code."
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.HASH_FIELD:
            _CLASSES[cls.HASH_FIELD] = cls

    @model_validator(mode="after")
    def _ready_matches_findings(self) -> Self:
        if self.ready == has_errors(self.findings):
            raise ValueError(
                "ready must be true exactly when no finding has severity error "
                f"(ready={self.ready}, errors={has_errors(self.findings)})"
            )
        if self.schema_version not in self.SCHEMA_VERSIONS:
            raise ValueError(f"schema_version {self.schema_version!r} is not supported")
        return self

    @classmethod
    def seal(cls, **fields: Any) -> Self:
        """Build a manifest: sort ``findings``, derive ``ready``, compute the hash field.

        ``schema_version`` defaults to the newest supported version.
        """
        findings = sort_findings(fields.pop("findings", ()))
        fields.setdefault("schema_version", cls.SCHEMA_VERSIONS[-1])
        fields["findings"] = findings
        fields["ready"] = not has_errors(findings)
        fields[cls.HASH_FIELD] = ""
        draft = cls(**fields)
        return draft.model_copy(update={cls.HASH_FIELD: draft.compute_hash()})

    def payload(self) -> dict[str, Any]:
        """Return the JSON form of the manifest, hash field included."""
        return self.model_dump(mode="json")

    def compute_hash(self) -> str:
        """Recompute the hash over every field but the hash field."""
        payload = self.payload()
        payload.pop(self.HASH_FIELD, None)
        return content_hash(payload)

    @property
    def content_digest(self) -> str:
        """The stored hash (the value of :attr:`HASH_FIELD`)."""
        return str(getattr(self, self.HASH_FIELD))

    def to_json_bytes(self) -> bytes:
        """Return the deterministic file form: sorted keys, two-space indent, final newline."""
        return orjson.dumps(self.payload(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + (
            b"\n"
        )

    def write(self, path: str | Path) -> Path:
        """Write the manifest atomically; the same manifest always gives the same bytes.

        :raises ManifestIntegrityError: the in-memory hash does not match the content (the
            manifest was built without :meth:`seal`).
        """
        actual = self.compute_hash()
        if actual != self.content_digest:
            raise ManifestIntegrityError(
                path=path, hash_field=self.HASH_FIELD, expected=self.content_digest, actual=actual
            )
        return atomic_write_bytes(path, self.to_json_bytes)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read, verify and validate a manifest file.

        :raises DataFormatError: missing file, invalid JSON, or a field that fails validation.
        :raises SchemaVersionError: an unknown ``schema_version``.
        :raises ManifestIntegrityError: the recomputed hash differs from the stored one.
        """
        payload = _read_payload(path)
        return cls.from_payload(payload, path=path)

    @classmethod
    def from_payload(cls, payload: dict[str, Any], *, path: str | Path | None = None) -> Self:
        """Verify and validate a manifest already parsed from JSON (see :meth:`load`)."""
        version = payload.get("schema_version")
        if version not in cls.SCHEMA_VERSIONS:
            raise SchemaVersionError(path=path, found=version, supported=cls.SCHEMA_VERSIONS)
        stored, actual = recompute_manifest_hash(payload, cls.HASH_FIELD, path=path)
        if stored != actual:
            raise ManifestIntegrityError(
                path=path, hash_field=cls.HASH_FIELD, expected=stored, actual=actual
            )
        try:
            return cls.model_validate(payload)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or None
            raise DataFormatError(
                f"{first['msg']} ({cls.__name__})", path=path, field=field
            ) from None


def _read_payload(path: str | Path) -> dict[str, Any]:
    target = Path(path)
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        raise DataFormatError("file not found", path=target) from None
    except OSError as error:
        raise DataFormatError(f"cannot read: {error.strerror}", path=target) from None
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        line = raw.count(b"\n", 0, error.pos) + 1
        raise DataFormatError(f"invalid JSON: {error.msg}", path=target, line=line) from None
    if not isinstance(payload, dict):
        raise DataFormatError("a manifest is a JSON object", path=target)
    return payload


def recompute_manifest_hash(
    payload: dict[str, Any], hash_field: str, *, path: str | Path | None = None
) -> tuple[str, str]:
    """Return ``(stored, recomputed)`` hashes of a parsed manifest.

    :raises DataFormatError: the hash field is missing or not a string.
    """
    stored = payload.get(hash_field)
    if not isinstance(stored, str):
        raise DataFormatError("hash field is missing or not a string", path=path, field=hash_field)
    rest = {key: value for key, value in payload.items() if key != hash_field}
    return stored, content_hash(rest)


def manifest_classes() -> dict[str, type[Manifest]]:
    """Return every manifest class imported so far, keyed by its hash field."""
    return dict(_CLASSES)


def hash_field_of(payload: dict[str, Any]) -> str | None:
    """Return the hash field a parsed manifest carries, or ``None`` if it carries none or several.

    Registered manifest classes are tried first; otherwise the single top-level ``*_hash`` key
    whose value starts with ``sha256:`` is taken.
    """
    known = [name for name in _CLASSES if name in payload]
    if len(known) == 1:
        return known[0]
    candidates = [
        key
        for key, value in payload.items()
        if key.endswith("_hash") and isinstance(value, str) and value.startswith("sha256:")
    ]
    return candidates[0] if len(candidates) == 1 else None


class ManifestCheck(BaseModel):
    """The outcome of verifying one manifest file."""

    model_config = ConfigDict(frozen=True)

    path: str
    hash_field: str | None
    kind: str | None
    stored: str | None
    actual: str | None
    ok: bool
    error: str | None = None
    exit_code: int = 0


def verify_manifest_file(path: str | Path) -> ManifestCheck:
    """Recompute a manifest file's hash and, when its class is known, validate it.

    Never raises for bad input: the problem is reported in the returned check with the exit code
    the CLI uses (2 for a tampered, unknown-version or unreadable manifest).
    """
    try:
        payload = _read_payload(path)
        hash_field = hash_field_of(payload)
        if hash_field is None:
            raise DataFormatError("no manifest hash field (*_hash) found", path=path)
        stored, actual = recompute_manifest_hash(payload, hash_field, path=path)
        cls = _CLASSES.get(hash_field)
        if stored != actual:
            raise ManifestIntegrityError(
                path=path, hash_field=hash_field, expected=stored, actual=actual
            )
        if cls is not None:
            cls.from_payload(payload, path=path)
    except CMFError as error:
        return ManifestCheck(
            path=str(path),
            hash_field=getattr(error, "hash_field", None),
            kind=None,
            stored=getattr(error, "expected", None),
            actual=getattr(error, "actual", None),
            ok=False,
            error=str(error),
            exit_code=error.exit_code,
        )
    return ManifestCheck(
        path=str(path),
        hash_field=hash_field,
        kind=cls.__name__ if cls is not None else None,
        stored=stored,
        actual=actual,
        ok=True,
    )
