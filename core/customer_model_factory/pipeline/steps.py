"""The pipeline's steps: one table, in workflow order, each calling one stage's library entry point.

A step says which files it reads (its key is computed from their bytes), which files it writes
(into the run's output directory, under fixed names: the reference guide's names where it has
them) and how to run. Stages 1 to 3 are called directly; stages 4 to 10 through their pinned
entry points (``<Stage>Request`` and ``build_*`` / ``assemble_release`` in ``stages/<stage>/
build.py``), the request built from the step's configuration table plus the upstream files the
pipeline supplies.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson

from customer_model_factory.canonical import content_hash
from customer_model_factory.errors import ConfigError
from customer_model_factory.io import atomic_write_bytes

if TYPE_CHECKING:
    from customer_model_factory.pipeline.config import PipelineConfig
    from customer_model_factory.pipeline.runner import RunState

__all__ = ["STEPS", "Step", "StepOutcome", "StepState"]

StepState = Literal["ready", "blocked", "failed", "not-run"]


@dataclass(frozen=True)
class StepOutcome:
    """What one step produced."""

    state: Literal["ready", "blocked"]
    outputs: dict[str, Path]
    output_hash: str | None
    message: str = ""
    code: str | None = None
    counters: dict[str, int] = field(default_factory=dict)


def _json_bytes(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _combined(hashes: list[str]) -> str | None:
    if not hashes:
        return None
    return hashes[0] if len(hashes) == 1 else content_hash(sorted(hashes))


def _first_errors(findings: Any, limit: int = 3) -> str:
    codes = [f.code for f in findings if f.severity == "error"]
    if not codes:
        return ""
    unique = list(dict.fromkeys(codes))
    return ", ".join(unique[:limit]) + (
        f" (+{len(unique) - limit} more)" if len(unique) > limit else ""
    )


class Step(abc.ABC):
    """One step of the pipeline (subclasses implement :meth:`inputs`, :meth:`planned_outputs`
    and :meth:`run`)."""

    name: str = ""
    stage: str = ""

    def check(self, config: PipelineConfig, path: Path, text: str) -> None:  # noqa: B027
        """Refuse a configuration this step cannot run (exit 2), before anything runs (by
        default every configuration validated by :class:`PipelineConfig` can run)."""

    def external_inputs(self, state: RunState) -> list[Path]:
        """Files the configuration names that this step reads (never overwritten)."""
        return []

    def replaced_directories(self, state: RunState) -> list[Path]:
        """Directories the step replaces as a whole (no input may lie inside one)."""
        return []

    @abc.abstractmethod
    def inputs(self, state: RunState) -> dict[str, Path]:
        """Every file the step reads, by role (its key hashes their bytes)."""

    @abc.abstractmethod
    def planned_outputs(self, state: RunState) -> dict[str, Path]:
        """Every file the step writes, by role."""

    @abc.abstractmethod
    def run(self, state: RunState) -> StepOutcome:
        """Run the step and write its outputs."""


def _traces(state: RunState) -> Path:
    """The traces the model is trained and benchmarked on: the redacted copy when asked."""
    if state.config.dataset.redacted_copy:
        return state.output("redacted_traces.jsonl")
    return Path(state.config.dataset.traces)


def _seed_name(prefix: str, seed: int) -> str:
    return f"{prefix}-seed{seed}.json"


# ---- stage 1 ----


class DatasetStep(Step):
    name = "dataset"
    stage = "1"

    def external_inputs(self, state: RunState) -> list[Path]:
        section = state.config.dataset
        return [Path(section.traces), Path(section.workspace)]

    def inputs(self, state: RunState) -> dict[str, Path]:
        section = state.config.dataset
        return {"traces": Path(section.traces), "workspace": Path(section.workspace)}

    def planned_outputs(self, state: RunState) -> dict[str, Path]:
        outputs = {"dataset_report": state.output("dataset_report.json")}
        if state.config.dataset.redacted_copy:
            outputs["redacted_traces"] = state.output("redacted_traces.jsonl")
        return outputs

    def run(self, state: RunState) -> StepOutcome:
        from customer_model_factory.stages.dataset.validate import (  # noqa: PLC0415
            validate_dataset_to_files,
        )

        section = state.config.dataset
        outputs = self.planned_outputs(state)
        report = validate_dataset_to_files(
            Path(section.traces),
            Path(section.workspace),
            output=outputs["dataset_report"],
            redacted_copy=outputs.get("redacted_traces"),
            vertical=section.vertical,
            max_depth=section.max_depth,
            follow_symlinks=section.follow_symlinks,
            context=state.context,
        )
        errors = report.finding_counts.get("error", 0)
        return StepOutcome(
            state="ready" if report.ready else "blocked",
            outputs=outputs,
            output_hash=report.report_hash,
            message=f"{report.row_count} traces"
            + ("" if report.ready else f", {errors} errors: {_first_errors(report.findings)}"),
            counters={"traces_validated": report.row_count},
        )


# ---- stage 2 ----


class TrainStep(Step):
    name = "train"
    stage = "2"

    def external_inputs(self, state: RunState) -> list[Path]:
        config = state.config.train.config
        return [Path(config)] if config else []

    def inputs(self, state: RunState) -> dict[str, Path]:
        found = {
            "dataset_report": state.output("dataset_report.json"),
            "traces": _traces(state),
            "workspace": Path(state.config.dataset.workspace),
        }
        if state.config.train.config:
            found["config"] = Path(state.config.train.config)
        return found

    def planned_outputs(self, state: RunState) -> dict[str, Path]:
        return {
            f"training_manifest-seed{seed}": state.output(_seed_name("training_manifest", seed))
            for seed in state.config.train.seeds
        }

    def run(self, state: RunState) -> StepOutcome:
        from customer_model_factory.stages.training import (  # noqa: PLC0415
            TrainingRequest,
            train_to_file,
        )

        section = state.config.train
        outputs = self.planned_outputs(state)
        hashes, blocked = [], []
        for seed in section.seeds:
            overrides: dict[str, Any] = {
                "lane": section.lane,
                "seed": seed,
                "objective_profile": section.objective,
                "output_uri": section.output_uri,
                "package_id": section.package_id,
                "actor": state.config.pipeline.actor,
            }
            if section.hyperparameters:
                overrides["hyperparameters"] = section.hyperparameters
            request = TrainingRequest.from_options(
                dataset_report=state.output("dataset_report.json"),
                config=Path(section.config) if section.config else None,
                workspace=Path(state.config.dataset.workspace),
                traces=_traces(state),
                **overrides,
            )
            manifest = train_to_file(
                request, outputs[f"training_manifest-seed{seed}"], context=state.context
            )
            hashes.append(manifest.manifest_hash)
            if not manifest.ready:
                blocked.append(f"seed {seed}: {_first_errors(manifest.findings)}")
        return StepOutcome(
            state="blocked" if blocked else "ready",
            outputs=outputs,
            output_hash=_combined(hashes),
            message="; ".join(blocked) or f"{len(hashes)} run(s) trained",
            counters={"runs_trained": len(hashes)},
        )


# ---- stage 3 ----


class BenchmarkStep(Step):
    name = "benchmark"
    stage = "3"

    def _traces(self, state: RunState) -> Path:
        section = state.config.benchmark
        return Path(section.traces) if section.traces else _traces(state)

    def external_inputs(self, state: RunState) -> list[Path]:
        section = state.config.benchmark
        return [Path(section.traces)] if section.traces else []

    def inputs(self, state: RunState) -> dict[str, Path]:
        found = {
            f"training_manifest-seed{seed}": state.output(_seed_name("training_manifest", seed))
            for seed in state.config.train.seeds
        }
        found["traces"] = self._traces(state)
        return found

    def planned_outputs(self, state: RunState) -> dict[str, Path]:
        outputs = {}
        for seed in state.config.train.seeds:
            for split in ("validation", "test"):
                role = f"benchmark_{split}-seed{seed}"
                outputs[role] = state.output(f"{role}.json")
        return outputs

    def run(self, state: RunState) -> StepOutcome:
        from customer_model_factory.stages.benchmark.run import (  # noqa: PLC0415
            BenchmarkRequest,
            run_benchmark,
        )

        section = state.config.benchmark
        outputs = self.planned_outputs(state)
        claim: dict[str, Any] = (
            {"package": section.package}
            if section.package is not None
            else {"claim_boundary": section.claim_boundary}
        )
        if section.max_fpr is not None:
            claim["objective"] = {"kind": "max_fpr", "target": section.max_fpr}
        elif section.max_fnr is not None:
            claim["objective"] = {"kind": "max_fnr", "target": section.max_fnr}
        hashes, blocked = [], []
        for seed in state.config.train.seeds:
            calibration: Path | None = None
            for split in ("validation", "test"):
                request = BenchmarkRequest(
                    training_manifest=state.output(_seed_name("training_manifest", seed)),
                    split=split,
                    traces=self._traces(state),
                    calibration=calibration,
                    alpha=section.alpha,
                    unsafe_labels=tuple(section.unsafe_labels),
                    safe_labels=tuple(section.safe_labels),
                    batch_size=section.batch_size,
                    **claim,
                )
                result = run_benchmark(request, context=state.context, timer=state.timer)
                target = outputs[f"benchmark_{split}-seed{seed}"]
                result.write(target)
                hashes.append(result.result_hash)
                if not result.ready:
                    blocked.append(f"seed {seed} {split}: {_first_errors(result.findings)}")
                calibration = target
        return StepOutcome(
            state="blocked" if blocked else "ready",
            outputs=outputs,
            output_hash=_combined(hashes),
            message="; ".join(blocked) or f"{len(hashes)} results",
        )


class SelectStep(Step):
    name = "select"
    stage = "3"

    def inputs(self, state: RunState) -> dict[str, Path]:
        return {
            f"benchmark_test-seed{seed}": state.output(f"benchmark_test-seed{seed}.json")
            for seed in state.config.train.seeds
        }

    def planned_outputs(self, state: RunState) -> dict[str, Path]:
        return {
            "selection_report": state.output("selection_report.json"),
            "gate_receipt": state.output("gate_receipt.json"),
        }

    def run(self, state: RunState) -> StepOutcome:
        from customer_model_factory.stages.selection.select import run_selection  # noqa: PLC0415

        section = state.config.select
        outputs = self.planned_outputs(state)
        run = run_selection(
            list(self.inputs(state).values()),
            section.objective,
            context=state.context,
            cutoffs=section.cutoffs,
            min_high_risk_samples=section.min_high_risk,
            selection_id=section.selection_id,
        )
        run.report.write(outputs["selection_report"])
        written = {"selection_report": outputs["selection_report"]}
        counters = {"passes": 0, "failures": 0}
        if run.receipt is not None:
            atomic_write_bytes(
                outputs["gate_receipt"], _json_bytes(run.receipt.model_dump(mode="json"))
            )
            written["gate_receipt"] = outputs["gate_receipt"]
            counters["passes" if run.receipt.gate_status == "PASS" else "failures"] = 1
        else:
            counters["failures"] = 1
        if run.exit_code == 0:
            message = f"gate PASS ({run.report.objective_profile})"
        elif run.receipt is not None:
            message = "gate FAIL: " + "; ".join(run.receipt.reasons)[:300]
        else:
            message = "no eligible candidate: " + _first_errors(run.report.findings)
        return StepOutcome(
            state="ready" if run.exit_code == 0 else "blocked",
            outputs=written,
            output_hash=run.report.selection_hash,
            message=message,
            counters=counters,
        )


class PublishStep(Step):
    name = "publish"
    stage = "3"

    def inputs(self, state: RunState) -> dict[str, Path]:
        return {"selection_report": state.output("selection_report.json")}

    def planned_outputs(self, state: RunState) -> dict[str, Path]:
        return {"model_bundle": state.output("model_bundle.json")}

    def run(self, state: RunState) -> StepOutcome:
        from customer_model_factory.stages.selection.publish import publish_bundle  # noqa: PLC0415

        section = state.config.publish
        outputs = self.planned_outputs(state)
        outcome = publish_bundle(
            state.output("selection_report.json"),
            bundle_id=section.bundle_id,
            version=section.version,
            context=state.context,
            mlflow_uri=section.mlflow_uri,
        )
        outcome.bundle.write(outputs["model_bundle"])
        return StepOutcome(
            state="ready",
            outputs=outputs,
            output_hash=outcome.bundle.bundle_hash,
            message=f"{section.bundle_id} {section.version}",
            counters={"bundles_published": 1},
        )


# ---- stages 4 to 10, through their pinned entry points ----

Supply = Callable[["RunState"], Any]


@dataclass(frozen=True)
class _Entry:
    module: str
    request: str
    function: str


def _run_outputs(state: RunState) -> set[Path]:
    """Every file the run's steps write (a table value naming one is not an input)."""
    return {path for step in STEPS for path in step.planned_outputs(state).values()}


