"""The reference runtime: load a runtime package (every byte verified) and score requests with it.

:func:`load_runtime` reads ``runtime_package.json`` (its ``runtime_hash`` recomputed), checks the
model's digest is the digest of its index, reads every model file of ``<dir>/<model_dir>`` as a
regular file and checks its bytes against the digest the package records, copies the verified
bytes into a private directory and hands that to the lane's ``load`` (the lane comes from the run
context's plugin manager; ``linear`` is built in). A package that is not ready is refused.

:func:`score_file` scores a JSONL file of requests (``trace_id``, ``prompt``, ``response``,
optional ``source_refs`` / ``citations``; other fields are ignored, so a traces file is a valid
input). It **validates every line first**: a bad line is one error naming file, line and field,
and nothing is written. It then scores in batches (one call of the model per batch), decides by
the policy (:mod:`.policy`), writes ``-o`` to a temporary file, appends the decisions to the
decision log (one locked, fsynced write of complete lines; :mod:`.decision_log`) and only then
renames ``-o`` into place, so a decision returned is always a decision logged.

Latency: each batch is timed with the injectable ``timer`` and its wall time is divided among its
requests (``latency_ms``); ``decided_at`` is the run context's clock, read once per batch. A
reproducible run passes a fixed timer and clock.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.canonical import sha256_bytes
from customer_model_factory.context import RunContext
from customer_model_factory.errors import CMFError, DataFormatError, InputError, StageInputError
from customer_model_factory.findings import Finding
from customer_model_factory.io import JsonlProblem, JsonlReader, atomic_writer, same_file
from customer_model_factory.plugin_api.contracts import TrainedScorer
from customer_model_factory.stages.runtime.build import PACKAGE_FILE
from customer_model_factory.stages.runtime.decision_log import (
    append_lines,
    check_log_path,
    holds_decisions,
)
from customer_model_factory.stages.runtime.models import CustomerRuntimePackage
from customer_model_factory.stages.runtime.policy import decide
from customer_model_factory.stages.training.models import model_index_bytes
from customer_model_factory.store import parse_artefact_uri

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "LoadedRuntime",
    "ScoreOutcome",
    "ScoreRequest",
    "default_decision_log",
    "load_runtime",
    "read_score_requests",
    "score_file",
    "score_request",
]

DEFAULT_BATCH_SIZE: Final = 4096
"""Requests scored per call of the model."""
_MAX_TRACE_ID: Final = 512
_REF_FIELDS: Final = ("source_refs", "citations")


@dataclass(frozen=True, slots=True)
class ScoreRequest:
    """One request to score: the exchange, and whether it cites any source."""

    trace_id: str
    prompt: str
    response: str
    cited: bool


@dataclass
class LoadedRuntime:
    """A verified runtime package and its loaded model.

    :param package: the runtime package (hash verified).
    :param package_file: its ``runtime_package.json``.
    :param model_files: every model file read (verified), so callers can refuse to overwrite them.
    :param scorer: the lane's loaded model.
    :param findings: lane findings (a deprecated lane, ...).
    """

    package: CustomerRuntimePackage
    package_file: Path
    model_files: tuple[Path, ...]
    scorer: TrainedScorer
    findings: list[Finding] = field(default_factory=list)

    def decide(
        self,
        requests: Sequence[ScoreRequest],
        *,
        decided_at: str,
        timer: Callable[[], float] = time.perf_counter,
    ) -> tuple[list[dict[str, Any]], float]:
        """Score and decide one batch; return ``(decision records, seconds the model took)``.

        Each record is a :class:`~.models.DecisionRecord` as a JSON object: the line
        :meth:`decide_lines` writes, parsed.

        :raises StageInputError: as :meth:`decide_lines`.
        """
        lines, _, elapsed = self.decide_lines(requests, decided_at=decided_at, timer=timer)
        return [orjson.loads(line) for line in lines], elapsed

    def decide_lines(
        self,
        requests: Sequence[ScoreRequest],
        *,
        decided_at: str,
        timer: Callable[[], float] = time.perf_counter,
    ) -> tuple[list[bytes], list[str], float]:
        """Score and decide one batch; return ``(decision log lines, reasons, model seconds)``.

        Each line is a :class:`~.models.DecisionRecord` as compact JSON with sorted keys and no
        newline. Lines are assembled from pre-encoded parts (only ``trace_id`` goes through a
        JSON encoder; every other value is a number or one of a fixed set of words): a model
        object or a generic encoder call per decision would cost a good part of the scoring.

        :raises StageInputError: ``RUNTIME_SCORE_INVALID``: the model raised, or returned the
            wrong number of scores or a score outside [0, 1].
        """
        if not requests:
            return [], [], 0.0
        prompts = [r.prompt for r in requests]
        responses = [r.response for r in requests]
        began = timer()
        try:
            scores = np.asarray(self.scorer.score(prompts, responses), dtype=np.float64)
        except CMFError:
            raise
        except Exception as error:
            raise StageInputError(
                f"the model failed to score: {type(error).__name__}", code="RUNTIME_SCORE_INVALID"
            ) from None
        elapsed = max(0.0, timer() - began)
        if scores.shape != (len(requests),):
            raise StageInputError(
                f"the model returned {scores.size} scores for {len(requests)} requests",
                code="RUNTIME_SCORE_INVALID",
            )
        if not (np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()):
            raise StageInputError(
                "the model returned a score outside [0, 1] (or NaN)", code="RUNTIME_SCORE_INVALID"
            )
        cited = np.fromiter((r.cited for r in requests), dtype=bool, count=len(requests))
        config = self.package.runtime_config
        decisions, reasons = decide(scores, config.policy, cited)
        latency = float(elapsed * 1000.0 / len(requests))

        def text(value: str) -> str:
            return orjson.dumps(value).decode()

        # Keys in sorted order, as the canonical form of a DecisionRecord.
        head = '{"decided_at":' + text(decided_at) + ',"decision":"'
        middle = (
            f',"latency_ms":{latency!r},"package_version":{text(config.package_version)},"reason":"'
        )
        tail = (
            f'","runtime_hash":{text(self.package.runtime_hash)}'
            f',"runtime_id":{text(self.package.runtime_id)},"score":'
        )
        dumps = orjson.dumps
        reason_list = reasons.tolist()
        lines = [
            (
                f'{head}{decision}","input_chars":{len(request.prompt) + len(request.response)}'
                f"{middle}{reason}{tail}{score!r}"
                ',"trace_id":'
            ).encode()
            + dumps(request.trace_id)
            + b"}"
            for request, score, decision, reason in zip(
                requests, scores.tolist(), decisions.tolist(), reason_list, strict=True
            )
        ]
        return lines, reason_list, elapsed


class ScoreOutcome(BaseModel):
    """What one ``cmf score`` run did."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scored: int = Field(description="Requests scored (one decision each).")
    decisions: dict[str, int] = Field(description="Decisions by kind.")
    citations_required: int = Field(description="Approvals turned into escalations (no citation).")
    output: str = Field(description="Where the decisions were written.")
    decision_log: str = Field(description="The decision log they were appended to.")
    scoring_seconds: float = Field(description="Wall time of the model calls.")
    throughput_traces_per_s: float | None = Field(description="Requests scored per second.")
    runtime_id: str
    runtime_hash: str
    package_version: str


