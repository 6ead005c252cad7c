"""The run ledger of a factory home: ``<home>/ledger.sqlite`` (SQLite in WAL mode).

A training run is named by its request: :func:`train_run_id` is the hex sha256 over the RFC 8785
canonical JSON of a :class:`TrainRunRequest` (dataset hash, lane, base model id / revision /
digest, hyperparameters, objective profile, seed), so asking for the same training twice names the
same run, and changing any of those (one hyperparameter) names a new one.

Each run moves through append-only events::

    QUEUED -> RUNNING -> EVAL_READY -> PASS | FAIL      PASS -> PUBLISHED

Every event records when (an RFC 3339 UTC time the caller passes in; the ledger never reads the
clock) and who (``actor``). Event, run, receipt, publication, heartbeat and counter rows can only be
inserted: SQLite triggers abort every ``UPDATE`` and ``DELETE``, and another trigger refuses an
event that does not follow the state machine, so even a hand-written ``INSERT`` cannot skip a gate.

**Interrupted runs.** A ``RUNNING`` event records its owner (:class:`RunOwner`: host, process id,
process start time, lease). The run is reported *interrupted* when the owner is known to be dead
(same host, and the process is gone or the id now belongs to another process) or its lease ran
out (no heartbeat within ``lease_seconds`` of the ``now`` the caller passes). An interrupted run
stays ``RUNNING`` (never ``PASS``): :meth:`RunLedger.start` lets a new owner resume it, and only
the current owner can mark it ``EVAL_READY``.

**Gate receipts** (:class:`GateReceipt`: PASS/FAIL, the criteria, the observed metrics and the
reasons, hashed) are bound to the run id; recording one appends the ``PASS`` or ``FAIL`` event.
**Publishing** registers ``(bundle_id, version) -> content digest`` for a ``PASS`` run; publishing
the same content again is a no-op, other content under a taken version is refused
(:class:`~customer_model_factory.errors.PublishConflictError`). **Counters** (``train_requested``,
``train_started``, ``train_resumed``, ``train_completed``, ``eval_pass``, ``eval_fail``,
``bundle_published``, ``publish_conflict``, ``illegal_transition``) are counted per run from
append-only rows.

**Pipeline runs** (``cmf pipeline run``) are recorded beside the training runs, append-only too:
a pipeline run is named by its configuration (:func:`pipeline_run_id`); each step appends
``STARTED`` then ``DONE`` / ``REUSED`` / ``BLOCKED`` / ``FAILED`` events holding the step's key
(the hash of its inputs and its configuration table) and its outputs' digests, so a later run
reuses a step whose key and outputs are unchanged. Run-scoped **pipeline counters**
(``traces_validated``, ``runs_trained``, ``passes``, ``failures``, ``bundles_published``) are
appended once per step and key, in the same transaction as the step's ``DONE`` event.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, Literal, Self, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from customer_model_factory.canonical import canonical_json, content_hash
from customer_model_factory.contributions import MetricConstraint
from customer_model_factory.errors import (
    DataFormatError,
    LedgerError,
    PublishConflictError,
    PublishError,
    SchemaVersionError,
)
from customer_model_factory.findings import Finding

__all__ = [
    "LEDGER_FILE",
    "LEDGER_SCHEMA_VERSION",
    "PIPELINE_COUNTERS",
    "PIPELINE_STEP_STATES",
    "RUN_STATES",
    "GateReceipt",
    "PipelineRunStatus",
    "PipelineStepEvent",
    "Publication",
    "RunDetail",
    "RunEvent",
    "RunLedger",
    "RunOwner",
    "RunState",
    "RunSummary",
    "TrainRunRequest",
    "build_gate_receipt",
    "owner_is_alive",
    "pipeline_run_id",
    "train_run_id",
]

LEDGER_FILE: Final = "ledger.sqlite"
LEDGER_SCHEMA_VERSION: Final = 1
RunState = Literal["QUEUED", "RUNNING", "EVAL_READY", "PASS", "FAIL", "PUBLISHED"]
RUN_STATES: Final[tuple[str, ...]] = get_args(RunState)
_TRANSITIONS: Final[tuple[tuple[str | None, str], ...]] = (
    (None, "QUEUED"),
    ("QUEUED", "RUNNING"),
    ("RUNNING", "RUNNING"),  # resume by a new owner, allowed only when the run is interrupted
    ("RUNNING", "EVAL_READY"),
    ("EVAL_READY", "PASS"),
    ("EVAL_READY", "FAIL"),
    ("PASS", "PUBLISHED"),
)
_UTC_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
_RUN_ID_RE: Final = re.compile(r"^[0-9a-f]{64}$")
_MAX_ACTOR: Final = 200
_APPEND_ONLY: Final = (
    "runs",
    "events",
    "heartbeats",
    "gate_receipts",
    "publications",
    "counters",
    "transitions",
)

_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS transitions (from_state TEXT, to_state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY CHECK (length(run_id) = 64),
    request_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    state TEXT NOT NULL CHECK (state IN ({", ".join(repr(s) for s in RUN_STATES)})),
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, seq);
CREATE TABLE IF NOT EXISTS heartbeats (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    owner_key TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS gate_receipts (
    run_id TEXT PRIMARY KEY REFERENCES runs (run_id),
    gate_status TEXT NOT NULL CHECK (gate_status IN ('PASS', 'FAIL')),
    receipt_json TEXT NOT NULL,
    receipt_hash TEXT NOT NULL,
    actor TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS publications (
    bundle_id TEXT NOT NULL,
    version TEXT NOT NULL,
    content_digest TEXT NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    PRIMARY KEY (bundle_id, version)
);
CREATE TABLE IF NOT EXISTS counters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS events_follow_the_state_machine BEFORE INSERT ON events
WHEN NOT EXISTS (
    SELECT 1 FROM transitions t
    WHERE t.to_state = NEW.state AND t.from_state IS (
        SELECT e.state FROM events e WHERE e.run_id = NEW.run_id ORDER BY e.seq DESC LIMIT 1
    )
)
BEGIN SELECT RAISE(ABORT, 'illegal run state transition'); END;
CREATE TRIGGER IF NOT EXISTS transitions_are_fixed BEFORE INSERT ON transitions
WHEN (SELECT count(*) FROM transitions) >= {len(_TRANSITIONS)}
BEGIN SELECT RAISE(ABORT, 'the state machine is fixed'); END;
""" + "".join(
    f"""
CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} rows are append-only'); END;
CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} rows are append-only'); END;
"""
    for table in _APPEND_ONLY
)
PIPELINE_STEP_STATES: Final[tuple[str, ...]] = ("STARTED", "DONE", "REUSED", "BLOCKED", "FAILED")
"""What a pipeline step event records: started, finished (ran or reused), blocked, failed."""
PIPELINE_COUNTERS: Final[tuple[str, ...]] = (
    "bundles_published",
    "failures",
    "passes",
    "runs_trained",
    "traces_validated",
)
"""The run-scoped counters of a pipeline run."""
_PIPELINE_TABLES: Final = ("pipeline_runs", "pipeline_events", "pipeline_counters")
# Added after the first ledger schema: created (idempotently) in any ledger that lacks them.
_PIPELINE_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS pipeline_runs (
    pipeline_id TEXT PRIMARY KEY CHECK (length(pipeline_id) = 64),
    config_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pipeline_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline_id TEXT NOT NULL REFERENCES pipeline_runs (pipeline_id),
    step TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ({", ".join(repr(s) for s in PIPELINE_STEP_STATES)})),
    step_key TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pipeline_events_by_key ON pipeline_events (step, step_key, seq);
