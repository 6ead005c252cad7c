"""The dataset stage's rules: what makes a trace row, and a dataset, acceptable.

Every rule is written here once, readably, on a row decoded as a dict. :class:`RowRules` applies
them to one row (:meth:`RowRules.check`, the reference path) and reports through four hooks that
the engine implements (:meth:`~RowRules.add` a finding, record a trace id, a leakage key, an event
time); the cross-row rules (repeats, leakage, temporal order) name their findings with the
functions at the end of this module.

Rules fall in three groups:

- **Signature rules** (:meth:`RowRules.judge_signature`) read only the categorical fields of a
  row (binding, split, decision, severity, label, reviewer role, flags, vertical). Their verdict
  depends on those values alone, so the engine computes it once per distinct combination and
  reuses it.
- **Shape rules** (presence, JSON type, blank values, reference lists, time syntax) name what is
  wrong with a field. They run in :meth:`RowRules.check`.
- **Value rules** (:meth:`RowRules.value_rules`) run on a row whose fields have the right shape:
  the signature verdict's findings, the leakage key, the label cut-off, the split's time window,
  the sector pack, the self-declared flags.

The fast engine (:mod:`.engine`) takes a row only when its shape rules are known to pass (its
typed decoder and cached verdicts prove it) and then calls its verdict's
:meth:`RowRules.value_rules`, the function :meth:`RowRules.judge_values` applies here; any
other row is checked by :meth:`RowRules.check`. So a rule is added in one place: in
:meth:`~RowRules.judge_signature` when it reads only categorical fields, else in
:meth:`~RowRules.check` (shape) or :meth:`~RowRules.value_rules` (value). A new field read by a
value rule must also be decoded by the engine's typed decoder (``_typed_decoder``), which the
contract test ``tests/unit/test_dataset_engine_contract.py`` would otherwise catch.
"""

from __future__ import annotations

import abc
import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from customer_model_factory.detectors import (
    KEY_SUFFIX,
    DetectorSet,
    default_detector_set,
    iter_text_fields,
    placeholder,
    redact_text,
)
from customer_model_factory.findings import Severity
from customer_model_factory.io import json_type_name
from customer_model_factory.stages.dataset.models import (
    DECISIONS,
    HIGH_RISK_SEVERITIES,
    REDACTION_STATUSES,
    SEVERITIES,
    CustomerWorkspace,
    rfc3339_seconds,
)

__all__ = [
    "ECHO_LIMIT",
    "SIG_FIELDS",
    "TRACE_ID_LIMIT",
    "RowRules",
    "Verdict",
    "cross_split_duplicate",
    "duplicate_in_split",
    "duplicate_trace_id",
    "leakage_key",
    "normalise",
    "printable",
    "temporal_order",
]

Template = tuple[str, str, str, str | None]
"""A finding without its row: ``(code, severity, message, field)``."""
ValueRules = Callable[..., None]
"""The value rules of one verdict's rows (:meth:`RowRules.value_rules`)."""

SIG_FIELDS: Final = (
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
"""The categorical fields of a row, in signature order: the only fields signature rules read."""

# Positions of some signature fields (the engine reads them from a tuple in its hot loop).
S_PII, S_SECRET = 8, 9
COUNTED: Final = ("split", "label", "class", "decision", "severity", "sector")
"""What a verdict's ``counted`` tuple holds, in order (the report's per-value counts)."""

ROW_FIELDS: Final = frozenset(
    {"trace_id", "prompt", "response", "source_refs", "policy_refs", "observed_at"}
)
_OPTIONAL_TEXT: Final = ("workspace_id", "vertical")
ECHO_LIMIT: Final = 64
"""Characters of a value from the data that a message repeats (the rest is cut: ``…``)."""
TRACE_ID_LIMIT: Final = 256
"""Characters of a trace id that a finding repeats."""
# Longer than any id the engine keeps as text: a secret id is compared by digest only.
_SURROGATE: Final = "\x00secret-trace-id:"
# Characters a message escapes: C0 and C1 controls, DEL, line and paragraph separators and
# the bidirectional controls that can reorder what a terminal shows.
_CONTROL: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\x1b``,
    ``\\u2028``), cut to ``limit`` characters (``…`` marks a cut)."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "\u2026"
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode(), text)


_TYPE_NAMES: Final = {str: "string", list: "non-empty list", dict: "JSON object"}


