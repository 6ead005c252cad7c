"""A test plugin: the ``linear`` lane as a plugin API TrainingLane over
``customer_model_factory.builtins.linear_lane`` (used by the stage 3 tests until, or unless, the
built-in lane adapter is installed; load it with ``cmf --plugin tests/data/...``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from customer_model_factory import hookimpl
from customer_model_factory.builtins.linear_lane import (
    LabelledText,
    LinearLaneConfig,
    LinearModel,
    fit_linear,
)
from customer_model_factory.plugin_api import CMF_PLUGIN_API as _API
from customer_model_factory.plugin_api import TrainingExample, TrainingLaneSpec

CMF_PLUGIN_API = _API


class LinearTestLane:
    """fit / load of the linear lane, through the TrainingLane protocol."""

    def fit(
        self,
        examples: Sequence[TrainingExample],
        *,
        hyperparameters: Mapping[str, Any],
        seed: int,
    ) -> LinearModel:
        texts = [LabelledText(e.prompt, e.response, e.unsafe) for e in examples]
        return fit_linear(texts, LinearLaneConfig(**dict(hyperparameters)), seed)

    def load(self, directory: Path) -> LinearModel:
        return LinearModel.load(directory)


@hookimpl
def cmf_training_lanes() -> list[TrainingLaneSpec]:
    return [
        TrainingLaneSpec(
            name="linear",
            requires_private_execution=False,
            lane=LinearTestLane(),
            description="The linear lane (test adapter).",
        )
    ]
