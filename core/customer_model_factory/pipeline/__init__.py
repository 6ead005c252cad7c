"""The factory end to end from one configuration file: ``cmf pipeline init | run | status``.

* :mod:`.config` — ``factory.toml``: one table per stage, validated before anything runs.
* :mod:`.steps` — the steps in workflow order, each calling one stage's library entry point.
* :mod:`.runner` — runs them resumably (a step done with unchanged inputs is reused by hash),
  recorded in the run ledger, and writes ``pipeline_run.json``.
* :mod:`.template` — the commented configuration ``cmf pipeline init`` writes.
"""

from __future__ import annotations

from customer_model_factory.pipeline.config import (
    STEP_NAMES,
    PipelineConfig,
    load_pipeline_config,
)
from customer_model_factory.pipeline.runner import (
    RECORD_FILE,
    PipelineOutcome,
    PipelineRecord,
    PipelineStatus,
    StepReport,
    pipeline_status,
    run_pipeline,
)
from customer_model_factory.pipeline.template import (
    render_pipeline_config,
    write_pipeline_config,
)

__all__ = [
    "RECORD_FILE",
    "STEP_NAMES",
    "PipelineConfig",
    "PipelineOutcome",
    "PipelineRecord",
    "PipelineStatus",
    "StepReport",
    "load_pipeline_config",
    "pipeline_status",
    "render_pipeline_config",
    "run_pipeline",
    "write_pipeline_config",
]
