"""The dataset stage's contracts: the workspace, the trace, the report and their constants.

Pure data: nothing here reads a dataset. The rules that judge a row are in :mod:`.rules`; the
engine that reads files fast is in :mod:`.engine`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from customer_model_factory.errors import ConfigError, DataFormatError
from customer_model_factory.io import read_text_strict
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
    "hash_dataset_files",
    "parse_rfc3339",
    "rfc3339_seconds",
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
    "nesting_too_deep": "DATASET_NESTING_TOO_DEEP",
    "encoding": "DATASET_JSONL_ENCODING",
    "compressed": "DATASET_JSONL_COMPRESSED",
}
"""Kind of :class:`~.io.JsonlProblem` → the finding code it becomes (always an error)."""


# ---- contracts ----


def _aware(value: Any, what: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        parsed = parse_rfc3339(value)
        if parsed is None:
            raise ValueError(f"{what} {value!r} is not an RFC 3339 date-time with an offset")
        return parsed.astimezone(dt.UTC)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"{what} must carry a UTC offset (e.g. 2024-12-31T23:59:59Z)")
        return value.astimezone(dt.UTC)
    raise ValueError(f"{what} must be an RFC 3339 date-time")


_RFC3339: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))\Z"
)


def parse_rfc3339(text: str) -> dt.datetime | None:
    """Parse an RFC 3339 ``date-time`` (section 5.6); ``None`` when it is not one.

    The grammar is followed exactly: ``T`` or ``t`` between date and time (or a space, which the
    RFC's note allows), ``Z``, ``z`` or a ``+hh:mm``/``-hh:mm`` offset (``-00:00`` reads as
    UTC), any number of fraction digits (kept to the microsecond), and a leap second ``:60``
    in a minute's last second, read as the first instant of the next minute. Forms ISO 8601
    allows but RFC 3339 does not (``+0200``, ``+02``, a comma fraction, a missing offset or
    seconds, week or ordinal dates) are refused.
    """
    if len(text) == 20 and text[4::3] == "--T::Z":
        # The common shape, every separator in place (characters 4, 7, 10, 13, 16 and 19):
        # fromisoformat reads exactly RFC 3339 here.
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            pass  # a leap second, or not a date-time: the full grammar decides
    match = _RFC3339.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = match.group(7)
    micro = int((fraction[1:] + "00000")[:6]) if fraction else 0
    offset = dt.UTC
    if match.group(8):
        off_hours, off_minutes = int(match.group(9)), int(match.group(10))
        if off_hours > 23 or off_minutes > 59:
            return None
        delta = dt.timedelta(hours=off_hours, minutes=off_minutes)
        offset = dt.timezone(-delta if match.group(8) == "-" else delta)
    leap = second == 60
    if leap and minute != 59:
        return None
    try:
        parsed = dt.datetime(
            year, month, day, hour, minute, 59 if leap else second, micro, tzinfo=offset
        )
        if leap:
            parsed += dt.timedelta(seconds=1) - dt.timedelta(microseconds=micro)
        # An instant outside years 1-9999 in UTC (9999-12-31T23:59:59-23:59) has no UTC form:
        # it is not a time anything here can compare.
        parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None
    return parsed


_FROM_ISO: Final = dt.datetime.fromisoformat


def rfc3339_seconds(text: str) -> float | None:
    """:func:`parse_rfc3339` as epoch seconds (``None`` when it is no RFC 3339 date-time).

    The common shape is read in one step, as :func:`parse_rfc3339` reads it; the rows' time
    fields are read through here, once or twice per row.
    """
    if len(text) == 20 and text[4::3] == "--T::Z":
        try:
            return _FROM_ISO(text).timestamp()
        except ValueError:
            pass  # the full grammar decides
    parsed = parse_rfc3339(text)
    return None if parsed is None else parsed.timestamp()


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
    temporal_split: StrictBool = Field(
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
        # Every split the policy names must exist: a typo would switch a check off silently.
        for name in ("split_windows", "training_splits", "evaluation_splits"):
            named = [s for s in getattr(self.as_of, name) if s not in self.allowed_splits]
            if named:
                raise ValueError(f"as_of.{name} names splits {named} not in allowed_splits")
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
        if table is data and not set(cls.model_fields) & set(data):
            # No [workspace] table and no workspace key: a mistyped table name, most likely.
            tables = [key for key, value in data.items() if isinstance(value, Mapping)]
            if tables:
                hint = difflib.get_close_matches(tables[0], ["workspace"], n=1, cutoff=0.5)
                raise ConfigError(
                    f"no [workspace] table; found [{tables[0]}]"
                    + ("; did you mean [workspace]?" if hint else ""),
                    path=path,
                    field=tables[0],
                )
        try:
            return cls.model_validate(dict(table))
        except ValidationError as error:
            errors = error.errors()
            # An unknown key first: a misspelt key is the likely cause of the other errors.
            first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
            where = ".".join(str(part) for part in first["loc"]) or None
            if first["type"] == "extra_forbidden":
                key = str(first["loc"][-1])
                known = _known_keys(first["loc"][:-1])
                hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                message = f"unknown key {key!r}" + (
                    f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(known)})"
                )
                raise ConfigError(message, path=path, field=where) from None
            message = str(first["msg"]).removeprefix("Value error, ")
            head = message.split(" ", 1)[0]
            if where is None and head.split(".")[0] in cls.model_fields:
                where = head  # a consistency rule names the key it is about first
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
    """The 1-based line where the last key of ``dotted`` is assigned or opens a table (tomllib
    keeps no positions), or ``None`` when it is not written (a missing field)."""
    key = next((part for part in reversed(dotted.split(".")) if not part.isdigit()), "")
    quoted = rf"[\"']?{re.escape(key)}[\"']?"
    pattern = re.compile(
        rf"^[ \t]*(?:{quoted}[ \t]*=|\[[ \t]*(?:[^\]\n]*\.)?[ \t]*{quoted}[ \t]*\])",
        re.MULTILINE,
    )
    found = pattern.search(text)
    return text.count("\n", 0, found.start()) + 1 if found else None


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the workspace table accepts at ``loc`` (a path of keys into it)."""
    if loc[:1] == ("as_of",):
        model: type[BaseModel] = TimeWindow if len(loc) >= 3 else AsOfPolicy
    else:
        model = CustomerWorkspace
    return sorted(model.model_fields)


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
    "sha256:<hex> over the exact bytes of the input as stored: the file itself, or the *.jsonl "
    "and *.jsonl.gz shards of the directory concatenated in sorted name order (no separator; a "
    "*.jsonl.gz shard as its compressed bytes), e.g. "
    "`cat $(ls dir/*.jsonl dir/*.jsonl.gz | sort) | sha256sum`. For an in-memory iterable of "
    "rows: over each row's RFC 8785 canonical JSON followed by a newline. Each shard's own "
    "digest is in `shards`."
)


