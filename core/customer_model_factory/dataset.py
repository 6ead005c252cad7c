"""Stage 1, the dataset contract: validate a customer's trace dataset against its workspace.

:func:`validate_customer_trace_dataset` reads a JSONL file, a directory of ``*.jsonl`` shards or an
iterable of dicts in **one streaming pass** and returns a :class:`CustomerDatasetValidationReport`
(a hashed manifest). Every rule yields located findings (``DATASET_*``, plus ``SECTOR_*`` from the
sector contract); nothing stops at the first bad row.

How it stays fast and small:

- A row is decoded by msgspec into a typed struct of the fields the rules read; a row on the
  common path of every rule is checked there (:meth:`_RowChecker.check_typed`), any other is
  decoded as a dict and checked field by field (:meth:`_RowChecker.check`), which names each
  problem. A :class:`~.findings.Finding` is built only when something is wrong.
- The categorical fields of a row (binding, split, decision, severity, label, reviewer role,
  flags, vertical) form a *signature* whose verdict is computed once and cached, so a typical
  row costs one tuple and one dict lookup for all of them.
- Secrets and personal data are found with one multi-pattern scan over whole blocks of raw bytes
  (:mod:`.detectors`); only rows with a candidate are decoded field by field.
- Memory grows with the number of distinct rows, never with the text: each row leaves a 16-byte
  digest of its normalised prompt and response (XXH3-128, or blake2b without ``xxhash``; for
  leakage and duplicates) and its trace id (uniqueness; ids longer than 64 characters are kept
  as a 16-byte blake2b digest).
- Whitespace runs and escaped tabs/newlines are flagged by the same block scan, so the common
  row's leakage key needs no whitespace collapsing.
- Large files are split into line-aligned byte ranges checked by worker processes; their results
  are merged in file order, so the report is byte-identical whatever the number of workers.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import hashlib
import multiprocessing
import operator
import os
import re
import threading
import tomllib
import unicodedata
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from hashlib import blake2b
from itertools import accumulate
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from customer_model_factory.canonical import HASH_PREFIX
from customer_model_factory.context import RunContext
from customer_model_factory.detectors import (
    KEY_SUFFIX,
    DetectorSet,
    default_detector_set,
    iter_text_fields,
    placeholder,
    redact_text,
)
from customer_model_factory.errors import ConfigError, DataFormatError
from customer_model_factory.findings import Finding, Severity, count_by_severity
from customer_model_factory.io import (
    DEFAULT_MAX_LINE_BYTES,
    atomic_writer,
    diagnose_jsonl_line,
    json_type_name,
    list_jsonl_shards,
    read_text_strict,
)
from customer_model_factory.manifest import BoundManifest
from customer_model_factory.plugin_api.contracts import SectorOwner

__all__ = [
    "DECISIONS",
    "HIGH_RISK_SEVERITIES",
    "JSONL_PROBLEM_CODES",
    "REDACTION_STATUSES",
    "REFERENCE_REQUIRED_FIELDS",
    "SEVERITIES",
    "AsOfPolicy",
    "CustomerDatasetValidationReport",
    "CustomerTrace",
    "CustomerWorkspace",
    "RedactedCopy",
    "ShardDigest",
    "TimeWindow",
    "validate_customer_trace_dataset",
]

REFERENCE_REQUIRED_FIELDS: Final[tuple[str, ...]] = (
    "trace_id",
    "customer_id",
    "tenant_id",
    "split",
    "prompt",
    "response",
    "expected_decision",
    "severity",
    "label",
    "source_refs",
    "policy_refs",
    "reviewer_role",
    "observed_at",
)
"""The reference trace schema's required fields: the default of ``required_fields``."""

DECISIONS: Final = ("approve", "block", "abstain", "escalate")
SEVERITIES: Final = ("low", "medium", "high", "critical")
HIGH_RISK_SEVERITIES: Final = frozenset({"high", "critical"})
REDACTION_STATUSES: Final = ("not_required", "redacted", "pending")

JSONL_PROBLEM_CODES: Final[Mapping[str, str]] = {
    "bom": "DATASET_JSONL_BOM",
    "invalid_utf8": "DATASET_JSONL_INVALID_UTF8",
    "truncated_line": "DATASET_JSONL_TRUNCATED_LINE",
    "json_array": "DATASET_JSONL_JSON_ARRAY",
    "nan_literal": "DATASET_JSONL_NAN_LITERAL",
    "line_too_long": "DATASET_JSONL_LINE_TOO_LONG",
    "not_object": "DATASET_JSONL_NOT_OBJECT",
    "invalid_json": "DATASET_JSONL_INVALID_JSON",
}
"""Kind of :class:`~.io.JsonlProblem` → the finding code it becomes (always an error)."""

_BLOCK_BYTES: Final = 8 << 20
_PARALLEL_MIN_BYTES: Final = 32 << 20
_MIN_RANGE_BYTES: Final = 16 << 20
_CACHE_LIMIT: Final = 65_536
_LONG_ID: Final = 64
_LINE_BITS: Final = 40
_LINE_MASK: Final = (1 << _LINE_BITS) - 1
_BOM: Final = b"\xef\xbb\xbf"
_INPUT_ROWS: Final = "<rows>"

# Fields of the cached signature, in order; their positions are used in the hot loop.
_SIG_FIELDS: Final = (
    "customer_id",
    "tenant_id",
    "workspace_id",
    "split",
    "expected_decision",
    "severity",
    "label",
    "reviewer_role",
    "contains_pii",
    "contains_secret",
    "redaction_status",
    "vertical",
)
_S_SPLIT, _S_DECISION, _S_SEVERITY, _S_LABEL = 3, 4, 5, 6
_S_PII, _S_SECRET, _S_REDACTION, _S_VERTICAL = 8, 9, 10, 11
_ROW_FIELDS: Final = frozenset(
    {"trace_id", "prompt", "response", "source_refs", "policy_refs", "observed_at"}
)
_OPTIONAL_TEXT: Final = ("workspace_id", "vertical")
_UNSEEN: Final[Any] = object()
# Lower-cases ASCII letters and maps every ASCII whitespace character (as str.split sees them)
# to a space.
try:
    # 128-bit XXH3: ~10x faster than blake2b on short texts; the digest never leaves the run.
    from xxhash import xxh3_128_digest as _digest
except ImportError:  # pragma: no cover - exercised only without the optional accelerator

    def _digest(data: bytes) -> bytes:
        return blake2b(data, digest_size=16).digest()


_ASCII_FOLD: Final = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f",
    b"abcdefghijklmnopqrstuvwxyz         ",
)
_SIGNATURE_OF: Final = operator.attrgetter(*_SIG_FIELDS)