@dataclass(frozen=True, slots=True)
class _Settings:
    """Everything the rules (and a worker) need, derived once from the workspace."""

    workspace: CustomerWorkspace
    vertical: str | None
    redact: bool
    schema_ids: frozenset[str]
    schemas: Mapping[str, Any]
    sector_pm: Any
    shared: dict[str, Any] = field(default_factory=dict)


class Verdict:
    """The signature rules' verdict on one combination of categorical values.

    It is row-independent: the engine caches it by signature and counts its rows in ``count``.
    """

    __slots__ = (
        "count",
        "counted",
        "declared",
        "present",
        "role",
        "sector",
        "split",
        "split_index",
        "strings",
        "templates",
        "tokens",
        "window",
    )

    def __init__(  # noqa: PLR0917 - a record, built in one place
        self,
        split: str | None,
        templates: tuple[Template, ...],
        counted: tuple[Any, ...],
        window: tuple[float, float] | None,
        role: int,
        split_index: int,
        declared: tuple[Template, ...],
        sector: str | None,
        present: int = 0,
        strings: int = 0,
    ) -> None:
        self.count = 1
        #: The row's split when it is an allowed one (rules that need a split use this).
        self.split = split
        #: The signature rules' findings.
        self.templates = templates
        #: The values the report counts, in :data:`COUNTED` order (``None``: not counted).
        self.counted = counted
        #: The split's event-time window ``(start, end)`` in epoch seconds, if it has one.
        self.window = window
        #: Under ``temporal_split``: 1 training split, 2 evaluation split, 0 neither.
        self.role = role
        #: Index of the split in ``allowed_splits`` (0 when unknown).
        self.split_index = split_index
        #: Self-declared secret/PII findings (dropped when the redacted copy redacts the row).
        self.declared = declared
        #: The sector whose pack checks the row, if any.
        self.sector = sector
        #: How many of the categorical fields are present and not null (the engine counts a
        #: row's keys with it).
        self.present = present
        #: How many of them are strings.
        self.strings = strings
        #: Both together: what the row's quotes count for them (see the engine).
        self.tokens = present + strings