CREATE INDEX IF NOT EXISTS pipeline_events_by_run ON pipeline_events (pipeline_id, seq);
CREATE TABLE IF NOT EXISTS pipeline_counters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline_id TEXT NOT NULL REFERENCES pipeline_runs (pipeline_id),
    step TEXT NOT NULL,
    step_key TEXT NOT NULL,
    name TEXT NOT NULL CHECK (name IN ({", ".join(repr(s) for s in PIPELINE_COUNTERS)})),
    amount INTEGER NOT NULL CHECK (amount >= 0),
    at TEXT NOT NULL
);
""" + "".join(
    f"""
CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} rows are append-only'); END;
CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} rows are append-only'); END;
"""
    for table in _PIPELINE_TABLES
)
_SEED_TRANSITIONS: Final = (
    "INSERT INTO transitions (from_state, to_state) SELECT * FROM (VALUES "
    + ", ".join(
        f"({'NULL' if source is None else repr(source)}, {target!r})"
        for source, target in _TRANSITIONS
    )
    + ") WHERE NOT EXISTS (SELECT 1 FROM transitions);\n"
    + f"PRAGMA user_version = {LEDGER_SCHEMA_VERSION};\n"
)


def _check_utc(value: str, what: str) -> str:
    if not isinstance(value, str) or not _UTC_RE.match(value):
        raise LedgerError(
            f"{what} {str(value)[:40]!r} is not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)",
            code="TRAIN_LEDGER_INVALID_INPUT",
        )
    return value


def _check_actor(actor: str) -> str:
    if (
        not isinstance(actor, str)
        or not actor.strip()
        or len(actor) > _MAX_ACTOR
        or any(ord(c) < 0x20 or c == "\x7f" for c in actor)
    ):
        raise LedgerError(
            f"actor must be a non-empty one-line string of at most {_MAX_ACTOR} characters",
            code="TRAIN_LEDGER_INVALID_INPUT",
        )
    return actor


def _utc_seconds(value: str) -> float:
    import datetime as dt  # noqa: PLC0415 - only the interruption check needs it

    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _dumps(value: Any) -> str:
    return canonical_json(value).decode("utf-8")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TrainRunRequest(_Frozen):
    """Everything that decides what a training run produces; its hash is the run id.

    Two requests with equal fields (compared as canonical JSON, so ``1`` and ``1.0`` are equal and
    key order does not matter) name the same run.
    """

    schema_version: Literal["1"] = Field(default="1", description="Version of the id recipe.")
    dataset_hash: str = Field(min_length=1, description="Digest of the training data bytes.")
    lane: str = Field(min_length=1, description="The training lane (linear, external, ...).")
    base_model_id: str | None = Field(default=None, description="Base model id, if any.")
    base_model_revision: str | None = Field(
        default=None, description="Pinned revision of the base model, if any."
    )
    base_model_digest: str | None = Field(
        default=None, description="sha256 digest of the base model artefact, if any."
    )
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict, description="The lane's hyperparameters (JSON values)."
    )
    objective_profile: str = Field(min_length=1, description="The objective profile's name.")
    seed: int = Field(ge=0, description="The seed of every random choice in training.")

    @field_validator("hyperparameters")
    @classmethod
    def _canonical(cls, value: dict[str, Any]) -> dict[str, Any]:
        canonical_json(value)  # raises CanonicalizationError for NaN, Infinity, non-JSON types
        return value


def train_run_id(request: TrainRunRequest) -> str:
    """Return the run id of a request: 64 hex digits of sha256 over its canonical JSON.

    Anyone can recompute it: ``sha256(rfc8785.dumps(request.model_dump(mode="json")))``.
    """
    return content_hash(request.model_dump(mode="json")).removeprefix("sha256:")


class RunOwner(_Frozen):
    """The process that runs a training, recorded in its ``RUNNING`` event."""

    host: str = Field(description="Host name of the process.")
    pid: int = Field(gt=0, description="Process id (0 and negatives name process groups).")
    process_start: str | None = Field(
        default=None, description="The process's start time as the OS reports it (pid reuse)."
    )
    lease_seconds: int = Field(
        gt=0, description="The run is interrupted when no heartbeat came for this long."
    )

    @property
    def key(self) -> str:
        """A string naming this owner (host, pid and start time)."""
        return f"{self.host}:{self.pid}:{self.process_start or ''}"

    @classmethod
    def current(cls, *, lease_seconds: int = 900) -> Self:
        """Return the owner token of the calling process."""
        pid = os.getpid()
        return cls(
            host=socket.gethostname(),
            pid=pid,
            process_start=_process_start(pid),
            lease_seconds=lease_seconds,
        )


def _process_start(pid: int) -> str | None:
    """The start time (clock ticks since boot) of a Linux process, or ``None`` elsewhere."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = raw.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def owner_is_alive(owner: RunOwner) -> bool | None:
    """Return whether the process of ``owner`` still runs: ``None`` when it cannot be told.

    Only processes on this host can be checked; a pid that now belongs to a process started at
    another time is a different process (the owner is dead).
    """
    if owner.host != socket.gethostname():
        return None
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    except OSError:
        return None
    if owner.process_start is not None:
        now_start = _process_start(owner.pid)
        if now_start is not None and now_start != owner.process_start:
            return False
    return True