def _section_files(section: Mapping[str, Any], produced: set[Path]) -> dict[str, Path]:
    """Files a stage's table names (relative to the config directory): they key the step. A
    value naming a file the run itself writes (a declared URI such as the audit log's) is not
    one."""
    found: dict[str, Path] = {}

    def add(name: str, item: Any) -> None:
        if isinstance(item, str) and item and "://" not in item:
            path = Path(item)
            if path in produced:
                return
            if path.is_file():
                found[name] = path
            elif path.is_dir():
                for child in sorted(path.rglob("*")):
                    if child.is_file():
                        found[f"{name}/{child.relative_to(path).as_posix()}"] = child

    for key, value in sorted(section.items()):
        if isinstance(value, list):
            for index, item in enumerate(value):
                add(f"config.{key}.{index}", item)
        elif isinstance(value, dict):
            for sub, item in sorted(value.items()):
                add(f"config.{key}.{sub}", item)
        else:
            add(f"config.{key}", value)
    return found


class LaterStep(Step):
    """A step of stages 4 to 10: ``Request(**supplied, **table)`` (the table may not set a field
    the pipeline supplies), then the entry point, then the manifest written under the reference
    guide's file name."""

    def __init__(
        self,
        name: str,
        stage: str,
        entry: _Entry,
        output: str,
        supplies: Mapping[str, Supply],
    ) -> None:
        self.name = name
        self.stage = stage
        self.entry = entry
        self.output_name = output
        # request field -> how the pipeline fills it (an upstream output, the run's output path)
        self.supplies = dict(supplies)

    def _load(self) -> tuple[Any, Any]:
        try:
            module = importlib.import_module(self.entry.module)
        except ImportError:
            return None, None
        return getattr(module, self.entry.request, None), getattr(module, self.entry.function, None)

    def supplied_fields(self) -> set[str]:
        """The request fields the pipeline fills in (never from the configuration)."""
        return set(self.supplies)

    def check(self, config: PipelineConfig, path: Path, text: str) -> None:
        from customer_model_factory.pipeline.config import toml_key_line  # noqa: PLC0415

        request_cls, function = self._load()
        if request_cls is None or function is None:
            raise ConfigError(
                f"stage {self.stage} ({self.name}) is not available in this installation "
                f"({self.entry.module}.{self.entry.function}); set [pipeline] stop_after to an "
                "earlier step",
                path=path,
                line=toml_key_line(text, "pipeline.stop_after"),
                field="pipeline.stop_after",
            )
        fields = set(getattr(request_cls, "model_fields", {}))
        allowed = fields - self.supplied_fields()
        section = config.section(self.name)
        for key in section:
            if key not in allowed:
                why = "set by the pipeline" if key in fields else "unknown key"
                raise ConfigError(
                    f"{why} (known: {', '.join(sorted(allowed)) or 'none'})",
                    path=path,
                    line=toml_key_line(text, f"{self.name}.{key}"),
                    field=f"{self.name}.{key}",
                )
        # Validate the values now (the upstream files do not exist yet: placeholders stand in).
        from pydantic import ValidationError  # noqa: PLC0415

        try:
            request_cls.model_validate(
                {name: Path(f"{name}.placeholder") for name in self.supplies} | section
            )
        except ValidationError as error:
            first = error.errors()[0]
            loc = [str(part) for part in first["loc"]]
            dotted = ".".join([self.name, *loc])
            message = str(first["msg"]).removeprefix("Value error, ")
            if first["type"] == "missing":
                message = "required key is missing"
            raise ConfigError(
                message,
                path=path,
                line=toml_key_line(text, dotted) or toml_key_line(text, self.name),
                field=dotted,
            ) from None

    def external_inputs(self, state: RunState) -> list[Path]:
        return list(_section_files(state.config.section(self.name), _run_outputs(state)).values())

    def inputs(self, state: RunState) -> dict[str, Path]:
        output = self.planned_outputs(state)[self.output_name.removesuffix(".json")]
        found = {}
        for name, supply in sorted(self.supplies.items()):
            value = supply(state)
            if isinstance(value, Path) and value != output:
                found[name] = value
        found.update(_section_files(state.config.section(self.name), _run_outputs(state)))
        return found

    def planned_outputs(self, state: RunState) -> dict[str, Path]:
        return {self.output_name.removesuffix(".json"): state.output(self.output_name)}

    def request(self, state: RunState) -> Any:
        from pydantic import ValidationError  # noqa: PLC0415

        request_cls, _ = self._load()
        values: dict[str, Any] = {name: supply(state) for name, supply in self.supplies.items()}
        values.update(state.config.section(self.name))
        try:
            return request_cls.model_validate(values)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ConfigError(
                str(first["msg"]).removeprefix("Value error, "), field=f"{self.name}.{where}"
            ) from None

    def build(self, state: RunState) -> Any:
        """Call the entry point; return the sealed manifest."""
        _, function = self._load()
        return function(self.request(state), state.context)

    def run(self, state: RunState) -> StepOutcome:
        manifest = self.build(state)
        outputs = self.planned_outputs(state)
        manifest.write(outputs[self.output_name.removesuffix(".json")])
        return self.outcome(manifest, outputs)

    def outcome(self, manifest: Any, outputs: dict[str, Path]) -> StepOutcome:
        return StepOutcome(
            state="ready" if manifest.ready else "blocked",
            outputs=outputs,
            output_hash=manifest.content_digest,
            message=_first_errors(manifest.findings),
        )