def _expected_values(ws: CustomerWorkspace) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The categorical fields whose valid values a workspace fixes, with those values."""
    return (
        ("customer_id", (ws.customer_id,)),
        ("tenant_id", (ws.tenant_id,)),
        ("workspace_id", (ws.workspace_id,)),
        ("split", tuple(ws.allowed_splits)),
        ("expected_decision", ("approve", "block", "abstain", "escalate")),
        ("severity", tuple(SEVERITIES)),
        ("label", tuple(ws.label_map)),
        ("redaction_status", ("not_required", "redacted", "pending")),
    )


@functools.cache
def _typed_decoder(
    expected: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> tuple[Callable[[bytes], Any], type[Exception]] | None:
    """A decoder of the trace fields the rules read, typed as the contract wants them.

    msgspec decodes a row straight into a slotted struct and checks every field's JSON type in
    C, so the common row skips both the dict and the per-field type checks. Fields the rules do
    not read are skipped; a row with any field of the wrong type fails to decode and takes the
    dict path, which names the problem. ``None`` without msgspec.

    :param expected: categorical fields and their valid values (:func:`_expected_values`); each
        is decoded as a ``Literal`` of them, so a valid value comes back as one shared string
        whose hash is cached (the row's signature is then cheap to look up), and any other value
        takes the dict path, which judges it.
    """
    try:
        import msgspec  # noqa: PLC0415
    except ImportError:  # pragma: no cover - msgspec is a dependency; the dict path is complete
        return None

    text = str | None
    flag = bool | None
    allowed = dict(expected)
    fields = [
        (name, (Literal[allowed[name]] | None) if name in allowed else text, None)  # type: ignore[valid-type]
        for name in _SIG_FIELDS
    ]
    fields[_S_PII] = ("contains_pii", flag, None)
    fields[_S_SECRET] = ("contains_secret", flag, None)
    fields += [
        ("trace_id", text, None),
        ("prompt", text, None),
        ("response", text, None),
        ("source_refs", list[Any] | None, None),
        ("policy_refs", list[Any] | None, None),
        ("observed_at", text, None),
        ("event_time", text, None),
        ("metadata", dict[str, Any] | None, None),
    ]
    # gc=False: decoded JSON cannot hold a reference cycle.
    row_type = msgspec.defstruct("TraceRow", fields, kw_only=True, gc=False)
    return msgspec.json.Decoder(row_type).decode, msgspec.MsgspecError


# ---- contracts ----


def _aware(value: Any, what: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        parsed = _parse_rfc3339(value)
        if parsed is None:
            raise ValueError(f"{what} {value!r} is not an RFC 3339 date-time with an offset")
        return parsed.astimezone(dt.UTC)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"{what} must carry a UTC offset (e.g. 2024-12-31T23:59:59Z)")
        return value.astimezone(dt.UTC)
    raise ValueError(f"{what} must be an RFC 3339 date-time")


def _parse_rfc3339(text: str) -> dt.datetime | None:
    """Parse an RFC 3339 date-time with an offset; ``None`` when it is not one."""
    if len(text) < 20 or text[4] != "-" or text[7] != "-" or text[10] not in "Tt ":
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


class TimeWindow(BaseModel):
    """A half-open time window ``[start, end)`` an event time must fall in (either end open)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: dt.datetime | None = Field(default=None, description="Inclusive start (RFC 3339).")
    end: dt.datetime | None = Field(default=None, description="Exclusive end (RFC 3339).")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _offset_required(cls, value: Any) -> dt.datetime | None:
        return _aware(value, "a window bound")

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("window start must be before its end")
        return self


class AsOfPolicy(BaseModel):
    """As-of leakage policy: no label observed after the cut-off, no event outside its split's
    window, and (when ``temporal_split``) no evaluation row older than a training row."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label_cutoff: dt.datetime | None = Field(
        default=None, description="No trace may have observed_at after this instant (RFC 3339)."
    )
    split_windows: dict[str, TimeWindow] = Field(
        default_factory=dict,
        description="split → window its rows' event_time must fall in; rows need event_time.",
    )
    temporal_split: bool = Field(
        default=False,
        description="Every evaluation row's event_time must be at or after every training row's.",
    )
    training_splits: tuple[str, ...] = Field(
        default=("train",), description="Splits that count as training under temporal_split."
    )
    evaluation_splits: tuple[str, ...] = Field(
        default=(),
        description="Splits that count as evaluation; empty means every non-training split.",
    )

    @field_validator("label_cutoff", mode="before")
    @classmethod
    def _offset_required(cls, value: Any) -> dt.datetime | None:
        return _aware(value, "label_cutoff")


class CustomerWorkspace(BaseModel):
    """The customer workspace a dataset is bound to: identity, splits, labels and policies.

    Read it from TOML with :meth:`from_toml` (a ``[workspace]`` table, or the whole file).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: str = Field(min_length=1, description="Customer every trace must belong to.")
    workspace_id: str = Field(min_length=1, description="Workspace (isolation boundary).")
    tenant_id: str = Field(min_length=1, description="Tenant every trace must belong to.")
    data_classification: Literal["public", "internal", "confidential", "restricted"] = Field(
        description="Classification of the customer data in this workspace."
    )
    allowed_splits: tuple[str, ...] = Field(
        default=("train", "validation", "test"), description="Splits a trace may name."
    )
    required_splits: tuple[str, ...] = Field(
        default=(), description="Splits that must hold at least one trace."
    )
    regulation_mappings: tuple[str, ...] = Field(
        default=(), description="Regulations this workspace maps its controls to."
    )
    required_fields: tuple[str, ...] = Field(
        default=REFERENCE_REQUIRED_FIELDS,
        description="Fields every trace must carry, non-blank (default: the reference's set).",
    )
    label_map: dict[str, Literal["unsafe", "safe"]] = Field(
        default_factory=lambda: {"unsafe": "unsafe", "safe": "safe"},
        description="Customer label → unsafe | safe; a label not listed is an error.",
    )
    vertical: str | None = Field(
        default=None, description="Sector every trace is validated against (like --vertical)."
    )
    as_of: AsOfPolicy = Field(default_factory=AsOfPolicy, description="As-of leakage policy.")
    secrets_policy: Literal["fail", "redact"] = Field(
        default="fail",
        description=(
            "fail: detected secrets/personal data block readiness; redact: they are replaced by "
            "typed placeholders in a --redacted-copy, which is then ready."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> CustomerWorkspace:
        for name in ("customer_id", "workspace_id", "tenant_id"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} must not be blank")
        if not self.allowed_splits:
            raise ValueError("allowed_splits must name at least one split")
        unknown = [s for s in self.required_splits if s not in self.allowed_splits]
        if unknown:
            raise ValueError(f"required_splits {unknown} are not in allowed_splits")
        windows = [s for s in self.as_of.split_windows if s not in self.allowed_splits]
        if windows:
            raise ValueError(f"as_of.split_windows names splits {windows} not in allowed_splits")
        if not self.label_map:
            raise ValueError("label_map must map at least one label")
        return self

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, path: str | Path | None = None
    ) -> CustomerWorkspace:
        """Build a workspace from a parsed mapping (a ``workspace`` key is unwrapped).

        :raises ConfigError: naming the file and the first invalid field.
        """
        table = data.get("workspace", data) if isinstance(data, Mapping) else data
        if not isinstance(table, Mapping):
            raise ConfigError("the workspace must be a table", path=path, field="workspace")
        try:
            return cls.model_validate(dict(table))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or None
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"invalid workspace: {message}", path=path, field=where) from None

    @classmethod
    def from_toml(cls, path: str | Path) -> CustomerWorkspace:
        """Read a workspace from a TOML file: its ``[workspace]`` table, or the whole file.

        :raises ConfigError: missing file, invalid TOML, or an invalid field (one located line).
        """
        target = Path(path)
        try:
            text = read_text_strict(target)
        except DataFormatError as error:
            raise ConfigError(f"workspace {error.message}", path=target, line=error.line) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"invalid TOML: {error}", path=target) from None
        try:
            return cls.from_mapping(data, path=target)
        except ConfigError as error:
            if error.field is None:
                raise
            raise ConfigError(
                error.message,
                path=target,
                line=_toml_key_line(text, error.field),
                field=error.field,
            ) from None


def _toml_key_line(text: str, dotted: str) -> int | None:
    """The 1-based line where the last key of ``dotted`` is assigned (tomllib keeps no
    positions), or ``None`` when it is not written as ``key = ...`` (a missing field)."""
    key = next((part for part in reversed(dotted.split(".")) if not part.isdigit()), "")
    pattern = re.compile(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*=", re.MULTILINE)
    found = pattern.search(text)
    return text.count("\n", 0, found.start()) + 1 if found else None


class CustomerTrace(BaseModel):
    """One customer trace: a superset of the reference trace schema (extra fields are kept).

    Published as the ``trace`` JSON Schema. The validator does not build this model per row (it
    checks the decoded dict directly, for speed); the model documents the contract.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    trace_id: str = Field(min_length=1, description="Unique id of the trace in the dataset.")
    customer_id: str = Field(min_length=1, description="Must equal the workspace customer_id.")
    tenant_id: str = Field(min_length=1, description="Must equal the workspace tenant_id.")
    split: str = Field(min_length=1, description="One of the workspace's allowed_splits.")
    prompt: str = Field(min_length=1, description="The user input the guardrail saw.")
    response: str = Field(min_length=1, description="The model output the guardrail saw.")
    expected_decision: Literal["approve", "block", "abstain", "escalate"] = Field(
        description="The decision the guardrail should take."
    )
    severity: Literal["low", "medium", "high", "critical"] = Field(
        description="Risk severity; high and critical are high risk."
    )
    label: str = Field(min_length=1, description="Customer label, mapped via label_map.")
    source_refs: list[str | dict[str, Any]] = Field(
        min_length=1,
        description=(
            "Source ids/URIs; an entry may name a retrieval schema as {'schema': id, ...} or "
            "'<id>:<ref>'."
        ),
    )
    policy_refs: list[str] = Field(min_length=1, description="Policy ids/URIs.")
    reviewer_role: str = Field(min_length=1, description="Role of the labelling reviewer.")
    observed_at: str = Field(description="RFC 3339 instant the label was observed.")
    workspace_id: str | None = Field(default=None, description="Must match when present.")
    event_time: str | None = Field(default=None, description="RFC 3339 instant of the event.")
    contains_pii: bool | None = Field(default=None, description="Self-declared personal data.")
    contains_secret: bool | None = Field(default=None, description="Self-declared secret.")
    redaction_status: Literal["not_required", "redacted", "pending"] | None = Field(
        default=None, description="Whether declared secrets/PII were redacted."
    )
    vertical: str | None = Field(default=None, description="Sector id selecting a sector pack.")
    metadata: dict[str, Any] | None = Field(
        default=None, description="Free object; sector metadata lives here."
    )


class ShardDigest(BaseModel):
    """One input file and the sha256 of its exact bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="File name (relative to the source directory for shards).")
    sha256: str = Field(description="sha256:<hex> of the file's exact bytes.")
    size_bytes: int = Field(ge=0, description="Size of the file in bytes.")
    line_count: int = Field(ge=0, description="Lines in the file.")


