"""Stage 2, training: the training manifest of a customer scorer and the lanes that produce it."""

from __future__ import annotations

from customer_model_factory.stages.training.models import (
    BaseModelRef,
    CustomerTrainingManifest,
    ModelArtefact,
)

__all__ = ["BaseModelRef", "CustomerTrainingManifest", "ModelArtefact"]
