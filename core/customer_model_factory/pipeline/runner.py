"""Run the factory end to end from one ``factory.toml``, resumably.

:func:`run_pipeline` runs the steps of :data:`~.steps.STEPS` in order inside the configuration's
directory. Before a step runs, its **key** is computed: sha256 over the step's configuration
table, the sha256 of every file it reads (the upstream steps' outputs included), the core's
version, the plugins loaded and the clock mode. The run ledger records ``STARTED`` and then
``DONE`` (with every output's digest) or ``BLOCKED`` / ``FAILED``; a later run finding a ``DONE``
step with the same key re-hashes its outputs and reuses them when every digest matches, and runs
the step again when one is missing or differs. Every file is written atomically, so a run killed
at any point leaves complete files or none, and the next run finishes with the same bytes.

In **reproducible** mode the run clock is the configuration's ``as_of`` instant and scoring is
not timed (latencies are recorded as zero, and the pipeline record says so with
``PIPELINE_TIMINGS_NOT_MEASURED``): the same inputs give byte-identical outputs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory._version import __version__
from customer_model_factory.canonical import content_hash
from customer_model_factory.context import RunContext
from customer_model_factory.errors import (
    ArtefactError,
    BlockedError,
    CMFError,
    ConfigError,
    InputError,
    PipelineStageError,
)
from customer_model_factory.findings import Finding
from customer_model_factory.io import atomic_write_bytes, list_jsonl_shards
from customer_model_factory.ledger import RunLedger, pipeline_run_id
from customer_model_factory.manifest import HASH_PATTERN
from customer_model_factory.pipeline.config import (
    STEP_NAMES,
    PipelineConfig,
    load_pipeline_config,
)
from customer_model_factory.pipeline.steps import STEPS, Step, StepOutcome, StepState
from customer_model_factory.store import ArtefactStore

__all__ = [
    "RECORD_FILE",
    "PipelineOutcome",
    "PipelineRecord",
    "PipelineStatus",
    "RecordedOutput",
    "RecordedStep",
    "StepReport",
    "pipeline_status",
    "run_pipeline",
]

RECORD_FILE: Final = "pipeline_run.json"
"""The pipeline record, written into the output directory at the end of every run."""


class StepReport(BaseModel):
    """One step of one pipeline run, as the summary shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step: str
    stage: str = Field(description="The factory stage (1 to 10) the step belongs to.")
    status: Literal["ready", "blocked", "failed", "not-run"]
    how: Literal["ran", "reused", "restored", "-"] = Field(
        description="Run now, reused by hash, or reused with outputs restored from the store."
    )
    output_hash: str | None = Field(description="The hash field of the step's main manifest.")
    outputs: dict[str, str] = Field(description="role -> sha256 of the file's bytes.")
    paths: dict[str, str] = Field(description="role -> path relative to the config directory.")
    seconds: float | None = Field(description="Wall time of the step (None when not run).")
    message: str = ""


class RecordedOutput(BaseModel):
    """One output file of a step, as the pipeline record lists it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(description="Relative to the configuration's directory (POSIX).")
    sha256: str = Field(pattern=HASH_PATTERN, description="sha256 of the file's bytes.")


class RecordedStep(BaseModel):
    """One step of a pipeline run, as the pipeline record lists it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step: str
    stage: str = Field(description="The factory stage (1 to 10) the step belongs to.")
    status: Literal["ready", "blocked", "failed", "not-run"]
    output_hash: str | None = Field(description="The hash field of the step's main manifest.")
    outputs: dict[str, RecordedOutput] = Field(description="role -> the file it wrote.")