class RunEvent(_Frozen):
    """One append-only event of a run."""

    seq: int = Field(description="Position in the ledger (increasing).")
    state: RunState = Field(description="The state the run entered.")
    at: str = Field(description="RFC 3339 UTC time the caller recorded.")
    actor: str = Field(description="Who caused the event.")
    detail: dict[str, Any] = Field(default_factory=dict, description="Owner, outputs, receipt...")


class GateReceipt(_Frozen):
    """A PASS/FAIL gate decision bound to a run: criteria, observed metrics and reasons."""

    train_run_id: str = Field(description="The run the receipt decides.")
    gate_status: Literal["PASS", "FAIL"] = Field(description="PASS only when every criterion held.")
    criteria: tuple[MetricConstraint, ...] = Field(description="The bounds checked.")
    observed_metrics: dict[str, float | None] = Field(
        description="The metrics the criteria read; null when undefined on the benchmark."
    )
    reasons: tuple[str, ...] = Field(description="One line per criterion that failed.")
    evidence_refs: tuple[str, ...] = Field(
        default=(), description="URIs or hashes of the evaluation results the metrics come from."
    )
    emitted_at_utc: str = Field(description="RFC 3339 UTC time of the decision.")
    receipt_hash: str = Field(default="", description="sha256 over every other field.")

    def compute_hash(self) -> str:
        """Recompute :attr:`receipt_hash` over every other field."""
        payload = self.model_dump(mode="json")
        payload.pop("receipt_hash")
        return content_hash(payload)


def build_gate_receipt(
    *,
    run_id: str,
    criteria: tuple[MetricConstraint, ...],
    observed_metrics: Mapping[str, float | None],
    emitted_at_utc: str,
    evidence_refs: tuple[str, ...] = (),
) -> GateReceipt:
    """Check every criterion against the observed metrics and return the hashed receipt.

    A criterion whose metric is missing or undefined (``None``) fails: an unmeasured metric never
    passes a gate. No criteria at all is a FAIL too (a gate that checks nothing proves nothing).
    """
    _check_utc(emitted_at_utc, "emitted_at_utc")
    reasons: list[str] = []
    observed: dict[str, float | None] = {}
    for criterion in criteria:
        value = observed_metrics.get(criterion.metric)
        observed[criterion.metric] = value
        if value is None:
            reasons.append(
                f"{criterion.metric} is undefined, required {criterion.op} {criterion.value}"
            )
        elif not criterion.holds(value):
            reasons.append(f"{criterion.metric} = {value} fails {criterion.op} {criterion.value}")
    if not criteria:
        reasons.append("the gate has no criteria")
    draft = GateReceipt(
        train_run_id=run_id,
        gate_status="FAIL" if reasons else "PASS",
        criteria=tuple(sorted(criteria, key=lambda c: (c.metric, c.op, c.value))),
        observed_metrics=dict(sorted(observed.items())),
        reasons=tuple(reasons),
        evidence_refs=tuple(sorted(evidence_refs)),
        emitted_at_utc=emitted_at_utc,
    )
    return draft.model_copy(update={"receipt_hash": draft.compute_hash()})