# ---- loading ----


def _read_regular(path: Path) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise StageInputError(
            f"model file cannot be read: {error.strerror}",
            code="RUNTIME_MODEL_FILE_INVALID",
            path=path,
        ) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StageInputError(
                "model file is not a regular file", code="RUNTIME_MODEL_FILE_INVALID", path=path
            )
        return handle.read()


def _package_file(path: str | Path) -> Path:
    target = Path(path)
    return target / PACKAGE_FILE if target.is_dir() else target


def load_runtime(path: str | Path, *, context: RunContext) -> LoadedRuntime:
    """Load a runtime package (its directory or its ``runtime_package.json``) and its model.

    :raises DataFormatError, ManifestIntegrityError, SchemaVersionError: the package file is
        missing, malformed, or was modified after it was written (exit 2).
    :raises StageInputError: ``RUNTIME_PACKAGE_NOT_READY``, ``RUNTIME_MODEL_INDEX_INVALID``,
        ``RUNTIME_MODEL_FILE_INVALID`` (missing, not regular, or bytes that differ from the
        digest), ``RUNTIME_LANE_UNKNOWN``, ``RUNTIME_LANE_CANNOT_SCORE``,
        ``RUNTIME_MODEL_LOAD_FAILED`` (all exit 2).
    """
    from customer_model_factory.plugins import scoring_lane  # noqa: PLC0415

    package_file = _package_file(path)
    package = CustomerRuntimePackage.load(package_file)
    if not package.ready:
        raise StageInputError(
            "the runtime package is not ready (it holds error findings); it never scores",
            code="RUNTIME_PACKAGE_NOT_READY",
            path=package_file,
        )
    config = package.runtime_config
    model = config.model
    if sha256_bytes(model_index_bytes(model.lane, model.files)) != model.digest:
        raise StageInputError(
            "the model's digest is not the digest of its index (lane and file digests)",
            code="RUNTIME_MODEL_INDEX_INVALID",
            path=package_file,
        )
    spec, findings = scoring_lane(context.plugin_manager, model.lane, stage="RUNTIME")
    model_root = package_file.parent.joinpath(*config.model_dir.split("/"))
    verified: dict[str, bytes] = {}
    paths = []
    for name, digest in sorted(model.files.items()):
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in {"", ".", ".."} for p in parts):
            raise StageInputError(
                "a model file name is not a relative POSIX path",
                code="RUNTIME_MODEL_FILE_INVALID",
                path=package_file,
            )
        source = model_root.joinpath(*parts)
        data = _read_regular(source)
        actual = sha256_bytes(data)
        if actual != digest:
            raise StageInputError(
                f"model file bytes hash to {actual}, the package records {digest}",
                code="RUNTIME_MODEL_FILE_INVALID",
                path=source,
            )
        verified[name] = data
        paths.append(source)
    # The lane reads the verified bytes from a private copy, never the package directory, so a
    # file swapped after the check is never loaded.
    with tempfile.TemporaryDirectory(prefix="cmf-runtime-") as directory:
        for name, data in verified.items():
            target = Path(directory).joinpath(*name.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        try:
            scorer = spec.lane.load(Path(directory))
        except CMFError:
            raise
        except Exception as error:
            raise StageInputError(
                f"lane {model.lane!r} could not load the model: {type(error).__name__}",
                code="RUNTIME_MODEL_LOAD_FAILED",
            ) from None
    return LoadedRuntime(package, package_file, tuple(paths), scorer, findings)


# ---- requests ----


def _request(value: dict[str, Any], path: str | Path, line: int | None) -> ScoreRequest:
    # The error location is only built when a field is wrong: this runs once per request.
    where: dict[str, Any] = {"path": path, "line": line}
    trace_id = value.get("trace_id")
    if type(trace_id) is not str or not trace_id:
        raise DataFormatError("trace_id must be a non-empty string", field="trace_id", **where)
    if len(trace_id) > _MAX_TRACE_ID or not trace_id.isprintable():
        raise DataFormatError(
            f"trace_id must be at most {_MAX_TRACE_ID} printable characters",
            field="trace_id",
            **where,
        )
    prompt, response = value.get("prompt"), value.get("response")
    if type(prompt) is not str:
        raise DataFormatError("prompt must be a string", field="prompt", **where)
    if type(response) is not str:
        raise DataFormatError("response must be a string", field="response", **where)
    cited = False
    for name in _REF_FIELDS:
        refs = value.get(name)
        if refs is None:
            continue
        if type(refs) is not list:
            raise DataFormatError(
                f"{name} must be a list of non-empty strings", field=name, **where
            )
        for ref in refs:
            if type(ref) is not str or not ref:
                raise DataFormatError(
                    f"{name} must be a list of non-empty strings", field=name, **where
                )
        cited = cited or bool(refs)
    return ScoreRequest(trace_id, prompt, response, cited)


def score_request(value: Any, *, source: str = "request") -> ScoreRequest:
    """Validate one request object (as a line of the input or the ``input`` of a payload).

    :raises DataFormatError: a missing or mistyped field, named (never its value).
    """
    if not isinstance(value, dict):
        raise DataFormatError("a request is a JSON object", path=source)
    return _request(value, source, None)


def read_score_requests(path: str | Path) -> list[ScoreRequest]:
    """Read and validate every request of a JSONL file; stop at the first bad line.

    A trace id given twice is refused too (its decisions could not be told apart in the log).

    :raises DataFormatError: the file is missing, empty, not a regular file, or a line is not a
        JSON object with a string ``trace_id``, ``prompt`` and ``response`` (file, line, field).
    """
    source = Path(path)
    if not source.is_file():
        raise DataFormatError("the input must be one regular JSONL file", path=source)

    def stop(problem: JsonlProblem) -> None:
        raise DataFormatError(problem.message, path=problem.path, line=problem.line)

    requests: list[ScoreRequest] = []
    first_line: dict[str, int] = {}
    for row in JsonlReader(source, on_problem=stop):
        request = _request(row.value, source, row.line)
        seen = first_line.setdefault(request.trace_id, row.line)
        if seen != row.line:
            raise DataFormatError(
                f"trace_id is also used on line {seen}",
                field="trace_id",
                path=source,
                line=row.line,
            )
        requests.append(request)
    return requests


# ---- scoring a file ----


def default_decision_log(package: CustomerRuntimePackage) -> Path | None:
    """The decision log the policy names (its ``audit_log_uri``) when that is a ``file://``
    path, else ``None`` (the caller must name one)."""
    uri = package.runtime_config.policy.audit_log_uri
    if not uri.startswith("file:"):
        return None
    try:
        parsed = parse_artefact_uri(uri)
    except InputError:
        return None
    return Path(parsed.path) if parsed.scheme == "file" and parsed.path else None


def _refuse_overlaps(outputs: dict[str, Path], inputs: Iterable[Path]) -> None:
    sources = list(inputs)
    for name, output in outputs.items():
        for source in sources:
            if same_file(output, source):
                raise InputError(f"{name} is also an input; write it elsewhere", path=output)
    (first_name, first), (second_name, second) = outputs.items()
    if same_file(first, second):
        raise InputError(f"{first_name} and {second_name} name the same file", path=first)


def score_file(
    runtime: LoadedRuntime,
    input_path: str | Path,
    *,
    output: str | Path,
    context: RunContext,
    decision_log: str | Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    timer: Callable[[], float] = time.perf_counter,
) -> ScoreOutcome:
    """Score every request of a JSONL file, append the decisions to the decision log, and write
    them to ``output`` (JSONL, one :class:`~.models.DecisionRecord` a line, in input order).

    :param decision_log: default: the policy's ``audit_log_uri`` when it is a ``file://`` path.
    :param timer: the clock latency is measured with (seconds).
    :raises InputError: ``output`` or the log names an input (the requests, the package, a model
        file) or each other; no log named and the policy's is not a file.
    :raises DataFormatError: a bad input line (nothing is written).
    :raises StageInputError: ``RUNTIME_DECISION_LOG_INVALID``, ``RUNTIME_SCORE_INVALID``.
    """
    if batch_size < 1:
        raise InputError("the batch size must be at least 1", field="batch_size")
    source = Path(input_path)
    log = Path(decision_log) if decision_log is not None else default_decision_log(runtime.package)
    if log is None:
        raise StageInputError(
            "the policy's audit_log_uri is not a file:// path: name the decision log "
            "(--decision-log)",
            code="RUNTIME_DECISION_LOG_MISSING",
        )
    target = Path(output)
    _refuse_overlaps(
        {"the output": target, "the decision log": log},
        [source, runtime.package_file, *runtime.model_files],
    )
    check_log_path(log)
    if target.is_file() and not holds_decisions(target):
        raise StageInputError(
            "the output exists and holds something else than decisions; refusing to overwrite "
            "it (it may be an artefact of the chain): write elsewhere",
            code="RUNTIME_OUTPUT_NOT_DECISIONS",
            path=target,
        )
    requests = read_score_requests(source)
    lines: list[bytes] = []
    counts: Counter[str] = Counter()
    seconds = 0.0
    for start in range(0, len(requests), batch_size):
        batch, reasons, elapsed = runtime.decide_lines(
            requests[start : start + batch_size], decided_at=context.now(), timer=timer
        )
        seconds += elapsed
        counts.update(reasons)
        lines += batch
    data = b"\n".join(lines) + b"\n" if lines else b""
    # -o is written to its temporary file first, the log appended, and only then -o renamed in
    # place: a decision handed back is always a decision logged, and a log that cannot be
    # appended to leaves -o untouched.
    with atomic_writer(target) as handle:
        handle.write(data)
        append_lines(log, data)
    decisions = Counter(dict.fromkeys(("approve", "escalate", "abstain", "block"), 0))
    for reason, count in counts.items():
        decisions["escalate" if reason == "citations_required" else reason] += count
    package = runtime.package
    return ScoreOutcome(
        scored=len(requests),
        decisions=dict(decisions),
        citations_required=counts["citations_required"],
        output=str(target),
        decision_log=str(log),
        scoring_seconds=seconds,
        throughput_traces_per_s=(len(requests) / seconds) if requests and seconds > 0 else None,
        runtime_id=package.runtime_id,
        runtime_hash=package.runtime_hash,
        package_version=package.runtime_config.package_version,
    )
