"""The built-in training lanes every installation has (a built-in plugin).

* ``linear`` trains here: a :class:`~customer_model_factory.plugin_api.TrainingLane` adapter over
  :mod:`customer_model_factory.builtins.linear_lane` (the ``train`` extra). Its output goes to
  the factory's artefact store (``cmf://``) and, when asked, is also exported to a local
  directory (``file://``).
* ``vertex``, ``customer_cloud``, ``on_prem`` and ``local_pilot`` are the reference's lanes:
  manifest-only (nothing trains here), each with the URI schemes its output may be written to.
* ``external`` is manifest-only too: the manifest is handed to a private cluster, and the model it
  produces is imported by digest (``cmf train import``).

The URI rules are the lanes' ``output_uri_schemes``; the training stage checks them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from customer_model_factory.errors import TrainingError
from customer_model_factory.plugin_api import CMF_PLUGIN_API as _API
from customer_model_factory.plugin_api import TrainingExample, TrainingLaneSpec, hookimpl

__all__ = [
    "BUILTIN_LANE_NAMES",
    "CMF_PLUGIN_API",
    "PLUGIN_NAME",
    "LinearTrainingLane",
    "builtin_lane_specs",
    "cmf_training_lanes",
]

CMF_PLUGIN_API: Final = _API
PLUGIN_NAME: Final = "customer_model_factory.builtins.lanes"
"""The name the built-in plugin is registered under."""

BUILTIN_LANE_NAMES: Final[tuple[str, ...]] = (
    "customer_cloud",
    "external",
    "linear",
    "local_pilot",
    "on_prem",
    "vertex",
)
"""The names of the built-in lanes, sorted."""


class LinearTrainingLane:
    """The ``linear`` lane as the plugin API's ``TrainingLane``: hashed n-grams, a linear model.

    ``hyperparameters`` are the fields of
    :class:`~customer_model_factory.builtins.linear_lane.LinearLaneConfig`; every one has a
    default, and :meth:`resolve_hyperparameters` fills them in so the run identity does not depend
    on which defaults a config file spelled out.
    """

    def resolve_hyperparameters(self, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
        """Return the complete hyperparameters (defaults filled in) as JSON values.

        :raises TrainingError: an unknown field or an invalid value (``TRAIN_CONFIG_INVALID``).
        """
        from customer_model_factory.builtins.linear_lane import LinearLaneConfig  # noqa: PLC0415

        try:
            config = LinearLaneConfig.model_validate(dict(hyperparameters))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "hyperparameters"
            message = str(first["msg"]).removeprefix("Value error, ")
            raise TrainingError(
                f"lane 'linear': {message}",
                code="TRAIN_CONFIG_INVALID",
                field=f"hyperparameters.{where}",
            ) from None
        return config.model_dump(mode="json")

    def fit(
        self,
        examples: Sequence[TrainingExample],
        *,
        hyperparameters: Mapping[str, Any],
        seed: int,
    ) -> Any:
        """Fit on the training examples (the core passes the ``train`` split only)."""
        from customer_model_factory.builtins.linear_lane import (  # noqa: PLC0415
            LabelledText,
            LinearLaneConfig,
            fit_linear,
        )

        config = LinearLaneConfig.model_validate(dict(hyperparameters))
        texts = [LabelledText(e.prompt, e.response, e.unsafe) for e in examples]
        return fit_linear(texts, config, seed)

    def load(self, directory: Path) -> Any:
        """Rebuild a saved model from ``weights.npz`` and ``config.json`` (never unpickling)."""
        from customer_model_factory.builtins.linear_lane import LinearModel  # noqa: PLC0415

        return LinearModel.load(directory)


def builtin_lane_specs() -> list[TrainingLaneSpec]:
    """Return the built-in lanes, sorted by name."""
    specs = [
        TrainingLaneSpec(
            name="linear",
            requires_private_execution=False,
            lane=LinearTrainingLane(),
            output_uri_schemes=("cmf", "file"),
            description="Hashed word and character n-grams and a logistic-regression or SGD "
            "classifier (scikit-learn, the `train` extra); trains here.",
        ),
        TrainingLaneSpec(
            name="vertex",
            requires_private_execution=False,
            output_uri_schemes=("gs",),
            description="Manifest only: trained on Vertex AI in the customer's Google Cloud "
            "project; output to a gs:// bucket.",
        ),
        TrainingLaneSpec(
            name="customer_cloud",
            requires_private_execution=True,
            output_uri_schemes=("s3", "gs", "az"),
            description="Manifest only: trained in the customer's own cloud account; output to "
            "its object storage (s3://, gs://, az://).",
        ),
        TrainingLaneSpec(
            name="on_prem",
            requires_private_execution=True,
            output_uri_schemes=("file",),
            description="Manifest only: trained on the customer's own hardware; output to a "
            "local path (file:///...).",
        ),
        TrainingLaneSpec(
            name="local_pilot",
            requires_private_execution=True,
            output_uri_schemes=("file", "cmf"),
            description="Manifest only: a pilot trained on one workstation inside the customer; "
            "output to a local path or this factory's store.",
        ),
        TrainingLaneSpec(
            name="external",
            requires_private_execution=True,
            output_uri_schemes=("file", "s3", "gs", "az"),
            description="Manifest only: trained elsewhere (a private GPU cluster); the produced "
            "model is imported by digest with `cmf train import`.",
        ),
    ]
    return sorted(specs, key=lambda spec: spec.name)


@hookimpl
def cmf_training_lanes() -> list[TrainingLaneSpec]:
    """Contribute the built-in training lanes."""
    return builtin_lane_specs()