_HASH_BLOCK_BYTES: Final = 8 << 20
_HASH_BUFFER_BYTES: Final = 256 << 10


def hash_dataset_files(
    shards: Sequence[Path], *, keep: list[bytearray] | None = None
) -> tuple[str, list[str]]:
    """Return ``(dataset_hash, per-shard digests)`` of a dataset's files, by the recipe of
    ``dataset_hash``: one file's own digest, or the digest of the shards concatenated in the order
    given (sorted by name, as :func:`customer_model_factory.io.list_jsonl_shards` lists them).

    :param keep: when given, each shard's bytes are appended to it as they are hashed, so a caller
        can parse exactly the bytes it verified (no second read that could see other content).
    """
    combined = hashlib.sha256() if len(shards) > 1 else None
    digests = []
    # Without ``keep``, one small buffer is read into again and again: it stays in the CPU's
    # cache between the copy and the hash (an 8 MiB block read each time does not).
    buffer = bytearray(_HASH_BUFFER_BYTES) if keep is None else None
    for shard in shards:
        own = hashlib.sha256()
        kept = bytearray() if keep is not None else None
        with open(shard, "rb", buffering=0) as handle:
            while True:
                if buffer is not None:
                    size = handle.readinto(buffer)
                    block: bytes | memoryview = memoryview(buffer)[:size]
                else:
                    block = handle.read(_HASH_BLOCK_BYTES)
                    size = len(block)
                if not size:
                    break
                own.update(block)
                if combined is not None:
                    combined.update(block)
                if kept is not None:
                    kept += block
        if keep is not None and kept is not None:
            keep.append(kept)
        digests.append("sha256:" + own.hexdigest())
    dataset_hash = digests[0] if combined is None else "sha256:" + combined.hexdigest()
    return dataset_hash, digests


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