class PipelineRecord(BaseModel):
    """``pipeline_run.json``: what a pipeline run produced, without timings (so an interrupted
    and resumed run and an uninterrupted one write the same bytes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["pipeline-run"] = "pipeline-run"
    schema_version: Literal["1"] = "1"
    config_sha256: str = Field(description="sha256 of the factory.toml bytes the run read.")
    reproducible: bool
    as_of: str | None
    steps: tuple[RecordedStep, ...] = Field(description="Every configured step, in order.")
    findings: tuple[Finding, ...]
    completed: bool = Field(description="Every configured step is ready.")
    promotion_allowed: bool | None = Field(description="The release gate's decision, if run.")
    release_hash: str | None
    record_hash: str = ""


class PipelineOutcome(BaseModel):
    """What :func:`run_pipeline` returns."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pipeline_id: str
    steps: tuple[StepReport, ...]
    record: PipelineRecord
    record_path: str
    blocked_step: str | None
    promotion_allowed: bool | None
    release_hash: str | None
    exit_code: int = Field(description="0 ready (promotion allowed); 1 a step blocked.")
    counters: dict[str, int]


class PipelineStatus(BaseModel):
    """``cmf pipeline status``: every step's state from the ledger."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pipeline_id: str
    known: bool = Field(description="False when the ledger holds no run of this config.")
    steps: tuple[dict[str, Any], ...]
    counters: dict[str, int]


@dataclass
class RunState:
    """Everything the steps of one run share (paths relative to the config directory)."""

    config: PipelineConfig
    context: RunContext
    out: Path
    reproducible: bool
    timer: Callable[[], float]
    produced: dict[str, dict[str, Path]] = field(default_factory=dict)
    hashes: dict[str, str | None] = field(default_factory=dict)

    def output(self, name: str) -> Path:
        return self.out / name


def _fixed_timer() -> float:
    return 0.0


def _shown(path: Path) -> str:
    """A path for a message: every non-printable character escaped (no forged line)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(path))


def _file_digest(path: Path) -> str:
    """sha256 of a file's bytes, or of a directory's shards (name and bytes, sorted).

    :raises ConfigError: the path is neither a directory nor a regular file (a FIFO or a device
        would block or never end).
    """
    if not path.is_dir() and not stat.S_ISREG(path.stat().st_mode):
        raise ConfigError(f"{_shown(path)} is not a regular file (a FIFO or a device?)")
    if path.is_dir():
        digest = hashlib.sha256()
        for shard in list_jsonl_shards(path):
            digest.update(shard.name.encode() + b"\0")
            digest.update(bytes.fromhex(_file_digest(shard).removeprefix("sha256:")))
        return "sha256:" + digest.hexdigest()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _plugin_fingerprint(context: RunContext) -> list[list[str]]:
    from customer_model_factory.plugins.listing import list_plugins  # noqa: PLC0415

    listing = list_plugins(context.plugin_manager, include_builtins=True)
    return sorted(
        [info.name, info.distribution or "", info.version or "", info.status]
        for info in listing.plugins
    )


def _step_key(step: Step, state: RunState, inputs: Mapping[str, Path], plugins: Any) -> str:
    missing = [role for role, path in inputs.items() if not path.exists()]
    if missing:
        raise ConfigError(
            f"step {step.name}: its input {missing[0]} ({_shown(inputs[missing[0]])}) does not "
            "exist",
            field=step.name,
        )
    return content_hash(
        {
            "step": step.name,
            "section": state.config.section(step.name),
            "pipeline": {
                "reproducible": state.reproducible,
                "as_of": state.config.pipeline.as_of if state.reproducible else None,
            },
            "inputs": {role: _file_digest(path) for role, path in sorted(inputs.items())},
            "version": __version__,
            "plugins": plugins,
        }
    )


def _reusable(
    detail: Mapping[str, Any], out: Path, store: ArtefactStore
) -> tuple[dict[str, Path], bool] | None:
    """The outputs a DONE event recorded, when every one is in the output directory with its
    digest, or can be restored there from the artefact store (the bytes verified against the
    digest): ``(paths, restored)``; ``None`` when one is neither (the step runs again)."""
    recorded = detail.get("outputs")
    if not isinstance(recorded, dict) or not recorded:
        return None
    wanted: dict[str, tuple[Path, str]] = {}
    for role, entry in recorded.items():
        name, digest = (
            (entry.get("name"), entry.get("sha256")) if isinstance(entry, dict) else ("", "")
        )
        relative = Path(str(name or ""))
        if not name or relative.is_absolute() or ".." in relative.parts or not digest:
            return None
        wanted[role] = (out / relative, str(digest))
    missing = {}
    for role, (path, digest) in wanted.items():
        if not (path.is_file() and _file_digest(path) == digest):
            if not store.contains(digest):
                return None
            missing[role] = (path, digest)
    for path, digest in missing.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            store.copy_to(digest, path)  # verified and atomic: a bad object leaves no file
        except ArtefactError:
            return None  # the stored copy was altered too: make the output again
    return {role: path for role, (path, _) in wanted.items()}, bool(missing)


