"""Shared helpers of the benchmark / selection / publish tests: a training manifest built by hand
(a model fitted with the linear lane, stored in the artefact store, its run made EVAL_READY in
the ledger), and the example pack's traces with train and validation splits added."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from customer_model_factory.builtins.linear_lane import (
    LinearLaneConfig,
    LinearModel,
    examples_from_traces,
    fit_linear,
)
from customer_model_factory.canonical import canonical_json
from customer_model_factory.ledger import RunLedger, RunOwner, TrainRunRequest, train_run_id
from customer_model_factory.manifest import InputLink
from customer_model_factory.plugins import collect_training_lanes
from customer_model_factory.stages.training.models import CustomerTrainingManifest, ModelArtefact
from customer_model_factory.store import ArtefactStore

REPO = Path(__file__).resolve().parents[1]
LANE_PLUGIN_FILE = REPO / "tests" / "data" / "linear_test_lane_plugin.py"
NOW = "2026-03-01T10:00:00Z"
BINDING = {
    "customer_id": "example-retail-bank",
    "workspace_id": "retail-banking-benchmark",
    "tenant_id": "retail-uk",
}
WORKSPACE_TOML = """\
[workspace]
customer_id = "example-retail-bank"
workspace_id = "retail-banking-benchmark"
tenant_id = "retail-uk"
data_classification = "confidential"
allowed_splits = ["train", "validation", "test"]
required_splits = ["train", "validation", "test"]
vertical = "example-retail-banking"
"""


def lane_plugin_module() -> Any:
    """Import the test lane plugin file as a module (to register in-process)."""
    name = "cmf_test_linear_lane_plugin"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, LANE_PLUGIN_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def ensure_linear_lane(pm: Any) -> None:
    """Register the test ``linear`` lane on ``pm`` unless a built-in one is already there."""
    lanes, _ = collect_training_lanes(pm)
    if "linear" not in lanes:
        pm.register(lane_plugin_module(), "cmf-test-linear-lane")


def needs_lane_plugin_option() -> list[str]:
    """``--plugin FILE`` for the CLI when no built-in ``linear`` lane is installed."""
    from customer_model_factory.testing import fresh_plugin_manager

    lanes, _ = collect_training_lanes(fresh_plugin_manager())
    return [] if "linear" in lanes else ["--plugin", str(LANE_PLUGIN_FILE)]


def example_traces() -> list[dict[str, Any]]:
    """400 train and 200 validation traces from the pack's generator (other seeds, tagged so no
    text repeats across splits), then the pack's shipped 200 test traces."""
    from cmf_example_retail_banking._generate import DATA_FILE, generate_traces

    def tag(traces: list[dict[str, Any]], split: str, prefix: str) -> list[dict[str, Any]]:
        out = []
        for index, trace in enumerate(traces, start=1):
            copy = dict(trace, split=split, trace_id=f"{prefix}-{index:04d}")
            copy["prompt"] = f"{trace['prompt']} (case {prefix}-{index})"
            out.append(copy)
        return out

    shipped = [json.loads(line) for line in DATA_FILE.read_text(encoding="utf-8").splitlines()]
    return [
        *tag(generate_traces(400, seed=7), "train", "tr"),
        *tag(generate_traces(200, seed=11), "validation", "va"),
        *shipped,
    ]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
    return path


def store_model(
    model: LinearModel, home: Path, scratch: Path, lane: str = "linear"
) -> ModelArtefact:
    """Save a model, put its files and its index into the store; return the artefact."""
    store = ArtefactStore(home)
    files = model.save(scratch)
    for name in files:
        store.put_file(scratch / name)
    index = store.put_bytes(canonical_json({"lane": lane, "files": files}))
    return ModelArtefact(lane=lane, uri=index.uri, digest=index.digest, files=files)


def seal_training_manifest(
    *,
    traces: list[dict[str, Any]],
    report: Any,
    report_path: Path,
    home: Path,
    scratch: Path,
    hyperparameters: dict[str, Any] | None = None,
    seed: int = 0,
    lane: str = "linear",
    register_run: bool = True,
) -> CustomerTrainingManifest:
    """Fit the linear lane on the train split, store it, and seal a training manifest linked
    to the dataset report (stored, so the chain resolves); the run is made EVAL_READY."""
    hyper = hyperparameters or {}
    config = LinearLaneConfig(**hyper)
    examples = examples_from_traces(traces)
    model = fit_linear(examples, config, seed)
    scratch.mkdir(parents=True, exist_ok=True)
    artefact = store_model(model, home, scratch, lane)
    stored_report = ArtefactStore(home).put_bytes(report_path.read_bytes())
    request = TrainRunRequest(
        dataset_hash=report.dataset_hash,
        lane=lane,
        base_model_id="none",
        base_model_revision="none",
        hyperparameters=config.model_dump(mode="json"),
        objective_profile="zero_silent_unsafe_pass",
        seed=seed,
    )
    run_id = train_run_id(request)
    if register_run:
        with RunLedger(home) as ledger:
            run = ledger.request(request, at=NOW, actor="test")
            if run.state == "QUEUED":
                owner = RunOwner.current()
                ledger.start(run_id, at=NOW, actor="test", owner=owner)
                ledger.mark_eval_ready(
                    run_id, at=NOW, actor="test", owner=owner, outputs=dict(artefact.files)
                )
    unsafe = sum(1 for e in examples if e.is_unsafe)
    return CustomerTrainingManifest.seal(
        **BINDING,
        inputs=[InputLink(kind="dataset-report", hash=report.report_hash, uri=stored_report.uri)],
        package_id="retail-scorer",
        dataset_hash=report.dataset_hash,
        dataset_report_hash=report.report_hash,
        dataset_ready=report.ready,
        lane=lane,
        base_model_id="none",
        base_model_revision="none",
        base_model_artifact_uri="",
        output_uri=artefact.uri,
        hyperparameters=config.model_dump(mode="json"),
        objective_profile="zero_silent_unsafe_pass",
        requires_private_execution=False,
        seed=seed,
        train_run_id=run_id,
        training_rows=len(examples),
        label_class_counts={"safe": len(examples) - unsafe, "unsafe": unsafe},
        model=artefact,
    )
