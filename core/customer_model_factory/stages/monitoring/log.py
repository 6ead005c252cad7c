"""Reading a runtime's decision log, streaming: the readable rules and the fast scanner.

A decision log is JSONL, one :class:`~customer_model_factory.stages.runtime.models.DecisionRecord`
a line. It may hold millions of lines, so it is read in 1 MiB blocks (hashed as they are read, so
the recorded digest is that of exactly the bytes measured) and never held in memory: each valid
line adds to an :class:`LogAccumulator` (decision counts, score and input-length histograms over
the reference bins, first/last instant, and the latencies as one float64 each, kept for the
exact p95).

Two ways to check a line, one contract:

* :func:`check_decision_line` is the readable rule set: ``orjson`` then the pydantic
  ``DecisionRecord`` in strict mode, then the monitoring rules (``decided_at`` an RFC 3339
  date-time with an offset, ``input_chars`` at most 2**53). It names the problem of a bad line.
* :func:`scan_decision_log` is the fast path: a ``msgspec`` struct mirroring ``DecisionRecord``
  decodes and type-checks each line in C. A line the struct refuses is handed to
  :func:`check_decision_line`, which either accepts it or reports it; so every malformed line is
  reported by the same rules, and a differential test holds the fast path to the readable one
  (:func:`scan_decision_log_reference`) on hostile logs.

A line that is not a valid decision, or that another runtime (``runtime_id``, ``runtime_hash``
or ``package_version`` other than the package's) wrote, is reported as an error finding at
``file:line`` and left out of every metric; the monitoring health is then ``evidence_blocked``.
The first :data:`MAX_LINE_FINDINGS` bad lines are listed one by one, the rest counted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from array import array
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Literal, NamedTuple

import msgspec
import numpy as np
import orjson
from pydantic import ValidationError

from customer_model_factory.errors import DataFormatError
from customer_model_factory.findings import Finding
from customer_model_factory.io import (
    DEFAULT_MAX_LINE_BYTES,
    diagnose_jsonl_line,
    file_format_problem,
    json_type_name,
)
from customer_model_factory.stages.benchmark.models import ReferenceHistograms
from customer_model_factory.stages.dataset.models import parse_rfc3339
from customer_model_factory.stages.monitoring.metrics import bin_counts
from customer_model_factory.stages.runtime.models import DECISIONS, DecisionRecord

__all__ = [
    "MAX_INPUT_CHARS",
    "MAX_LINE_FINDINGS",
    "ExpectedRuntime",
    "LineProblem",
    "LogAccumulator",
    "LogSummary",
    "check_decision_line",
    "decision_instant",
    "scan_decision_log",
    "scan_decision_log_reference",
]

MAX_INPUT_CHARS: Final = 2**53
"""The largest ``input_chars`` monitoring reads (exact as a float64)."""
MAX_LINE_FINDINGS: Final = 100
"""Bad lines listed one by one; the others are counted in one MONITOR_LOG_FINDINGS_TRUNCATED."""
_BLOCK: Final = 1 << 20
_FLUSH: Final = 1 << 16


class ExpectedRuntime(NamedTuple):
    """The runtime a log must have been written by (from the runtime package)."""

    runtime_id: str
    runtime_hash: str
    package_version: str


class LineProblem(NamedTuple):
    """Why one line is not a decision: a MONITOR_* code, the field (if one) and a message."""

    code: str
    field: str | None
    message: str


# ---- the readable rules ----

_DIGITS: Final = bytes.maketrans(b"0123456789", b"9999999999")
_FAST_SHAPES: Final = frozenset(
    b"9999-99-99T99:99:99" + (b"." + b"9" * digits if digits else b"") + tail
    for digits in range(7)
    for tail in (b"Z", b"+99:99", b"-99:99")
)
"""The common ``decided_at`` shapes (digits written as 9): ``Z`` or ``±hh:mm``, up to six
fraction digits. ``fromisoformat`` reads these exactly as RFC 3339 does, once an offset's
minutes are below 60; it refuses an impossible date, hour, minute or second (a leap second
included), which then goes to the full grammar."""


def _fast_shape(text: str) -> bool:
    shape = text.encode("utf-8", "surrogatepass").translate(_DIGITS)
    return shape in _FAST_SHAPES and (text[-1] == "Z" or text[-2] < "6")


def decision_instant(text: str) -> dt.datetime | None:
    """``decided_at`` as an aware datetime, or ``None`` when it is not an RFC 3339 date-time with
    an offset. Equal to :func:`~customer_model_factory.stages.dataset.models.parse_rfc3339`
    (a property test holds them together); the common shapes (:data:`_FAST_SHAPES`) take
    ``fromisoformat``, the others the full grammar.
    """
    if _fast_shape(text):
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            pass  # an impossible date (2026-02-30), hour 24, a leap second: the full grammar
    return parse_rfc3339(text)


def _field_problem(error: ValidationError) -> LineProblem:
    first = error.errors()[0]
    if first["type"] == "extra_forbidden":
        # The key comes from the data: never echo it.
        return LineProblem(
            "MONITOR_LOG_FIELD_INVALID", None, "a field that is not a DecisionRecord field"
        )
    name = ".".join(str(part) for part in first["loc"]) or None
    return LineProblem("MONITOR_LOG_FIELD_INVALID", name, str(first["msg"]))


def check_decision_line(
    raw: bytes, *, last_without_newline: bool
) -> tuple[DecisionRecord, dt.datetime] | LineProblem:
    """Check one non-blank line (without its line terminator) by the readable rules.

    :returns: the validated record and its instant, or the :class:`LineProblem`.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        kind, message = diagnose_jsonl_line(raw, last_without_newline=last_without_newline)
        if kind == "truncated_line":
            return LineProblem("MONITOR_LOG_TRUNCATED_LINE", None, message)
        return LineProblem("MONITOR_LOG_LINE_INVALID", None, message)
    if type(value) is not dict:
        return LineProblem(
            "MONITOR_LOG_LINE_INVALID",
            None,
            f"line holds a JSON {json_type_name(value)}, expected a decision object",
        )
    try:
        record = DecisionRecord.model_validate(value, strict=True)
    except ValidationError as error:
        return _field_problem(error)
    if record.input_chars > MAX_INPUT_CHARS:
        return LineProblem(
            "MONITOR_LOG_FIELD_INVALID", "input_chars", f"is larger than {MAX_INPUT_CHARS}"
        )
    instant = decision_instant(record.decided_at)
    if instant is None:
        return LineProblem(
            "MONITOR_LOG_FIELD_INVALID",
            "decided_at",
            "is not an RFC 3339 date-time with an offset",
        )
    return record, instant