class RedactedCopy(BaseModel):
    """The redacted copy written by ``--redacted-copy``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(description="Where the copy was written.")
    sha256: str = Field(description="sha256:<hex> of the copy's bytes.")
    rows_written: int = Field(ge=0, description="Rows written to the copy.")
    rows_redacted: int = Field(ge=0, description="Rows in which at least one span was replaced.")
    redactions: int = Field(ge=0, description="Spans replaced by a typed placeholder.")
    lines_dropped: int = Field(
        ge=0, description="Input lines left out because they are not a JSON object."
    )


_DATASET_HASH_RECIPE: Final = (
    "sha256:<hex> over the exact bytes of the input: the file itself, or the *.jsonl shards of "
    "the directory concatenated in sorted name order (no separator), e.g. "
    "`cat $(ls dir/*.jsonl | sort) | sha256sum`. For an in-memory iterable of rows: over each "
    "row's RFC 8785 canonical JSON followed by a newline. Each shard's own digest is in `shards`."
)


class CustomerDatasetValidationReport(BoundManifest):
    """The dataset contract's manifest: counts, input digests, findings, readiness.

    ``report_hash`` is this manifest's hash (sha256 over the RFC 8785 canonical JSON of every
    other field, as for every manifest); it covers ``dataset_hash``, the digest of the exact input
    bytes, so it changes whenever one input byte does.
    """

    KIND: ClassVar[str] = "dataset-report"
    HASH_FIELD: ClassVar[str] = "report_hash"
    SCHEMA_NAME: ClassVar[str] = "dataset-report"
    SCHEMA_VERSIONS: ClassVar[tuple[str, ...]] = ("2",)

    source: str = Field(description="The path validated, or <rows> for an in-memory iterable.")
    dataset_hash: str = Field(description=_DATASET_HASH_RECIPE)
    shards: tuple[ShardDigest, ...] = Field(default=(), description="Input files, sorted.")
    vertical: str | None = Field(default=None, description="Sector forced on every row, if any.")
    row_count: int = Field(ge=0, description="Lines that held a JSON object.")
    split_counts: dict[str, int] = Field(description="Rows per split.")
    label_counts: dict[str, int] = Field(description="Rows per customer label.")
    label_class_counts: dict[str, int] = Field(description="Rows per mapped class (unsafe/safe).")
    decision_counts: dict[str, int] = Field(description="Rows per expected_decision.")
    severity_counts: dict[str, int] = Field(description="Rows per severity.")
    high_risk_count: int = Field(ge=0, description="Rows with severity high or critical.")
    sector_counts: dict[str, int] = Field(description="Rows per sector (vertical).")
    sector_owners: dict[str, SectorOwner] = Field(
        default_factory=dict,
        description="For each sector dispatched, the pack that validated it (distribution and "
        "version).",
    )
    finding_counts: dict[str, int] = Field(description="Findings per severity.")
    secrets_policy: Literal["fail", "redact"] = Field(description="The workspace secrets policy.")
    redacted_copy: RedactedCopy | None = Field(
        default=None, description="The redacted copy, when one was written."
    )
    report_hash: str = Field(
        default="",
        description=(
            "sha256:<hex> over the RFC 8785 canonical JSON of every other field of this report "
            "(it covers dataset_hash, the digest of the exact input bytes)."
        ),
    )


# ---- per-chunk validation state ----


@dataclass(frozen=True, slots=True)
class _Settings:
    """Everything a worker needs, derived once from the workspace."""

    workspace: CustomerWorkspace
    vertical: str | None
    redact: bool
    schema_ids: frozenset[str]
    schemas: Mapping[str, Any]
    sector_pm: Any
    shared: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Chunk:
    """What one line-aligned byte range (or an iterable) yields; merged in file order.

    Locations are packed as ``range_index << 40 | local_line`` and resolved at merge time;
    repeated trace ids and digests are found once every chunk is in (:class:`_Merger`).
    """

    lines: int = 0
    rows: int = 0
    findings: list[tuple[str, str, str, str | None, str | None, int]] = field(default_factory=list)
    signatures: dict[tuple[Any, ...], list[Any]] = field(default_factory=dict)
    slow_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Compact, so a chunk pickles and merges cheaply: the key of every valid trace id (the id,
    # or a digest of a long one) and its location, in row order; every leakage digest (16
    # bytes each, concatenated) with ``location << 8 | split index``; and the trace id of a
    # digest's row when it is not a valid id (blank), by location.
    ids: list[Any] = field(default_factory=list)
    id_locs: array = field(default_factory=lambda: array("q"))
    digests: bytearray = field(default_factory=bytearray)
    digest_meta: array = field(default_factory=lambda: array("q"))
    digest_tids: dict[int, str] = field(default_factory=dict)
    train_max: float = float("-inf")
    eval_times: array = field(default_factory=lambda: array("d"))
    eval_locs: array = field(default_factory=lambda: array("q"))
    stopped: bool = False
    copy_rows: int = 0
    copy_redacted: int = 0
    copy_spans: int = 0
    copy_dropped: int = 0


class _RowChecker:
    """Checks rows into a :class:`_Chunk`; one per byte range."""

    def __init__(
        self, settings: _Settings, range_index: int, *, keep_redacted: bool = True
    ) -> None:
        ws = settings.workspace
        self.settings = settings
        self.chunk = _Chunk()
        self.base = range_index << _LINE_BITS
        self.detectors: DetectorSet = default_detector_set()
        self.required = frozenset(ws.required_fields)
        self.extra_required = tuple(
            f for f in ws.required_fields if f not in _ROW_FIELDS and f not in _SIG_FIELDS
        )
        self.allowed_splits = frozenset(ws.allowed_splits)
        self.forced_vertical = settings.vertical
        self.split_index = {split: index for index, split in enumerate(ws.allowed_splits)}
        self.label_map = dict(ws.label_map)
        self.cutoff = ws.as_of.label_cutoff.timestamp() if ws.as_of.label_cutoff else None
        self.windows = {
            split: (
                w.start.timestamp() if w.start else float("-inf"),
                w.end.timestamp() if w.end else float("inf"),
            )
            for split, w in ws.as_of.split_windows.items()
        }
        self.temporal = ws.as_of.temporal_split
        self.training = frozenset(ws.as_of.training_splits)
        evaluation = ws.as_of.evaluation_splits or tuple(
            s for s in ws.allowed_splits if s not in self.training
        )
        self.evaluation = frozenset(evaluation)
        self.needs_event_time = bool(self.windows) or self.temporal
        self.cache: dict[tuple[Any, ...], list[Any]] = self.chunk.signatures
        self.severity_detect: Severity = "warning" if settings.redact else "error"
        self.last_spans = 0
        # Row-independent verdicts are shared by every range a process checks.
        shared = settings.shared
        self.schema_validators: dict[str, Any] = shared.setdefault("schema_validators", {})
        self.ref_verdicts: dict[str, dict[str, tuple[str, str] | None]] = shared.setdefault(
            "ref_verdicts", {"source_refs": {}, "policy_refs": {}}
        )
        # Single references already known to be fine (the fast path of check()).
        self.source_ok: dict[str, bool] = shared.setdefault("source_ok", {})
        self.policy_ok: dict[str, bool] = shared.setdefault("policy_ok", {})
        # The typed path covers rows with no workspace-specific required field.
        self.typed_ok = not self.extra_required
        # Whether check() must return the redacted row (a redacted copy is being written).
        self.keep_redacted = keep_redacted

    # -- findings --

    def add(  # noqa: PLR0917 - positional on purpose: called per finding in the hot loop
        self,
        code: str,
        severity: str,
        message: str,
        trace_id: str | None,
        field_name: str | None,
        line: int,
    ) -> None:
        self.chunk.findings.append(
            (code, severity, message, trace_id, field_name, self.base | line)
        )

    # -- the hot path --

    def check_typed(self, row: Any, line: int, spaced: bool, raw: bytes) -> bool:
        """Check a row decoded by :func:`_typed_decoder` exactly as :meth:`check` would, when it
        takes the common path of every rule; return ``False``, having changed nothing, when it
        does not (the caller then checks the row as a dict).

        The common path: a non-blank trace id, prompt and response; one known-good source and
        policy reference; RFC 3339 times with an offset; a categorical signature already judged;
        no prefilter hit (the caller's part). The struct's JSON types are already checked. A
        sector row's pack sees the whole row, so ``raw`` is decoded as a dict for it.
        """
        trace_id = row.trace_id
        prompt = row.prompt
        response = row.response
        source = row.source_refs
        policy = row.policy_refs
        observed = row.observed_at
        if not (
            self.typed_ok
            and trace_id
            and prompt
            and response
            and source
            and policy
            and observed
            and len(source) == 1
            and len(policy) == 1
            and source[0].__class__ is str
            and policy[0].__class__ is str
            and self.source_ok.get(source[0], False)
            and self.policy_ok.get(policy[0], False)
            and not trace_id.isspace()
            and not prompt.isspace()
            and not response.isspace()
        ):
            return False
        sig = _SIGNATURE_OF(row)
        entry = self.cache.get(sig)
        if entry is None:
            return False
        observed_at = _parse_rfc3339(observed)
        if observed_at is None:
            return False
        event = row.event_time
        event_time = None
        if event is not None:
            event_time = _parse_rfc3339(event)
            if event_time is None:
                return False
        elif self.needs_event_time:
            return False

        # From here on, exactly what check() does for such a row.
        self.chunk.rows += 1
        loc = self.base | line
        self._record_trace_id(trace_id, loc)
        entry[0] += 1
        for code, severity, message, field_name in entry[2]:
            self.add(code, severity, message, trace_id, field_name, line)
        if entry[1] is not None:
            self._record_digest(_digest(_fold(prompt, response, spaced=spaced)), entry, loc)
        cutoff = self.cutoff
        if cutoff is not None and observed_at.timestamp() > cutoff:
            self._after_cutoff(trace_id, line)
        if event_time is not None:
            self._record_event_time(event_time.timestamp(), entry, trace_id, line)
        sector = self.forced_vertical or sig[_S_VERTICAL]
        if sector.__class__ is str and sector and not sector.isspace():
            self._sector(orjson.loads(raw), sector, trace_id, line)
        if sig[_S_SECRET] is True or sig[_S_PII] is True:
            self._self_declared(sig, trace_id, line, False)
        return True

    def check(
        self,
        row: dict[str, Any],
        line: int,
        candidate: bool,
        spaced: bool = True,
        kinds: frozenset[int] | None = None,
    ) -> dict[str, Any] | None:
        """Check one row; return the redacted row when a secret or personal datum was found (the
        row itself when :attr:`keep_redacted` is off: no copy is written).

        :param candidate: the prefilter matched this row's raw bytes (secrets/PII possible).
        :param kinds: the detectors whose prefilter matched (``None``: run them all).
        :param spaced: the raw row may hold whitespace other than single spaces (tabs, newlines,
            runs of spaces); ``False`` lets the leakage key skip whitespace collapsing.
        """
        chunk = self.chunk
        chunk.rows += 1
        get = row.get
        loc = self.base | line

        trace_id = get("trace_id")
        trace_id_recorded: str | None = None
        if type(trace_id) is str and trace_id and not trace_id.isspace():
            self._record_trace_id(trace_id, loc)
            tid: str | None = trace_id
            trace_id_recorded = trace_id
        else:
            tid = trace_id if type(trace_id) is str else None
            self._check_present(row, "trace_id", tid, line, str)

        # Categorical fields: one cached verdict per distinct signature.
        sig = tuple(map(get, _SIG_FIELDS))
        try:
            entry = self.cache.get(sig)
        except TypeError:  # an unhashable value (list/dict) where a scalar belongs
            entry = None
        if entry is not None and (
            (sig[_S_PII] is not None and sig[_S_PII].__class__ is not bool)
            or (sig[_S_SECRET] is not None and sig[_S_SECRET].__class__ is not bool)
        ):
            entry = None
        if entry is None:
            entry = self._categorical(row, sig, tid, line)
        else:
            entry[0] += 1
            for code, severity, message, field_name in entry[2]:
                self.add(code, severity, message, tid, field_name, line)
        split = entry[1]

        # Prompt and response: presence, then the leakage digest of their normalised text.
        prompt = get("prompt")
        response = get("response")
        if (
            type(prompt) is str
            and type(response) is str
            and prompt
            and response
            and not prompt.isspace()
            and not response.isspace()
        ):
            if split is not None:
                self._record_digest(_digest(_fold(prompt, response, spaced=spaced)), entry, loc)
                if tid is not None and tid is not trace_id_recorded:
                    # A blank id names the row in a leakage finding but is no trace id.
                    chunk.digest_tids[loc] = tid
        else:
            self._check_present(row, "prompt", tid, line, str)
            self._check_present(row, "response", tid, line, str)

        # References (each verdict cached per distinct entry) and times (the common rows take
        # check_typed; here each value is judged and every problem named).
        self._check_refs(get("source_refs"), "source_refs", row, tid, line)
        self._check_refs(get("policy_refs"), "policy_refs", row, tid, line)
        cutoff = self.cutoff
        seconds = self._time(row, "observed_at", tid, line)
        if seconds is not None and cutoff is not None and seconds > cutoff:
            self._after_cutoff(tid, line)
        if get("event_time") is not None or self.needs_event_time:
            self._event_time(row, split, tid, line, None)

        metadata = get("metadata")
        if metadata is not None and type(metadata) is not dict:
            self.add(
                "DATASET_FIELD_TYPE",
                "error",
                "metadata must be a JSON object",
                tid,
                "metadata",
                line,
            )
        for name in self.extra_required:
            value = get(name)
            if value is None or value == "" or (type(value) is str and value.isspace()):
                self._check_present(row, name, tid, line, None)

        sector = self.forced_vertical or sig[_S_VERTICAL]
        if sector.__class__ is str and sector and not sector.isspace():
            self._sector(row, sector, tid, line)

        redacted = self._detect(row, tid, line, kinds) if candidate else None
        if sig[_S_SECRET] is True or sig[_S_PII] is True:
            self._self_declared(sig, tid, line, redacted is not None)
        return redacted

    # -- what every checked row records (shared by check and check_typed) --

    def _record_trace_id(self, trace_id: str, loc: int) -> None:
        """Record a valid trace id and its location (repeats are found at merge time)."""
        chunk = self.chunk
        chunk.ids.append(
            trace_id
            if len(trace_id) <= _LONG_ID
            else hashlib.blake2b(trace_id.encode(), digest_size=16).digest()
        )
        chunk.id_locs.append(loc)

    def _record_digest(self, digest: bytes, entry: list[Any], loc: int) -> None:
        """Record the leakage digest of a row in a known split (``entry`` is its verdict)."""
        chunk = self.chunk
        chunk.digests += digest
        # One int per row: the packed location with the split's index in the low byte.
        chunk.digest_meta.append(loc << 8 | entry[6])

    def _record_event_time(
        self, seconds: float, entry: list[Any], tid: str | None, line: int
    ) -> None:
        """Check an event time against its split's window and feed the temporal-order rule."""
        window = entry[4]
        if window is not None and not window[0] <= seconds < window[1]:
            self._outside_window(entry[1], tid, line)
        role = entry[5]
        if role == 1:
            chunk = self.chunk
            if seconds > chunk.train_max:  # noqa: PLR1730 - cheaper than max() per row
                chunk.train_max = seconds
        elif role == 2:
            self.chunk.eval_times.append(seconds)
            self.chunk.eval_locs.append(self.base | line)

    # -- slow paths (only for rows that need them) --

    def _after_cutoff(self, tid: str | None, line: int) -> None:
        self.add(
            "DATASET_LABEL_AFTER_CUTOFF",
            "error",
            "observed_at is after the workspace label cut-off (as-of leakage)",
            tid,
            "observed_at",
            line,
        )

    def _check_present(
        self, row: Mapping[str, Any], name: str, tid: str | None, line: int, kind: type | None
    ) -> bool:
        """Report a missing, null, blank or mistyped field; return whether it is fine."""
        required = name in self.required
        if name not in row or row[name] is None:
            if required:
                self.add(
                    "DATASET_MISSING_REQUIRED_FIELD",
                    "error",
                    f"required field {name} is missing",
                    tid,
                    name,
                    line,
                )
            return not required
        value = row[name]
        if kind is not None and not isinstance(value, kind):
            self.add(
                "DATASET_FIELD_TYPE",
                "error",
                f"{name} must be a {_TYPE_NAMES.get(kind, kind.__name__)}, "
                f"got {json_type_name(value)}",
                tid,
                name,
                line,
            )
            return False
        if (isinstance(value, str) and not value.strip()) or (
            isinstance(value, list | dict) and not value
        ):
            if required:
                self.add(
                    "DATASET_BLANK_REQUIRED_FIELD",
                    "error",
                    f"required field {name} is blank",
                    tid,
                    name,
                    line,
                )
            return not required
        return True

    def _categorical(
        self, row: Mapping[str, Any], sig: tuple[Any, ...], tid: str | None, line: int
    ) -> list[Any]:
        """Check the signature fields of a row; cache the verdict when it is row-independent."""
        ws = self.settings.workspace
        templates: list[tuple[str, str, str, str | None]] = []
        clean: dict[str, bool] = {}

        def note(code: str, severity: str, message: str, field_name: str | None) -> None:
            templates.append((code, severity, message, field_name))

        ambiguous = False
        for name in _SIG_FIELDS:
            if row.get(name) is None and name in self.required:
                ambiguous = True  # missing and null read the same in the signature
        for name in (
            "customer_id",
            "tenant_id",
            "split",
            "expected_decision",
            "severity",
            "label",
            "reviewer_role",
        ):
            clean[name] = self._present_template(row, name, note)
        for name in ("contains_pii", "contains_secret", "redaction_status", "vertical"):
            if name in self.required and row.get(name) is None:
                note(
                    "DATASET_MISSING_REQUIRED_FIELD",
                    "error",
                    f"required field {name} is missing",
                    name,
                )
        for name in _OPTIONAL_TEXT:
            value = row.get(name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                note("DATASET_FIELD_TYPE", "error", f"{name} must be a non-blank string", name)
                clean[name] = False
        for name in ("contains_pii", "contains_secret"):
            value = row.get(name)
            if value is not None and type(value) is not bool:
                note("DATASET_FIELD_TYPE", "error", f"{name} must be a boolean", name)
        if clean.get("customer_id") and row["customer_id"] != ws.customer_id:
            note(
                "DATASET_CUSTOMER_ID_MISMATCH",
                "error",
                "customer_id does not match the workspace",
                "customer_id",
            )
        if clean.get("tenant_id") and row["tenant_id"] != ws.tenant_id:
            note(
                "DATASET_TENANT_ID_MISMATCH",
                "error",
                "tenant_id does not match the workspace",
                "tenant_id",
            )
        workspace_id = row.get("workspace_id")
        if isinstance(workspace_id, str) and workspace_id.strip():
            if workspace_id != ws.workspace_id:
                note(
                    "DATASET_WORKSPACE_ID_MISMATCH",
                    "error",
                    "workspace_id does not match the workspace",
                    "workspace_id",
                )
        elif "workspace_id" in self.required and workspace_id is None:
            note(
                "DATASET_MISSING_REQUIRED_FIELD",
                "error",
                "required field workspace_id is missing",
                "workspace_id",
            )
        split = row.get("split") if clean.get("split") else None
        if split is not None and split not in self.allowed_splits:
            note(
                "DATASET_SPLIT_NOT_ALLOWED",
                "error",
                f"split {split!r} is not in the workspace's allowed_splits "
                f"({', '.join(ws.allowed_splits)})",
                "split",
            )
        decision = row.get("expected_decision") if clean.get("expected_decision") else None
        if decision is not None and decision not in DECISIONS:
            note(
                "DATASET_DECISION_NOT_ALLOWED",
                "error",
                f"expected_decision {decision!r} is not one of {', '.join(DECISIONS)}",
                "expected_decision",
            )
            decision = None
        severity = row.get("severity") if clean.get("severity") else None
        if severity is not None and severity not in SEVERITIES:
            note(
                "DATASET_SEVERITY_NOT_ALLOWED",
                "error",
                f"severity {severity!r} is not one of {', '.join(SEVERITIES)}",
                "severity",
            )
            severity = None
        status = row.get("redaction_status")
        if status is not None and status not in REDACTION_STATUSES:
            note(
                "DATASET_REDACTION_STATUS_NOT_ALLOWED",
                "error",
                f"redaction_status must be one of {', '.join(REDACTION_STATUSES)}",
                "redaction_status",
            )
        label = row.get("label") if clean.get("label") else None
        label_class = self.label_map.get(label) if label is not None else None
        if label is not None and label_class is None:
            note(
                "DATASET_UNKNOWN_LABEL",
                "error",
                "label is not in the workspace label_map "
                f"(known: {', '.join(sorted(self.label_map))})",
                "label",
            )
        if label_class == "unsafe" and decision == "approve":
            note(
                "DATASET_SILENT_UNSAFE_PASS",
                "error",
                "an unsafe trace is expected to be approved (a silent unsafe pass)",
                "expected_decision",
            )
        elif label_class == "safe" and decision == "approve" and severity in HIGH_RISK_SEVERITIES:
            note(
                "DATASET_HIGH_RISK_APPROVE_LABEL",
                "warning",
                f"a {severity}-severity trace is expected to be approved; confirm the label",
                "expected_decision",
            )
        forced = self.settings.vertical
        vertical = row.get("vertical")
        if forced and isinstance(vertical, str) and vertical.strip() and vertical != forced:
            note(
                "DATASET_VERTICAL_MISMATCH",
                "error",
                f"vertical {vertical!r} differs from the forced sector {forced!r}",
                "vertical",
            )
        for code, severity_, message, field_name in templates:
            self.add(code, severity_, message, tid, field_name, line)
        sector = forced or (vertical if isinstance(vertical, str) and vertical.strip() else None)
        counts = (
            split if isinstance(split, str) else None,
            label if isinstance(label, str) else None,
            label_class,
            decision,
            severity,
            sector,
        )
        known = split if split in self.allowed_splits else None
        role = 0
        if known is not None and self.temporal:
            role = 1 if known in self.training else 2 if known in self.evaluation else 0
        # [count, split, finding templates, counted values, event window, temporal role,
        #  split index]
        entry = [
            1,
            known,
            tuple(templates),
            counts,
            self.windows.get(known),
            role,
            self.split_index.get(known, 0),
        ]
        cacheable = not ambiguous and len(self.cache) < _CACHE_LIMIT
        if cacheable:
            try:
                self.cache[sig] = entry
            except TypeError:
                cacheable = False
        if not cacheable:
            for name, value in zip(
                ("split", "label", "class", "decision", "severity", "sector"), counts, strict=True
            ):
                if value is not None:
                    self.chunk.slow_counts[(name, value)] += 1
        return entry

    def _present_template(
        self, row: Mapping[str, Any], name: str, note: Callable[[str, str, str, str | None], None]
    ) -> bool:
        required = name in self.required
        value = row.get(name)
        if value is None:
            if required:
                code = "DATASET_MISSING_REQUIRED_FIELD"
                note(code, "error", f"required field {name} is missing", name)
            return False
        if not isinstance(value, str):
            note("DATASET_FIELD_TYPE", "error", f"{name} must be a string", name)
            return False
        if not value.strip():
            if required:
                note(
                    "DATASET_BLANK_REQUIRED_FIELD", "error", f"required field {name} is blank", name
                )
            return False
        return True

    def _self_declared(
        self, sig: tuple[Any, ...], tid: str | None, line: int, redacted: bool
    ) -> None:
        if sig[_S_REDACTION] == "redacted":
            return
        # Under the redact policy a row the copy redacts is judged by its detections instead.
        if self.settings.redact and redacted:
            return
        for position, code, what in (
            (_S_SECRET, "DATASET_UNREDACTED_SECRET", "contains_secret"),
            (_S_PII, "DATASET_UNREDACTED_PII", "contains_pii"),
        ):
            if sig[position] is True:
                self.add(
                    code,
                    "error",
                    f"{what} is true but redaction_status is not 'redacted'",
                    tid,
                    "redaction_status",
                    line,
                )

    def _check_refs(
        self, refs: Any, name: str, row: Mapping[str, Any], tid: str | None, line: int
    ) -> None:
        if type(refs) is list and refs:
            cache = self.ref_verdicts[name]
            for entry in refs:
                if type(entry) is str:
                    verdict = cache.get(entry, _UNSEEN)
                    if verdict is None:
                        continue
                    if verdict is _UNSEEN:
                        verdict = self._string_ref(entry, name)
                        if len(cache) < _CACHE_LIMIT:
                            cache[entry] = verdict
                            if verdict is None:
                                ok = self.source_ok if name == "source_refs" else self.policy_ok
                                ok[entry] = True
                        if verdict is None:
                            continue
                    code, message = verdict
                    self.add(code, "error", message, tid, name, line)
                    continue
                self._bad_ref(entry, name, tid, line)
            return
        if refs is None or (type(refs) is list and not refs):
            self._check_present(row, name, tid, line, list)
            return
        self.add(
            "DATASET_INVALID_REFERENCE_LIST",
            "error",
            f"{name} must be a non-empty list of ids or URIs, got {json_type_name(refs)}",
            tid,
            name,
            line,
        )

    def _string_ref(self, entry: str, name: str) -> tuple[str, str] | None:
        """The verdict on one string reference: ``None`` when fine, else ``(code, message)``."""
        if not entry.strip():
            return "DATASET_INVALID_REFERENCE_LIST", f"{name} holds a blank entry"
        if name != "source_refs" or not self.settings.schema_ids:
            return None
        prefix, sep, rest = entry.partition(":")
        if sep and prefix in self.settings.schema_ids:
            return self._schema_verdict(prefix, {"schema": prefix, "ref": rest})
        return None

    def _bad_ref(self, entry: Any, name: str, tid: str | None, line: int) -> None:
        if name == "source_refs" and type(entry) is dict:
            schema_id = entry.get("schema")
            if type(schema_id) is str and schema_id in self.settings.schema_ids:
                self._check_schema_entry(schema_id, entry, tid, line)
                return
            self.add(
                "DATASET_RETRIEVAL_SCHEMA_UNKNOWN",
                "error",
                "a source_refs object names no registered retrieval schema "
                f"(registered: {', '.join(sorted(self.settings.schema_ids)) or 'none'})",
                tid,
                name,
                line,
            )
            return
        self.add(
            "DATASET_INVALID_REFERENCE_LIST",
            "error",
            f"every {name} entry must be a non-blank string"
            + (" or a retrieval-schema object" if name == "source_refs" else ""),
            tid,
            name,
            line,
        )

    def _check_schema_entry(
        self, schema_id: str, entry: Mapping[str, Any], tid: str | None, line: int
    ) -> None:
        verdict = self._schema_verdict(schema_id, entry)
        if verdict is not None:
            self.add(verdict[0], "error", verdict[1], tid, "source_refs", line)

    def _schema_verdict(self, schema_id: str, entry: Mapping[str, Any]) -> tuple[str, str] | None:
        validator = self.schema_validators.get(schema_id)
        if validator is None:
            from jsonschema import Draft202012Validator  # noqa: PLC0415

            validator = Draft202012Validator(self.settings.schemas[schema_id].json_schema)
            self.schema_validators[schema_id] = validator
        instance = dict(entry)
        if validator.is_valid(instance):
            return None
        error = next(iter(validator.iter_errors(instance)), None)
        if error is None:
            return None
        where = "/".join(str(part) for part in error.absolute_path) or "entry"
        return (
            "DATASET_RETRIEVAL_SCHEMA_VIOLATION",
            f"source_refs entry violates retrieval schema {schema_id!r} at {where}: "
            f"{error.validator} constraint failed",
        )

    def _time(self, row: Mapping[str, Any], name: str, tid: str | None, line: int) -> float | None:
        value = row.get(name)
        if value is None:
            if name in self.required:
                self._check_present(row, name, tid, line, str)
            return None
        if type(value) is not str:
            self._check_present(row, name, tid, line, str)
            return None
        parsed = _parse_rfc3339(value)
        if parsed is None:
            self.add(
                "DATASET_INVALID_TIMESTAMP",
                "error",
                f"{name} is not an RFC 3339 date-time with an offset",
                tid,
                name,
                line,
            )
            return None
        return parsed.timestamp()

    def _event_time(
        self,
        row: Mapping[str, Any],
        split: str | None,
        tid: str | None,
        line: int,
        seconds: float | None,
    ) -> None:
        if seconds is None:
            if row.get("event_time") is None:
                if split is not None and (
                    split in self.windows
                    or (self.temporal and (split in self.training or split in self.evaluation))
                ):
                    self.add(
                        "DATASET_EVENT_TIME_MISSING",
                        "error",
                        "event_time is needed to prove the as-of policy for this split",
                        tid,
                        "event_time",
                        line,
                    )
                return
            seconds = self._time(row, "event_time", tid, line)
            if seconds is None:
                return
        if split is None:
            return
        window = self.windows.get(split)
        if window is not None and not window[0] <= seconds < window[1]:
            self._outside_window(split, tid, line)
        if self.temporal:
            if split in self.training:
                self.chunk.train_max = max(self.chunk.train_max, seconds)
            elif split in self.evaluation:
                self.chunk.eval_times.append(seconds)
                self.chunk.eval_locs.append(self.base | line)

    def _outside_window(self, split: str | None, tid: str | None, line: int) -> None:
        self.add(
            "DATASET_EVENT_OUTSIDE_WINDOW",
            "error",
            f"event_time is outside the time window of split {split!r}",
            tid,
            "event_time",
            line,
        )

    def _sector(self, row: dict[str, Any], sector: str, tid: str | None, line: int) -> None:
        try:
            from customer_model_factory.sector import (  # noqa: PLC0415
                validate_sector_trace_metadata,
            )
        except ImportError:
            self.add(
                "DATASET_SECTOR_UNAVAILABLE",
                "error",
                f"sector {sector!r} cannot be checked: the sector module is unavailable",
                tid,
                "vertical",
                line,
            )
            return
        for finding in validate_sector_trace_metadata(
            row, sector_id=sector, pm=self.settings.sector_pm, location=None
        ):
            self.add(
                finding.code,
                finding.severity,
                finding.message,
                finding.trace_id if finding.trace_id is not None else tid,
                finding.field,
                line,
            )

    def _detect(
        self,
        row: dict[str, Any],
        tid: str | None,
        line: int,
        kinds: frozenset[int] | None = None,
    ) -> dict[str, Any] | None:
        """Confirm candidates field by field; return the redacted row if anything was found."""
        detectors = self.detectors
        found: dict[str, list[Any]] = {}
        for path, text in iter_text_fields(row):
            detections = detectors.scan_text(text, kinds)
            if detections:
                found[path] = detections
        if not found:
            return None
        secret_keys = [p.removesuffix(KEY_SUFFIX) for p in found if p.endswith(KEY_SUFFIX)]
        if "trace_id" in found:
            tid = None  # the id itself holds the secret: never repeat it
        for path, detections in found.items():
            kinds = Counter((d.category, d.kind) for d in detections)
            for (category, kind), count in sorted(kinds.items()):
                code = "DATASET_SECRET_DETECTED" if category == "secret" else "DATASET_PII_DETECTED"
                what = "secret" if category == "secret" else "personal data"
                times = f" ({count} occurrences)" if count > 1 else ""
                action = (
                    f"replaced by {placeholder(kind)} in the redacted copy"
                    if self.settings.redact
                    else "redact it or set secrets_policy = 'redact' with --redacted-copy"
                )
                self.add(
                    code,
                    self.severity_detect,
                    f"{what} of kind {kind} detected{times}; {action}",
                    tid,
                    _display_path(path, secret_keys, row, found),
                    line,
                )
        self.last_spans = sum(len(detections) for detections in found.values())
        # Without a redacted copy to write, the row itself says "something was found".
        return _redact_row(row, found) if self.keep_redacted else row


_TYPE_NAMES: Final = {str: "string", list: "non-empty list", dict: "JSON object"}


def _display_path(
    path: str, secret_keys: list[str], row: Mapping[str, Any], found: Mapping[str, Any]
) -> str:
    """The field path to report: a path through an object key that holds a secret is cut back
    to its top-level field (or ``[REDACTED:key]``) so the finding never repeats the key."""
    if not any(
        path == key or path.startswith((f"{key}.", f"{key}[", f"{key}{KEY_SUFFIX}"))
        for key in secret_keys
    ):
        return path
    for top in row:
        inside = isinstance(top, str) and (path == top or path.startswith((f"{top}.", f"{top}[")))
        if inside and f"{top}{KEY_SUFFIX}" not in found:
            return f"{top}.[REDACTED:key]"
    return "[REDACTED:key]"


def _redact_row(value: Any, found: Mapping[str, list[Any]], path: str = "") -> Any:
    if isinstance(value, str):
        detections = found.get(path)
        return redact_text(value, detections) if detections else value
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            key_path = child + KEY_SUFFIX
            new_key = redact_text(key, found[key_path]) if key_path in found else key
            result[new_key] = _redact_row(item, found, child)
        return result
    if isinstance(value, list):
        return [_redact_row(item, found, f"{path}[{index}]") for index, item in enumerate(value)]
    return value


def _fold(prompt: str, response: str, *, spaced: bool) -> bytes:
    """The normalised prompt, NUL, normalised response: what the leakage digest is taken over.

    :param spaced: the raw row may hold whitespace other than single spaces.
    """
    text = f"{prompt}\x00{response}"
    if not text.isascii():
        return (_normalise(prompt) + "\x00" + _normalise(response)).encode()
    # ASCII: NFKC is the identity and case-folding is lower-casing.
    if spaced or prompt[0] == " " or prompt[-1] == " " or response[0] == " " or response[-1] == " ":
        # One byte translation folds case and maps every whitespace character to a space, then
        # runs of spaces collapse; field by field: a NUL inside a text is a character, not the
        # separator.
        prompt_key = b" ".join(prompt.encode().translate(_ASCII_FOLD).split())
        response_key = b" ".join(response.encode().translate(_ASCII_FOLD).split())
        return prompt_key + b"\x00" + response_key
    # Not spaced: the raw line holds no whitespace but single spaces (a tab, newline or other
    # control character in a JSON string is always escaped, and escapes mark a line spaced),
    # so only the case is left to fold.
    return text.encode().lower()


def _normalise(text: str) -> str:
    """NFKC, case-fold and collapse whitespace (the leakage key of a text)."""
    if text.isascii():
        # For ASCII NFKC is the identity and case-folding is lower-casing.
        text = text.lower()
        if text.isprintable() and "  " not in text and text[0] != " " and text[-1] != " ":
            return text
    else:
        text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split())


# ---- reading byte ranges ----

# Raw JSON that may hide whitespace other than single spaces inside a string: a run of spaces
# or an escaped tab, newline, carriage return, form feed, vertical tab, separator or space
# (JSON forbids raw control characters in strings, so they always appear escaped; an escaped
# space next to another space is a run the raw bytes do not show).
_WHITESPACE_MARKER: Final = rb"  |\\[tnrf]|\\u00(?:0[9-dA-D]|1[c-fC-F]|20)"


class _BlockScanner:
    """One pass over a block for both the secret/PII prefilter and the whitespace markers.

    With Hyperscan the detectors' prefilter patterns and the marker share one database, so a
    block is scanned once; without it, the detector set's own engine and ``re`` are used.
    """

    def __init__(self, detectors: DetectorSet) -> None:
        self._detectors = detectors
        self._db: Any = None
        self._re = re.compile(_WHITESPACE_MARKER)
        if detectors.engine != "hyperscan":
            return
        import hyperscan  # noqa: PLC0415

        patterns = [d.prefilter_pattern.encode("ascii") for d in detectors.detectors]
        flags = [hyperscan.HS_FLAG_CASELESS if d.caseless else 0 for d in detectors.detectors]
        self._marker_id = len(patterns)
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(
            expressions=[*patterns, _WHITESPACE_MARKER],
            ids=list(range(len(patterns) + 1)),
            flags=[*flags, 0],
        )

    def scan(self, block: bytes) -> tuple[list[tuple[int, int | None]], list[int]]:
        """Return ``(candidates, whitespace-marker ends)`` in ``block``.

        A candidate is ``(end, detector index)``; the index is ``None`` when the engine cannot
        tell which detector fired (the ``re`` fallback), meaning "run them all".
        """
        if self._db is None:
            markers = [match.end() for match in self._re.finditer(block)]
            return [(end, None) for end in self._detectors.candidate_ends(block)], markers
        candidates: list[tuple[int, int | None]] = []
        markers = []
        marker_id = self._marker_id

        def on_match(ident: int, _start: int, end: int, _flags: int, _context: Any) -> None:
            if ident == marker_id:
                markers.append(end)
            else:
                candidates.append((end, ident))

        self._db.scan(block, match_event_handler=on_match)
        return candidates, markers


@functools.cache
def _block_scanner() -> _BlockScanner:
    return _BlockScanner(default_detector_set())


def _line_index(end: int, closing: list[int], count: int) -> int:
    # The newline closing line i sits at offset cumulative_length(i) + i.
    index = bisect_left(range(count), end, key=lambda i: closing[i] + i)
    return min(index, count - 1)


def _lines_of(ends: list[int], lines: list[bytes]) -> set[int]:
    """Indices of the lines (of a block split on newlines) where a match ends."""
    if not ends:
        return set()
    closing = list(accumulate(map(len, lines)))
    count = len(closing)
    return {_line_index(end, closing, count) for end in ends}


def _detectors_by_line(
    candidates: list[tuple[int, int | None]], lines: list[bytes]
) -> dict[int, frozenset[int] | None]:
    """Line index → the detectors whose prefilter fired on it (``None``: all of them)."""
    if not candidates:
        return {}
    closing = list(accumulate(map(len, lines)))
    count = len(closing)
    fired: dict[int, set[int] | None] = {}
    for end, ident in candidates:
        index = _line_index(end, closing, count)
        known = fired.get(index, set())
        if ident is None or known is None:
            fired[index] = None
        else:
            known.add(ident)
            fired[index] = known
    return {index: None if ids is None else frozenset(ids) for index, ids in fired.items()}


@dataclass(frozen=True, slots=True)
class _Range:
    index: int
    shard: int
    path: str
    start: int
    end: int
    is_first: bool
    is_last: bool


def _check_range(
    settings: _Settings,
    byte_range: _Range,
    max_line_bytes: int,
    copy: Any = None,
    progress: Callable[[int], None] | None = None,
) -> _Chunk:
    """Read and check one line-aligned byte range of a shard.

    The cyclic garbage collector is paused meanwhile: the rows' lists, dicts and tuples hold no
    cycles, yet every 700 of them would start a collection (5-8 % of the checking time).
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _check_lines(settings, byte_range, max_line_bytes, copy, progress)
    finally:
        if paused:
            gc.enable()


def _check_lines(
    settings: _Settings,
    byte_range: _Range,
    max_line_bytes: int,
    copy: Any,
    progress: Callable[[int], None] | None,
) -> _Chunk:
    checker = _RowChecker(settings, byte_range.index, keep_redacted=copy is not None)
    chunk = checker.chunk
    scanner = _block_scanner()
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    typed = _typed_decoder(_expected_values(settings.workspace)) if copy is None else None
    typed_decode, typed_error = typed if typed is not None else (None, Exception)
    check_typed = checker.check_typed
    check = checker.check
    line = 0

    def problem(kind: str, message: str, at: int) -> None:
        checker.add(JSONL_PROBLEM_CODES[kind], "error", message, None, None, at)
        if copy is not None:
            chunk.copy_dropped += 1

    with open(byte_range.path, "rb") as handle:
        handle.seek(byte_range.start)
        position = byte_range.start
        carry = b""
        skipping = False
        while position < byte_range.end:
            data = handle.read(min(_BLOCK_BYTES, byte_range.end - position))
            if not data:
                break
            cut = data.rfind(b"\n")
            if (
                not skipping
                and not carry
                and 0 <= cut < len(data) - 1
                and position + len(data) < byte_range.end
            ):
                # The common block: whole lines, then the start of one more. That start is read
                # again with the next block, so this one is used as read, without a copy.
                limit = cut + 1
                position += limit
                handle.seek(position)
                if progress is not None:
                    progress(limit)
                block = data
                lines = data.split(b"\n")
                lines.pop()  # the partial line
                terminated = True
                at_end = False
            else:
                position += len(data)
                if progress is not None:
                    progress(len(data))
                if skipping:
                    cut = data.find(b"\n")
                    if cut < 0:
                        continue
                    skipping = False
                    data = data[cut + 1 :]
                if carry:
                    data = carry + data
                    carry = b""
                at_end = position >= byte_range.end
                if not at_end:
                    cut = data.rfind(b"\n")
                    if cut < 0:
                        if len(data) > max_line_bytes + 2:
                            line += 1
                            problem(
                                "line_too_long",
                                f"line is longer than {max_line_bytes} bytes",
                                line,
                            )
                            skipping = True
                        else:
                            carry = data
                        continue
                    block, carry = data[: cut + 1], data[cut + 1 :]
                else:
                    block = data
                if not block:
                    continue
                lines = block.split(b"\n")
                terminated = block.endswith(b"\n")
                if terminated:
                    lines.pop()
                limit = len(block)
            last_index = len(lines) - 1
            candidates, marker_ends = scanner.scan(block)
            if limit < len(block):
                # Matches in the partial line are found again with the next block.
                candidates = [found for found in candidates if found[0] < limit]
                marker_ends = [end for end in marker_ends if end < limit]
            flagged = _detectors_by_line(candidates, lines)
            spaced = _lines_of(marker_ends, lines)
            carriage = b"\r" in block if limit == len(block) else block.find(b"\r", 0, limit) >= 0
            for index, line_bytes in enumerate(lines):
                line += 1
                candidate = index in flagged
                kinds = flagged.get(index) if candidate else None
                raw = line_bytes[:-1] if carriage and line_bytes.endswith(b"\r") else line_bytes
                if line == 1 and byte_range.is_first and raw.startswith(_BOM):
                    problem("bom", "file starts with a UTF-8 byte order mark (BOM)", line)
                    raw = raw[len(_BOM) :]
                    if copy is not None:
                        chunk.copy_dropped -= 1
                if len(raw) > max_line_bytes:
                    problem("line_too_long", f"line is longer than {max_line_bytes} bytes", line)
                    continue
                if typed_decode is not None and not candidate:
                    try:
                        if check_typed(typed_decode(raw), line, index in spaced, raw):
                            continue
                    except typed_error:
                        pass  # not the common shape: the dict path names what is wrong
                try:
                    value = loads(raw)
                except decode_error:
                    if not raw.strip():
                        continue
                    if line == 1 and byte_range.is_first and raw.lstrip().startswith(b"["):
                        problem(
                            "json_array",
                            "file holds a JSON array; JSONL needs one JSON object per line",
                            line,
                        )
                        chunk.stopped = True
                        chunk.lines = line
                        return chunk
                    unterminated = (
                        index == last_index and not terminated and at_end and byte_range.is_last
                    )
                    kind, message = diagnose_jsonl_line(raw, last_without_newline=unterminated)
                    problem(kind, message, line)
                    continue
                if type(value) is not dict:
                    if line == 1 and byte_range.is_first and isinstance(value, list):
                        problem(
                            "json_array",
                            "file holds a JSON array; JSONL needs one JSON object per line",
                            line,
                        )
                        chunk.stopped = True
                        chunk.lines = line
                        return chunk
                    problem(
                        "not_object",
                        f"line holds a JSON {json_type_name(value)}, expected an object",
                        line,
                    )
                    continue
                redacted = check(value, line, candidate, index in spaced, kinds)
                if copy is not None:
                    _copy_row(copy, chunk, raw, redacted, checker.last_spans)
    chunk.lines = line
    return chunk


def _copy_row(
    copy: Any, chunk: _Chunk, raw: bytes, redacted: dict[str, Any] | None, spans: int
) -> None:
    chunk.copy_rows += 1
    if redacted is None:
        copy.write(raw + b"\n")
        return
    chunk.copy_redacted += 1
    chunk.copy_spans += spans
    redacted["redaction_status"] = "redacted"
    copy.write(orjson.dumps(redacted) + b"\n")


def _plan_ranges(shards: list[Path], workers: int) -> list[_Range]:
    """Split shards into line-aligned byte ranges, in file order (one per shard for one worker).

    With several workers, each range is a ``1 / (2 * workers)`` share of what remains, but at
    least :data:`_MIN_RANGE_BYTES` (guided scheduling): large ranges first keep the per-range
    cost low, small ones last let the workers finish together.
    """
    remaining = sum(shard.stat().st_size for shard in shards)
    ranges: list[_Range] = []
    for shard_index, shard in enumerate(shards):
        size = shard.stat().st_size
        bounds = [0]
        with open(shard, "rb") as handle:
            while workers > 1:
                step = max(_MIN_RANGE_BYTES, remaining // (2 * workers))
                cursor = bounds[-1] + step
                if cursor >= size:
                    break
                handle.seek(cursor)
                handle.readline()
                boundary = handle.tell()
                if boundary >= size:
                    break
                remaining -= boundary - bounds[-1]
                bounds.append(boundary)
        remaining -= size - bounds[-1]
        bounds.append(size)
        for position in range(len(bounds) - 1):
            ranges.append(
                _Range(
                    index=len(ranges),
                    shard=shard_index,
                    path=str(shard),
                    start=bounds[position],
                    end=bounds[position + 1],
                    is_first=position == 0,
                    is_last=position == len(bounds) - 2,
                )
            )
    return ranges


_WORKER: dict[str, Any] = {}


def _worker_check(byte_range: _Range) -> _Chunk:
    return _check_range(_WORKER["settings"], byte_range, _WORKER["max_line_bytes"])


def _default_workers(total_bytes: int) -> int:
    if total_bytes < _PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _hash_shards(shards: list[Path], result: dict[str, Any]) -> None:
    if len(shards) == 1:
        # One file: its own digest is the input digest; hash the bytes once.
        digest = _sha256_of(shards[0], ())
        result["dataset_hash"] = digest
        result["digests"] = [digest]
        return
    combined = hashlib.sha256()
    result["digests"] = [_sha256_of(shard, (combined,)) for shard in shards]
    result["dataset_hash"] = HASH_PREFIX + combined.hexdigest()


def _sha256_of(path: Path, also: tuple[Any, ...]) -> str:
    """sha256 of a file's bytes, feeding the same bytes to the ``also`` hashes."""
    own = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK_BYTES):
            own.update(block)
            for other in also:
                other.update(block)
    return HASH_PREFIX + own.hexdigest()


