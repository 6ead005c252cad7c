"""The pipeline's configuration file (``factory.toml``): one table per stage, validated up front.

Every path in the file is relative to the file's own directory, and the run works from that
directory, so what the stages record (a report's ``source``, a link's relative path) never holds
an absolute path of the machine that ran it.

A bad file is one located line: ``factory.toml:12: field 'train.seeds': ...`` (exit 2).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from customer_model_factory.errors import ConfigError, DataFormatError
from customer_model_factory.io import read_text_strict

__all__ = [
    "STEP_NAMES",
    "BenchmarkSection",
    "DatasetSection",
    "PipelineConfig",
    "PipelineSection",
    "PublishSection",
    "SectorSection",
    "SelectSection",
    "StepName",
    "TrainSection",
    "load_pipeline_config",
    "toml_key_line",
]

StepName = Literal[
    "dataset",
    "train",
    "benchmark",
    "select",
    "publish",
    "deploy",
    "evidence",
    "runtime",
    "score",
    "monitor",
    "risk",
    "release",
]
STEP_NAMES: Final[tuple[str, ...]] = get_args(StepName)
"""The pipeline's steps in the order they run (stage 5, sector extension, acts through the
plugins every step loads; its table configures them)."""

_RFC3339_Z: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PipelineSection(_Section):
    """``[pipeline]``: where the run goes and how it is clocked."""

    output_dir: str = Field(default="run", min_length=1, description="Every manifest goes here.")
    home: str | None = Field(
        default=None, description="The factory home (ledger and store); default: --home / .cmf."
    )
    reproducible: bool = Field(
        default=False,
        description="Clock fixed at as_of and timings not measured: the same inputs give the "
        "same bytes.",
    )
    as_of: str | None = Field(
        default=None, description="RFC 3339 UTC instant the run is dated at (reproducible mode)."
    )
    actor: str = Field(default="cmf-pipeline", min_length=1, max_length=200)
    stop_after: StepName | None = Field(
        default=None, description="Run the steps up to and including this one, then stop."
    )

    @field_validator("as_of")
    @classmethod
    def _utc(cls, value: str | None) -> str | None:
        if value is not None and not _RFC3339_Z.match(value):
            raise ValueError("must be an RFC 3339 UTC instant such as 2026-05-18T18:45:00Z")
        return value

    @model_validator(mode="after")
    def _clock(self) -> PipelineSection:
        if self.reproducible and self.as_of is None:
            raise ValueError("reproducible = true needs as_of (the instant the run is dated at)")
        return self


class DatasetSection(_Section):
    """``[dataset]``: ``cmf dataset validate``."""

    traces: str = Field(min_length=1, description="A .jsonl file or a directory of shards.")
    workspace: str = Field(min_length=1, description="The workspace TOML.")
    vertical: str | None = Field(default=None, description="Validate every row as this sector.")
    redacted_copy: bool = Field(default=False, description="Write a redacted copy and train on it.")
    max_depth: int = Field(default=64, ge=1, le=512)
    follow_symlinks: bool = False


class SectorSection(_Section):
    """``[sector]`` (stage 5): which packs extend the run."""

    owners: dict[str, str] = Field(
        default_factory=dict, description="sector id -> the distribution that owns it."
    )
    disable_plugins: list[str] = Field(
        default_factory=list, description="Plugins or distributions not to load."
    )


class TrainSection(_Section):
    """``[train]``: ``cmf train``, once per seed (each seed is a candidate)."""

    lane: str = Field(default="linear", min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, max_length=32)
    objective: str = Field(default="balanced", min_length=1)
    config: str | None = Field(default=None, description="A train.toml (base model, ...).")
    package_id: str | None = None
    output_uri: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("seeds must be distinct")
        if any(seed < 0 or seed > 2**32 - 1 for seed in value):
            raise ValueError("a seed is between 0 and 2**32 - 1")
        return value


class BenchmarkSection(_Section):
    """``[benchmark]``: ``cmf benchmark run`` on validation, then on test."""

    package: str | None = None
    claim_boundary: str | None = None
    traces: str | None = Field(default=None, description="Default: the dataset's traces.")
    max_fnr: float | None = Field(default=None, ge=0.0, le=1.0)
    max_fpr: float | None = Field(default=None, ge=0.0, le=1.0)
    alpha: float = Field(default=0.1, gt=0.0, lt=1.0)
    unsafe_labels: list[str] = Field(default_factory=lambda: ["unsafe"], min_length=1)
    safe_labels: list[str] = Field(default_factory=lambda: ["safe"], min_length=1)
    batch_size: int = Field(default=256, ge=1, le=65536)

    @model_validator(mode="after")
    def _claim(self) -> BenchmarkSection:
        if (self.package is None) == (self.claim_boundary is None):
            raise ValueError("give exactly one of package or claim_boundary")
        if self.max_fnr is not None and self.max_fpr is not None:
            raise ValueError("give max_fnr or max_fpr, not both")
        return self


class SelectSection(_Section):
    """``[select]``: ``cmf select``."""

    objective: str = Field(default="zero_silent_unsafe_pass", min_length=1)
    cutoffs: dict[str, float] = Field(default_factory=dict)
    min_high_risk: int | None = Field(default=None, ge=0)
    selection_id: str | None = None


class PublishSection(_Section):
    """``[publish]``: ``cmf publish``."""

    bundle_id: str = Field(min_length=1)
    version: str = Field(default="1.0.0", min_length=1)
    mlflow_uri: str | None = None


_LATER_STEPS: Final = ("deploy", "evidence", "runtime", "score", "monitor", "risk", "release")


class PipelineConfig(_Section):
    """The whole ``factory.toml``. Stages 4 to 10 are tables of their requests' fields, checked
    against the stage's request model when the step is prepared."""

    pipeline: PipelineSection = Field(default_factory=PipelineSection)
    dataset: DatasetSection
    sector: SectorSection = Field(default_factory=SectorSection)
    train: TrainSection = Field(default_factory=TrainSection)
    benchmark: BenchmarkSection
    select: SelectSection = Field(default_factory=SelectSection)
    publish: PublishSection
    deploy: dict[str, Any] = Field(default_factory=dict)
    evidence: dict[str, Any] = Field(default_factory=dict)
    runtime: dict[str, Any] = Field(default_factory=dict)
    score: dict[str, Any] = Field(default_factory=dict)
    monitor: dict[str, Any] = Field(default_factory=dict)
    risk: dict[str, Any] = Field(default_factory=dict)
    release: dict[str, Any] = Field(default_factory=dict)

    def section(self, step: str) -> dict[str, Any]:
        """The table a step is configured by, as plain JSON values."""
        table = {
            "dataset": "dataset",
            "train": "train",
            "benchmark": "benchmark",
            "select": "select",
            "publish": "publish",
        }.get(step, step)
        value = getattr(self, table)
        return value.model_dump(mode="json") if isinstance(value, BaseModel) else dict(value)