class RuntimeStep(LaterStep):
    """Stage 7: the runtime package directory is the output directory (the package file and
    its model files, copied out of the store digest-verified)."""

    def planned_outputs(self, state: RunState) -> dict[str, Path]:
        return {"runtime_package": state.output("runtime_package.json")}

    def replaced_directories(self, state: RunState) -> list[Path]:
        model_dir = str(state.config.section(self.name).get("model_dir", "model"))
        return [state.out.joinpath(*model_dir.split("/"))]

    def run(self, state: RunState) -> StepOutcome:
        from customer_model_factory.stages.runtime.build import (  # noqa: PLC0415
            write_runtime_package,
        )

        package = self.build(state)
        written = write_runtime_package(package, state.out, context=state.context)
        config = package.runtime_config
        outputs = {"runtime_package": written}
        for name in sorted(config.model.files):
            outputs[f"model/{name}"] = state.out.joinpath(*config.model_dir.split("/"), name)
        return self.outcome(package, outputs)


class ScoreStep(LaterStep):
    """Stage 7's runtime scores one split of the traces (default test): every decision goes to
    ``decisions.jsonl`` and is appended to ``decision_log.jsonl``, which monitoring reads."""

    def check(self, config: PipelineConfig, path: Path, text: str) -> None:
        from customer_model_factory.pipeline.config import toml_key_line  # noqa: PLC0415

        _, function = self._load()
        if function is None:
            super().check(config, path, text)
        for key, value in config.section(self.name).items():
            if key not in {"split", "batch_size"}:
                raise ConfigError(
                    "unknown key (known: batch_size, split)",
                    path=path,
                    line=toml_key_line(text, f"score.{key}"),
                    field=f"score.{key}",
                )
            if key == "batch_size" and not (isinstance(value, int) and value >= 1):
                raise ConfigError(
                    "must be a positive integer",
                    path=path,
                    line=toml_key_line(text, "score.batch_size"),
                    field="score.batch_size",
                )

    def external_inputs(self, state: RunState) -> list[Path]:
        return []

    def inputs(self, state: RunState) -> dict[str, Path]:
        return {"runtime_package": state.output("runtime_package.json"), "traces": _traces(state)}

    def planned_outputs(self, state: RunState) -> dict[str, Path]:
        return {
            "score_input": state.output("score_input.jsonl"),
            "decisions": state.output("decisions.jsonl"),
            "decision_log": state.output("decision_log.jsonl"),
        }

    def run(self, state: RunState) -> StepOutcome:
        from customer_model_factory.stages.runtime.score import (  # noqa: PLC0415
            load_runtime,
            score_file,
        )

        outputs = self.planned_outputs(state)
        section = state.config.section(self.name)
        split = str(section.get("split", "test"))
        count = _write_split(_traces(state), split, outputs["score_input"])
        # The log is appended to: a run interrupted while scoring starts it again from empty,
        # so it holds each decision of this run exactly once.
        outputs["decision_log"].unlink(missing_ok=True)
        loaded = load_runtime(state.output("runtime_package.json"), context=state.context)
        extra = {"batch_size": section["batch_size"]} if "batch_size" in section else {}
        score_file(
            loaded,
            outputs["score_input"],
            output=outputs["decisions"],
            context=state.context,
            decision_log=outputs["decision_log"],
            timer=state.timer,
            **extra,
        )
        return StepOutcome(
            state="ready",
            outputs=outputs,
            output_hash=_digest_bytes(outputs["decision_log"]),
            message=f"{count} {split} traces scored",
        )