# ---- merging ----


class _Merger:
    """Merges chunks in file order, applying the cross-chunk rules exactly as one pass would.

    Trace ids and leakage digests are collected, and hashed, as chunks arrive (while the
    workers still run); :meth:`repeats` finds the repeated ones at the end in a few array
    passes (numpy), comparing the values themselves wherever two hashes agree.
    """

    def __init__(self, resolve: Callable[[int], tuple[str, int]], splits: tuple[str, ...]) -> None:
        self.resolve = resolve
        self.splits = splits
        self.findings: list[tuple[str, str, str, str | None, str | None, int]] = []
        self.ids: list[Any] = []
        self.id_hashes: list[Any] = []
        self.id_locs = array("q")
        self.digests = bytearray()
        self.digest_hashes: list[Any] = []
        self.digest_meta = array("q")
        self.digest_tids: dict[int, str] = {}
        self.counts: Counter[tuple[str, str]] = Counter()
        self.rows = 0
        self.train_max = float("-inf")
        self.eval: list[tuple[array, array]] = []

    def where(self, packed: int) -> str:
        path, line = self.resolve(packed)
        return f"{path}:{line}"

    def add(self, chunk: _Chunk) -> None:
        self.rows += chunk.rows
        self.findings.extend(chunk.findings)
        for entry in chunk.signatures.values():
            count, counts = entry[0], entry[3]
            for name, value in zip(
                ("split", "label", "class", "decision", "severity", "sector"), counts, strict=True
            ):
                if value is not None:
                    self.counts[(name, value)] += count
        self.counts.update(chunk.slow_counts)
        self.ids.extend(chunk.ids)
        self.id_hashes.append(_hash_keys(chunk.ids))
        self.id_locs.extend(chunk.id_locs)
        self.digests += chunk.digests
        self.digest_hashes.append(_digest_keys(chunk.digests))
        self.digest_meta.extend(chunk.digest_meta)
        self.digest_tids.update(chunk.digest_tids)
        self.train_max = max(self.train_max, chunk.train_max)
        if chunk.eval_times:
            self.eval.append((chunk.eval_times, chunk.eval_locs))

    def tid_at(self, packed: int) -> str | None:
        """The trace id recorded at a location (``None``: none, or a long one's digest)."""
        # Locations grow in file order, and chunks arrive in file order.
        index = bisect_left(self.id_locs, packed)
        if index < len(self.id_locs) and self.id_locs[index] == packed:
            key = self.ids[index]
            return key if isinstance(key, str) else None
        return None

    def repeats(self) -> None:
        """Add the findings of repeated trace ids and of repeated prompt + response digests."""
        import numpy as np  # noqa: PLC0415

        none = np.empty(0, np.int64)
        locs = self.id_locs
        for index, first in _repeated(
            np.concatenate([none, *self.id_hashes]), self.ids.__getitem__
        ):
            key = self.ids[index]
            self.findings.append(
                (
                    "DATASET_DUPLICATE_TRACE_ID",
                    "error",
                    f"trace_id is not unique: first used at {self.where(locs[first])}",
                    key if isinstance(key, str) else None,
                    "trace_id",
                    locs[index],
                )
            )
        blob = self.digests
        meta = self.digest_meta
        for index, first in _repeated(
            np.concatenate([none, *self.digest_hashes]),
            lambda i: bytes(blob[16 * i : 16 * i + 16]),
        ):
            packed = meta[index] >> 8
            tid = self.digest_tids[packed] if packed in self.digest_tids else self.tid_at(packed)
            self._leak(meta[first], meta[index] & 0xFF, tid, packed)

    def _leak(self, first_value: int, split_index: int, tid: str | None, packed: int) -> None:
        first = first_value >> 8
        first_split = self.splits[first_value & 0xFF]
        split = self.splits[split_index]
        if first_split == split:
            self.findings.append(
                (
                    "DATASET_DUPLICATE_IN_SPLIT",
                    "warning",
                    f"the same normalised prompt and response already appear in split {split!r} "
                    f"at {self.where(first)}",
                    tid,
                    "prompt",
                    packed,
                )
            )
        else:
            self.findings.append(
                (
                    "DATASET_CROSS_SPLIT_DUPLICATE",
                    "error",
                    f"the same normalised prompt and response appear in split {first_split!r} at "
                    f"{self.where(first)} and in split {split!r} (train/eval leakage)",
                    tid,
                    "prompt",
                    packed,
                )
            )

    def temporal_findings(self) -> None:
        if self.train_max == float("-inf"):
            return
        newest = self.train_max
        stamp = dt.datetime.fromtimestamp(newest, dt.UTC).isoformat().replace("+00:00", "Z")
        for times, locs in self.eval:
            for seconds, packed in zip(times, locs, strict=True):
                if seconds < newest:
                    tid = self.tid_at(packed)
                    self.findings.append(
                        (
                            "DATASET_TEMPORAL_ORDER",
                            "error",
                            f"an evaluation row's event_time is before the newest training row "
                            f"({stamp}); the temporal split leaks the future into training",
                            tid if isinstance(tid, str) else None,
                            "event_time",
                            packed,
                        )
                    )


