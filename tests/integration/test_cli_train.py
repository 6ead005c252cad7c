"""``cmf train``, ``cmf train import`` and ``cmf runs`` on real files and a real SQLite ledger."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from customer_model_factory.canonical import sha256_bytes
from customer_model_factory.cli import app

from ..conftest import training_rows, write_training_dataset

pytest.importorskip("sklearn")

_CONFIG = """\
[train]
seed = 3
objective_profile = "high_recall"
package_id = "acme-scorer"

[train.hyperparameters]
word_features_log2 = 12
char_features_log2 = 12
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_training_dataset(tmp_path)
    (tmp_path / "train.toml").write_text(_CONFIG)
    result = CliRunner().invoke(
        app, ["dataset", "validate", "traces.jsonl", "-w", "workspace.toml", "-o", "report.json"]
    )
    assert result.exit_code == 0, result.output
    return tmp_path


def _cmf(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--home", "home", *args])
    return result.exit_code, result.stdout, result.stderr


_TRAIN = ("train", "--dataset-report", "report.json", "--lane", "linear", "--config", "train.toml")


def test_train_writes_a_ready_manifest_and_the_runs_commands_show_it(workdir):
    code, out, err = _cmf(*_TRAIN, "-o", "training.json")
    assert code == 0, err
    assert out.startswith("READY  lane linear: 30 train rows")
    manifest = json.loads((workdir / "training.json").read_text())
    assert manifest["seed"] == 3 and manifest["objective_profile"] == "high_recall"
    assert manifest["package_id"] == "acme-scorer"
    assert manifest["hyperparameters"]["word_features_log2"] == 12
    run_id = manifest["train_run_id"]
    assert run_id in out
    code, out, _ = _cmf("runs", "list", "--format", "json")
    runs = json.loads(out)
    assert code == 0 and [(r["run_id"], r["status"]) for r in runs] == [(run_id, "EVAL_READY")]
    code, out, _ = _cmf("runs", "show", run_id[:12], "--format", "json")
    detail = json.loads(out)
    assert code == 0
    assert detail["outputs"]["model"]["digest"] == manifest["model"]["digest"]
    assert [e["state"] for e in detail["events"]] == ["QUEUED", "RUNNING", "EVAL_READY"]
    code, out, _ = _cmf("runs", "show", run_id)
    assert code == 0 and out.startswith(f"EVAL_READY  run {run_id}")
    code, out, _ = _cmf(*_TRAIN, "-o", "again.json", "--format", "json")
    assert code == 0
    assert (workdir / "again.json").read_bytes() == (workdir / "training.json").read_bytes()
    assert json.loads(out)["manifest_hash"] == manifest["manifest_hash"]
    code, out, err = _cmf("manifest", "verify", "--chain", "training.json")
    assert code == 0, err


def test_runs_on_an_empty_home_create_nothing(workdir):
    code, out, _ = _cmf("runs", "list")
    assert (code, out) == (0, "no runs\n")
    code, _, err = _cmf("runs", "show", "0" * 64)
    assert code == 2 and err.startswith("error: no run ledger") and err.count("\n") == 1
    assert not (workdir / "home").exists()


def test_an_unknown_run_is_one_line_and_exit_2(workdir):
    assert _cmf(*_TRAIN, "-o", "training.json")[0] == 0
    code, _, err = _cmf("runs", "show", "f" * 64)
    assert code == 2
    assert err == f"error: run {'f' * 64}: no such run in the ledger [TRAIN_RUN_UNKNOWN]\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--lane", "gpu-x"), "unknown lane 'gpu-x'"),
        (("--lane", "vertex", "--output-uri", "s3://b/m"), "'vertex' writes to gs:// only"),
        (("--lane", "linear", "--objective", "fastest"), "unknown objective profile"),
        (("--lane", "linear", "-o", "traces.jsonl"), "never overwrites an input"),
        (("--lane", "linear", "-o", "report.json"), "never overwrites an input"),
    ],
)
def test_refused_requests_exit_2_with_one_line(workdir, args, message):
    before = (workdir / "traces.jsonl").read_bytes()
    argv = ["train", "--dataset-report", "report.json", *args]
    if "-o" not in args:
        argv += ["-o", "training.json"]
    code, _, err = _cmf(*argv)
    assert code == 2, err
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    assert not (workdir / "training.json").exists()
    assert (workdir / "traces.jsonl").read_bytes() == before


def test_a_tampered_report_exits_2_naming_the_file(workdir):
    payload = json.loads((workdir / "report.json").read_text())
    payload["ready"] = True
    payload["row_count"] = 1
    (workdir / "report.json").write_text(json.dumps(payload))
    code, _, err = _cmf(*_TRAIN, "-o", "training.json")
    assert code == 2
    assert err.startswith("error: report.json: dataset report: report_hash mismatch")


