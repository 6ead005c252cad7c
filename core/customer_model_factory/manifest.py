"""The base classes of every stage manifest: hashed on write, verified on load, linked by hash.

A manifest is a frozen pydantic model. It says what it is (``kind``, a stable string per stage such
as ``dataset-report``) and what it was built from (``inputs``: one :class:`InputLink`
``{kind, hash, uri}`` per upstream artefact). Its hash field (``report_hash``, ``manifest_hash``,
..., named by :attr:`Manifest.HASH_FIELD`) holds ``sha256:<hex>`` over the RFC 8785 canonical JSON
of every *other* field, ``kind`` and ``inputs`` included, so anyone can recompute it::

    payload = json.load(open(path)); stored = payload.pop("manifest_hash")
    assert "sha256:" + sha256(rfc8785.dumps(payload)).hexdigest() == stored

An input link to another manifest carries that manifest's own hash field value (for the dataset
stage: the report's ``report_hash``; ``dataset_hash`` stays the digest of the data bytes). An
input link to a plain artefact (model weights, a decision log) carries the sha256 of its bytes.

:class:`BoundManifest` adds the customer / workspace / tenant binding for the manifests that
belong to one customer; pack-level manifests (a sector's evidence mapping) derive from
:class:`Manifest` and carry no binding at all.

:meth:`Manifest.write` is atomic and byte-deterministic (sorted keys, two-space indent, trailing
newline). :meth:`Manifest.load` checks ``kind`` and ``schema_version`` first, then recomputes the
hash over the file's content as read (so an added, removed or edited field is caught), then
validates the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Final, Self

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
    "HASH_PATTERN",
    "BoundManifest",
    "InputLink",
    "Manifest",
    "ManifestCheck",
    "manifest_class_for",
    "manifest_classes",
    "parse_manifest_payload",
    "read_manifest_bytes",
    "read_manifest_payload",
    "recompute_manifest_hash",
    "verify_manifest_file",
]

HASH_PATTERN: Final = r"^sha256:[0-9a-f]{64}$"
"""The form of every hash a manifest records."""

_CLASSES: dict[str, type[Manifest]] = {}


class InputLink(BaseModel):
    """One upstream artefact a manifest was built from.

    ``hash`` is the upstream manifest's own hash field value when ``kind`` names a manifest kind,
    else the sha256 of the artefact's bytes. ``uri`` (``file://``, ``cmf://sha256/<hex>`` or a
    path relative to the manifest's directory) says where to find it; without one, ``cmf manifest
    verify --chain`` looks the hash up in the directories it is given.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(min_length=1, description="Kind of the upstream artefact.")
    hash: str = Field(pattern=HASH_PATTERN, description="Its hash (sha256:<64 hex>).")
    uri: str | None = Field(default=None, description="Where it can be found, when known.")


class Manifest(BaseModel):
    """Base class of every stage output.

    Subclasses set :attr:`KIND`, :attr:`HASH_FIELD`, :attr:`SCHEMA_NAME` and
    :attr:`SCHEMA_VERSIONS`, declare their hash field as ``<name>: str = ""``, and are built with
    :meth:`seal`, which fills ``kind``, sorts the findings, derives ``ready`` and fills the hash.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    KIND: ClassVar[str] = ""
    HASH_FIELD: ClassVar[str] = ""
    SCHEMA_NAME: ClassVar[str] = ""
    SCHEMA_VERSIONS: ClassVar[tuple[str, ...]] = ("1",)

    schema_version: str = Field(description="Version of this manifest's schema.")
    kind: str = Field(description="What this manifest is: a stable string per stage.")
    inputs: tuple[InputLink, ...] = Field(
        default=(), description="The upstream artefacts it was built from, sorted by kind, hash."
    )
    ready: bool = Field(description="True when no finding has severity error.")
    findings: tuple[Finding, ...] = Field(
        default=(), description="Every finding of this stage, sorted by location then code."
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.KIND:
            other = _CLASSES.get(cls.KIND)
            if other is not None and other.__qualname__ != cls.__qualname__:
                raise TypeError(f"manifest kind {cls.KIND!r} is declared by {other} and {cls}")
            _CLASSES[cls.KIND] = cls

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.kind != self.KIND:
            raise ValueError(f"kind must be {self.KIND!r}, not {self.kind!r}")
        if self.ready == has_errors(self.findings):
            raise ValueError(
                "ready must be true exactly when no finding has severity error "
                f"(ready={self.ready}, errors={has_errors(self.findings)})"
            )
        if self.schema_version not in self.SCHEMA_VERSIONS:
            raise ValueError(f"schema_version {self.schema_version!r} is not supported")
        if list(self.inputs) != sorted(self.inputs, key=_link_key):
            raise ValueError("inputs must be sorted by kind, then hash (build with seal)")
        return self

    @classmethod
    def seal(cls, **fields: Any) -> Self:
        """Build a manifest: fill ``kind``, sort ``inputs`` and ``findings``, derive ``ready``,
        compute the hash field. ``schema_version`` defaults to the newest supported version.
        """
        findings = sort_findings(fields.pop("findings", ()))
        links = [
            link if isinstance(link, InputLink) else InputLink.model_validate(link)
            for link in fields.pop("inputs", ())
        ]
        fields.setdefault("schema_version", cls.SCHEMA_VERSIONS[-1])
        fields["kind"] = cls.KIND
        fields["inputs"] = tuple(sorted(dict.fromkeys(links), key=_link_key))
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

    def link(self, uri: str | None = None) -> InputLink:
        """Return the :class:`InputLink` a downstream manifest records for this one."""
        return InputLink(kind=self.KIND, hash=self.content_digest, uri=uri)

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

        :raises DataFormatError: missing file, invalid JSON, another kind, or a field that fails
            validation.
        :raises SchemaVersionError: an unknown ``schema_version``.
        :raises ManifestIntegrityError: the recomputed hash differs from the stored one.
        """
        return cls.from_payload(read_manifest_payload(path), path=path)

    @classmethod
    def from_payload(cls, payload: dict[str, Any], *, path: str | Path | None = None) -> Self:
        """Verify and validate a manifest already parsed from JSON (see :meth:`load`)."""
        if payload.get("kind") != cls.KIND:
            raise DataFormatError(
                f"is a {_kind_text(payload)} manifest, not {cls.KIND!r}", path=path, field="kind"
            )
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