def toml_key_line(text: str, dotted: str) -> int | None:
    """The 1-based line of ``dotted`` (``section.key...``) in a TOML text: the key's assignment
    inside its table, else the table's header; ``None`` when neither is written."""
    parts = [part for part in dotted.split(".") if part and not part.isdigit()]
    if not parts:
        return None
    header_re = re.compile(r"^[ \t]*\[\[?[ \t]*([^\]]+?)[ \t]*\]\]?[ \t]*(?:#.*)?$")
    current: list[str] = []
    header_line: int | None = None
    best: int | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        header = header_re.match(raw)
        if header:
            current = [p.strip().strip("\"'") for p in header.group(1).split(".")]
            if current == parts and header_line is None:
                header_line = number
            continue
        key_match = re.match(r"^[ \t]*([A-Za-z0-9_\-\"'.]+)[ \t]*=", raw)
        if key_match is None:
            continue
        key_path = current + [p.strip().strip("\"'") for p in key_match.group(1).split(".")]
        if key_path == parts[: len(key_path)] and len(key_path) >= min(len(parts), 2):
            best = number if best is None else best
            if key_path == parts:
                return number
    return best if best is not None else header_line


def load_pipeline_config(path: str | Path) -> tuple[PipelineConfig, str]:
    """Read and validate ``factory.toml``; return the config and the file's text.

    :raises ConfigError: unreadable file, invalid TOML, an unknown key or an invalid value (one
        line naming the file, the line and the key).
    """
    target = Path(path)
    try:
        text = read_text_strict(target)
    except DataFormatError as error:
        raise ConfigError(f"config {error.message}", path=target, line=error.line) from None
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ConfigError("invalid TOML: arrays or tables nested too deeply", path=target) from None
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"\(at line (\d+), column \d+\)", str(error))
        line = int(found.group(1)) if found else None
        message = str(error).split(" (at line")[0]
        raise ConfigError(f"invalid TOML: {message}", path=target, line=line) from None
    try:
        return PipelineConfig.model_validate(data), text
    except ValidationError as error:
        first = error.errors()[0]
        loc = [str(part) for part in first["loc"]]
        dotted = ".".join(loc)
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif first["type"] == "missing":
            message = "required key is missing"
        raise ConfigError(
            message, path=target, line=toml_key_line(text, dotted), field=dotted or None
        ) from None
