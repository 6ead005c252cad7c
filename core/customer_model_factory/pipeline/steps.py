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
import inspect
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


def _section_files(section: Mapping[str, Any]) -> dict[str, Path]:
    """Files a stage's table names (relative to the config directory): they key the step."""
    found: dict[str, Path] = {}
    for key, value in sorted(section.items()):
        values = value if isinstance(value, list) else [value]
        for index, item in enumerate(values):
            if isinstance(item, str) and item and "://" not in item and Path(item).is_file():
                found[f"config.{key}" + (f".{index}" if isinstance(value, list) else "")] = Path(
                    item
                )
    return found


def _manifest_of(result: Any) -> Any:
    """The sealed manifest an entry point returned (itself, or an outcome holding it)."""
    from customer_model_factory.manifest import Manifest  # noqa: PLC0415

    if isinstance(result, Manifest):
        return result
    for name in ("manifest", "package", "pack", "register", "gate", "result", "release"):
        value = getattr(result, name, None)
        if isinstance(value, Manifest):
            return value
    for value in vars(result).values() if hasattr(result, "__dict__") else ():
        if isinstance(value, Manifest):
            return value
    raise ConfigError(f"the stage returned {type(result).__name__}, which holds no manifest")


class LaterStep(Step):
    """A step of stages 4 to 10: ``request = Request(**supplied, **table)``, then the entry
    point, then the manifest written under the reference guide's file name."""

    def __init__(
        self,
        name: str,
        stage: str,
        entry: _Entry,
        output: str,
        supplies: Mapping[str, tuple[tuple[str, ...], Supply]],
    ) -> None:
        self.name = name
        self.stage = stage
        self.entry = entry
        self.output_name = output
        # value name -> (the request field names it may go under, how to get it)
        self.supplies = dict(supplies)

    def _load(self) -> tuple[Any, Any]:
        try:
            module = importlib.import_module(self.entry.module)
        except ImportError:
            return None, None
        return getattr(module, self.entry.request, None), getattr(module, self.entry.function, None)

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
        supplied = self._supplied_fields(fields)
        for key in config.section(self.name):
            if key not in fields:
                known = ", ".join(sorted(fields - supplied)) or "none"
                raise ConfigError(
                    f"unknown key (known: {known})",
                    path=path,
                    line=toml_key_line(text, f"{self.name}.{key}"),
                    field=f"{self.name}.{key}",
                )

    def _supplied_fields(self, fields: set[str]) -> set[str]:
        chosen = set()
        for names, _ in self.supplies.values():
            name = next((n for n in names if n in fields), None)
            if name is not None:
                chosen.add(name)
        return chosen

    def external_inputs(self, state: RunState) -> list[Path]:
        return list(_section_files(state.config.section(self.name)).values())

    def inputs(self, state: RunState) -> dict[str, Path]:
        found = {}
        for value_name, (_, supply) in self.supplies.items():
            value = supply(state)
            if isinstance(value, Path):
                found[value_name] = value
        found.update(_section_files(state.config.section(self.name)))
        return found

    def planned_outputs(self, state: RunState) -> dict[str, Path]:
        return {self.output_name.removesuffix(".json"): state.output(self.output_name)}

    def request(self, state: RunState) -> Any:
        from pydantic import ValidationError  # noqa: PLC0415

        request_cls, _ = self._load()
        fields = set(request_cls.model_fields)
        values: dict[str, Any] = {}
        for names, supply in self.supplies.values():
            name = next((n for n in names if n in fields), None)
            if name is not None:
                values[name] = supply(state)
        values.update(state.config.section(self.name))
        try:
            return request_cls.model_validate(values)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ConfigError(
                str(first["msg"]).removeprefix("Value error, "), field=f"{self.name}.{where}"
            ) from None

    def run(self, state: RunState) -> StepOutcome:
        _, function = self._load()
        result = function(self.request(state), state.context)
        manifest = _manifest_of(result)
        outputs = self.planned_outputs(state)
        manifest.write(next(iter(outputs.values())))
        return self.outcome(manifest, outputs)

    def outcome(self, manifest: Any, outputs: dict[str, Path]) -> StepOutcome:
        errors = _first_errors(manifest.findings)
        return StepOutcome(
            state="ready" if manifest.ready else "blocked",
            outputs=outputs,
            output_hash=manifest.content_digest,
            message=errors,
        )