def _context(config: PipelineConfig, context: RunContext, base: Path) -> RunContext:
    home = base / config.pipeline.home if config.pipeline.home is not None else context.home
    switches = context.switches.adding(
        disabled=tuple(config.sector.disable_plugins), sector_owners=config.sector.owners
    )
    clock = context.clock
    if config.pipeline.reproducible:
        assert config.pipeline.as_of is not None
        instant = dt.datetime.fromisoformat(config.pipeline.as_of.replace("Z", "+00:00"))

        def clock() -> dt.datetime:
            return instant

    fresh = RunContext(switches=switches, home=home, clock=clock, output=context.output)
    if switches == context.switches and context._plugin_manager is not None:
        fresh._plugin_manager = context._plugin_manager
    return fresh


@dataclass(frozen=True)
class _Hooks:
    on_step: Callable[[str, str], None] | None = None
    before_step: Callable[[str], None] | None = None


def _chosen_steps(config: PipelineConfig, stop_after: str | None = None) -> list[Step]:
    last = stop_after or config.pipeline.stop_after or STEP_NAMES[-1]
    chosen = []
    for step in STEPS:
        chosen.append(step)
        if step.name == last:
            break
    return chosen


def run_pipeline(
    config_path: str | Path,
    *,
    context: RunContext,
    on_step: Callable[[str, str], None] | None = None,
    before_step: Callable[[str], None] | None = None,
    stop_after: str | None = None,
) -> PipelineOutcome:
    """Run every configured step of ``factory.toml`` in order; reuse the ones already done.

    :param on_step: called with ``(step, event)`` as the run advances (``started``, ``ran``,
        ``reused``, ``blocked``, ``failed``): the CLI's progress display.
    :param before_step: called with the step's name after its start is recorded and before it
        runs (a test hook: ``cmf pipeline run`` pauses there when asked).
    :param stop_after: run up to this step only (instead of the configuration's ``stop_after``).
    :raises ConfigError: an invalid configuration (exit 2), before anything runs.
    :raises PipelineStageError: a step refused its input (it carries that error's exit code).
    """
    path = Path(config_path)
    config, text = load_pipeline_config(path)
    base = Path(os.path.abspath(path)).parent
    config_sha = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    if stop_after is not None and stop_after not in STEP_NAMES:
        raise ConfigError(f"unknown step {stop_after!r} (steps: {', '.join(STEP_NAMES)})")
    steps = _chosen_steps(config, stop_after)
    for step in steps:
        step.check(config, path, text)
    outer = replace_home(context)
    with contextlib.chdir(base):
        return _run(
            config=config,
            config_sha=config_sha,
            path=base / path.name,
            base=base,
            steps=steps,
            outer=outer,
            hooks=_Hooks(on_step, before_step),
        )


def _run(
    *,
    config: PipelineConfig,
    config_sha: str,
    path: Path,
    base: Path,
    steps: list[Step],
    outer: RunContext,
    hooks: _Hooks,
) -> PipelineOutcome:
    context = _context(config, outer, base)
    state = RunState(
        config=config,
        context=context,
        out=Path(config.pipeline.output_dir),
        reproducible=config.pipeline.reproducible,
        timer=_fixed_timer if config.pipeline.reproducible else time.perf_counter,
    )
    _refuse_output_over_inputs(state, steps, path)
    for key, directory in (("pipeline.output_dir", state.out), ("pipeline.home", context.home)):
        try:
            Path(directory).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"{key} {_shown(Path(directory))} cannot be used as a directory: "
                f"{error.strerror or type(error).__name__}",
                path=path,
            ) from None
    pipeline_id = pipeline_run_id(config.model_dump(mode="json"), str(base))
    actor = config.pipeline.actor
    plugins = _plugin_fingerprint(context)
    reports: list[StepReport] = []
    blocked: str | None = None
    with _exclusive(context.home, state.out), RunLedger(context.home) as ledger:
        ledger.begin_pipeline(
            pipeline_id, config=config.model_dump(mode="json"), at=context.now(), actor=actor
        )
        for step in steps:
            if blocked is not None:
                reports.append(_not_run(step))
                continue
            report = _run_step(
                step=step,
                state=state,
                ledger=ledger,
                pipeline_id=pipeline_id,
                plugins=plugins,
                hooks=hooks,
            )
            reports.append(report)
            if report.status != "ready":
                blocked = step.name
        status = ledger.pipeline_status(pipeline_id)
    counters = dict(status.counters) if status is not None else {}
    return _finish(
        state=state,
        config=config,
        config_sha=config_sha,
        pipeline_id=pipeline_id,
        reports=reports,
        blocked=blocked,
        counters=counters,
    )