def _write_split(traces: Path, split: str, target: Path) -> int:
    """Copy the lines of one split (their bytes as they are) into ``target``, streaming; return
    how many. A shard ``.jsonl.gz`` is read through gzip."""
    from customer_model_factory.errors import DataFormatError  # noqa: PLC0415
    from customer_model_factory.io import atomic_writer, list_jsonl_shards, open_shard  # noqa: PLC0415

    count = 0
    with atomic_writer(target) as out:
        for shard in list_jsonl_shards(traces):
            with open_shard(shard) as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        row = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        raise DataFormatError(
                            "not a JSON object (validate the traces first)", path=shard, line=number
                        ) from None
                    if isinstance(row, dict) and row.get("split") == split:
                        out.write(line if line.endswith(b"\n") else line + b"\n")
                        count += 1
    return count


def _digest_bytes(path: Path) -> str:
    import hashlib  # noqa: PLC0415

    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


class ReleaseStep(LaterStep):
    """Stage 10: the release gate; a gate that does not allow promotion blocks the run, naming
    every blocker's code and source."""

    def outcome(self, manifest: Any, outputs: dict[str, Path]) -> StepOutcome:
        blockers = manifest.blockers
        named = [f"{b.code} ({b.source})" for b in blockers]
        allowed = bool(manifest.promotion_allowed)
        return StepOutcome(
            state="ready" if allowed else "blocked",
            outputs=outputs,
            output_hash=manifest.content_digest,
            message="promotion allowed" if allowed else "blocked by " + "; ".join(named[:8]),
            code=blockers[0].code if blockers else None,
        )


