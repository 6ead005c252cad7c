"""Stage 2, training: the training manifest of a customer scorer and the lanes that produce it.

- :mod:`.models`: the manifest, the model artefact and the base model reference;
- :mod:`.request`: the training request (``train.toml`` and the command line);
- :mod:`.train`: :func:`train_customer_model` and :func:`import_trained_model`;
- :mod:`.runs`: the run ledger as ``cmf runs`` shows it.
"""

from __future__ import annotations

from customer_model_factory.stages.training.models import (
    BaseModelRef,
    CustomerTrainingManifest,
    ModelArtefact,
    export_model_files,
    model_index_bytes,
)
from customer_model_factory.stages.training.request import TrainingRequest
from customer_model_factory.stages.training.runs import list_training_runs, show_training_run
from customer_model_factory.stages.training.train import (
    TrainingImport,
    import_trained_model,
    is_immutable_base_model,
    train_customer_model,
    train_to_file,
)

__all__ = [
    "BaseModelRef",
    "CustomerTrainingManifest",
    "ModelArtefact",
    "TrainingImport",
    "TrainingRequest",
    "export_model_files",
    "import_trained_model",
    "is_immutable_base_model",
    "list_training_runs",
    "model_index_bytes",
    "show_training_run",
    "train_customer_model",
    "train_to_file",
]
