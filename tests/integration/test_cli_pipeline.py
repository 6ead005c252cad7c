"""``cmf pipeline init | run | status`` in-process on real files: the template parses, refusals,
located config errors (exit 2), a blocked step named (exit 1), the ledger's view."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from customer_model_factory.cli import app
from customer_model_factory.pipeline import load_pipeline_config
from customer_model_factory.pipeline.config import toml_key_line

from ..conftest import training_rows, write_training_dataset

pytest.importorskip("sklearn")

_CONFIG = """\
[pipeline]
output_dir = "out"
home = "home"
reproducible = true
as_of = "2026-05-18T18:45:00Z"
stop_after = "publish"

[dataset]
traces = "traces.jsonl"
workspace = "workspace.toml"

[train]
seeds = [0]

[train.hyperparameters]
classifier = "sgd"
word_features_log2 = 12
char_features_log2 = 12

[benchmark]
claim_boundary = "Small synthetic set; no claim."

[select]
objective = "high_recall"

[publish]
bundle_id = "acme-scorer"
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    rows = training_rows(240)
    for index, row in enumerate(rows):
        row["split"] = (("train",) * 4 + ("validation",) * 2 + ("test",) * 2)[index % 8]
    write_training_dataset(tmp_path, rows)
    return tmp_path


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_init_writes_a_commented_config_for_every_stage_that_loads(workdir: Path) -> None:
    done = _invoke("pipeline", "init", "-t", "traces.jsonl", "-w", "workspace.toml")
    assert done.exit_code == 0, done.output
    text = (workdir / "factory.toml").read_text()
    for table in ("pipeline", "dataset", "sector", "train", "benchmark", "select", "publish"):
        assert f"\n[{table}]\n" in text
    for stage in ("4", "6", "7", "8", "9", "10"):
        assert f"# ---- stage {stage}:" in text
    data = tomllib.loads(text)
    assert data["dataset"] == {
        "traces": "traces.jsonl",
        "workspace": "workspace.toml",
        "redacted_copy": False,
        "max_depth": 64,
        "follow_symlinks": False,
    }
    config, _ = load_pipeline_config(workdir / "factory.toml")
    assert config.select.objective == "zero_silent_unsafe_pass"
    # Every key written has a comment line above it.
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if "=" in line and not line.startswith("#") and number:
            assert lines[number - 1].startswith(("#", "[")) or "=" in lines[number - 1], line


def test_init_never_overwrites_a_file_or_an_input(workdir: Path) -> None:
    (workdir / "factory.toml").write_text("mine\n")
    refused = _invoke("pipeline", "init", "-t", "traces.jsonl", "-w", "workspace.toml")
    assert refused.exit_code == 2 and "exists" in refused.output
    assert (workdir / "factory.toml").read_text() == "mine\n"
    before = (workdir / "traces.jsonl").read_bytes()
    refused = _invoke(
        "pipeline", "init", "-t", "traces.jsonl", "-w", "workspace.toml", "-o", "traces.jsonl"
    )
    assert refused.exit_code == 2 and "is also an input" in refused.output
    assert (workdir / "traces.jsonl").read_bytes() == before


def test_run_reaches_publish_then_reuses_everything_and_status_shows_it(workdir: Path) -> None:
    (workdir / "factory.toml").write_text(_CONFIG)
    first = _invoke("pipeline", "run", "factory.toml", "-f", "json")
    assert first.exit_code == 0, first.output
    outcome = json.loads(first.output)
    assert [s["step"] for s in outcome["steps"]] == [
        "dataset",
        "train",
        "benchmark",
        "select",
        "publish",
    ]
    assert {s["how"] for s in outcome["steps"]} == {"ran"}
    assert outcome["counters"] == {
        "bundles_published": 1,
        "failures": 0,
        "passes": 1,
        "runs_trained": 1,
        "traces_validated": 240,
    }
    record = json.loads((workdir / "out" / "pipeline_run.json").read_text())
    assert record["completed"] is True and record["promotion_allowed"] is None

    second = _invoke("pipeline", "run", "factory.toml")
    assert second.exit_code == 0, second.output
    assert second.output.count("reused") == 5
    assert "READY" in second.output and "counters" in second.output
    # Counters are run-scoped: reusing a step does not count it again.
    assert "traces_validated 240" in second.output

    status = _invoke("pipeline", "status", "factory.toml")
    assert status.exit_code == 0, status.output
    assert status.output.count("REUSED") == 5


def test_status_of_a_config_never_run_is_pending_and_exit_1(workdir: Path) -> None:
    (workdir / "factory.toml").write_text(_CONFIG)
    status = _invoke("pipeline", "status", "factory.toml", "-f", "json")
    assert status.exit_code == 1
    report = json.loads(status.output)
    assert report["known"] is False
    assert {row["state"] for row in report["steps"]} == {"PENDING"}