def _hash_keys(keys: list[Any]) -> Any:
    """One 64-bit hash per key (str or bytes; Python's own, consistent within this process)."""
    import numpy as np  # noqa: PLC0415

    return np.fromiter(map(hash, keys), dtype=np.int64, count=len(keys))


def _digest_keys(blob: bytes | bytearray) -> Any:
    """The first 8 bytes of each 16-byte digest of ``blob``, as one int64 each (a copy: the
    blob is free to change or go)."""
    import numpy as np  # noqa: PLC0415

    return np.frombuffer(blob, dtype=np.int64)[0::2].copy()


def _repeated(hashes: Any, value_of: Callable[[int], Any]) -> list[tuple[int, int]]:
    """Return ``(index, index of the first equal value)`` for every value equal to an earlier
    one, in index order; ``hashes[i]`` is a hash of value ``i`` and ``value_of(i)`` the value.

    Sorting the hashes puts equal ones side by side; only those (true repeats and the rare
    colliding hash) are compared by value, in index order, so the first of equal values wins.
    """
    import numpy as np  # noqa: PLC0415

    if len(hashes) < 2:
        return []
    order = np.argsort(hashes)
    ordered = hashes[order]
    same = np.flatnonzero(ordered[1:] == ordered[:-1])
    if not len(same):
        return []
    members = np.union1d(order[same], order[same + 1])  # sorted: index order
    first: dict[Any, int] = {}
    found: list[tuple[int, int]] = []
    for index in members.tolist():
        earlier = first.setdefault(value_of(index), index)
        if earlier != index:
            found.append((index, earlier))
    return found