@contextlib.contextmanager
def _exclusive(home: Path, out: Path) -> Iterator[None]:
    """One run at a time writes an output directory: two runs interleaving their files would
    leave a directory whose manifests come from different runs. The lock lives in the factory
    home (never among the outputs) and is released by the kernel when the process dies, so a
    killed run never leaves it held."""
    import fcntl  # noqa: PLC0415 - POSIX only, like the rest of the run's atomic writes

    locks = home / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(os.path.abspath(out).encode("utf-8", "surrogateescape")).hexdigest()
    with (locks / f"pipeline-{name[:32]}.lock").open("a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                f"another cmf pipeline run is writing {_shown(out)} right now; wait for it to "
                "finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _refuse_output_over_inputs(state: RunState, steps: list[Step], config_path: Path) -> None:
    """No output of the run may be the config file or an input file the config names."""
    from customer_model_factory.io import same_file  # noqa: PLC0415

    inputs = [Path(os.path.abspath(config_path))]
    for step in steps:
        inputs += [p for p in step.external_inputs(state) if p.exists()]
    outputs = [state.output(RECORD_FILE)]
    for step in steps:
        outputs += list(step.planned_outputs(state).values())
        for directory in step.replaced_directories(state):
            root = Path(os.path.realpath(directory))
            for source in inputs:
                if Path(os.path.realpath(source)).is_relative_to(root):
                    raise ConfigError(
                        f"step {step.name} replaces the directory {_shown(directory)}, which "
                        f"holds the input {_shown(source)}; choose another output_dir"
                    )
    for output in outputs:
        for source in inputs:
            if source.is_dir():
                if output.exists() and any(
                    same_file(output, shard) for shard in list_jsonl_shards(source)
                ):
                    raise ConfigError(
                        f"output {_shown(output)} is also an input; choose another output_dir"
                    )
            elif same_file(output, source):
                raise ConfigError(
                    f"output {_shown(output)} is also an input; choose another output_dir"
                )


def _not_run(step: Step) -> StepReport:
    return StepReport(
        step=step.name,
        stage=step.stage,
        status="not-run",
        how="-",
        output_hash=None,
        outputs={},
        paths={},
        seconds=None,
        message="an earlier step did not finish",
    )


def _chain_holds(outputs: dict[str, Path], context: Any) -> bool:
    """Whether every link of a reused release gate's chain still verifies.

    The release step's key covers the files it reads directly; the artefacts further up (raw
    results, the model, the dataset report in the store) are only reached through the chain, so
    the gate is reused only when ``cmf manifest verify --chain`` would pass on it.
    """
    from customer_model_factory.catalog import verify_chain  # noqa: PLC0415

    gates = [path for path in outputs.values() if path.suffix == ".json"]
    return verify_chain(gates, home=context.home).ready


def _run_step(
    *,
    step: Step,
    state: RunState,
    ledger: RunLedger,
    pipeline_id: str,
    plugins: Any,
    hooks: _Hooks,
) -> StepReport:
    context = state.context
    actor = state.config.pipeline.actor
    inputs = step.inputs(state)
    key = _step_key(step, state, inputs, plugins)
    done = ledger.completed_step(step.name, key)
    store = ArtefactStore(context.home)
    found = _reusable(done.detail, state.out, store) if done is not None else None
    if found is not None and step.name == "release" and not _chain_holds(found[0], context):
        found = None  # an upstream artefact changed in the store: decide again (and block)
    if done is not None and found is not None:
        reused, restored = found
        state.produced[step.name] = reused
        primary = done.detail.get("output_hash")
        state.hashes[step.name] = primary
        detail = dict(done.detail)
        detail["outputs"] = {
            role: {**entry, "path": reused[role].as_posix()}
            for role, entry in done.detail["outputs"].items()
        }
        detail["restored"] = restored
        ledger.record_pipeline_step(
            pipeline_id,
            step.name,
            "REUSED",
            step_key=key,
            at=context.now(),
            actor=actor,
            detail=detail,
            counters=done.detail.get("counters") or {},
        )
        if hooks.on_step:
            hooks.on_step(step.name, "restored" if restored else "reused")
        return _report(
            step=step,
            status="ready",
            how="restored" if restored else "reused",
            output_hash=primary,
            outputs=reused,
            seconds=None,
            message="",
        )
    ledger.record_pipeline_step(
        pipeline_id, step.name, "STARTED", step_key=key, at=context.now(), actor=actor
    )
    if hooks.on_step:
        hooks.on_step(step.name, "started")
    if hooks.before_step:
        hooks.before_step(step.name)
    began = time.perf_counter()
    try:
        outcome = step.run(state)
    except BlockedError as error:
        outcome = StepOutcome(
            state="blocked",
            outputs={},
            output_hash=None,
            message=str(error),
            code=error_code(error),
        )
    except CMFError as error:
        ledger.record_pipeline_step(
            pipeline_id,
            step.name,
            "FAILED",
            step_key=key,
            at=context.now(),
            actor=actor,
            detail={"error": str(error)[:500], "exit_code": error.exit_code},
        )
        if hooks.on_step:
            hooks.on_step(step.name, "failed")
        raise PipelineStageError(step.name, error) from None
    seconds = time.perf_counter() - began
    # Every output is kept in the store too, so a later run restores a deleted or altered one
    # (verified) instead of making it again (a benchmark measured again is another result).
    outputs = {
        role: store.put_file(path).digest
        for role, path in sorted(outcome.outputs.items())
        if path.is_file()
    }
    detail = {
        "outputs": {
            role: {
                "path": outcome.outputs[role].as_posix(),
                "name": Path(os.path.relpath(outcome.outputs[role], state.out)).as_posix(),
                "sha256": digest,
            }
            for role, digest in outputs.items()
        },
        "output_hash": outcome.output_hash,
        "counters": dict(outcome.counters),
        "message": outcome.message,
        "code": outcome.code,
    }
    state.produced[step.name] = dict(outcome.outputs)
    state.hashes[step.name] = outcome.output_hash
    ready = outcome.state == "ready"
    ledger.record_pipeline_step(
        pipeline_id,
        step.name,
        "DONE" if ready else "BLOCKED",
        step_key=key,
        at=context.now(),
        actor=actor,
        detail=detail,
        counters=outcome.counters,
    )
    if hooks.on_step:
        hooks.on_step(step.name, "ran" if ready else "blocked")
    return _report(
        step=step,
        status="ready" if ready else "blocked",
        how="ran",
        output_hash=outcome.output_hash,
        outputs=outcome.outputs,
        seconds=seconds,
        message=outcome.message,
    )


def error_code(error: CMFError) -> str | None:
    """The finding code an error stands for, if any."""
    code = getattr(error, "code", None)
    return code if isinstance(code, str) else None


def _report(
    *,
    step: Step,
    status: StepState,
    how: Literal["ran", "reused", "restored"],
    output_hash: str | None,
    outputs: Mapping[str, Path],
    seconds: float | None,
    message: str,
) -> StepReport:
    return StepReport(
        step=step.name,
        stage=step.stage,
        status=status,
        how=how,
        output_hash=output_hash,
        outputs={role: _file_digest(p) for role, p in sorted(outputs.items()) if p.is_file()},
        paths={role: p.as_posix() for role, p in sorted(outputs.items())},
        seconds=seconds,
        message=message,
    )


def _finish(
    *,
    state: RunState,
    config: PipelineConfig,
    config_sha: str,
    pipeline_id: str,
    reports: list[StepReport],
    blocked: str | None,
    counters: dict[str, int],
) -> PipelineOutcome:
    findings: list[Finding] = []
    if state.reproducible:
        findings.append(
            Finding(
                code="PIPELINE_TIMINGS_NOT_MEASURED",
                severity="info",
                message="reproducible run: the clock is fixed at as_of and scoring was not "
                "timed, so every latency is recorded as 0 and no throughput is given",
            )
        )
    if blocked is not None:
        failed = next(r for r in reports if r.step == blocked)
        findings.append(
            Finding(
                code="PIPELINE_STEP_BLOCKED",
                severity="error",
                message=f"step {blocked} is blocked: {failed.message}"[:500],
                field=blocked,
            )
        )
    release = next(
        (r for r in reports if r.step == "release" and r.status in ("ready", "blocked")), None
    )
    promotion = _promotion(state) if release is not None else None
    record = PipelineRecord(
        config_sha256=config_sha,
        reproducible=state.reproducible,
        as_of=config.pipeline.as_of if state.reproducible else None,
        steps=tuple(
            RecordedStep(
                step=r.step,
                stage=r.stage,
                status=r.status,
                output_hash=r.output_hash,
                outputs={
                    role: RecordedOutput(path=r.paths[role], sha256=digest)
                    for role, digest in r.outputs.items()
                },
            )
            for r in reports
        ),
        findings=tuple(findings),
        completed=blocked is None,
        promotion_allowed=promotion,
        release_hash=state.hashes.get("release") if release is not None else None,
    )
    record = record.model_copy(
        update={
            "record_hash": content_hash(record.model_dump(mode="json", exclude={"record_hash"}))
        }
    )
    record_path = state.output(RECORD_FILE)
    atomic_write_bytes(
        record_path,
        orjson.dumps(
            record.model_dump(mode="json"), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        )
        + b"\n",
    )
    exit_code = 0 if blocked is None and promotion is not False else 1
    return PipelineOutcome(
        pipeline_id=pipeline_id,
        steps=tuple(reports),
        record=record,
        record_path=record_path.as_posix(),
        blocked_step=blocked,
        promotion_allowed=promotion,
        release_hash=record.release_hash,
        exit_code=exit_code,
        counters=counters,
    )


def _promotion(state: RunState) -> bool | None:
    path = state.produced.get("release", {}).get("release_gate")
    if path is None or not path.is_file():
        return None
    value = orjson.loads(path.read_bytes()).get("promotion_allowed")
    return value if isinstance(value, bool) else None


def pipeline_status(config_path: str | Path, *, context: RunContext) -> PipelineStatus:
    """Every step's latest state for the pipeline run ``factory.toml`` names, from the ledger.

    :raises ConfigError: an invalid configuration (exit 2).
    """
    path = Path(config_path)
    config, _ = load_pipeline_config(path)
    base = Path(os.path.abspath(path)).parent
    run_context = _context(config, replace_home(context), base)
    pipeline_id = pipeline_run_id(config.model_dump(mode="json"), str(base))
    status = None
    if (run_context.home / "ledger.sqlite").exists():
        with RunLedger(run_context.home) as ledger:
            status = ledger.pipeline_status(pipeline_id)
    rows = []
    for step in _chosen_steps(config):
        event = status.steps.get(step.name) if status is not None else None
        rows.append(
            {
                "step": step.name,
                "stage": step.stage,
                "state": event.state if event else "PENDING",
                "at": event.at if event else None,
                "output_hash": event.detail.get("output_hash") if event else None,
                "message": (event.detail.get("message") or event.detail.get("error") or "")
                if event
                else "",
            }
        )
    return PipelineStatus(
        pipeline_id=pipeline_id,
        known=status is not None,
        steps=tuple(rows),
        counters=dict(status.counters) if status is not None else {},
    )


def replace_home(context: RunContext) -> RunContext:
    """The context with its home made absolute (the run works from the config directory)."""
    return replace(context, home=Path(os.path.abspath(context.home)))