def _out(name: str) -> Supply:
    return lambda state: state.output(name)


def _selected_seed(state: RunState) -> int:
    """The seed of the candidate the selection chose (the first seed when unreadable: the stage
    given that seed's result then refuses it as not the selected one, by its verified hashes)."""
    seeds = state.config.train.seeds

    def field(path: Path, name: str) -> Any:
        try:
            value = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return value.get(name) if isinstance(value, dict) else None

    chosen = field(state.output("selection_report.json"), "selected_result_hash")
    for seed in seeds:
        result = state.output(f"benchmark_test-seed{seed}.json")
        if chosen is not None and field(result, "result_hash") == chosen:
            return seed
    return seeds[0]


def _selected(split: str) -> Supply:
    return lambda state: state.output(f"benchmark_{split}-seed{_selected_seed(state)}.json")


_BUILD: Final = "customer_model_factory.stages.{}.build"

STEPS: Final[tuple[Step, ...]] = (
    DatasetStep(),
    TrainStep(),
    BenchmarkStep(),
    SelectStep(),
    PublishStep(),
    LaterStep(
        "deploy",
        "4",
        _Entry(_BUILD.format("deployment"), "DeployRequest", "build_deployment"),
        "deployment_manifest.json",
        {
            "selection": _out("selection_report.json"),
            "result": _selected("test"),
            "calibration": _selected("validation"),
            "bundle": _out("model_bundle.json"),
        },
    ),
    LaterStep(
        "evidence",
        "6",
        _Entry(_BUILD.format("evidence"), "EvidenceRequest", "build_evidence_pack"),
        "evidence_pack.json",
        {
            "deployment": _out("deployment_manifest.json"),
            "selection": _out("selection_report.json"),
            "result": _selected("test"),
            "dataset_report": _out("dataset_report.json"),
            "training_manifest": lambda state: state.output(
                _seed_name("training_manifest", _selected_seed(state))
            ),
        },
    ),
    RuntimeStep(
        "runtime",
        "7",
        _Entry(_BUILD.format("runtime"), "RuntimeRequest", "build_runtime_package"),
        "runtime_package.json",
        {
            "deployment": _out("deployment_manifest.json"),
            "evidence_pack": _out("evidence_pack.json"),
            "result": _selected("test"),
        },
    ),
    ScoreStep(
        "score",
        "7",
        _Entry("customer_model_factory.stages.runtime.score", "ScoreRequest", "score_file"),
        "decision_log.jsonl",
        {},
    ),
    LaterStep(
        "monitor",
        "8",
        _Entry(_BUILD.format("monitoring"), "MonitorRequest", "build_monitoring"),
        "monitoring_manifest.json",
        {
            "runtime": _out("runtime_package.json"),
            "decision_log": _out("decision_log.jsonl"),
            "output": _out("monitoring_manifest.json"),
        },
    ),
    LaterStep(
        "risk",
        "9",
        _Entry(_BUILD.format("risk"), "RiskRequest", "build_risk_register"),
        "risk_register.json",
        {
            "evidence_pack": _out("evidence_pack.json"),
            "monitoring": _out("monitoring_manifest.json"),
            "output": _out("risk_register.json"),
        },
    ),
    ReleaseStep(
        "release",
        "10",
        _Entry(_BUILD.format("release"), "ReleaseRequest", "assemble_release"),
        "release_gate.json",
        {
            "runtime_package": _out("runtime_package.json"),
            "evidence_pack": _out("evidence_pack.json"),
            "monitoring_manifest": _out("monitoring_manifest.json"),
            "risk_register": _out("risk_register.json"),
            "output": _out("release_gate.json"),
        },
    ),
)
"""Every step, in the order the pipeline runs them."""