# ---- the public entry point ----


def _settings(
    workspace: CustomerWorkspace, vertical: str | None, redact: bool, pm: Any
) -> tuple[_Settings, list[Finding]]:
    from customer_model_factory.plugins import collect_retrieval_schemas  # noqa: PLC0415

    manager = pm
    schemas, _ = collect_retrieval_schemas(manager)
    # Fail closed: every plugin problem of the run is a finding of this report.
    plugin_findings = manager.stage_findings()
    settings = _Settings(
        workspace=workspace,
        vertical=vertical or workspace.vertical,
        redact=redact,
        schema_ids=frozenset(schemas),
        schemas=schemas,
        sector_pm=manager,
    )
    return settings, plugin_findings


def validate_customer_trace_dataset(
    source: str | Path | Iterable[Mapping[str, Any]],
    workspace: CustomerWorkspace,
    *,
    vertical: str | None = None,
    redacted_copy: str | Path | None = None,
    workers: int | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    progress: Callable[[int, int], None] | None = None,
    context: RunContext | None = None,
    pm: Any = None,
) -> CustomerDatasetValidationReport:
    """Validate a trace dataset against its workspace in one streaming pass.

    :param source: a ``.jsonl`` file, a directory of ``*.jsonl`` shards, or an iterable of dicts.
    :param workspace: the workspace the traces must be bound to.
    :param vertical: a sector every row is validated against (overrides ``workspace.vertical``).
    :param redacted_copy: write a copy with every detected secret or personal datum replaced by a
        typed placeholder and ``redaction_status: "redacted"`` (atomically); lines that are not
        JSON objects are left out. Under ``secrets_policy = "redact"`` detections then become
        warnings. Not available for an iterable source.
    :param workers: processes for a large file (default: one per CPU from 32 MiB up; ``1``
        forces a single process). The report is the same whatever the number.
    :param max_line_bytes: longer lines are reported (``DATASET_JSONL_LINE_TOO_LONG``), not parsed.
    :param progress: called with ``(bytes_done, bytes_total)`` as the read advances.
    :param context: the run context (its plugin manager validates sectors); default: a context
        with the installed plugins and no operator switch.
    :param pm: a plugin manager to use instead of the context's.
    :returns: the sealed report; ``ready`` is false when any finding is an error.
    :raises DataFormatError: the source is missing, empty, or a directory without shards.
    """
    redact = workspace.secrets_policy == "redact" and redacted_copy is not None
    if pm is None:
        pm = (context if context is not None else RunContext()).plugin_manager
    settings, plugin_findings = _settings(workspace, vertical, redact, pm)
    if isinstance(source, str | Path):
        findings, fields = _validate_files(
            Path(source),
            settings,
            redacted_copy=redacted_copy,
            workers=workers,
            max_line_bytes=max_line_bytes,
            progress=progress,
        )
    else:
        if redacted_copy is not None:
            raise DataFormatError("--redacted-copy needs a file source, not in-memory rows")
        findings, fields = _validate_rows(source, settings)
    findings.extend(plugin_findings)
    fields["sector_owners"] = _sector_owners(pm, fields["sector_counts"])
    return CustomerDatasetValidationReport.seal(
        customer_id=workspace.customer_id,
        workspace_id=workspace.workspace_id,
        tenant_id=workspace.tenant_id,
        vertical=settings.vertical,
        secrets_policy=workspace.secrets_policy,
        findings=findings,
        finding_counts=count_by_severity(findings),
        **fields,
    )