# ---- the accumulator ----


@dataclass
class LogSummary:
    """What a decision log says, once read."""

    path: Path
    digest: str
    lines: int
    decisions: int
    decision_counts: dict[str, int]
    latencies: np.ndarray
    latency_sum: float
    score_counts: tuple[int, ...]
    input_counts: tuple[int, ...]
    first: dt.datetime | None
    last: dt.datetime | None
    invalid_lines: int
    foreign_lines: int
    findings: list[Finding]
    watched_decisions: dict[str, str]

    def comparable(self) -> dict[str, Any]:
        """Every field as plain values (what the differential test compares)."""
        return {
            "digest": self.digest,
            "lines": self.lines,
            "decisions": self.decisions,
            "decision_counts": self.decision_counts,
            "latencies": self.latencies.tolist(),
            "score_counts": self.score_counts,
            "input_counts": self.input_counts,
            "first": self.first,
            "last": self.last,
            "invalid_lines": self.invalid_lines,
            "foreign_lines": self.foreign_lines,
            "findings": sorted(f.model_dump_json() for f in self.findings),
            "watched_decisions": self.watched_decisions,
        }


@dataclass
class LogAccumulator:
    """Adds valid decisions up; counts and lists bad lines (the state both paths share).

    :param watched: trace ids named by review and incident files; their decision is kept.
    """

    path: Path
    expected: ExpectedRuntime
    reference: ReferenceHistograms
    watched: frozenset[str] = frozenset()
    decision_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DECISIONS, 0))
    latencies: array = field(default_factory=lambda: array("d"))  # type: ignore[type-arg]
    scores: array = field(default_factory=lambda: array("d"))  # type: ignore[type-arg]
    inputs: array = field(default_factory=lambda: array("d"))  # type: ignore[type-arg]
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    invalid_lines: int = 0
    foreign_lines: int = 0
    findings: list[Finding] = field(default_factory=list)
    watched_decisions: dict[str, str] = field(default_factory=dict)
    _foreign: dict[str, tuple[int, int]] = field(default_factory=dict)
    _score_counts: np.ndarray | None = None
    _input_counts: np.ndarray | None = None

    def add(
        self,
        trace_id: str,
        instant: dt.datetime,
        *,
        score: float,
        decision: str,
        latency_ms: float,
        input_chars: int,
    ) -> None:
        """Add one valid decision of the expected runtime."""
        self.decision_counts[decision] += 1
        self.latencies.append(latency_ms)
        self.scores.append(score)
        self.inputs.append(input_chars)
        if self.first is None or instant < self.first:
            self.first = instant
        if self.last is None or instant > self.last:
            self.last = instant
        if trace_id in self.watched:
            self.watched_decisions[trace_id] = decision
        if len(self.scores) >= _FLUSH:
            self.flush()

    def flush(self) -> None:
        """Fold the buffered scores and input lengths into the histogram counts."""
        if not self.scores:
            return
        scores = bin_counts(self.reference.score.edges, np.frombuffer(self.scores))
        inputs = bin_counts(self.reference.input_chars.edges, np.frombuffer(self.inputs))
        self._score_counts = scores if self._score_counts is None else self._score_counts + scores
        self._input_counts = inputs if self._input_counts is None else self._input_counts + inputs
        self.scores = array("d")
        self.inputs = array("d")

    def bad_line(self, number: int, problem: LineProblem) -> None:
        """Record a line that is not a valid decision."""
        self.invalid_lines += 1
        if self.invalid_lines <= MAX_LINE_FINDINGS:
            self.findings.append(
                Finding(
                    code=problem.code,
                    severity="error",
                    message=problem.message,
                    field=problem.field,
                    location=f"{self.path}:{number}",
                )
            )

    def check_origin(self, number: int, runtime_id: str, runtime_hash: str, version: str) -> bool:
        """Whether the line was written by the expected runtime; counts it when not."""
        expected = self.expected
        if (
            runtime_hash == expected.runtime_hash
            and version == expected.package_version
            and runtime_id == expected.runtime_id
        ):
            return True
        self.foreign_lines += 1
        for name, seen, wanted in (
            ("runtime_hash", runtime_hash, expected.runtime_hash),
            ("package_version", version, expected.package_version),
            ("runtime_id", runtime_id, expected.runtime_id),
        ):
            if seen != wanted:
                first, count = self._foreign.get(name, (number, 0))
                self._foreign[name] = (first, count + 1)
        return False

    def summary(self, *, digest: str, lines: int) -> LogSummary:
        """Close the read: the findings of foreign and truncated lines, the histogram counts."""
        self.flush()
        findings = list(self.findings)
        if self.invalid_lines > MAX_LINE_FINDINGS:
            findings.append(
                Finding(
                    code="MONITOR_LOG_FINDINGS_TRUNCATED",
                    severity="error",
                    message=f"{self.invalid_lines - MAX_LINE_FINDINGS} more invalid lines "
                    f"are not listed ({self.invalid_lines} in all)",
                    location=str(self.path),
                )
            )
        for name, (first, count) in sorted(self._foreign.items()):
            findings.append(
                Finding(
                    code="MONITOR_LOG_FOREIGN_RUNTIME",
                    severity="error",
                    message=f"{count} lines carry another {name} than the runtime package "
                    f"(first at line {first}); they are left out of every metric",
                    field=name,
                    location=f"{self.path}:{first}",
                )
            )
        decisions = sum(self.decision_counts.values())
        empty_score = (0,) * (len(self.reference.score.edges) + 1)
        empty_input = (0,) * (len(self.reference.input_chars.edges) + 1)
        latencies = np.frombuffer(self.latencies, dtype=np.float64)
        return LogSummary(
            path=self.path,
            digest=digest,
            lines=lines,
            decisions=decisions,
            decision_counts=dict(self.decision_counts),
            latencies=latencies,
            latency_sum=float(latencies.sum(dtype=np.float64)) if decisions else 0.0,
            score_counts=empty_score
            if self._score_counts is None
            else tuple(int(c) for c in self._score_counts),
            input_counts=empty_input
            if self._input_counts is None
            else tuple(int(c) for c in self._input_counts),
            first=self.first,
            last=self.last,
            invalid_lines=self.invalid_lines,
            foreign_lines=self.foreign_lines,
            findings=findings,
            watched_decisions=dict(self.watched_decisions),
        )