class RowRules(abc.ABC):
    """Every row rule, applied to one row at a time; the engine implements the four hooks."""

    def __init__(self, settings: _Settings, *, keep_redacted: bool = True) -> None:
        ws = settings.workspace
        self.settings = settings
        self.detectors: DetectorSet = default_detector_set()
        self.required = frozenset(ws.required_fields)
        self.extra_required = tuple(
            f for f in ws.required_fields if f not in ROW_FIELDS and f not in SIG_FIELDS
        )
        self.allowed_splits = frozenset(ws.allowed_splits)
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
        self.severity_detect: Severity = "warning" if settings.redact else "error"
        self.last_spans = 0
        self.schema_validators: dict[str, Any] = settings.shared.setdefault("schema_validators", {})
        # Whether check() must return the redacted row (a redacted copy is being written).
        self.keep_redacted = keep_redacted

    def shown(self, value: str, limit: int = ECHO_LIMIT) -> str:
        """A value from the data as a finding may repeat it: its detector's placeholder when it
        holds a secret or personal datum, else :func:`printable` and cut to ``limit``."""
        detections = self.detectors.scan_text(value)
        if detections:
            return placeholder(detections[0].kind)
        return printable(value, limit)

    # -- the hooks the engine implements --

    @abc.abstractmethod
    def add(  # noqa: PLR0917 - positional on purpose: called per finding in the hot loop
        self,
        code: str,
        severity: str,
        message: str,
        trace_id: str | None,
        field_name: str | None,
        line: int,
    ) -> None:
        """Report a finding on a row."""

    @abc.abstractmethod
    def record_row(  # noqa: PLR0917 - one call per row on the fast path
        self,
        trace_id: str | None,
        prompt: str | None,
        response: str | None,
        blank_tid: str | None,
        event: float | None,
        verdict: Verdict,
        line: int,
        spaced: bool,
    ) -> None:
        """Record what the whole-dataset rules read of a row once every row is in; each part is
        ``None`` when it does not apply.

        :param trace_id: a valid trace id (repeats are found at the end).
        :param prompt: with ``response``: the texts of a row in a known split, whose
            :func:`leakage_key` is recorded (repeats within and across splits).
        :param blank_tid: the row's trace id when it is blank, to name the row.
        :param event: the event time of a row in a training or evaluation split (temporal
            order; ``verdict.role`` says which).
        :param spaced: the raw row may hold whitespace other than single spaces (a hint for a
            faster key).
        """

    def verdict(self, row: Mapping[str, Any], sig: tuple[Any, ...]) -> Verdict:
        """The signature verdict of a row (``sig``: its :data:`SIG_FIELDS` values); the engine
        caches it."""
        return self.judge_signature(row)[0]

    def string_ref(self, entry: str, name: str) -> tuple[str, str] | None:
        """The verdict on one string reference; the engine caches it."""
        return self.judge_string_ref(entry, name)

    # -- one row --

    def check(
        self,
        row: dict[str, Any],
        line: int,
        candidate: bool,
        spaced: bool = True,
        kinds: frozenset[int] | None = None,
    ) -> dict[str, Any] | None:
        """Apply every rule to one row; return the redacted row when a secret or personal datum
        was found (the row itself when :attr:`keep_redacted` is off: no copy is written).

        :param candidate: the prefilter matched this row's raw bytes (secrets/PII possible).
        :param spaced: passed on to :meth:`record_row`.
        :param kinds: the detectors whose prefilter matched (``None``: run them all).
        """
        get = row.get
        trace_id = get("trace_id")
        if type(trace_id) is str and trace_id and not trace_id.isspace():
            tid: str | None = trace_id
        else:
            tid = trace_id if type(trace_id) is str else None
            trace_id = None
            self.field_problem(row, "trace_id", tid, line, str)
        if tid is not None and (candidate or len(tid) > TRACE_ID_LIMIT):
            detections = self.detectors.scan_text(tid) if candidate else None
            if detections:
                # A trace id that is a secret never names its row; it is still compared with
                # the others, through a digest.
                tid = placeholder(detections[0].kind)
                if trace_id is not None:
                    trace_id = _SURROGATE + hashlib.blake2b(trace_id.encode()).hexdigest()
            elif len(tid) > TRACE_ID_LIMIT:
                tid = tid[:TRACE_ID_LIMIT] + "\u2026"

        verdict = self.verdict(row, tuple(map(get, SIG_FIELDS)))

        prompt = get("prompt")
        response = get("response")
        if not (
            type(prompt) is str
            and type(response) is str
            and prompt
            and response
            and not prompt.isspace()
            and not response.isspace()
        ):
            self.field_problem(row, "prompt", tid, line, str)
            self.field_problem(row, "response", tid, line, str)
            prompt = response = None

        self.check_refs(get("source_refs"), "source_refs", row, tid, line)
        self.check_refs(get("policy_refs"), "policy_refs", row, tid, line)
        observed = self.time_of(row, "observed_at", tid, line)
        event = None
        if get("event_time") is not None or self.needs_event_time:
            event = self.event_time_of(row, verdict.split, tid, line)

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
                self.field_problem(row, name, tid, line, None)

        redacted = self.detect(row, tid, line, kinds) if candidate else None
        self.judge_values(
            trace_id,
            tid,
            verdict,
            prompt,
            response,
            observed,
            event,
            row,
            b"",
            line,
            spaced,
            redacted is not None,
        )
        return redacted

    def judge_values(  # noqa: PLR0917 - the reference path's way in
        self,
        trace_id: str | None,
        tid: str | None,
        verdict: Verdict,
        prompt: str | None,
        response: str | None,
        observed: float | None,
        event: float | None,
        row: dict[str, Any] | None,
        raw: bytes,
        line: int,
        spaced: bool,
        redacted: bool,
    ) -> None:
        """The value rules of a row whose fields have the right shape (:meth:`value_rules`
        of its verdict, applied to it).

        :param trace_id: the row's trace id when it is valid (non-blank), else ``None``.
        :param tid: the trace id that names the row in findings (also a blank one).
        :param prompt: with ``response``: both non-blank, or ``None``.
        :param observed: ``observed_at`` in epoch seconds, when it is a valid time.
        :param event: ``event_time`` in epoch seconds, when it is a valid time.
        :param row: the row as a dict, or ``None`` with ``raw`` its JSON (decoded only when a
            sector pack needs the whole row).
        :param redacted: the redacted copy replaces a detected secret or personal datum here.
        """
        self.value_rules_of(verdict)(
            trace_id, tid, prompt, response, observed, event, row, raw, line, spaced, redacted
        )

    def value_rules_of(self, verdict: Verdict) -> ValueRules:
        """The value rules of a verdict's rows (:meth:`value_rules`); the engine caches them with
        the verdict."""
        return self.value_rules(verdict)

    def value_rules(self, verdict: Verdict) -> ValueRules:
        """The value rules for the rows of one signature verdict, as one function of a row's
        values (the parameters of :meth:`judge_values` but the verdict).

        What depends only on the verdict and the workspace (the verdict's findings, its split,
        time window and sector, the label cut-off, the engine's hooks) is read once, here, so
        the engine's common row costs one call into the rules.
        """
        add = self.add
        record_row = self.record_row
        sector = self.sector
        templates = verdict.templates
        split = verdict.split
        cutoff = self.cutoff
        window = verdict.window
        role = verdict.role
        pack = verdict.sector
        declared = verdict.declared
        redact = self.settings.redact
        keyed = split is not None  # a leakage key is recorded for rows of a known split

        def judge(  # noqa: PLR0917 - one call per row on the fast path
            trace_id: str | None,
            tid: str | None,
            prompt: str | None,
            response: str | None,
            observed: float | None,
            event: float | None,
            row: dict[str, Any] | None,
            raw: bytes,
            line: int,
            spaced: bool,
            redacted: bool,
        ) -> None:
            # What the whole-dataset rules read of the row, in one call (it adds no finding).
            leak = keyed and prompt is not None and response is not None
            record_row(
                trace_id,
                prompt if leak else None,
                response if leak else None,
                None if tid is trace_id else tid,
                event if role else None,
                verdict,
                line,
                spaced,
            )
            for code, severity, message, field_name in templates:
                add(code, severity, message, tid, field_name, line)
            if observed is not None and cutoff is not None and observed > cutoff:
                add(
                    "DATASET_LABEL_AFTER_CUTOFF",
                    "error",
                    "observed_at is after the workspace label cut-off (as-of leakage)",
                    tid,
                    "observed_at",
                    line,
                )
            if event is not None and window is not None and not window[0] <= event < window[1]:
                add(
                    "DATASET_EVENT_OUTSIDE_WINDOW",
                    "error",
                    f"event_time is outside the time window of split {split!r}",
                    tid,
                    "event_time",
                    line,
                )
            if pack is not None:
                sector(row if row is not None else orjson.loads(raw), pack, tid, line)
            # Under the redact policy a row the copy redacts is judged by its detections instead.
            if declared and not (redacted and redact):
                for code, severity, message, field_name in declared:
                    add(code, severity, message, tid, field_name, line)

        return judge

    # -- signature rules --

    def judge_signature(self, row: Mapping[str, Any]) -> tuple[Verdict, bool]:
        """Apply the signature rules; return the verdict and whether it may be reused for every
        row with the same categorical values (not when a missing and a null field, which read
        the same in a signature, would be judged differently)."""
        ws = self.settings.workspace
        templates: list[Template] = []
        note = templates.append
        clean: dict[str, bool] = {}

        ambiguous = any(row.get(name) is None and name in self.required for name in SIG_FIELDS)
        for name in (
            "customer_id",
            "tenant_id",
            "split",
            "expected_decision",
            "severity",
            "label",
            "reviewer_role",
        ):
            clean[name] = self._present_text(row, name, note)
        for name in ("contains_pii", "contains_secret", "redaction_status", "vertical"):
            if name in self.required and row.get(name) is None:
                note(
                    (
                        "DATASET_MISSING_REQUIRED_FIELD",
                        "error",
                        f"required field {name} is missing",
                        name,
                    )
                )
        for name in _OPTIONAL_TEXT:
            value = row.get(name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                note(("DATASET_FIELD_TYPE", "error", f"{name} must be a non-blank string", name))
                clean[name] = False
        for name in ("contains_pii", "contains_secret"):
            value = row.get(name)
            if value is not None and type(value) is not bool:
                note(("DATASET_FIELD_TYPE", "error", f"{name} must be a boolean", name))
        if clean.get("customer_id") and row["customer_id"] != ws.customer_id:
            note(
                (
                    "DATASET_CUSTOMER_ID_MISMATCH",
                    "error",
                    "customer_id does not match the workspace",
                    "customer_id",
                )
            )
        if clean.get("tenant_id") and row["tenant_id"] != ws.tenant_id:
            note(
                (
                    "DATASET_TENANT_ID_MISMATCH",
                    "error",
                    "tenant_id does not match the workspace",
                    "tenant_id",
                )
            )
        workspace_id = row.get("workspace_id")
        if isinstance(workspace_id, str) and workspace_id.strip():
            if workspace_id != ws.workspace_id:
                note(
                    (
                        "DATASET_WORKSPACE_ID_MISMATCH",
                        "error",
                        "workspace_id does not match the workspace",
                        "workspace_id",
                    )
                )
        elif "workspace_id" in self.required and workspace_id is None:
            note(
                (
                    "DATASET_MISSING_REQUIRED_FIELD",
                    "error",
                    "required field workspace_id is missing",
                    "workspace_id",
                )
            )
        split = row.get("split") if clean.get("split") else None
        if split is not None and split not in self.allowed_splits:
            note(
                (
                    "DATASET_SPLIT_NOT_ALLOWED",
                    "error",
                    f"split '{self.shown(split)}' is not in the workspace's allowed_splits "
                    f"({', '.join(ws.allowed_splits)})",
                    "split",
                )
            )
        decision = row.get("expected_decision") if clean.get("expected_decision") else None
        if decision is not None and decision not in DECISIONS:
            note(
                (
                    "DATASET_DECISION_NOT_ALLOWED",
                    "error",
                    f"expected_decision '{self.shown(decision)}' is not one of "
                    f"{', '.join(DECISIONS)}",
                    "expected_decision",
                )
            )
            decision = None
        severity = row.get("severity") if clean.get("severity") else None
        if severity is not None and severity not in SEVERITIES:
            note(
                (
                    "DATASET_SEVERITY_NOT_ALLOWED",
                    "error",
                    f"severity '{self.shown(severity)}' is not one of {', '.join(SEVERITIES)}",
                    "severity",
                )
            )
            severity = None
        status = row.get("redaction_status")
        if status is not None and status not in REDACTION_STATUSES:
            note(
                (
                    "DATASET_REDACTION_STATUS_NOT_ALLOWED",
                    "error",
                    f"redaction_status must be one of {', '.join(REDACTION_STATUSES)}",
                    "redaction_status",
                )
            )
        label = row.get("label") if clean.get("label") else None
        label_class = self.label_map.get(label) if label is not None else None
        if label is not None and label_class is None:
            note(
                (
                    "DATASET_UNKNOWN_LABEL",
                    "error",
                    "label is not in the workspace label_map "
                    f"(known: {', '.join(sorted(self.label_map))})",
                    "label",
                )
            )
        if label_class == "unsafe" and decision == "approve":
            note(
                (
                    "DATASET_SILENT_UNSAFE_PASS",
                    "error",
                    "an unsafe trace is expected to be approved (a silent unsafe pass)",
                    "expected_decision",
                )
            )
        elif label_class == "safe" and decision == "approve" and severity in HIGH_RISK_SEVERITIES:
            note(
                (
                    "DATASET_HIGH_RISK_APPROVE_LABEL",
                    "warning",
                    f"a {severity}-severity trace is expected to be approved; confirm the label",
                    "expected_decision",
                )
            )
        forced = self.settings.vertical
        vertical = row.get("vertical")
        if forced and isinstance(vertical, str) and vertical.strip() and vertical != forced:
            note(
                (
                    "DATASET_VERTICAL_MISMATCH",
                    "error",
                    f"vertical '{self.shown(vertical)}' differs from the forced sector "
                    f"'{self.shown(forced)}'",
                    "vertical",
                )
            )
        sector = forced or (vertical if isinstance(vertical, str) and vertical.strip() else None)
        # Counted values become keys of the report: never a secret, never a control character.
        counted = (
            self.shown(split) if isinstance(split, str) else None,
            self.shown(label) if isinstance(label, str) else None,
            label_class,
            decision,
            severity,
            self.shown(sector) if isinstance(sector, str) else sector,
        )
        known = split if split in self.allowed_splits else None
        role = 0
        if known is not None and self.temporal:
            role = 1 if known in self.training else 2 if known in self.evaluation else 0
        verdict = Verdict(
            split=known,
            templates=tuple(templates),
            counted=counted,
            window=self.windows.get(known) if known is not None else None,
            role=role,
            split_index=self.split_index.get(known, 0) if known is not None else 0,
            declared=_declared(row),
            sector=sector if sector and not sector.isspace() else None,
            present=sum(row.get(name) is not None for name in SIG_FIELDS),
            strings=sum(isinstance(row.get(name), str) for name in SIG_FIELDS),
        )
        # A flag of another type (1) hashes like a boolean (True): never share its verdict.
        flags_typed = all(
            row.get(name) is None or type(row.get(name)) is bool
            for name in ("contains_pii", "contains_secret")
        )
        return verdict, not ambiguous and flags_typed

    def _present_text(self, row: Mapping[str, Any], name: str, note: Any) -> bool:
        """A signature field that must be a non-blank string when present (and present when
        required); return whether it is one."""
        required = name in self.required
        value = row.get(name)
        if value is None:
            if required:
                note(
                    (
                        "DATASET_MISSING_REQUIRED_FIELD",
                        "error",
                        f"required field {name} is missing",
                        name,
                    )
                )
            return False
        if not isinstance(value, str):
            note(("DATASET_FIELD_TYPE", "error", f"{name} must be a string", name))
            return False
        if not value.strip():
            if required:
                note(
                    (
                        "DATASET_BLANK_REQUIRED_FIELD",
                        "error",
                        f"required field {name} is blank",
                        name,
                    )
                )
            return False
        return True

    # -- shape rules --

    def field_problem(
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

    def check_refs(
        self, refs: Any, name: str, row: Mapping[str, Any], tid: str | None, line: int
    ) -> None:
        """``source_refs`` / ``policy_refs``: a non-empty list of valid references."""
        if type(refs) is list and refs:
            for entry in refs:
                if type(entry) is str:
                    verdict = self.string_ref(entry, name)
                    if verdict is not None:
                        self.add(verdict[0], "error", verdict[1], tid, name, line)
                else:
                    self._object_ref(entry, name, tid, line)
            return
        if refs is None or (type(refs) is list and not refs):
            self.field_problem(row, name, tid, line, list)
            return
        self.add(
            "DATASET_INVALID_REFERENCE_LIST",
            "error",
            f"{name} must be a non-empty list of ids or URIs, got {json_type_name(refs)}",
            tid,
            name,
            line,
        )

    def judge_string_ref(self, entry: str, name: str) -> tuple[str, str] | None:
        """The verdict on one string reference: ``None`` when fine, else ``(code, message)``."""
        if not entry.strip():
            return "DATASET_INVALID_REFERENCE_LIST", f"{name} holds a blank entry"
        if name != "source_refs" or not self.settings.schema_ids:
            return None
        prefix, sep, rest = entry.partition(":")
        if sep and prefix in self.settings.schema_ids:
            return self._schema_verdict(prefix, {"schema": prefix, "ref": rest})
        return None

    def _object_ref(self, entry: Any, name: str, tid: str | None, line: int) -> None:
        if name == "source_refs" and type(entry) is dict:
            schema_id = entry.get("schema")
            if type(schema_id) is str and schema_id in self.settings.schema_ids:
                verdict = self._schema_verdict(schema_id, entry)
                if verdict is not None:
                    self.add(verdict[0], "error", verdict[1], tid, "source_refs", line)
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

    def time_of(
        self, row: Mapping[str, Any], name: str, tid: str | None, line: int
    ) -> float | None:
        """A time field as epoch seconds; ``None`` (reported when wrong) when it is not an
        RFC 3339 date-time with an offset."""
        value = row.get(name)
        if value is None:
            if name in self.required:
                self.field_problem(row, name, tid, line, str)
            return None
        if type(value) is not str:
            self.field_problem(row, name, tid, line, str)
            return None
        seconds = rfc3339_seconds(value)
        if seconds is None:
            self.add(
                "DATASET_INVALID_TIMESTAMP",
                "error",
                f"{name} is not an RFC 3339 date-time with an offset",
                tid,
                name,
                line,
            )
        return seconds

    def event_time_of(
        self, row: Mapping[str, Any], split: str | None, tid: str | None, line: int
    ) -> float | None:
        """``event_time`` as epoch seconds; it is required in a split the as-of policy
        constrains (a time window, or a training/evaluation split under ``temporal_split``)."""
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
            return None
        return self.time_of(row, "event_time", tid, line)

    # -- rules on the raw line --

    def duplicate_keys(self, raw: bytes, tid: str | None, line: int) -> bool:
        """A JSON object that holds the same key twice is an error: readers disagree on which
        value wins (a split or label shadowed this way leaks, a secret in the shadowed value
        escapes the checks). The shadowed values are also searched for secrets and personal
        data. Return whether a key was repeated.

        ``raw`` is a line the reference decoder accepted, nested no deeper than the limit.
        """
        repeated: list[tuple[str, str, Any]] = []

        def collect(pairs: list[tuple[str, Any]]) -> _Object:
            result = _Object()
            for key, value in pairs:
                if key in result:
                    result.repeats.append((key, result[key]))
                result[key] = value
            return result

        decoded = json.loads(raw, object_pairs_hook=collect)
        stack: list[tuple[str, Any]] = [("", decoded)]
        while stack:
            path, node = stack.pop()
            if isinstance(node, _Object):
                repeated.extend((path, key, shadowed) for key, shadowed in node.repeats)
                stack.extend(
                    (f"{path}.{self._safe_key(key)}" if path else self._safe_key(key), value)
                    for key, value in node.items()
                )
            elif isinstance(node, list):
                stack.extend((f"{path}[{index}]", value) for index, value in enumerate(node))
        for path, key, shadowed in sorted(repeated, key=lambda item: (item[0], item[1])):
            shown = self._safe_key(key)
            where = f"{path}.{shown}" if path else shown
            scope = f"object {path}" if path else "the row"
            self.add(
                "DATASET_DUPLICATE_KEY",
                "error",
                f"key '{shown}' appears more than once in {scope}; "
                "readers disagree on which value wins",
                tid,
                where,
                line,
            )
            for sub, text in iter_text_fields(shadowed):
                for category, kind in sorted(
                    {(d.category, d.kind) for d in self.detectors.scan_text(text)}
                ):
                    what = "secret" if category == "secret" else "personal data"
                    self.add(
                        "DATASET_SECRET_DETECTED"
                        if category == "secret"
                        else "DATASET_PII_DETECTED",
                        self.severity_detect,
                        f"{what} of kind {kind} detected in a value shadowed by a repeated key; "
                        "the redacted copy keeps only the last value",
                        tid,
                        f"{where}.{sub}" if sub and not sub.startswith("[") else where + sub,
                        line,
                    )
        return bool(repeated)

    def _safe_key(self, key: str) -> str:
        """A key as it may be echoed: redacted when a detector fires on it, control
        characters escaped, cut to 64 characters."""
        if self.detectors.scan_text(key):
            return "[REDACTED:key]"
        shown = repr(key[:64])[1:-1]
        return shown + ("..." if len(key) > 64 else "")

    # -- rules that look into the whole row --

    def sector(self, row: dict[str, Any], sector: str, tid: str | None, line: int) -> None:
        """The sector pack's rules on a row of its sector."""
        try:
            from customer_model_factory.stages.sector import (  # noqa: PLC0415
                validate_sector_trace_metadata,
            )
        except ImportError:
            self.add(
                "DATASET_SECTOR_UNAVAILABLE",
                "error",
                f"sector '{self.shown(sector)}' cannot be checked: the sector module is "
                "unavailable",
                tid,
                "vertical",
                line,
            )
            return
        own_id = row.get("trace_id")
        for finding in validate_sector_trace_metadata(
            row, sector_id=sector, pm=self.settings.sector_pm, location=None
        ):
            message = finding.message
            if sector in message:  # a message that repeats the sector repeats it safely
                shown = self.shown(sector)
                message = message.replace(repr(sector), f"'{shown}'").replace(sector, shown)
            self.add(
                finding.code,
                finding.severity,
                message,
                tid if finding.trace_id is None or finding.trace_id == own_id else finding.trace_id,
                finding.field,
                line,
            )

    def detect(
        self,
        row: dict[str, Any],
        tid: str | None,
        line: int,
        kinds: frozenset[int] | None = None,
    ) -> dict[str, Any] | None:
        """Secrets and personal data in any text of the row (values and object keys); return
        the redacted row if anything was found (the row itself without :attr:`keep_redacted`).

        :param kinds: only these detectors (``None``: all); the engine's prefilter narrows them.
        """
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
            by_kind = Counter((d.category, d.kind) for d in detections)
            for (category, kind), count in sorted(by_kind.items()):
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


class _Object(dict):  # type: ignore[type-arg]
    """A decoded JSON object that remembers the keys it held more than once."""

    __slots__ = ("repeats",)

    def __init__(self) -> None:
        super().__init__()
        self.repeats: list[tuple[str, Any]] = []


def _declared(row: Mapping[str, Any]) -> tuple[Template, ...]:
    """A row that declares a secret or personal datum must say it was redacted."""
    if row.get("redaction_status") == "redacted":
        return ()
    return tuple(
        (
            code,
            "error",
            f"{what} is true but redaction_status is not 'redacted'",
            "redaction_status",
        )
        for what, code in (
            ("contains_secret", "DATASET_UNREDACTED_SECRET"),
            ("contains_pii", "DATASET_UNREDACTED_PII"),
        )
        if row.get(what) is True
    )


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
            # Two keys may redact to the same text: number the later ones, so no value is lost.
            number = 2
            base = new_key
            while new_key in result:
                new_key = f"{base}#{number}"
                number += 1
            result[new_key] = _redact_row(item, found, child)
        return result
    if isinstance(value, list):
        return [_redact_row(item, found, f"{path}[{index}]") for index, item in enumerate(value)]
    return value


# ---- leakage: which texts count as the same ----


# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): invisible characters
# such as the zero-width space and joiners, the word joiner, the soft hyphen and the BOM.
_IGNORABLE: Final = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


def normalise(text: str) -> str:
    """A text's leakage form: default-ignorable code points removed, NFKC, case-folded (then
    NFKC again, which folding can undo), whitespace runs collapsed to one space and trimmed."""
    if text.isascii():
        # For ASCII there is nothing to ignore, NFKC is the identity and folding is lowering.
        text = text.lower()
        if text.isprintable() and "  " not in text and text[0] != " " and text[-1] != " ":
            return text
    else:
        text = _IGNORABLE.sub("", text)
        text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(text.split())


def leakage_key(prompt: str, response: str) -> bytes:
    """Two rows with the same key hold the same prompt and response once normalised.

    The key is the normalised prompt, NUL, the normalised response (UTF-8) when the normalised
    prompt is not empty and holds no NUL (the first NUL is then the separator); otherwise it is
    the normalised prompt's byte length (8 bytes, big-endian: its first byte is NUL, which the
    first form never starts with), the prompt, NUL and the response. So no character inside a
    text can pass for the separator (``a\\0b`` + ``c`` and ``a`` + ``b\\0c`` differ).
    """
    prompt_key = normalise(prompt).encode()
    response_key = normalise(response).encode()
    if prompt_key and b"\x00" not in prompt_key:
        return prompt_key + b"\x00" + response_key
    return len(prompt_key).to_bytes(8, "big") + prompt_key + b"\x00" + response_key


# ---- cross-row and whole-dataset rules: their findings ----


def duplicate_trace_id(first_where: str) -> Template:
    """A trace id used by an earlier row."""
    return (
        "DATASET_DUPLICATE_TRACE_ID",
        "error",
        f"trace_id is not unique: first used at {first_where}",
        "trace_id",
    )


def duplicate_in_split(split: str, first_where: str) -> Template:
    """The same leakage key twice in one split: a warning (it weighs the row twice)."""
    return (
        "DATASET_DUPLICATE_IN_SPLIT",
        "warning",
        f"the same normalised prompt and response already appear in split {split!r} "
        f"at {first_where}",
        "prompt",
    )


def cross_split_duplicate(first_split: str, first_where: str, split: str) -> Template:
    """The same leakage key in two splits: train/eval leakage."""
    return (
        "DATASET_CROSS_SPLIT_DUPLICATE",
        "error",
        f"the same normalised prompt and response appear in split {first_split!r} at "
        f"{first_where} and in split {split!r} (train/eval leakage)",
        "prompt",
    )


def temporal_order(newest_training: str) -> Template:
    """An evaluation row older than the newest training row (``temporal_split``)."""
    return (
        "DATASET_TEMPORAL_ORDER",
        "error",
        f"an evaluation row's event_time is before the newest training row "
        f"({newest_training}); the temporal split leaks the future into training",
        "event_time",
    )
