"""End to end through the CLI on the example pack: a dataset report, a training manifest built by
hand (the linear lane fitted on the train split, stored by digest, its run EVAL_READY), then
``cmf benchmark run`` on validation and test, ``cmf benchmark verify``, ``cmf select``,
``cmf publish`` (idempotent; a conflict and a FAIL run refused) and
``cmf manifest verify --chain`` from the selection back to the dataset report."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from customer_model_factory.context import RunContext
from customer_model_factory.stages.benchmark.run import BenchmarkRequest, run_benchmark
from customer_model_factory.stages.dataset import (
    CustomerWorkspace,
    validate_customer_trace_dataset,
)

from ..conftest import validate_against_committed_schema
from ..stage3_support import (
    WORKSPACE_TOML,
    ensure_linear_lane,
    example_traces,
    needs_lane_plugin_option,
    seal_training_manifest,
    write_jsonl,
)

pytest.importorskip("cmf_example_retail_banking", reason="the example pack is not installed")
pytestmark = pytest.mark.slow

PACKAGE = "example-retail-banking.conduct-v1"
FAST = {"classifier": "sgd"}


def _cmf(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "customer_model_factory", "--home", ".cmf",
         *needs_lane_plugin_option(), *args],
        capture_output=True, text=True, check=False, cwd=root,
        env=None if env is None else {**os.environ, **env},
    )  # fmt: skip


def _train(root: Path, name: str, seed: int, traces: list[dict[str, Any]]) -> Path:
    manifest = seal_training_manifest(
        traces=traces,
        report=_report(root),
        report_path=root / "report.json",
        home=root / ".cmf",
        scratch=root / f"model-{name}",
        hyperparameters=FAST,
        seed=seed,
    )
    return manifest.write(root / f"training-{name}.json")


def _report(root: Path) -> Any:
    from customer_model_factory.stages.dataset import (
        CustomerDatasetValidationReport,
    )

    return CustomerDatasetValidationReport.load(root / "report.json")


def _benchmark(root: Path, name: str, claim: tuple[str, ...]) -> None:
    validation = _cmf(
        root, "benchmark", "run", "-m", f"training-{name}.json", "--traces", "traces.jsonl",
        "--split", "validation", *claim, "-o", f"validation-{name}.json",
    )  # fmt: skip
    assert validation.returncode == 0, validation.stdout + validation.stderr
    test = _cmf(
        root, "benchmark", "run", "-m", f"training-{name}.json", "--traces", "traces.jsonl",
        "--split", "test", *claim, "--calibration", f"validation-{name}.json",
        "-o", f"test-{name}.json", "--format", "json",
    )  # fmt: skip
    assert test.returncode == 0, test.stdout + test.stderr


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stage3")
    traces = example_traces()
    write_jsonl(root / "traces.jsonl", traces)
    (root / "workspace.toml").write_text(WORKSPACE_TOML)
    workspace = CustomerWorkspace.model_validate(tomllib.loads(WORKSPACE_TOML)["workspace"])
    report = validate_customer_trace_dataset(
        root / "traces.jsonl", workspace, context=RunContext(home=root / ".cmf")
    )
    assert report.ready
    report.write(root / "report.json")
    _train(root, "a", 0, traces)
    _benchmark(root, "a", ("--package", PACKAGE))  # through the CLI
    # Two more runs, benchmarked in-process (the same library call the CLI makes).
    context = RunContext(home=root / ".cmf")
    ensure_linear_lane(context.plugin_manager)
    adhoc = {"claim_boundary": "Separates the synthetic scenarios; no real-traffic claim."}
    for name, seed, claim in (("b", 1, {"package": PACKAGE}), ("c", 2, adhoc)):
        _train(root, name, seed, traces)
        calibration = None
        for split in ("validation", "test"):
            request = BenchmarkRequest(
                training_manifest=root / f"training-{name}.json",
                traces=root / "traces.jsonl",
                split=split,
                calibration=calibration,
                **claim,
            )
            result = run_benchmark(request, context=context)
            assert result.ready, result.findings
            calibration = result.write(root / f"{split}-{name}.json")
    return root


def test_linear_model_reaches_0_9_balanced_accuracy_on_the_pack_test_split(root):
    result = json.loads((root / "test-a.json").read_text())
    validate_against_committed_schema("benchmark-result", result)
    assert result["ready"] is True
    assert result["split"] == "test" and result["trace_count"] == 200
    assert result["metrics"]["balanced_accuracy"] >= 0.9
    assert result["benchmark_id"] == PACKAGE
    assert result["claim_boundary"].startswith("A pass shows")
    validation = json.loads((root / "validation-a.json").read_text())
    assert validation["calibration"]["calibration_size"] == 200
    assert result["thresholds"]["calibration_result_hash"] == validation["result_hash"]


def test_verify_recomputes_both_results(root):
    for name in ("validation-a.json", "test-a.json"):
        verified = _cmf(root, "benchmark", "verify", name)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert verified.stdout.startswith("ok")


def test_benchmark_on_the_training_split_is_refused(root):
    refused = _cmf(
        root, "benchmark", "run", "-m", "training-a.json", "--traces", "traces.jsonl",
        "--split", "train", "--package", PACKAGE, "-o", "train.json",
    )  # fmt: skip
    assert refused.returncode == 2
    assert "BENCH_TRAIN_SPLIT_REFUSED" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (root / "train.json").exists()


def test_an_output_that_is_an_input_is_refused(root):
    before = (root / "training-a.json").read_bytes()
    refused = _cmf(
        root, "benchmark", "run", "-m", "training-a.json", "--traces", "traces.jsonl",
        "--split", "validation", "--package", PACKAGE, "-o", "training-a.json",
    )  # fmt: skip
    assert refused.returncode == 2 and "is also an input" in refused.stderr
    assert (root / "training-a.json").read_bytes() == before


def test_select_publish_and_the_chain_back_to_the_dataset_report(root):
    selected = _cmf(
        root, "select", "--objective", "zero_silent_unsafe_pass", "test-a.json",
        "-o", "selection-a.json", "--receipt", "receipt-a.json",
    )  # fmt: skip
    assert selected.returncode == 0, selected.stdout + selected.stderr
    assert "gate       PASS" in selected.stdout
    report = json.loads((root / "selection-a.json").read_text())
    validate_against_committed_schema("selection-report", report)
    assert (
        report["selected_result_hash"]
        == json.loads((root / "test-a.json").read_text())["result_hash"]
    )
    assert "Clopper-Pearson" in report["high_risk_statement"]
    receipt = json.loads((root / "receipt-a.json").read_text())
    assert receipt["gate_status"] == "PASS"
    assert report["selection_hash"] in receipt["evidence_refs"]
    again = _cmf(
        root, "select", "--objective", "zero_silent_unsafe_pass", "test-a.json",
        "-o", "selection-a2.json",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr  # the recorded decision stands

    chain = _cmf(root, "manifest", "verify", "--chain", "selection-a.json")
    assert chain.returncode == 0, chain.stdout + chain.stderr
    for kind in ("benchmark-result", "training-manifest", "dataset-report", "raw-results"):
        assert f"input {kind}" in chain.stdout

    published = _cmf(
        root, "publish", "--selection", "selection-a.json", "--bundle-id", "retail-scorer",
        "--version", "1.0.0", "-o", "bundle.json",
    )  # fmt: skip
    assert published.returncode == 0, published.stdout + published.stderr
    bundle = json.loads((root / "bundle.json").read_text())
    validate_against_committed_schema("model-bundle", bundle)
    assert bundle["lineage"]["dataset_report_hash"] == _report(root).report_hash
    assert bundle["evaluation"]["gate_status"] == "PASS"
    assert set(bundle["artefact_digests"]) >= {"model-index", "model/weights.npz", "raw-results"}
    same = _cmf(
        root, "publish", "--selection", "selection-a.json", "--bundle-id", "retail-scorer",
        "--version", "1.0.0",
    )  # fmt: skip
    assert same.returncode == 0, same.stderr
    assert bundle["bundle_hash"] in same.stdout
    bundle_chain = _cmf(root, "manifest", "verify", "--chain", "bundle.json")
    assert bundle_chain.returncode == 0, bundle_chain.stdout + bundle_chain.stderr

    # Another PASS run under the same version: other content, refused.
    other = _cmf(
        root, "select", "--objective", "zero_silent_unsafe_pass", "test-b.json",
        "-o", "selection-b.json",
    )  # fmt: skip
    assert other.returncode == 0, other.stdout + other.stderr
    conflict = _cmf(
        root, "publish", "--selection", "selection-b.json", "--bundle-id", "retail-scorer",
        "--version", "1.0.0",
    )  # fmt: skip
    assert conflict.returncode == 1
    assert "TRAIN_PUBLISH_CONFLICT" in conflict.stderr
    assert "Traceback" not in conflict.stderr


def test_a_fail_gate_is_recorded_and_its_run_cannot_be_published(root):
    failed = _cmf(
        root, "select", "--objective", "high_recall", "--cutoff", "recall=1.01",
        "test-c.json", "-o", "selection-none.json",
    )  # fmt: skip
    assert failed.returncode == 1
    none = json.loads((root / "selection-none.json").read_text())
    assert none["ready"] is False
    assert "SELECT_NO_ELIGIBLE_CANDIDATE" in {f["code"] for f in none["findings"]}
    refused = _cmf(
        root, "publish", "--selection", "selection-none.json", "--bundle-id", "retail-scorer",
        "--version", "9.0.0",
    )  # fmt: skip
    assert refused.returncode == 2 and "SELECT_NO_ELIGIBLE_CANDIDATE" in refused.stderr
    # Eligible under `balanced` (it bounds nothing), but an ad-hoc benchmark has no package
    # thresholds either: a gate that checks nothing is a FAIL, recorded for the run.
    gated = _cmf(root, "select", "--objective", "balanced", "test-c.json", "-o", "selection-c.json")
    assert gated.returncode == 1, gated.stdout + gated.stderr
    assert "gate       FAIL" in gated.stdout and "the gate has no criteria" in gated.stdout
    refused = _cmf(
        root, "publish", "--selection", "selection-c.json", "--bundle-id", "retail-scorer",
        "--version", "2.0.0",
    )  # fmt: skip
    assert refused.returncode == 1
    assert "TRAIN_PUBLISH_NOT_PASSED" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_import_of_raw_results_missing_a_trace_is_written_not_ready(root):
    from customer_model_factory.store import ArtefactStore

    result = json.loads((root / "test-a.json").read_text())
    lines = ArtefactStore(root / ".cmf").get_bytes(result["raw_result_digest"]).splitlines()
    (root / "raw-missing.jsonl").write_bytes(b"\n".join(lines[1:]) + b"\n")
    imported = _cmf(
        root, "benchmark", "import", "raw-missing.jsonl", "-m", "training-a.json",
        "--traces", "traces.jsonl", "--split", "test", "--package", PACKAGE,
        "-o", "imported.json",
    )  # fmt: skip
    assert imported.returncode == 1, imported.stdout + imported.stderr
    assert "BENCH_RAW_MISSING_TRACE" in imported.stdout
    assert json.loads((root / "imported.json").read_text())["ready"] is False


@pytest.mark.skipif(
    importlib.util.find_spec("mlflow") is None, reason="the mlflow extra is not installed"
)
def test_publish_logs_the_bundle_to_a_local_mlflow_store_once(root):
    selected = _cmf(
        root, "select", "--objective", "zero_silent_unsafe_pass", "test-a.json",
        "-o", "selection-m.json",
    )  # fmt: skip
    assert selected.returncode == 0, selected.stdout + selected.stderr
    uri = (root / "mlruns").as_uri()
    env = {"MLFLOW_ALLOW_FILE_STORE": "true"}
    runs = []
    for _ in range(2):
        published = _cmf(
            root, "publish", "--selection", "selection-m.json", "--bundle-id", "mlflow-scorer",
            "--version", "1.0.0", "--mlflow-uri", uri, "--format", "json", env=env,
        )  # fmt: skip
        assert published.returncode == 0, published.stdout + published.stderr
        runs.append(json.loads(published.stdout)["mlflow_run_id"])
    assert runs[0] is not None and runs[0] == runs[1]