# ---- reading the file ----

_TOO_LONG: Final = None


def _open_log(path: Path) -> Any:
    if path.is_dir():
        raise DataFormatError("is a directory; give the decision log file", path=path)
    if path.exists() and not path.is_file():
        # A FIFO or a device (/dev/zero) could block or never end.
        raise DataFormatError("is not a regular file", path=path)
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise DataFormatError("file not found", path=path) from None
    except OSError as error:
        raise DataFormatError(f"cannot read: {error.strerror}", path=path) from None


def _blocks(handle: Any, hasher: Any, limit: int) -> Iterator[tuple[list[bytes | None], bool]]:
    """Yield the log's lines block by block, hashing every byte read.

    Each item is ``(lines, last_unterminated)``: complete lines without their ``\\n`` (a line
    longer than ``limit`` is ``None``: reported, never parsed), and whether the last line of the
    list is the file's final line with no newline after it. The blocks are hashed in order on a
    second thread (hashlib releases the GIL), so hashing overlaps parsing; every update is done
    when the generator returns.
    """
    carry = b""
    skipping = False  # inside a line already known to be too long
    read = handle.read
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cmf-log-hash") as hashing:
        while True:
            block = read(_BLOCK)
            if not block:
                break
            hashing.submit(hasher.update, block)
            parts = (carry + block).split(b"\n")
            carry = parts.pop()
            lines: list[bytes | None] = parts  # type: ignore[assignment]
            if max(map(len, parts), default=0) > limit:
                lines = [_TOO_LONG if len(raw) > limit else raw for raw in parts]
            if skipping and lines:
                lines[0] = _TOO_LONG  # the end of the line already too long
                skipping = False
            if len(carry) > limit:
                skipping = True
                carry = b""
            if lines:
                yield lines, False
    if skipping:
        yield [_TOO_LONG], True
    elif carry:
        yield [carry], True