class Publication(_Frozen):
    """One entry of the local registry: a bundle version and the content published under it."""

    bundle_id: str
    version: str
    content_digest: str = Field(description="sha256 digest of the bundle's content.")
    train_run_id: str
    at: str
    actor: str


class RunSummary(_Frozen):
    """One line of ``cmf runs list``."""

    run_id: str
    state: RunState = Field(description="The state of the last event.")
    status: str = Field(description="state, or INTERRUPTED for a RUNNING run with no live owner.")
    lane: str
    dataset_hash: str
    created_at: str
    updated_at: str


class RunDetail(_Frozen):
    """Everything the ledger knows about one run (``cmf runs show``)."""

    run_id: str
    state: RunState
    status: str = Field(description="state, or INTERRUPTED for a RUNNING run with no live owner.")
    interrupted: bool = Field(description="RUNNING with a dead owner or an expired lease.")
    interruption_reason: str | None = None
    request: TrainRunRequest
    created_at: str
    created_by: str
    events: tuple[RunEvent, ...]
    outputs: dict[str, Any] = Field(
        default_factory=dict, description="What the EVAL_READY event recorded (weights digest...)."
    )
    receipt: GateReceipt | None = None
    publications: tuple[Publication, ...] = ()
    counters: dict[str, int] = Field(default_factory=dict)

    @property
    def needs_training(self) -> bool:
        """True when the run was never started or was interrupted (start or resume it)."""
        return self.state == "QUEUED" or self.interrupted

    def findings(self) -> tuple[Finding, ...]:
        """The findings a stage reports for this run: an interrupted run is an error."""
        if not self.interrupted:
            return ()
        return (
            Finding(
                code="TRAIN_RUN_INTERRUPTED",
                severity="error",
                message=f"run {self.run_id} is interrupted ({self.interruption_reason}); "
                "retry the same request to resume it",
            ),
        )


def pipeline_run_id(config: Mapping[str, Any], place: str) -> str:
    """The id of a pipeline run: 64 hex digits of sha256 over the canonical JSON of its
    configuration and ``place`` (the directory the configuration's paths are relative to)."""
    return content_hash({"config": dict(config), "place": place}).removeprefix("sha256:")


class PipelineStepEvent(_Frozen):
    """One event of one pipeline step."""

    seq: int
    pipeline_id: str
    step: str
    state: str = Field(description="STARTED, DONE, REUSED, BLOCKED or FAILED.")
    step_key: str = Field(description="Hash of the step's inputs and configuration table.")
    at: str
    actor: str
    detail: dict[str, Any] = Field(default_factory=dict)


class PipelineRunStatus(_Frozen):
    """What the ledger knows about one pipeline run (``cmf pipeline status``)."""

    pipeline_id: str
    created_at: str
    created_by: str
    steps: dict[str, PipelineStepEvent] = Field(description="step -> its latest event.")
    counters: dict[str, int] = Field(description="Run-scoped counters, every name present.")
    events: int = Field(description="Events recorded for the run.")