def _sector_owners(pm: Any, sector_counts: Mapping[str, int]) -> dict[str, SectorOwner]:
    owners: dict[str, SectorOwner] = {}
    for sector_id in sorted(sector_counts):
        dispatch = pm.sector_dispatch(sector_id)
        if dispatch is not None and dispatch.pack is not None:
            owners[sector_id] = SectorOwner(
                plugin=dispatch.plugin_name,
                distribution=dispatch.distribution,
                version=dispatch.version,
                pack_version=dispatch.pack.version,
            )
    return owners


def _validate_files(
    source: Path,
    settings: _Settings,
    *,
    redacted_copy: str | Path | None,
    workers: int | None,
    max_line_bytes: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[Finding], dict[str, Any]]:
    shards = list_jsonl_shards(source)
    total = sum(shard.stat().st_size for shard in shards)
    count = _default_workers(total) if workers is None else max(1, workers)
    if redacted_copy is not None or "fork" not in multiprocessing.get_all_start_methods():
        count = 1
    if threading.active_count() > 1:
        count = 1  # forking a multi-threaded process can deadlock
    ranges = _plan_ranges(shards, count)
    hashed: dict[str, Any] = {}
    done = [0]

    def advance(size: int) -> None:
        done[0] += size
        if progress is not None:
            progress(done[0], total)

    copy_digest: str | None = None
    # Chunks are merged in file order as they arrive: the locations of a range resolve once the
    # line counts of the ranges before it are known, so merging overlaps the workers.
    base_line: list[int] = []
    names: list[str] = []
    stopped: set[int] = set()
    lines_per_shard = [0] * len(shards)
    display = [_display_name(source, shard) for shard in shards]

    def resolve(packed: int) -> tuple[str, int]:
        index = packed >> _LINE_BITS
        return names[index], base_line[index] + (packed & _LINE_MASK)

    merger = _Merger(resolve, settings.workspace.allowed_splits)
    copy_totals = [0, 0, 0, 0]

    def merge(byte_range: _Range, chunk: _Chunk) -> None:
        base_line.append(lines_per_shard[byte_range.shard])
        names.append(display[byte_range.shard])
        if byte_range.shard in stopped:
            # Ranges after a JSON-array first line are dropped.
            return
        lines_per_shard[byte_range.shard] += chunk.lines
        if chunk.stopped:
            stopped.add(byte_range.shard)
        merger.add(chunk)
        copy_totals[0] += chunk.copy_rows
        copy_totals[1] += chunk.copy_redacted
        copy_totals[2] += chunk.copy_spans
        copy_totals[3] += chunk.copy_dropped

    if count == 1:
        _hash_shards(shards, hashed)
        if redacted_copy is not None:
            with atomic_writer(redacted_copy) as raw_handle:
                handle = _HashingWriter(raw_handle)
                for byte_range in ranges:
                    merge(
                        byte_range,
                        _check_range(settings, byte_range, max_line_bytes, handle, advance),
                    )
                copy_digest = HASH_PREFIX + handle.digest.hexdigest()
        else:
            for byte_range in ranges:
                merge(byte_range, _check_range(settings, byte_range, max_line_bytes, None, advance))
    else:
        _WORKER["settings"] = settings
        _WORKER["max_line_bytes"] = max_line_bytes
        _block_scanner()  # compile once here; the workers inherit it
        context = multiprocessing.get_context("fork")
        try:
            with context.Pool(count) as pool:
                pending = pool.imap(_worker_check, ranges)
                _hash_shards(shards, hashed)
                for byte_range, chunk in zip(ranges, pending, strict=True):
                    merge(byte_range, chunk)
                    advance(byte_range.end - byte_range.start)
        finally:
            _WORKER.clear()

    findings = _finish(merger, settings)
    shard_digests = tuple(
        ShardDigest(
            name=display[index],
            sha256=hashed["digests"][index],
            size_bytes=shards[index].stat().st_size,
            line_count=lines_per_shard[index],
        )
        for index in range(len(shards))
    )
    fields: dict[str, Any] = {
        "source": str(source),
        "dataset_hash": hashed["dataset_hash"],
        "shards": shard_digests,
        **_count_fields(merger),
    }
    if redacted_copy is not None and copy_digest is not None:
        fields["redacted_copy"] = RedactedCopy(
            path=str(redacted_copy),
            sha256=copy_digest,
            rows_written=copy_totals[0],
            rows_redacted=copy_totals[1],
            redactions=copy_totals[2],
            lines_dropped=copy_totals[3],
        )
    return findings, fields