def _begin(path: Path) -> tuple[Any, LineProblem | None, bool]:
    """Open the log; say whether it is empty or not UTF-8 JSONL text at all."""
    handle = _open_log(path)
    head = handle.read(64)
    handle.seek(0)
    if not head:
        return handle, None, True
    problem = file_format_problem(head)
    if problem is not None:
        return handle, LineProblem("MONITOR_LOG_UNREADABLE", None, problem[1]), False
    return handle, None, False


def _whole_file(acc: LogAccumulator, handle: Any, hasher: Any, problem: LineProblem) -> None:
    """Hash a file that is not UTF-8 JSONL text and record why it was not read."""
    while chunk := handle.read(_BLOCK):
        hasher.update(chunk)
    acc.findings.append(
        Finding(
            code=problem.code, severity="error", message=problem.message, location=str(acc.path)
        )
    )


def _readable(acc: LogAccumulator, number: int, raw: bytes, unterminated: bool) -> None:
    """Judge one non-blank line by the readable rules and add it up or report it."""
    checked = check_decision_line(raw, last_without_newline=unterminated)
    if isinstance(checked, LineProblem):
        acc.bad_line(number, checked)
        return
    record, instant = checked
    if acc.check_origin(number, record.runtime_id, record.runtime_hash, record.package_version):
        acc.add(
            record.trace_id,
            instant,
            score=record.score,
            decision=record.decision,
            latency_ms=record.latency_ms,
            input_chars=record.input_chars,
        )