def test_a_blocked_step_is_named_and_the_later_ones_do_not_run(workdir: Path) -> None:
    rows = training_rows(40)  # no validation split: the dataset contract blocks
    write_training_dataset(workdir, rows)
    (workdir / "workspace.toml").write_text(
        (workdir / "workspace.toml").read_text()
        + 'required_splits = ["train", "validation", "test"]\n'
    )
    (workdir / "factory.toml").write_text(_CONFIG)
    blocked = _invoke("pipeline", "run", "factory.toml", "-f", "json")
    assert blocked.exit_code == 1, blocked.output
    outcome = json.loads(blocked.output)
    assert outcome["blocked_step"] == "dataset"
    assert [s["status"] for s in outcome["steps"]] == ["blocked", *["not-run"] * 4]
    record = json.loads((workdir / "out" / "pipeline_run.json").read_text())
    assert record["completed"] is False
    assert "PIPELINE_STEP_BLOCKED" in {f["code"] for f in record["findings"]}
    text = _invoke("pipeline", "run", "factory.toml")
    assert text.exit_code == 1 and "BLOCKED at step dataset" in text.output


@pytest.mark.parametrize(
    ("edit", "line", "field", "words"),
    [
        (("[train]\nseeds = [0]", "[train]\nseeds = [0]\nsed = 1"), 14, "train.sed", "unknown key"),
        (
            ('as_of = "2026-05-18T18:45:00Z"', 'as_of = "yesterday"'),
            5,
            "pipeline.as_of",
            "RFC 3339",
        ),
        (('as_of = "2026-05-18T18:45:00Z"\n', ""), 1, "pipeline", "needs as_of"),
        (("seeds = [0]", "seeds = [0, 0]"), 13, "train.seeds", "distinct"),
        (
            ('bundle_id = "acme-scorer"', 'bundle_id = "acme-scorer"\nbundle_id = 2'),
            28,
            None,
            "TOML",
        ),
        (('claim_boundary = "Small synthetic set; no claim."', ""), 20, "benchmark", "exactly one"),
        (('stop_after = "publish"', 'stop_after = "lunch"'), 6, "pipeline.stop_after", "Input"),
    ],
)
def test_a_bad_config_is_one_located_line_and_exit_2(
    workdir: Path, edit: tuple[str, str], line: int, field: str | None, words: str
) -> None:
    text = _CONFIG.replace(*edit)
    assert text != _CONFIG
    (workdir / "factory.toml").write_text(text)
    refused = _invoke("pipeline", "run", "factory.toml")
    assert refused.exit_code == 2, refused.output
    message = refused.output.strip()
    assert message.count("\n") == 0 and "Traceback" not in message
    assert message.startswith(f"error: factory.toml:{line}: "), message
    if field is not None:
        assert f"field '{field}'" in message
    assert words in message
    assert not (workdir / "out").exists()


def test_a_config_nested_ten_thousand_deep_is_a_config_error(workdir: Path) -> None:
    (workdir / "factory.toml").write_text("a = " + "[" * 10000 + "]" * 10000 + "\n")
    refused = _invoke("pipeline", "run", "factory.toml")
    assert refused.exit_code == 2
    assert refused.output.startswith("error: factory.toml: invalid TOML: ")


def test_an_output_dir_over_an_input_is_refused(workdir: Path) -> None:
    (workdir / "factory.toml").write_text(_CONFIG.replace('output_dir = "out"', 'output_dir = "."'))
    (workdir / "factory.toml").rename(workdir / "dataset_report.json")
    refused = _invoke("pipeline", "run", "dataset_report.json")
    assert refused.exit_code == 2 and "is also an input" in refused.output


def test_a_step_that_refuses_its_input_is_named_with_its_exit_code(workdir: Path) -> None:
    text = _CONFIG.replace('objective = "high_recall"', 'objective = "no-such-profile"')
    (workdir / "factory.toml").write_text(text)
    refused = _invoke("pipeline", "run", "factory.toml")
    assert refused.exit_code == 2
    assert refused.output.startswith("error: step select: ")
    assert "SELECT_PROFILE_UNKNOWN" in refused.output
    status = _invoke("pipeline", "status", "factory.toml", "-f", "json")
    states = {row["step"]: row["state"] for row in json.loads(status.output)["steps"]}
    assert states["select"] == "FAILED" and states["train"] == "DONE"


def test_toml_key_line_finds_the_key_inside_its_own_table() -> None:
    text = '[train]\nobjective = "a"\n\n[select]\nobjective = "b"\n[train.hyperparameters]\nc = 1\n'
    assert toml_key_line(text, "select.objective") == 5
    assert toml_key_line(text, "train.objective") == 2
    assert toml_key_line(text, "train.hyperparameters.c") == 7
    assert toml_key_line(text, "train.hyperparameters") == 6
    assert toml_key_line(text, "publish") is None


def test_an_output_dir_or_home_that_is_a_file_is_a_config_error(workdir: Path) -> None:
    (workdir / "taken").write_text("not a directory\n")
    for key, old, new in (
        ("output_dir", 'output_dir = "out"', 'output_dir = "taken"'),
        ("home", 'home = "home"', 'home = "taken"'),
    ):
        text = _CONFIG.replace(old, new)
        (workdir / "factory.toml").write_text(text)
        refused = _invoke("pipeline", "run", "factory.toml")
        assert refused.exit_code == 2, refused.output
        assert f"pipeline.{key}" in refused.output and "internal error" not in refused.output
    assert (workdir / "taken").read_text() == "not a directory\n"


def test_an_operating_system_refusal_is_one_line_and_exit_2(workdir: Path) -> None:
    (workdir / "taken").write_text("a file\n")
    result = _invoke(
        "dataset", "validate", "traces.jsonl", "-w", "workspace.toml", "-o", "taken/report.json"
    )
    assert result.exit_code == 2 and "internal error" not in result.output
    assert len(result.output.strip().splitlines()) == 1