class RunLedger:
    """The run ledger of a factory home; open it with ``with RunLedger(home) as ledger:``.

    :param home: the factory home; the ledger is ``home/ledger.sqlite``.
    :param liveness: tells whether a run's owner still runs (``None``: cannot tell); the default
        is :func:`owner_is_alive`.
    """

    def __init__(
        self,
        home: str | Path,
        *,
        liveness: Callable[[RunOwner], bool | None] = owner_is_alive,
    ) -> None:
        self.home = Path(home)
        self.path = self.home / LEDGER_FILE
        self._liveness = liveness
        self._db: sqlite3.Connection | None = None

    # ---- connection ----

    def __enter__(self) -> Self:
        self._connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection (reopened on next use)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataFormatError(
                f"cannot create the factory home: {error.strerror}", path=self.home
            ) from None
        db = None
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA synchronous = FULL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                # Every statement is idempotent, so two processes creating the ledger at once
                # (each in its own IMMEDIATE transaction) leave the same schema.
                db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}{_SEED_TRANSITIONS}COMMIT;")
                version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != LEDGER_SCHEMA_VERSION:
                db.close()
                raise SchemaVersionError(
                    path=self.path, found=str(version), supported=(str(LEDGER_SCHEMA_VERSION),)
                )
            present = db.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                ("pipeline_counters",),
            ).fetchone()[0]
            if not present:
                db.executescript(f"BEGIN IMMEDIATE;{_PIPELINE_SCHEMA}COMMIT;")
        except sqlite3.DatabaseError as error:
            if db is not None:
                db.close()
            raise DataFormatError(f"not a readable run ledger ({error})", path=self.path) from None
        self._db = db
        return db

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction, so every statement of a report sees the same snapshot."""
        db = self._connect()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before reading, so concurrent writers serialise."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # ---- reading ----

    def _events(self, db: sqlite3.Connection, run_id: str) -> tuple[RunEvent, ...]:
        rows = db.execute(
            "SELECT seq, state, at, actor, detail_json FROM events WHERE run_id = ? ORDER BY seq",
            (run_id,),
        ).fetchall()
        return tuple(
            RunEvent(seq=seq, state=state, at=at, actor=actor, detail=orjson.loads(detail))
            for seq, state, at, actor, detail in rows
        )

    def _require_run(self, db: sqlite3.Connection, run_id: str) -> tuple[str, str, str]:
        if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
            raise LedgerError(
                f"{str(run_id)[:80]!r} is not a run id (64 hex digits)", code="TRAIN_RUN_UNKNOWN"
            )
        row = db.execute(
            "SELECT request_json, created_at, created_by FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise LedgerError("no such run in the ledger", code="TRAIN_RUN_UNKNOWN", run_id=run_id)
        return row

    def _interruption(
        self, db: sqlite3.Connection, run_id: str, events: tuple[RunEvent, ...], now: str | None
    ) -> str | None:
        """Why a RUNNING run counts as interrupted, or ``None`` when its owner may still run."""
        if not events or events[-1].state != "RUNNING":
            return None
        last = events[-1]
        owner = RunOwner.model_validate(last.detail["owner"])
        if self._liveness(owner) is False:
            return f"the owning process {owner.pid} on {owner.host} is no longer running"
        if now is None:
            return None
        beats = [
            row[0]
            for row in db.execute(
                "SELECT at FROM heartbeats WHERE run_id = ? AND owner_key = ?", (run_id, owner.key)
            )
        ]
        latest = max([last.at, *beats], key=_utc_seconds)
        if _utc_seconds(now) - _utc_seconds(latest) > owner.lease_seconds:
            return f"no heartbeat since {latest} (lease {owner.lease_seconds} s)"
        return None

    def _counters(self, db: sqlite3.Connection, run_id: str) -> dict[str, int]:
        rows = db.execute(
            "SELECT name, count(*) FROM counters WHERE run_id = ? GROUP BY name ORDER BY name",
            (run_id,),
        ).fetchall()
        return dict(rows)

    def _detail(self, db: sqlite3.Connection, run_id: str, now: str | None) -> RunDetail:
        request_json, created_at, created_by = self._require_run(db, run_id)
        events = self._events(db, run_id)
        reason = self._interruption(db, run_id, events, now)
        receipt_row = db.execute(
            "SELECT receipt_json FROM gate_receipts WHERE run_id = ?", (run_id,)
        ).fetchone()
        publications = tuple(
            Publication(
                bundle_id=b, version=v, content_digest=d, train_run_id=r, at=at, actor=actor
            )
            for b, v, d, r, at, actor in db.execute(
                "SELECT bundle_id, version, content_digest, run_id, at, actor FROM publications"
                " WHERE run_id = ? ORDER BY at, bundle_id, version",
                (run_id,),
            )
        )
        outputs = next((e.detail.get("outputs", {}) for e in events if e.state == "EVAL_READY"), {})
        state = events[-1].state
        return RunDetail(
            run_id=run_id,
            state=state,
            status="INTERRUPTED" if reason else state,
            interrupted=reason is not None,
            interruption_reason=reason,
            request=TrainRunRequest.model_validate_json(request_json),
            created_at=created_at,
            created_by=created_by,
            events=events,
            outputs=outputs,
            receipt=GateReceipt.model_validate_json(receipt_row[0]) if receipt_row else None,
            publications=publications,
            counters=self._counters(db, run_id),
        )

    def show(self, run_id: str, *, now: str | None = None) -> RunDetail:
        """Return everything about a run; ``run_id`` may be a unique prefix of 8+ hex digits.

        :param now: RFC 3339 UTC time the lease of a RUNNING run is judged at; without it, only a
            known-dead owner makes a run interrupted.
        :raises LedgerError: no run, or an ambiguous prefix.
        """
        if now is not None:
            _check_utc(now, "now")
        with self._read() as db:
            return self._detail(db, self._expand(db, run_id), now)

    def _expand(self, db: sqlite3.Connection, run_id: str) -> str:
        if isinstance(run_id, str) and re.fullmatch(r"[0-9a-f]{8,63}", run_id):
            matches = [
                row[0]
                for row in db.execute(
                    "SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ? LIMIT 2",
                    (len(run_id), run_id),
                )
            ]
            if len(matches) > 1:
                raise LedgerError(
                    f"run id prefix {run_id} names more than one run", code="TRAIN_RUN_UNKNOWN"
                )
            if matches:
                return matches[0]
        return run_id

    def list_runs(
        self, *, now: str | None = None, status: str | None = None
    ) -> tuple[RunSummary, ...]:
        """Return every run, most recently changed first, optionally only those with ``status``."""
        if now is not None:
            _check_utc(now, "now")
        with self._read() as db:
            details = [
                self._detail(db, run_id, now)
                for (run_id,) in db.execute("SELECT run_id FROM runs").fetchall()
            ]
        summaries = []
        for detail in details:
            run_id = detail.run_id
            if status is not None and detail.status != status:
                continue
            summaries.append(
                (
                    detail.events[-1].seq,
                    RunSummary(
                        run_id=run_id,
                        state=detail.state,
                        status=detail.status,
                        lane=detail.request.lane,
                        dataset_hash=detail.request.dataset_hash,
                        created_at=detail.created_at,
                        updated_at=detail.events[-1].at,
                    ),
                )
            )
        summaries.sort(key=lambda s: s[1].run_id)
        summaries.sort(key=lambda s: s[0], reverse=True)
        return tuple(summary for _, summary in summaries)

    def counters(self, run_id: str) -> dict[str, int]:
        """Return the run's counters (``train_requested``, ``eval_pass``, ...) as name -> count."""
        with self._read() as db:
            self._require_run(db, run_id)
            return self._counters(db, run_id)

    # ---- writing ----

    def _append(
        self,
        db: sqlite3.Connection,
        run_id: str,
        state: str,
        *,
        at: str,
        actor: str,
        detail: Mapping[str, Any],
    ) -> None:
        try:
            db.execute(
                "INSERT INTO events (run_id, state, at, actor, detail_json) VALUES (?, ?, ?, ?, ?)",
                (run_id, state, at, actor, _dumps(dict(detail))),
            )
        except sqlite3.IntegrityError as error:  # the state-machine trigger
            raise LedgerError(
                f"cannot move to {state}: {error}",
                code="TRAIN_RUN_ILLEGAL_TRANSITION",
                run_id=run_id,
            ) from None

    def _count(self, db: sqlite3.Connection, run_id: str, name: str, at: str) -> None:
        db.execute("INSERT INTO counters (run_id, name, at) VALUES (?, ?, ?)", (run_id, name, at))

    def _refuse(self, run_id: str, at: str, message: str) -> LedgerError:
        """Record an illegal-transition anomaly (in its own transaction) and return the error."""
        with self._write() as db:
            self._count(db, run_id, "illegal_transition", at)
        return LedgerError(message, code="TRAIN_RUN_ILLEGAL_TRANSITION", run_id=run_id)

    def request(self, request: TrainRunRequest, *, at: str, actor: str) -> RunDetail:
        """Register a training request and return its run (QUEUED when new).

        The same request again returns the same run in whatever state it reached (idempotent):
        nothing is retrained or re-gated, only the ``train_requested`` counter grows.

        :raises LedgerError: a malformed time or actor, or a stored run whose request differs.
        """
        _check_utc(at, "at")
        _check_actor(actor)
        run_id = train_run_id(request)
        request_json = _dumps(request.model_dump(mode="json"))
        with self._write() as db:
            row = db.execute("SELECT request_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO runs (run_id, request_json, created_at, created_by)"
                    " VALUES (?, ?, ?, ?)",
                    (run_id, request_json, at, actor),
                )
                self._append(db, run_id, "QUEUED", at=at, actor=actor, detail={})
            elif row[0] != request_json:
                raise LedgerError(
                    "the stored request differs from the request this id derives from",
                    code="TRAIN_RUN_REQUEST_MISMATCH",
                    run_id=run_id,
                )
            self._count(db, run_id, "train_requested", at)
        return self.show(run_id)

    def start(self, run_id: str, *, at: str, actor: str, owner: RunOwner) -> RunDetail:
        """Mark a QUEUED run RUNNING under ``owner``, or resume an interrupted RUNNING run.

        :raises LedgerError: the run is RUNNING under a live owner whose lease has not run out,
            or is past RUNNING (EVAL_READY, PASS, FAIL, PUBLISHED: nothing to train).
        """
        _check_utc(at, "at")
        _check_actor(actor)
        with self._write() as db:
            self._require_run(db, run_id)
            events = self._events(db, run_id)
            state = events[-1].state
            if state == "RUNNING":
                reason = self._interruption(db, run_id, events, at)
                if reason is None:
                    refuse = "it is RUNNING under a live owner whose lease has not run out"
                else:
                    refuse = ""
                    self._count(db, run_id, "train_resumed", at)
            elif state == "QUEUED":
                refuse, reason = "", None
            else:
                refuse = f"it is {state}; a finished run is never trained again"
            if not refuse:
                detail: dict[str, Any] = {"owner": owner.model_dump(mode="json")}
                if reason is not None:
                    detail["resumed_because"] = reason
                self._append(db, run_id, "RUNNING", at=at, actor=actor, detail=detail)
                self._count(db, run_id, "train_started", at)
        if refuse:
            raise self._refuse(run_id, at, f"cannot start: {refuse}")
        return self.show(run_id)

    def heartbeat(self, run_id: str, *, at: str, owner: RunOwner) -> None:
        """Record that ``owner`` is still training the run (extends its lease from ``at``).

        :raises LedgerError: the run is not RUNNING under ``owner``.
        """
        _check_utc(at, "at")
        with self._write() as db:
            self._require_run(db, run_id)
            events = self._events(db, run_id)
            self._check_owner(run_id, events, owner)
            db.execute(
                "INSERT INTO heartbeats (run_id, owner_key, at) VALUES (?, ?, ?)",
                (run_id, owner.key, at),
            )

    @staticmethod
    def _check_owner(run_id: str, events: tuple[RunEvent, ...], owner: RunOwner) -> None:
        last = events[-1]
        if last.state != "RUNNING":
            raise LedgerError(
                f"the run is {last.state}, not RUNNING",
                code="TRAIN_RUN_ILLEGAL_TRANSITION",
                run_id=run_id,
            )
        if RunOwner.model_validate(last.detail["owner"]).key != owner.key:
            raise LedgerError(
                "the run was resumed by another owner; this process no longer owns it",
                code="TRAIN_RUN_ILLEGAL_TRANSITION",
                run_id=run_id,
            )

    def mark_eval_ready(
        self,
        run_id: str,
        *,
        at: str,
        actor: str,
        owner: RunOwner,
        outputs: Mapping[str, Any],
    ) -> RunDetail:
        """Record that training finished: RUNNING -> EVAL_READY with its outputs (digests).

        :raises LedgerError: the run is not RUNNING under ``owner``.
        """
        _check_utc(at, "at")
        _check_actor(actor)
        canonical_json(dict(outputs))
        with self._write() as db:
            self._require_run(db, run_id)
            self._check_owner(run_id, self._events(db, run_id), owner)
            self._append(
                db, run_id, "EVAL_READY", at=at, actor=actor, detail={"outputs": dict(outputs)}
            )
            self._count(db, run_id, "train_completed", at)
        return self.show(run_id)

    def record_gate(self, receipt: GateReceipt, *, actor: str) -> RunDetail:
        """Bind a gate receipt to its run: EVAL_READY -> PASS or FAIL.

        Recording the identical receipt again is a no-op; another receipt for a decided run is
        refused.

        :raises LedgerError: the receipt's hash is wrong, the run is not EVAL_READY, or it already
            holds another receipt.
        """
        _check_actor(actor)
        _check_utc(receipt.emitted_at_utc, "emitted_at_utc")
        if receipt.receipt_hash != receipt.compute_hash():
            raise LedgerError(
                "the gate receipt's receipt_hash does not match its content",
                code="TRAIN_LEDGER_INVALID_INPUT",
                run_id=receipt.train_run_id,
            )
        run_id = receipt.train_run_id
        at = receipt.emitted_at_utc
        refuse = ""
        with self._write() as db:
            self._require_run(db, run_id)
            existing = db.execute(
                "SELECT receipt_hash FROM gate_receipts WHERE run_id = ?", (run_id,)
            ).fetchone()
            state = self._events(db, run_id)[-1].state
            if existing is not None:
                if existing[0] != receipt.receipt_hash:
                    refuse = "it already holds another gate receipt"
            elif state != "EVAL_READY":
                refuse = f"it is {state}; a gate receipt needs EVAL_READY"
            else:
                db.execute(
                    "INSERT INTO gate_receipts (run_id, gate_status, receipt_json, receipt_hash,"
                    " actor) VALUES (?, ?, ?, ?, ?)",
                    (
                        run_id,
                        receipt.gate_status,
                        _dumps(receipt.model_dump(mode="json")),
                        receipt.receipt_hash,
                        actor,
                    ),
                )
                self._append(
                    db,
                    run_id,
                    receipt.gate_status,
                    at=at,
                    actor=actor,
                    detail={"receipt_hash": receipt.receipt_hash},
                )
                self._count(
                    db, run_id, "eval_pass" if receipt.gate_status == "PASS" else "eval_fail", at
                )
        if refuse:
            raise self._refuse(run_id, at, f"cannot record the gate: {refuse}")
        return self.show(run_id)

    def publish(
        self,
        run_id: str,
        *,
        bundle_id: str,
        version: str,
        content_digest: str,
        at: str,
        actor: str,
    ) -> Publication:
        """Register a PASS run's bundle as ``(bundle_id, version)`` in the local registry.

        Idempotent: the same run and content under the same version returns the existing entry.

        :raises PublishError: the run's gate receipt is missing or FAIL.
        :raises PublishConflictError: other content (or another run) holds that version.
        """
        _check_utc(at, "at")
        _check_actor(actor)
        for name, value in (("bundle_id", bundle_id), ("version", version)):
            if not isinstance(value, str) or not re.fullmatch(
                r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}", value
            ):
                raise LedgerError(
                    f"{name} must be 1-128 characters of letters, digits, '.', '_', '+', '-'",
                    code="TRAIN_LEDGER_INVALID_INPUT",
                )
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", content_digest or ""):
            raise LedgerError(
                "content_digest must be sha256:<64 hex>", code="TRAIN_LEDGER_INVALID_INPUT"
            )
        conflict: PublishConflictError | None = None
        not_passed: PublishError | None = None
        with self._write() as db:
            self._require_run(db, run_id)
            existing = db.execute(
                "SELECT content_digest, run_id, at, actor FROM publications"
                " WHERE bundle_id = ? AND version = ?",
                (bundle_id, version),
            ).fetchone()
            if existing is not None:
                digest, owner_run, old_at, old_actor = existing
                if digest == content_digest and owner_run == run_id:
                    return Publication(
                        bundle_id=bundle_id,
                        version=version,
                        content_digest=digest,
                        train_run_id=owner_run,
                        at=old_at,
                        actor=old_actor,
                    )
                self._count(db, run_id, "publish_conflict", at)
                offered = (
                    content_digest
                    if digest != content_digest
                    else f"{content_digest} of run {run_id}"
                )
                conflict = PublishConflictError(
                    bundle_id=bundle_id, version=version, existing=digest, offered=offered
                )
            else:
                state = self._events(db, run_id)[-1].state
                if state not in {"PASS", "PUBLISHED"}:
                    self._count(db, run_id, "illegal_transition", at)
                    receipt = "FAIL" if state == "FAIL" else "no gate receipt"
                    not_passed = PublishError(
                        f"cannot publish: the run is {state} ({receipt}); only a PASS run is "
                        "published",
                        code="TRAIN_PUBLISH_NOT_PASSED",
                        run_id=run_id,
                    )
                else:
                    db.execute(
                        "INSERT INTO publications (bundle_id, version, content_digest, run_id, at,"
                        " actor) VALUES (?, ?, ?, ?, ?, ?)",
                        (bundle_id, version, content_digest, run_id, at, actor),
                    )
                    if state == "PASS":
                        self._append(
                            db,
                            run_id,
                            "PUBLISHED",
                            at=at,
                            actor=actor,
                            detail={
                                "bundle_id": bundle_id,
                                "version": version,
                                "content_digest": content_digest,
                            },
                        )
                    self._count(db, run_id, "bundle_published", at)
        if conflict is not None:
            raise conflict
        if not_passed is not None:
            raise not_passed
        return Publication(
            bundle_id=bundle_id,
            version=version,
            content_digest=content_digest,
            train_run_id=run_id,
            at=at,
            actor=actor,
        )

    # ---- pipeline runs ----

    def begin_pipeline(
        self, pipeline_id: str, *, config: Mapping[str, Any], at: str, actor: str
    ) -> None:
        """Register a pipeline run (idempotent: the same id again is the same run)."""
        _check_utc(at, "at")
        _check_actor(actor)
        if not _RUN_ID_RE.match(pipeline_id or ""):
            raise LedgerError("a pipeline id is 64 hex digits", code="TRAIN_LEDGER_INVALID_INPUT")
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO pipeline_runs (pipeline_id, config_json, created_at,"
                " created_by) VALUES (?, ?, ?, ?)",
                (pipeline_id, _dumps(dict(config)), at, actor),
            )

    def record_pipeline_step(
        self,
        pipeline_id: str,
        step: str,
        state: str,
        *,
        step_key: str,
        at: str,
        actor: str,
        detail: Mapping[str, Any] | None = None,
        counters: Mapping[str, int] | None = None,
    ) -> None:
        """Append one step event; a ``DONE`` or ``REUSED`` event also appends the step's
        counters, once per (pipeline run, step, key), in the same transaction."""
        _check_utc(at, "at")
        _check_actor(actor)
        if state not in PIPELINE_STEP_STATES:
            raise LedgerError(f"unknown step state {state!r}", code="TRAIN_LEDGER_INVALID_INPUT")
        with self._write() as db:
            db.execute(
                "INSERT INTO pipeline_events (pipeline_id, step, state, step_key, at, actor,"
                " detail_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (pipeline_id, step, state, step_key, at, actor, _dumps(dict(detail or {}))),
            )
            if state in {"DONE", "REUSED"} and counters:
                counted = db.execute(
                    "SELECT 1 FROM pipeline_counters WHERE pipeline_id = ? AND step = ?"
                    " AND step_key = ? LIMIT 1",
                    (pipeline_id, step, step_key),
                ).fetchone()
                if counted is None:
                    for name, amount in sorted(counters.items()):
                        db.execute(
                            "INSERT INTO pipeline_counters (pipeline_id, step, step_key, name,"
                            " amount, at) VALUES (?, ?, ?, ?, ?, ?)",
                            (pipeline_id, step, step_key, name, int(amount), at),
                        )

    def completed_step(self, step: str, step_key: str) -> PipelineStepEvent | None:
        """The latest ``DONE`` or ``REUSED`` event of ``step`` with this key, in any pipeline
        run of this home (its outputs may be reused once their digests are checked)."""
        with self._read() as db:
            row = db.execute(
                "SELECT seq, pipeline_id, step, state, step_key, at, actor, detail_json"
                " FROM pipeline_events WHERE step = ? AND step_key = ?"
                " AND state IN ('DONE', 'REUSED') ORDER BY seq DESC LIMIT 1",
                (step, step_key),
            ).fetchone()
        return None if row is None else _pipeline_event(row)

    def pipeline_status(self, pipeline_id: str) -> PipelineRunStatus | None:
        """Every step's latest event and the counters of a pipeline run (``None``: unknown)."""
        with self._read() as db:
            head = db.execute(
                "SELECT created_at, created_by FROM pipeline_runs WHERE pipeline_id = ?",
                (pipeline_id,),
            ).fetchone()
            if head is None:
                return None
            rows = db.execute(
                "SELECT seq, pipeline_id, step, state, step_key, at, actor, detail_json"
                " FROM pipeline_events WHERE pipeline_id = ? ORDER BY seq",
                (pipeline_id,),
            ).fetchall()
            sums = dict(
                db.execute(
                    "SELECT name, sum(amount) FROM pipeline_counters WHERE pipeline_id = ?"
                    " GROUP BY name",
                    (pipeline_id,),
                ).fetchall()
            )
        steps = {}
        for row in rows:
            event = _pipeline_event(row)
            steps[event.step] = event
        return PipelineRunStatus(
            pipeline_id=pipeline_id,
            created_at=head[0],
            created_by=head[1],
            steps=steps,
            counters={name: int(sums.get(name, 0)) for name in PIPELINE_COUNTERS},
            events=len(rows),
        )


def _pipeline_event(row: tuple[Any, ...]) -> PipelineStepEvent:
    seq, pipeline_id, step, state, key, at, actor, detail = row
    return PipelineStepEvent(
        seq=seq,
        pipeline_id=pipeline_id,
        step=step,
        state=state,
        step_key=key,
        at=at,
        actor=actor,
        detail=orjson.loads(detail),
    )