def scan_decision_log_reference(
    path: str | Path,
    expected: ExpectedRuntime,
    reference: ReferenceHistograms,
    *,
    watched: frozenset[str] = frozenset(),
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> LogSummary:
    """Read a decision log with the readable rules only (:func:`check_decision_line` on every
    line). The contract :func:`scan_decision_log` is tested against; slow.

    :raises DataFormatError: the path is missing, a directory or cannot be opened.
    """
    target = Path(path)
    acc = LogAccumulator(target, expected, reference, watched)
    hasher = hashlib.sha256()
    handle, problem, _ = _begin(target)
    number = 0
    with handle:
        if problem is not None:
            _whole_file(acc, handle, hasher, problem)
            return acc.summary(digest="sha256:" + hasher.hexdigest(), lines=0)
        for lines, last_open in _blocks(handle, hasher, max_line_bytes):
            final = len(lines) - 1
            for index, raw in enumerate(lines):
                number += 1
                if raw is None:
                    acc.bad_line(number, _too_long(max_line_bytes))
                    continue
                if not raw.strip():
                    continue
                _readable(acc, number, raw, last_open and index == final)
    return acc.summary(digest="sha256:" + hasher.hexdigest(), lines=number)


def _too_long(limit: int) -> LineProblem:
    return LineProblem("MONITOR_LOG_LINE_INVALID", None, f"line is longer than {limit} bytes")


# ---- the fast path ----


class _DecisionLine(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """``DecisionRecord`` as a msgspec struct (a test checks the fields stay in step)."""

    trace_id: Annotated[str, msgspec.Meta(min_length=1)]
    decided_at: str
    score: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    decision: Literal["approve", "escalate", "abstain", "block"]
    reason: str
    latency_ms: Annotated[float, msgspec.Meta(ge=0.0)]
    input_chars: Annotated[int, msgspec.Meta(ge=0, le=MAX_INPUT_CHARS)]
    package_version: str
    runtime_id: str
    runtime_hash: str  # its pattern is checked only when it is not the expected hash


_DECODER: Final = msgspec.json.Decoder(_DecisionLine)


def scan_decision_log(
    path: str | Path,
    expected: ExpectedRuntime,
    reference: ReferenceHistograms,
    *,
    watched: frozenset[str] = frozenset(),
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> LogSummary:
    """Read a decision log, streaming, in one pass: the metrics' raw material and every bad line.

    Same result as :func:`scan_decision_log_reference` (a differential test holds them
    together), several times faster: lines the msgspec struct accepts skip pydantic; the others
    go through :func:`check_decision_line`.

    :raises DataFormatError: the path is missing, a directory or cannot be opened.
    """
    target = Path(path)
    acc = LogAccumulator(target, expected, reference, watched)
    hasher = hashlib.sha256()
    handle, problem, _ = _begin(target)
    number = 0
    decode = _DECODER.decode
    decode_errors = (msgspec.DecodeError, UnicodeDecodeError)
    digits, shapes = _DIGITS, _FAST_SHAPES
    fromiso = dt.datetime.fromisoformat
    counts = acc.decision_counts
    latencies = acc.latencies.append
    scores = acc.scores
    inputs = acc.inputs
    watched_ids = acc.watched
    want_id, want_hash, want_version = expected
    first = last = None
    with handle:
        if problem is not None:
            _whole_file(acc, handle, hasher, problem)
            return acc.summary(digest="sha256:" + hasher.hexdigest(), lines=0)
        for lines, last_open in _blocks(handle, hasher, max_line_bytes):
            unterminated = lines[-1] if last_open else None
            for raw in lines:
                number += 1
                if raw is None:
                    acc.bad_line(number, _too_long(max_line_bytes))
                    continue
                try:
                    line = decode(raw)
                except decode_errors:
                    if raw.strip():
                        acc.first, acc.last = first, last
                        _readable(acc, number, raw, raw is unterminated)
                        first, last = acc.first, acc.last
                        scores, inputs = acc.scores, acc.inputs
                    continue
                text = line.decided_at
                instant = None
                if text.encode().translate(digits) in shapes and (
                    text[-1] == "Z" or text[-2] < "6"
                ):
                    try:
                        instant = fromiso(text)
                    except ValueError:
                        instant = None
                if instant is None:
                    instant = parse_rfc3339(text)
                if (
                    instant is None
                    or line.runtime_hash != want_hash
                    or line.package_version != want_version
                    or line.runtime_id != want_id
                ):
                    # Rare: the readable rules decide, so the problem named is the one they
                    # name first (a malformed runtime_hash before another runtime).
                    acc.first, acc.last = first, last
                    _readable(acc, number, raw, raw is unterminated)
                    first, last = acc.first, acc.last
                    scores, inputs = acc.scores, acc.inputs
                    continue
                counts[line.decision] += 1
                latencies(line.latency_ms)
                scores.append(line.score)
                inputs.append(line.input_chars)
                if last is None:
                    first = last = instant
                elif instant > last:  # logs are mostly in order: one comparison
                    last = instant
                elif instant < first:
                    first = instant
                if watched_ids and line.trace_id in watched_ids:
                    acc.watched_decisions[line.trace_id] = line.decision
                if len(scores) >= _FLUSH:
                    acc.flush()
                    scores, inputs = acc.scores, acc.inputs
    acc.first, acc.last = first, last
    return acc.summary(digest="sha256:" + hasher.hexdigest(), lines=number)
