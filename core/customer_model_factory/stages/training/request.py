"""What a training run is asked to do: the request, read from a ``train.toml`` and the command line.

A :class:`TrainingRequest` names the dataset report (and, optionally, the traces), the workspace
whose label map turns customer labels into unsafe / safe, the lane, its hyperparameters, the base
model, the objective profile, the seed, the output URI and the package id. Everything but the
paths, the output URI, the package id and the actor decides the run identity (see
:func:`customer_model_factory.ledger.train_run_id`).

``train.toml``::

    [train]
    lane = "linear"                 # --lane wins
    seed = 0                        # --seed wins
    objective_profile = "balanced"  # --objective wins
    package_id = "retail-scorer"    # --package-id wins
    output_uri = "file:///models/retail"

    [train.base_model]              # omitted: no base model (id and revision "none")
    id = "org/encoder"
    revision = "3f2c9a1e0b7d4c6a8e5f1a2b3c4d5e6f7a8b9c0d"
    artifact_uri = "cmf://sha256/..."
    digest = "sha256:..."

    [train.hyperparameters]         # the lane's (linear: see LinearLaneConfig)
    c = 4.0
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from customer_model_factory.errors import ConfigError, DataFormatError
from customer_model_factory.io import read_text_strict
from customer_model_factory.stages.dataset.models import CustomerWorkspace
from customer_model_factory.stages.training.models import BaseModelRef

__all__ = ["DEFAULT_OBJECTIVE", "NO_BASE_MODEL", "TrainingRequest"]

DEFAULT_OBJECTIVE: Final = "balanced"
NO_BASE_MODEL: Final = BaseModelRef(id="none", revision="none", artifact_uri="")
"""Training from scratch: no base model (id and revision ``none``, no artefact)."""


class TrainingRequest(BaseModel):
    """One training request (frozen); build it in Python or with :meth:`from_options`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset_report: Path = Field(description="The dataset report (a ready dataset-report).")
    traces: Path | None = Field(
        default=None,
        description="The traces to train on; default: the report's redacted copy when it has "
        "one, else the report's source.",
    )
    workspace: CustomerWorkspace | None = Field(
        default=None,
        description="The workspace the report was validated with (its label map); default: "
        "labels 'unsafe' and 'safe' map to themselves.",
    )
    workspace_file: Path | None = Field(default=None, description="Where the workspace was read.")
    config_file: Path | None = Field(default=None, description="Where the config was read.")
    lane: str = Field(min_length=1, description="The training lane.")
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict, description="The lane's hyperparameters."
    )
    base_model: BaseModelRef = Field(default=NO_BASE_MODEL, description="The base model.")
    objective_profile: str = Field(default=DEFAULT_OBJECTIVE, min_length=1)
    seed: int = Field(
        default=0, ge=0, le=2**32 - 1, description="Seed of every random choice in training."
    )
    output_uri: str | None = Field(
        default=None,
        description="Where the model goes: required by manifest-only lanes (their URI rules); "
        "for a lane that trains here, omitted (the store) or file:///dir to export a copy.",
    )
    package_id: str | None = Field(
        default=None, description="The training package id; default: cmf-train-<run id prefix>."
    )
    actor: str = Field(default="cmf", min_length=1, description="Who asks, for the run ledger.")
    lease_seconds: int = Field(
        default=900, gt=0, description="The run counts as interrupted after this long silent."
    )

    @classmethod
    def from_options(
        cls,
        *,
        dataset_report: Path,
        config: Path | None = None,
        workspace: Path | None = None,
        **overrides: Any,
    ) -> TrainingRequest:
        """Build a request from a ``train.toml`` (optional), a workspace TOML (optional) and the
        command line's options (``None`` values are left to the config and the defaults).

        :raises ConfigError: unreadable or invalid TOML, an unknown key, or an invalid value
            (naming the file and the field).
        """
        fields: dict[str, Any] = {}
        if config is not None:
            fields.update(_read_config(config))
            fields["config_file"] = config
        fields.update({key: value for key, value in overrides.items() if value is not None})
        fields["dataset_report"] = dataset_report
        if workspace is not None:
            fields["workspace"] = CustomerWorkspace.from_toml(workspace)
            fields["workspace_file"] = workspace
        if "lane" not in fields:
            raise ConfigError("no lane: give --lane or lane in the config", field="lane")
        try:
            return cls.model_validate(fields)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or None
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ConfigError(
                f"invalid training request: {message}", path=config, field=where
            ) from None


_CONFIG_KEYS: Final = frozenset(
    {"lane", "seed", "objective_profile", "package_id", "output_uri", "base_model"}
    | {"hyperparameters"}
)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        text = read_text_strict(path)
    except DataFormatError as error:
        raise ConfigError(f"config {error.message}", path=path, line=error.line) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"invalid TOML: {error}", path=path) from None
    table = data.get("train", data)
    if not isinstance(table, dict):
        raise ConfigError("[train] must be a table", path=path, field="train")
    unknown = sorted(set(table) - _CONFIG_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_CONFIG_KEYS))})",
            path=path,
            field=f"train.{unknown[0]}",
        )
    if "hyperparameters" in table and not isinstance(table["hyperparameters"], dict):
        raise ConfigError("must be a table", path=path, field="train.hyperparameters")
    return dict(table)