class _HashingWriter:
    """A binary writer that hashes what it writes."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return int(self.handle.write(data))


def _display_name(source: Path, shard: Path) -> str:
    return str(shard) if source == shard else str(source / shard.name)


def _validate_rows(
    rows: Iterable[Mapping[str, Any]], settings: _Settings
) -> tuple[list[Finding], dict[str, Any]]:
    from customer_model_factory.canonical import canonical_json  # noqa: PLC0415
    from customer_model_factory.errors import CanonicalizationError  # noqa: PLC0415

    checker = _RowChecker(settings, 0)
    detectors = checker.detectors
    combined = hashlib.sha256()
    line = 0
    for row in rows:
        line += 1
        if not isinstance(row, Mapping):
            checker.add(
                "DATASET_JSONL_NOT_OBJECT",
                "error",
                f"row is a {type(row).__name__}, expected an object",
                None,
                None,
                line,
            )
            continue
        try:
            encoded = canonical_json(dict(row))
        except CanonicalizationError as error:
            checker.add(
                "DATASET_JSONL_INVALID_JSON",
                "error",
                f"row has no JSON form: {error.message}",
                None,
                None,
                line,
            )
            continue
        combined.update(encoded + b"\n")
        value = orjson.loads(encoded)
        checker.check(value, line, detectors.has_candidate(encoded))
    checker.chunk.lines = line
    if line == 0:
        raise DataFormatError("no rows given", path=_INPUT_ROWS)
    merger = _Merger(
        lambda packed: (_INPUT_ROWS, packed & _LINE_MASK), settings.workspace.allowed_splits
    )
    merger.add(checker.chunk)
    findings = _finish(merger, settings)
    return findings, {
        "source": _INPUT_ROWS,
        "dataset_hash": HASH_PREFIX + combined.hexdigest(),
        "shards": (),
        **_count_fields(merger),
    }


def _finish(merger: _Merger, settings: _Settings) -> list[Finding]:
    """Apply the whole-dataset rules and turn finding tuples into located findings."""
    ws = settings.workspace
    merger.repeats()
    merger.temporal_findings()
    findings = [
        Finding.model_construct(
            code=code,
            severity=severity,
            message=message,
            trace_id=tid,
            field=field_name,
            location=merger.where(packed),
        )
        for code, severity, message, tid, field_name, packed in merger.findings
    ]
    splits = {value for (name, value) in merger.counts if name == "split"}
    for split in ws.required_splits:
        if split not in splits:
            findings.append(
                Finding(
                    code="DATASET_SPLIT_MISSING",
                    severity="error",
                    message=f"required split {split!r} holds no trace",
                    field="split",
                )
            )
    if merger.rows == 0:
        findings.append(
            Finding(
                code="DATASET_NO_ROWS",
                severity="error",
                message="the dataset holds no trace object",
            )
        )
    return findings


def _count_fields(merger: _Merger) -> dict[str, Any]:
    by: dict[str, dict[str, int]] = {
        name: {} for name in ("split", "label", "class", "decision", "severity", "sector")
    }
    for (name, value), count in merger.counts.items():
        by[name][str(value)] = count
    severity = by["severity"]
    return {
        "row_count": merger.rows,
        "split_counts": dict(sorted(by["split"].items())),
        "label_counts": dict(sorted(by["label"].items())),
        "label_class_counts": dict(sorted(by["class"].items())),
        "decision_counts": dict(sorted(by["decision"].items())),
        "severity_counts": {level: severity.get(level, 0) for level in SEVERITIES},
        "high_risk_count": sum(severity.get(level, 0) for level in HIGH_RISK_SEVERITIES),
        "sector_counts": dict(sorted(by["sector"].items())),
    }
