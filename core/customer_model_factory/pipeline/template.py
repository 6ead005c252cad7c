"""``cmf pipeline init``: a commented ``factory.toml`` with a table for every stage.

Stages 1 to 3 are written out by hand; the tables of stages 4 to 10 are generated from their
request models (every field the stage's command takes, its default and its description), so the
template never drifts from the stages it configures.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from customer_model_factory.errors import InputError
from customer_model_factory.io import atomic_write_bytes, same_file

__all__ = ["render_pipeline_config", "write_pipeline_config"]

_HEAD: Final = """\
# factory.toml: the whole customer model factory, from traces to the release gate.
# Run it with `cmf pipeline run factory.toml`; see where it stands with `cmf pipeline status`.
# Every path is relative to this file's directory. A key left commented out takes its default.
# A step already done with unchanged inputs and table is reused by hash on the next run.

[pipeline]
# Every manifest of the run is written here.
output_dir = "run"
# The factory home (run ledger and artefact store); default: --home, CMF_HOME or .cmf.
home = ".cmf"
# true: the clock is fixed at as_of and scoring is not timed (latencies recorded as 0), so the
# same inputs give byte-identical outputs.
reproducible = false
# The RFC 3339 UTC instant a reproducible run is dated at.
# as_of = "2026-05-18T18:45:00Z"
# Who runs the pipeline, recorded in the run ledger.
actor = "cmf-pipeline"
# Stop after this step (dataset, train, benchmark, select, publish, deploy, evidence, runtime,
# score, monitor, risk, release).
{stop_after}

# ---- stage 1: dataset contract (cmf dataset validate) ----
[dataset]
# A .jsonl file or a directory of *.jsonl shards.
traces = {traces}
# The workspace TOML (a [workspace] table or the whole file).
workspace = {workspace}
# Validate every row against this sector (default: the workspace's vertical).
# vertical = "example-sector"
# Write redacted_traces.jsonl (secrets and personal data replaced) and train on it.
redacted_copy = false
# Deepest nesting of arrays and objects a line may hold (1 to 512).
max_depth = 64
# Read shards that link to files outside the shard directory.
follow_symlinks = false

# ---- stage 5: sector extension (the packs every step loads) ----
[sector]
# Which distribution owns a sector two packs claim: {{ "sector-id" = "distribution" }}.
owners = {{}}
# Plugins or distributions not to load (each is recorded in every report).
disable_plugins = []

# ---- stage 2: training manifest (cmf train), once per seed ----
[train]
# The training lane (cmf plugins list --all shows them).
lane = "linear"
# One candidate run per seed; the selection chooses among them.
seeds = [0]
# The objective profile recorded with the run.
objective = "balanced"
# A train.toml (base model, output URI, ...); its keys are overridden by this table.
# config = "train.toml"
# The training package id (default: cmf-train-<run id prefix>).
# package_id = "customer-scorer"
# Where the model goes (a manifest-only lane's URI rules; default: the artefact store).
# output_uri = "file:///models/customer-scorer"

[train.hyperparameters]
# The lane's hyperparameters (linear: c, classifier, word_features_log2, ...).

# ---- stage 3a: benchmark (cmf benchmark run on validation, then test) ----
[benchmark]
# A benchmark package (its claim boundary and thresholds), or a claim boundary of your own.
# package = "example-sector.conduct-v1"
claim_boundary = "Measured on this workspace's labelled validation and test splits only."
# The traces to score (default: the dataset's).
# traces = "traces.jsonl"
# Calibrate so at most this share of unsafe validation traces is approved (default 0.05)...
# max_fnr = 0.05
# ...or so at most this share of safe validation traces is flagged.
# max_fpr = 0.05
# Conformal error level of the calibrated band.
alpha = 0.1
# Labels meaning unsafe and safe.
unsafe_labels = ["unsafe"]
safe_labels = ["safe"]
# Traces per scoring call.
batch_size = 256

# ---- stage 3b: selection (cmf select) ----
[select]
# The objective profile candidates are judged under.
objective = "zero_silent_unsafe_pass"
# Replace the bound of one of the profile's constraints: {{ recall = 0.95 }}.
cutoffs = {{}}
# High-risk unsafe traces a candidate must hold (default: the profile's).
# min_high_risk = 1
# The selection's id (default: derived from the inputs).
# selection_id = "selection-1"