class ScoreStep(LaterStep):
    """Stage 7's runtime scores the test split of the traces, writing the decision log."""

    def inputs(self, state: RunState) -> dict[str, Path]:
        return {"runtime_package": state.output("runtime_package.json"), "traces": _traces(state)}

    def planned_outputs(self, state: RunState) -> dict[str, Path]:
        return {
            "score_input": state.output("score_input.jsonl"),
            "decision_log": state.output("decision_log.jsonl"),
        }

    def check(self, config: PipelineConfig, path: Path, text: str) -> None:
        _, function = self._load()
        if function is None:
            super().check(config, path, text)

    def request(self, state: RunState) -> Any:  # pragma: no cover - score takes no request
        return None

    def run(self, state: RunState) -> StepOutcome:
        from customer_model_factory.io import list_jsonl_shards  # noqa: PLC0415

        _, score_file = self._load()
        outputs = self.planned_outputs(state)
        split = str(state.config.section("score").get("split", "test"))
        lines = []
        for shard in list_jsonl_shards(_traces(state)):
            for line in shard.read_bytes().splitlines():
                if line.strip():
                    row = orjson.loads(line)
                    if isinstance(row, dict) and row.get("split") == split:
                        lines.append(line + b"\n")
        atomic_write_bytes(outputs["score_input"], b"".join(lines))
        offered: dict[str, Any] = {
            "runtime": state.output("runtime_package.json"),
            "runtime_path": state.output("runtime_package.json"),
            "package": state.output("runtime_package.json"),
            "input": outputs["score_input"],
            "input_path": outputs["score_input"],
            "source": outputs["score_input"],
            "traces": outputs["score_input"],
            "output": outputs["decision_log"],
            "output_path": outputs["decision_log"],
            "decision_log": outputs["decision_log"],
            "context": state.context,
            "timer": state.timer,
        }
        parameters = inspect.signature(score_file).parameters
        kwargs = {name: offered[name] for name in parameters if name in offered}
        result = score_file(**kwargs)
        digest = _digest_bytes(outputs["decision_log"])
        return StepOutcome(
            state="ready",
            outputs=outputs,
            output_hash=digest,
            message=f"{len(lines)} traces scored"
            + (f" ({result})" if isinstance(result, int) else ""),
        )


def _digest_bytes(path: Path) -> str:
    import hashlib  # noqa: PLC0415

    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


class ReleaseStep(LaterStep):
    """Stage 10: the release gate; a gate that does not allow promotion blocks the run."""

    def outcome(self, manifest: Any, outputs: dict[str, Path]) -> StepOutcome:
        blockers = getattr(manifest, "blockers", ())
        named = [f"{b.code} ({b.source})" for b in blockers]
        allowed = bool(getattr(manifest, "promotion_allowed", False))
        return StepOutcome(
            state="ready" if allowed else "blocked",
            outputs=outputs,
            output_hash=manifest.content_digest,
            message="promotion allowed" if allowed else "blocked by " + "; ".join(named[:5]),
            code=blockers[0].code if blockers else None,
        )


def _out(name: str) -> Supply:
    return lambda state: state.output(name)


def _selected_test_result(state: RunState) -> Path:
    """The test result of the candidate the selection chose (the first seed when unreadable)."""
    report = state.output("selection_report.json")
    seeds = state.config.train.seeds
    if report.is_file():
        chosen = orjson.loads(report.read_bytes()).get("selected_result_hash")
        for seed in seeds:
            path = state.output(f"benchmark_test-seed{seed}.json")
            if path.is_file() and orjson.loads(path.read_bytes()).get("result_hash") == chosen:
                return path
    return state.output(f"benchmark_test-seed{seeds[0]}.json")


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
            "selection_report": (("selection", "selection_report"), _out("selection_report.json")),
            "model_bundle": (("bundle", "model_bundle"), _out("model_bundle.json")),
        },
    ),
    LaterStep(
        "evidence",
        "6",
        _Entry(_BUILD.format("evidence"), "EvidenceRequest", "build_evidence_pack"),
        "evidence_pack.json",
        {
            "deployment_manifest": (("deployment",), _out("deployment_manifest.json")),
            "selection_report": (("selection",), _out("selection_report.json")),
            "benchmark_test": (("benchmark", "benchmark_result"), _selected_test_result),
            "dataset_report": (("dataset_report",), _out("dataset_report.json")),
            "model_bundle": (("bundle", "model_bundle"), _out("model_bundle.json")),
        },
    ),
    LaterStep(
        "runtime",
        "7",
        _Entry(_BUILD.format("runtime"), "RuntimeRequest", "build_runtime_package"),
        "runtime_package.json",
        {
            "deployment_manifest": (("deployment",), _out("deployment_manifest.json")),
            "evidence_pack": (("evidence_pack", "evidence"), _out("evidence_pack.json")),
            "benchmark_test": (("benchmark", "benchmark_result"), _selected_test_result),
        },
    ),
    ScoreStep(
        "score",
        "7",
        _Entry("customer_model_factory.stages.runtime.score", "LoadedRuntime", "score_file"),
        "decision_log.jsonl",
        {},
    ),
    LaterStep(
        "monitor",
        "8",
        _Entry(_BUILD.format("monitoring"), "MonitorRequest", "build_monitoring"),
        "monitoring_manifest.json",
        {
            "runtime_package": (("runtime", "runtime_package"), _out("runtime_package.json")),
            "decision_log": (("decision_log",), _out("decision_log.jsonl")),
        },
    ),
    LaterStep(
        "risk",
        "9",
        _Entry(_BUILD.format("risk"), "RiskRequest", "build_risk_register"),
        "risk_register.json",
        {
            "evidence_pack": (("evidence_pack", "evidence"), _out("evidence_pack.json")),
            "monitoring_manifest": (
                ("monitoring", "monitoring_manifest"),
                _out("monitoring_manifest.json"),
            ),
        },
    ),
    ReleaseStep(
        "release",
        "10",
        _Entry(_BUILD.format("release"), "ReleaseRequest", "assemble_release"),
        "release_gate.json",
        {
            "runtime_package": (("runtime_package",), _out("runtime_package.json")),
            "evidence_pack": (("evidence_pack",), _out("evidence_pack.json")),
            "monitoring_manifest": (("monitoring_manifest",), _out("monitoring_manifest.json")),
            "risk_register": (("risk_register",), _out("risk_register.json")),
        },
    ),
)
"""Every step, in the order the pipeline runs them."""