class BoundManifest(Manifest):
    """A manifest bound to one customer, workspace and tenant (every stage output of a run)."""

    customer_id: str = Field(min_length=1, description="The customer this manifest is bound to.")
    workspace_id: str = Field(min_length=1, description="The customer workspace.")
    tenant_id: str = Field(min_length=1, description="The tenant inside the customer.")


def _link_key(link: InputLink) -> tuple[str, str, str]:
    return (link.kind, link.hash, link.uri or "")


def _kind_text(payload: dict[str, Any]) -> str:
    kind = payload.get("kind")
    if not isinstance(kind, str):
        return "kind-less"
    return repr(kind[:60])


def read_manifest_bytes(path: str | Path) -> bytes:
    """Read a manifest file's bytes.

    :raises DataFormatError: a missing, unreadable or directory path.
    """
    target = Path(path)
    try:
        return target.read_bytes()
    except FileNotFoundError:
        raise DataFormatError("file not found", path=target) from None
    except IsADirectoryError:
        raise DataFormatError("is a directory, not a manifest file", path=target) from None
    except OSError as error:
        raise DataFormatError(f"cannot read: {error.strerror}", path=target) from None


def parse_manifest_payload(raw: bytes, path: str | Path | None = None) -> dict[str, Any]:
    """Parse a manifest's bytes as a JSON object (``path`` names it in errors).

    :raises DataFormatError: invalid JSON (with its line), or not an object.
    """
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        line = raw.count(b"\n", 0, error.pos) + 1
        raise DataFormatError(f"invalid JSON: {error.msg}", path=path, line=line) from None
    if not isinstance(payload, dict):
        raise DataFormatError("a manifest is a JSON object", path=path)
    return payload


def read_manifest_payload(path: str | Path) -> dict[str, Any]:
    """Read a manifest file as a JSON object.

    :raises DataFormatError: missing or unreadable file, invalid JSON, not an object.
    """
    return parse_manifest_payload(read_manifest_bytes(path), Path(path))


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
    """Return every manifest class imported so far, keyed by its ``kind``."""
    return dict(_CLASSES)


def manifest_class_for(
    payload: dict[str, Any], *, path: str | Path | None = None
) -> type[Manifest]:
    """Return the class of a parsed manifest, by its ``kind`` (never guessed from other keys).

    :raises DataFormatError: no ``kind``, or a kind no imported class declares.
    """
    kind = payload.get("kind")
    if not isinstance(kind, str) or not kind:
        raise DataFormatError("no manifest kind (field 'kind' is missing)", path=path, field="kind")
    cls = _CLASSES.get(kind)
    if cls is None:
        known = ", ".join(sorted(_CLASSES)) or "none"
        raise DataFormatError(
            f"unknown manifest kind {_kind_text(payload)} (known: {known})", path=path, field="kind"
        )
    return cls


class ManifestCheck(BaseModel):
    """The outcome of verifying one manifest file."""

    model_config = ConfigDict(frozen=True)

    path: str = Field(description="The file verified.")
    kind: str | None = Field(description="Its manifest kind, when it could be read.")
    hash_field: str | None = Field(description="The name of its hash field.")
    stored: str | None = Field(description="The hash written in the file.")
    actual: str | None = Field(description="The hash recomputed from the content.")
    ok: bool = Field(description="True when the file verifies.")
    error: str | None = Field(default=None, description="Why it does not verify.")
    exit_code: int = Field(default=0, description="0 verified; 2 tampered or unreadable.")


def verify_manifest_file(path: str | Path) -> ManifestCheck:
    """Verify one manifest file by its ``kind``: recompute its hash, then validate it.

    Manifest classes must be imported first
    (:func:`customer_model_factory.catalog.load_manifest_classes` does). Never raises for bad
    input: the problem is reported in the returned check with the exit code the CLI uses (2 for
    a tampered, unknown-kind, unknown-version or unreadable manifest).
    """
    kind: str | None = None
    hash_field: str | None = None
    try:
        payload = read_manifest_payload(path)
        cls = manifest_class_for(payload, path=path)
        kind, hash_field = cls.KIND, cls.HASH_FIELD
        stored, actual = recompute_manifest_hash(payload, hash_field, path=path)
        cls.from_payload(payload, path=path)
    except CMFError as error:
        return ManifestCheck(
            path=str(path),
            kind=kind,
            hash_field=hash_field,
            stored=getattr(error, "expected", None),
            actual=getattr(error, "actual", None),
            ok=False,
            error=str(error),
            exit_code=error.exit_code,
        )
    return ManifestCheck(
        path=str(path), kind=kind, hash_field=hash_field, stored=stored, actual=actual, ok=True
    )