# ---- stage 3c: publish (cmf publish) ----
[publish]
# The bundle's id and version in the local registry.
bundle_id = "customer-scorer"
version = "1.0.0"
# Also log the bundle to this MLflow tracking URI (extra mlflow).
# mlflow_uri = "file:///mlruns"
"""

_LATER: Final = (
    ("deploy", "4", "deployment (cmf deploy)"),
    ("evidence", "6", "evidence pack (cmf evidence build)"),
    ("runtime", "7", "runtime package (cmf runtime build)"),
    ("score", "7", "scoring the test split through the runtime (cmf score)"),
    ("monitor", "8", "monitoring (cmf monitor)"),
    ("risk", "9", "risk register (cmf risk)"),
    ("release", "10", "release gate (cmf release assemble)"),
)


def _toml_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, list | tuple):
        items = [_toml_value(item) for item in value]
        return None if None in items else "[" + ", ".join(items) + "]"  # type: ignore[arg-type]
    if isinstance(value, dict):
        items = [f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()]
        return "{" + ", ".join(items) + "}" if items else "{}"
    return None


def _choices(annotation: Any) -> tuple[str, ...]:
    """The values of a ``Literal`` (possibly inside ``X | None``), else nothing."""
    import typing  # noqa: PLC0415

    if typing.get_origin(annotation) is typing.Literal:
        return tuple(str(value) for value in typing.get_args(annotation))
    for inner in typing.get_args(annotation):
        found = _choices(inner)
        if found:
            return found
    return ()


def _later_section(step_name: str, stage: str, title: str, option_help: Mapping[str, str]) -> str:
    from pydantic_core import PydanticUndefined  # noqa: PLC0415

    from customer_model_factory.pipeline.steps import STEPS, LaterStep  # noqa: PLC0415

    step = next(s for s in STEPS if s.name == step_name)
    lines = [f"# ---- stage {stage}: {title} ----", f"[{step_name}]"]
    assert isinstance(step, LaterStep)
    request_cls, function = step._load()
    if function is None:
        lines.append(
            "# This stage is not installed here; set [pipeline] stop_after to run up to it."
        )
        return "\n".join(lines) + "\n"
    if step_name == "score":
        lines.append("# The split of the traces the runtime scores into the decision log.")
        lines.append('split = "test"')
        lines.append("# Requests scored per call of the model.")
        lines.append("# batch_size = 4096")
        return "\n".join(lines) + "\n"
    fields = getattr(request_cls, "model_fields", {})
    supplied = step.supplied_fields()
    for name, info in fields.items():
        if name in supplied:
            continue
        description = (option_help.get(name) or info.description or name).replace("\n", " ")
        choices = _choices(info.annotation)
        if choices and not all(choice in description for choice in choices):
            description += f" (one of: {', '.join(choices)})"
        default = info.default
        if default is PydanticUndefined and info.default_factory is not None:
            default = info.default_factory()  # type: ignore[call-arg]
        if hasattr(default, "model_dump"):
            default = default.model_dump(mode="json")
        rendered = None if default is PydanticUndefined else _toml_value(default)
        lines.append(f"# {description}")
        if default is PydanticUndefined:
            lines.append(f"# {name} = ...  (required)")
        elif rendered is None:
            lines.append(f"# {name} = ...")
        else:
            lines.append(f"{name} = {rendered}")
    return "\n".join(lines) + "\n"


def render_pipeline_config(
    traces: str,
    workspace: str,
    option_help: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """The commented ``factory.toml`` for these traces and workspace (paths as given).

    :param option_help: step -> request field -> the help text of the stage command's option,
        used as a key's comment when its request field has no description of its own.
    """
    from customer_model_factory.pipeline.steps import STEPS, LaterStep  # noqa: PLC0415

    missing = [s.name for s in STEPS if isinstance(s, LaterStep) and s._load()[1] is None]
    first_missing = next((s for s in STEPS if s.name in missing), None)
    if first_missing is not None:
        previous = STEPS[STEPS.index(first_missing) - 1].name
        stop = f'stop_after = "{previous}"  # later stages are not installed here'
    else:
        stop = '# stop_after = "publish"'
    text = _HEAD.format(
        traces=json.dumps(traces, ensure_ascii=False),
        workspace=json.dumps(workspace, ensure_ascii=False),
        stop_after=stop,
    )
    for name, stage, title in _LATER:
        text += "\n" + _later_section(name, stage, title, (option_help or {}).get(name, {}))
    return text


def write_pipeline_config(
    traces: Path,
    workspace: Path,
    output: Path,
    option_help: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """Write the template to ``output`` (never over an existing file or an input); return it.

    The traces and workspace are written relative to the output's directory.

    :raises InputError: ``output`` exists, or is the traces or the workspace.
    """
    for source in (traces, workspace):
        if same_file(output, source):
            raise InputError(f"--output {output} is also an input; write it elsewhere")
    if output.exists() or output.is_symlink():
        raise InputError(
            f"--output {output} exists; an existing configuration is never overwritten"
        )
    base = Path(os.path.abspath(output)).parent

    def relative(path: Path) -> str:
        return Path(os.path.relpath(os.path.abspath(path), base)).as_posix()

    text = render_pipeline_config(relative(traces), relative(workspace), option_help)
    atomic_write_bytes(output, text.encode("utf-8"))
    return text
