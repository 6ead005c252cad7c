"""End to end, in subprocesses: a training killed midway is reported interrupted and finishes on
retry with the same digests; the example pack's traces train with the ``linear`` lane and the
manifest verifies as a chain."""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import subprocess
import sys
from importlib import resources
from pathlib import Path

import orjson
import pytest

from ..conftest import validate_against_committed_schema, write_training_dataset

pytest.importorskip("sklearn")

_PLUGIN = Path(__file__).resolve().parent / "plugins" / "blocking_lane.py"


def _cmf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "customer_model_factory", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=300,
    )


def _blocking_config(root: Path, name: str) -> Path:
    config = root / name
    config.write_text(
        "[train.hyperparameters]\n"
        f'marker = "{root / "marker"}"\n'
        f'fifo = "{root / "fifo"}"\n'
        "word_features_log2 = 12\nchar_features_log2 = 12\n"
    )
    return config


@pytest.mark.slow
def test_a_killed_training_is_interrupted_and_a_retry_finishes_with_the_same_digests(tmp_path):
    write_training_dataset(tmp_path)
    assert _cmf(
        "dataset", "validate", "traces.jsonl", "-w", "workspace.toml", "-o", "report.json",
        cwd=tmp_path,
    ).returncode == 0  # fmt: skip
    os.mkfifo(tmp_path / "fifo")
    _blocking_config(tmp_path, "train.toml")
    train = [
        sys.executable, "-m", "customer_model_factory", "--home", "home", "--plugin", str(_PLUGIN),
        "train", "--dataset-report", "report.json", "--lane", "blocking", "--config", "train.toml",
    ]  # fmt: skip
    child = subprocess.Popen([*train, "-o", "killed.json"], cwd=tmp_path)
    try:
        # Wait (at most a minute) for the lane to say it is inside fit, i.e. the run is RUNNING.
        fd = os.open(tmp_path / "fifo", os.O_RDONLY | os.O_NONBLOCK)
        try:
            ready, _, _ = select.select([fd], [], [], 60)
            assert ready, "the lane never started"
            assert os.read(fd, 1) == b"R"
        finally:
            os.close(fd)
        listed = json.loads(
            _cmf("--home", "home", "runs", "list", "-f", "json", cwd=tmp_path).stdout
        )
        assert [run["status"] for run in listed] == ["RUNNING"]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    run_id = listed[0]["run_id"]
    assert not (tmp_path / "killed.json").exists()

    shown = _cmf("--home", "home", "runs", "show", run_id, "-f", "json", cwd=tmp_path)
    assert shown.returncode == 1
    detail = json.loads(shown.stdout)
    assert detail["status"] == "INTERRUPTED" and detail["interrupted"] is True
    assert "no longer running" in detail["interruption_reason"]
    text = _cmf("--home", "home", "runs", "show", run_id, cwd=tmp_path)
    assert text.stdout.startswith(f"INTERRUPTED  run {run_id}")

    retried = subprocess.run(
        [*train, "-o", "resumed.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert retried.returncode == 0, retried.stderr
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert resumed["train_run_id"] == run_id
    detail = json.loads(
        _cmf("--home", "home", "runs", "show", run_id, "-f", "json", cwd=tmp_path).stdout
    )
    assert detail["status"] == "EVAL_READY"
    assert [e["state"] for e in detail["events"]] == ["QUEUED", "RUNNING", "RUNNING", "EVAL_READY"]
    assert detail["counters"]["train_resumed"] == 1
    assert "resumed_because" in detail["events"][2]["detail"]

    # The same request, never interrupted, in another home: the same run and the same digests.
    fresh = subprocess.run(
        [*train[:3], "--home", "fresh", *train[5:], "-o", "fresh.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr
    assert (tmp_path / "fresh.json").read_bytes() == (tmp_path / "resumed.json").read_bytes()


def _pair_key(row: dict) -> str:
    text = row["prompt"].strip().lower() + "\n" + row["response"].strip().lower()
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.slow
def test_the_example_packs_traces_train_with_the_linear_lane_and_verify_as_a_chain(tmp_path):
    pytest.importorskip("cmf_example_retail_banking", reason="the example pack is not installed")
    from customer_model_factory.builtins.linear_lane import LinearModel
    from customer_model_factory.stages.training import CustomerTrainingManifest, export_model_files
    from customer_model_factory.store import ArtefactStore

    source = resources.files("cmf_example_retail_banking") / "data" / "benchmark_traces.jsonl"
    rows = [orjson.loads(line) for line in source.read_bytes().splitlines()]
    # The shipped file is all test split: re-split it by distinct prompt/response pair, so no
    # pair is in two splits (that would be leakage, and the report would not be ready).
    pairs = sorted({_pair_key(row) for row in rows})
    train = set(pairs[: len(pairs) * 7 // 10])
    for row in rows:
        row["split"] = "train" if _pair_key(row) in train else "test"
    (tmp_path / "traces.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    (tmp_path / "workspace.toml").write_text(
        '[workspace]\ncustomer_id = "example-retail-bank"\n'
        'workspace_id = "retail-banking-benchmark"\ntenant_id = "retail-uk"\n'
        'data_classification = "confidential"\nrequired_splits = ["train", "test"]\n'
        'vertical = "example-retail-banking"\n'
    )
    validated = _cmf(
        "dataset", "validate", "traces.jsonl", "-w", "workspace.toml", "-o", "report.json",
        cwd=tmp_path,
    )  # fmt: skip
    assert validated.returncode == 0, validated.stdout + validated.stderr
    trained = _cmf(
        "--home", "home", "train", "--dataset-report", "report.json", "--lane", "linear",
        "-w", "workspace.toml", "-o", "training_manifest.json", cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    payload = json.loads((tmp_path / "training_manifest.json").read_text())
    validate_against_committed_schema("training-manifest", payload)
    verified = _cmf("manifest", "verify", "--chain", "training_manifest.json", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    manifest = CustomerTrainingManifest.load(tmp_path / "training_manifest.json")
    assert manifest.model is not None
    assert manifest.training_rows == sum(1 for row in rows if row["split"] == "train")
    directory = export_model_files(ArtefactStore(tmp_path / "home"), manifest.model, tmp_path / "m")
    model = LinearModel.load(directory, digests=manifest.model.files)
    test = [row for row in rows if row["split"] == "test"]
    scores = model.score([r["prompt"] for r in test], [r["response"] for r in test])
    unsafe = [row["label"] == "unsafe" for row in test]
    # The held-out pairs are templates the model never saw; what it learnt must still rank
    # unsafe above safe (ROC-AUC from all unsafe/safe pairs; 1.0 at this revision).
    bad = [s for s, u in zip(scores, unsafe, strict=True) if u]
    good = [s for s, u in zip(scores, unsafe, strict=True) if not u]
    auc = sum((b > g) + 0.5 * (b == g) for b in bad for g in good) / (len(bad) * len(good))
    # (The 0.5 cut is not what a deployment uses: thresholds are calibrated on validation.)
    assert auc >= 0.9
