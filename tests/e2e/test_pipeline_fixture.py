"""End to end, in subprocesses: ``cmf fixture generate`` is byte-identical whatever the directory,
the working directory and TMPDIR; ``cmf pipeline run`` killed (SIGKILL) at the start of each step
and run again finishes with the same bytes as an uninterrupted run; a tampered or missing output
is made again, not reused; the ledger records the run and its counters."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import validate_against_committed_schema

pytest.importorskip("sklearn")
pytestmark = pytest.mark.slow

# The installed plugins load (the fixture's data names no sector, so none records anything); CI
# keeps the progress display off.
_ENV = {"CI": "1"}
_SCHEMAS = {
    "dataset-report": "dataset-report",
    "training-manifest": "training-manifest",
    "benchmark-result": "benchmark-result",
    "selection-report": "selection-report",
    "model-bundle": "model-bundle",
    "deployment": "deployment",
    "evidence-pack": "evidence-pack",
    "runtime-package": "runtime-package",
    "monitoring": "monitoring",
    "risk-register": "risk-register",
    "release-gate": "release-gate",
}


def _cmf(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "customer_model_factory", *args],
        capture_output=True, text=True, check=False, cwd=cwd, timeout=600,
        env={**os.environ, **_ENV, **(env or {})},
    )  # fmt: skip


def _tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fixture")
    made = _cmf("fixture", "generate", "--output-dir", "fx", cwd=root)
    assert made.returncode == 0, made.stdout + made.stderr
    assert made.stdout.startswith("READY")
    return root / "fx"


def test_the_fixture_is_byte_identical_from_another_directory_cwd_and_tmpdir(
    fixture_dir: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "deeper" / "cwd"
    elsewhere.mkdir(parents=True)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    target = tmp_path / "another" / "fixture"
    made = _cmf(
        "fixture", "generate", "--output-dir", str(target), cwd=elsewhere, env={"TMPDIR": str(tmp)}
    )
    assert made.returncode == 0, made.stdout + made.stderr
    first, second = _tree(fixture_dir), _tree(target)
    assert sorted(first) == sorted(second)
    for name, data in first.items():
        assert data == second[name], f"{name} differs between two generations"
    assert "ledger.sqlite" not in " ".join(first)
    assert any(name.startswith(".cmf/objects/sha256/") for name in first)


def test_no_file_of_the_fixture_holds_an_absolute_path_or_the_host_name(
    fixture_dir: Path,
) -> None:
    host = os.uname().nodename
    for name, data in _tree(fixture_dir).items():
        text = data.decode("utf-8", errors="replace")
        assert str(fixture_dir) not in text, name
        assert "file:///" not in text, name
        assert "/tmp/" not in text, name
        if len(host) > 3:
            assert host not in text, name


def test_every_manifest_of_the_fixture_validates_against_its_committed_schema(
    fixture_dir: Path,
) -> None:
    seen = set()
    for path in sorted(fixture_dir.glob("*.json")):
        payload = json.loads(path.read_text())
        kind = payload.get("kind")
        if kind in _SCHEMAS:
            validate_against_committed_schema(_SCHEMAS[kind], payload)
            seen.add(kind)
    assert {"dataset-report", "training-manifest", "benchmark-result", "selection-report"} <= seen
    assert "model-bundle" in seen
    if (fixture_dir / "release_gate.json").exists():
        assert seen == set(_SCHEMAS)


def test_the_fixture_record_says_timings_were_not_measured(fixture_dir: Path) -> None:
    record = json.loads((fixture_dir / "pipeline_run.json").read_text())
    validate_against_committed_schema("pipeline-run", record)
    assert record["reproducible"] is True and record["completed"] is True
    assert [f["code"] for f in record["findings"]] == ["PIPELINE_TIMINGS_NOT_MEASURED"]
    for name in ("benchmark_test-seed0.json", "benchmark_validation-seed1.json"):
        result = json.loads((fixture_dir / name).read_text())
        assert result["latency"]["throughput_traces_per_s"] is None
        assert result["latency"]["total_seconds"] == 0
        assert result["metrics"]["latency_p95_ms"] == 0
    log = fixture_dir / "decision_log.jsonl"
    if log.exists():
        decisions = [json.loads(line) for line in log.read_text().splitlines()]
        assert len(decisions) == 200
        assert {d["latency_ms"] for d in decisions} == {0}
        assert {d["decided_at"] for d in decisions} == {record["as_of"]}


def test_a_non_empty_output_directory_is_refused(fixture_dir: Path) -> None:
    before = _tree(fixture_dir)
    refused = _cmf("fixture", "generate", "--output-dir", str(fixture_dir), cwd=fixture_dir.parent)
    assert refused.returncode == 2
    assert "is not empty" in refused.stderr and "Traceback" not in refused.stderr
    assert _tree(fixture_dir) == before


def _copy_inputs(fixture_dir: Path, target: Path) -> None:
    """Copy the fixture's inputs (every file but the run's outputs, its record and store)."""
    record = json.loads((fixture_dir / "pipeline_run.json").read_text())
    outputs = {"pipeline_run.json"}
    for step in record["steps"]:
        outputs |= {entry["path"] for entry in step["outputs"].values()}
    for name, data in _tree(fixture_dir).items():
        if name in outputs or name.startswith(".cmf/"):
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(data)


def _kill_at(root: Path, step: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "customer_model_factory", "pipeline", "run", "factory.toml"],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **_ENV, "CMF_PIPELINE_PAUSE_AT": step},
    )  # fmt: skip
    try:
        assert child.stderr is not None
        line = child.stderr.readline()
        assert line.strip() == f"paused at {step}", line
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        if child.stderr is not None:
            child.stderr.close()


def test_a_run_killed_at_each_step_finishes_with_the_bytes_of_an_uninterrupted_run(
    fixture_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "killed"
    _copy_inputs(fixture_dir, root)
    record = json.loads((fixture_dir / "pipeline_run.json").read_text())
    steps = [step["step"] for step in record["steps"]]
    assert steps[:5] == ["dataset", "train", "benchmark", "select", "publish"]
    assert not (root / "dataset_report.json").exists()
    for step in steps:
        _kill_at(root, step)
        status = _cmf("pipeline", "status", "factory.toml", "-f", "json", cwd=root)
        states = {row["step"]: row["state"] for row in json.loads(status.stdout)["steps"]}
        assert states[step] == "STARTED", states
    finished = _cmf("pipeline", "run", "factory.toml", cwd=root)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    uninterrupted = _tree(fixture_dir)
    resumed = _tree(root)
    for name, data in uninterrupted.items():
        if name.startswith(".cmf/"):
            continue
        assert resumed.get(name) == data, f"{name} differs after the interrupted run"
    resumed_record = json.loads((root / "pipeline_run.json").read_text())
    assert resumed_record["release_hash"] == record["release_hash"]
    if "release" in steps:
        assert record["release_hash"] is not None and record["promotion_allowed"] is True


def test_a_tampered_or_missing_output_is_restored_from_the_store_or_made_again(
    fixture_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "tamper"
    _copy_inputs(fixture_dir, root)
    first = _cmf("pipeline", "run", "factory.toml", "-f", "json", cwd=root)
    assert first.returncode == 0, first.stdout + first.stderr
    assert {s["how"] for s in json.loads(first.stdout)["steps"]} == {"ran"}
    good = (root / "selection_report.json").read_bytes()
    (root / "selection_report.json").write_bytes(good.replace(b'"ready": true', b'"ready": false'))
    report = (root / "dataset_report.json").read_bytes()
    (root / "dataset_report.json").unlink()
    again = _cmf("pipeline", "run", "factory.toml", "-f", "json", cwd=root)
    assert again.returncode == 0, again.stdout + again.stderr
    how = {s["step"]: s["how"] for s in json.loads(again.stdout)["steps"]}
    # Restored from the store (digest-verified), not trusted and not measured again.
    assert how["dataset"] == "restored" and how["select"] == "restored"
    assert how["train"] == "reused" and how["benchmark"] == "reused"
    assert (root / "selection_report.json").read_bytes() == good
    assert (root / "dataset_report.json").read_bytes() == report
    counters = json.loads(again.stdout)["counters"]
    assert counters["traces_validated"] == 760 and counters["runs_trained"] == 2
    assert counters["passes"] == 1 and counters["bundles_published"] == 1

    # Gone from the store too: the step runs again, and writes the same bytes.
    digest = hashlib.sha256(report).hexdigest()
    (root / ".cmf" / "objects" / "sha256" / digest[:2] / digest[2:]).unlink()
    (root / "dataset_report.json").unlink()
    third = _cmf("pipeline", "run", "factory.toml", "-f", "json", cwd=root)
    assert third.returncode == 0, third.stdout + third.stderr
    how = {s["step"]: s["how"] for s in json.loads(third.stdout)["steps"]}
    assert how["dataset"] == "ran" and how["train"] == "reused"
    assert (root / "dataset_report.json").read_bytes() == report


def test_a_tampered_store_object_is_never_restored(fixture_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "store"
    _copy_inputs(fixture_dir, root)
    assert _cmf("pipeline", "run", "factory.toml", cwd=root).returncode == 0
    report = (root / "dataset_report.json").read_bytes()
    digest = hashlib.sha256(report).hexdigest()
    stored = root / ".cmf" / "objects" / "sha256" / digest[:2] / digest[2:]
    stored.chmod(0o644)
    stored.write_bytes(report.replace(b"760", b"761"))
    (root / "dataset_report.json").unlink()
    again = _cmf("pipeline", "run", "factory.toml", "-f", "json", cwd=root)
    # The altered object fails its digest: nothing is restored from it, the step runs again,
    # and storing its output again repairs the object.
    assert again.returncode == 0, again.stdout + again.stderr
    how = {s["step"]: s["how"] for s in json.loads(again.stdout)["steps"]}
    assert how["dataset"] == "ran" and how["train"] == "reused"
    assert (root / "dataset_report.json").read_bytes() == report
    assert stored.read_bytes() == report


def test_a_changed_table_reruns_its_step_and_reuses_those_before_it(
    fixture_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "changed"
    _copy_inputs(fixture_dir, root)
    assert _cmf("pipeline", "run", "factory.toml", cwd=root).returncode == 0
    config = (root / "factory.toml").read_text()
    if "[risk]" in config:  # the whole chain: change the register's id
        changed, earlier = "risk", ("dataset", "train", "select", "evidence", "monitor")
        config = config.replace('register_id = "fixture-risks"', 'register_id = "fixture-r2"')
    else:
        changed, earlier = "publish", ("dataset", "train", "benchmark", "select")
        config = config.replace('version = "1.0.0"', 'version = "1.0.1"', 1)
    (root / "factory.toml").write_text(config)
    again = _cmf("pipeline", "run", "factory.toml", "-f", "json", cwd=root)
    assert again.returncode == 0, again.stdout + again.stderr
    how = {s["step"]: s["how"] for s in json.loads(again.stdout)["steps"]}
    assert [how[s] for s in earlier] == ["reused"] * len(earlier)
    assert how[changed] == "ran"


def test_a_second_run_on_the_same_output_directory_is_refused_while_one_runs(
    fixture_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "busy"
    _copy_inputs(fixture_dir, root)
    child = subprocess.Popen(
        [sys.executable, "-m", "customer_model_factory", "pipeline", "run", "factory.toml"],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **_ENV, "CMF_PIPELINE_PAUSE_AT": "train"},
    )  # fmt: skip
    try:
        assert child.stderr is not None
        assert child.stderr.readline().strip() == "paused at train"
        second = _cmf("pipeline", "run", "factory.toml", cwd=root)
        assert second.returncode == 2
        assert "another cmf pipeline run is writing" in second.stderr
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        if child.stderr is not None:
            child.stderr.close()
    # The kernel released the killed run's lock: the next run finishes.
    finished = _cmf("pipeline", "run", "factory.toml", cwd=root)
    assert finished.returncode == 0, finished.stdout + finished.stderr