def test_changed_traces_exit_2(workdir):
    (workdir / "traces.jsonl").write_bytes((workdir / "traces.jsonl").read_bytes() + b"\n")
    code, _, err = _cmf(*_TRAIN, "-o", "training.json")
    assert code == 2 and "changed since the report" in err


def test_a_report_that_is_not_ready_exits_1_with_a_manifest(workdir):
    rows = training_rows()
    rows[2]["split"] = "holdout"
    write_training_dataset(workdir, rows)
    CliRunner().invoke(
        app, ["dataset", "validate", "traces.jsonl", "-w", "workspace.toml", "-o", "report.json"]
    )
    code, out, _ = _cmf(*_TRAIN, "-o", "training.json")
    assert code == 1
    assert out.startswith("BLOCKED") and "TRAIN_DATASET_NOT_READY" in out
    assert json.loads((workdir / "training.json").read_text())["ready"] is False


def test_a_floating_base_model_in_the_config_exits_1(workdir):
    (workdir / "train.toml").write_text(
        _CONFIG + '\n[train.base_model]\nid = "org/enc"\nrevision = "latest"\nartifact_uri = ""\n'
    )
    code, out, _ = _cmf(*_TRAIN, "-o", "training.json")
    assert code == 1 and "TRAIN_BASE_MODEL_NOT_IMMUTABLE" in out


def test_a_bad_config_names_the_file_and_key(workdir):
    (workdir / "train.toml").write_text("[train]\nlearning_rate = 3\n")
    code, _, err = _cmf(*_TRAIN, "-o", "training.json")
    assert code == 2
    assert err.startswith("error: train.toml: field 'train.learning_rate': unknown key")
    (workdir / "train.toml").write_text(_CONFIG + "learning_rate = 3\n")
    code, _, err = _cmf(*_TRAIN, "-o", "training.json")
    assert code == 2
    assert err.startswith("error: train.toml: field 'hyperparameters.learning_rate': lane 'linear'")
    (workdir / "train.toml").write_text("[train\n")
    code, _, err = _cmf(*_TRAIN, "-o", "training.json")
    assert code == 2 and "invalid TOML" in err
    (workdir / "train.toml").write_text(_CONFIG.replace("= 12", "= 99", 1))
    code, _, err = _cmf(*_TRAIN, "-o", "training.json")
    assert code == 2 and "hyperparameters.word_features_log2" in err


def test_missing_options_exit_2(workdir):
    code, _, err = _cmf("train", "--lane", "linear", "-o", "training.json")
    assert code == 2 and "missing option --dataset-report" in err


def test_external_lane_then_import_through_the_cli(workdir):
    code, out, err = _cmf(
        "train", "--dataset-report", "report.json", "--lane", "external",
        "--output-uri", "s3://acme-private/run-1", "-o", "pending.json",
    )  # fmt: skip
    assert code == 0, err
    assert "trained elsewhere" in out
    pending = json.loads((workdir / "pending.json").read_text())
    assert pending["model"] is None and pending["requires_private_execution"] is True
    code, out, _ = _cmf("runs", "list", "--format", "json")
    assert [r["status"] for r in json.loads(out)] == ["QUEUED"]
    (workdir / "model.bin").write_bytes(b"weights from the cluster")
    code, _, err = _cmf(
        "train", "import", "--training-manifest", "pending.json", "--artefact", "model.bin",
        "--expect-digest", sha256_bytes(b"something else"), "-o", "done.json",
    )  # fmt: skip
    assert code == 2 and "is corrupted" in err
    assert not (workdir / "done.json").exists()
    code, _, err = _cmf(
        "train", "import", "--training-manifest", "pending.json", "--artefact", "model.bin",
        "--expect-digest", "md5:abc", "-o", "done.json",
    )  # fmt: skip
    assert code == 2 and "--expect-digest must be sha256" in err
    code, _, err = _cmf(
        "train", "import", "--training-manifest", "pending.json", "--artefact", "model.bin",
        "--expect-digest", sha256_bytes(b"weights from the cluster"), "-o", "done.json",
    )  # fmt: skip
    assert code == 0, err
    done = orjson.loads((workdir / "done.json").read_bytes())
    assert done["model"]["files"] == {"model.bin": sha256_bytes(b"weights from the cluster")}
    assert {link["kind"] for link in done["inputs"]} == {"dataset-report", "training-manifest"}
    code, _, err = _cmf("manifest", "verify", "--chain", "done.json")
    assert code == 0, err
    code, out, _ = _cmf("runs", "list", "--format", "json")
    assert [r["status"] for r in json.loads(out)] == ["EVAL_READY"]
