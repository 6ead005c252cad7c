"""``cmf dataset validate`` on real files: exit codes, one-line errors, capped text, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from customer_model_factory.cli import _app

WORKSPACE_TOML = """\
[workspace]
customer_id = "acme"
workspace_id = "ws-1"
tenant_id = "acme-eu"
data_classification = "confidential"
required_splits = ["train"]
"""

AWS_KEY = "AK" + "IA" + "TESTONLY" + "7QX2PL3M"


def trace(index: int, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "trace_id": f"t-{index}",
        "customer_id": "acme",
        "tenant_id": "acme-eu",
        "split": "train" if index % 2 else "test",
        "prompt": f"What is my card limit? ({index})",
        "response": "It is shown in the app.",
        "expected_decision": "approve",
        "severity": "low",
        "label": "safe",
        "source_refs": ["kb://limits"],
        "policy_refs": ["policy://v1"],
        "reviewer_role": "analyst",
        "observed_at": "2024-05-01T09:00:00Z",
    }
    row.update(overrides)
    return row


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    workspace = tmp_path / "workspace.toml"
    workspace.write_text(WORKSPACE_TOML, encoding="utf-8")
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"".join(orjson.dumps(trace(i)) + b"\n" for i in range(6)))
    dirty = tmp_path / "dirty.jsonl"
    rows = [trace(i) for i in range(4)] + [trace(i, customer_id="other") for i in range(4, 12)]
    rows.append(trace(12, prompt=f"my key {AWS_KEY}"))
    dirty.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return {"workspace": workspace, "clean": clean, "dirty": dirty, "tmp": tmp_path}


def invoke(*args: str):
    return CliRunner().invoke(_app.app, ["dataset", "validate", *args])


def test_clean_dataset_exits_0_and_writes_a_verifiable_report(files, committed_schema):
    report = files["tmp"] / "out" / "report.json"
    result = invoke(str(files["clean"]), "--workspace", str(files["workspace"]), "-o", str(report))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("READY")
    payload = json.loads(report.read_text())
    committed_schema("dataset-report", payload)
    verified = CliRunner().invoke(_app.app, ["manifest", "verify", str(report)])
    assert verified.exit_code == 0, verified.output
    assert "report_hash" in verified.output


def test_findings_exit_1_and_text_output_is_capped_per_code(files):
    result = invoke(str(files["dirty"]), "-w", str(files["workspace"]), "--max-per-code", "3")
    assert result.exit_code == 1
    assert result.output.startswith("BLOCKED")
    lines = [line for line in result.output.splitlines() if "DATASET_CUSTOMER_ID_MISMATCH" in line]
    assert len(lines) == 4  # three findings and the count of the rest
    assert "... and 5 more DATASET_CUSTOMER_ID_MISMATCH" in result.output
    assert "DATASET_SECRET_DETECTED" in result.output
    assert AWS_KEY not in result.output


def test_json_output_is_complete(files):
    result = invoke(str(files["dirty"]), "-w", str(files["workspace"]), "--format", "json")
    assert result.exit_code == 1
    payload = json.loads(result.output)
    mismatches = [f for f in payload["findings"] if f["code"] == "DATASET_CUSTOMER_ID_MISMATCH"]
    assert len(mismatches) == 8
    assert all(f["location"].startswith(str(files["dirty"])) for f in mismatches)
    assert AWS_KEY not in result.output


def test_redacted_copy_under_redact_policy_exits_0(files):
    workspace = files["tmp"] / "redact.toml"
    workspace.write_text(WORKSPACE_TOML + 'secrets_policy = "redact"\n', encoding="utf-8")
    source = files["tmp"] / "secret.jsonl"
    rows = [trace(i) for i in range(3)] + [trace(3, prompt=f"key {AWS_KEY}")]
    source.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    copy = files["tmp"] / "redacted.jsonl"
    result = invoke(str(source), "-w", str(workspace), "--redacted-copy", str(copy))
    assert result.exit_code == 0, result.output
    assert AWS_KEY.encode() not in copy.read_bytes()
    assert b"[REDACTED:aws_access_key]" in copy.read_bytes()
    again = invoke(str(copy), "-w", str(files["workspace"]))
    assert again.exit_code == 0, again.output


def test_forced_vertical_without_a_pack_blocks(files):
    result = invoke(str(files["clean"]), "-w", str(files["workspace"]), "--vertical", "no-such")
    assert result.exit_code == 1
    assert "SECTOR_UNKNOWN" in result.output


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing.jsonl", "file not found"),
        (lambda tmp: _write(tmp / "empty.jsonl", b""), "file is empty"),
        (lambda tmp: _mkdir(tmp / "noshards"), "no *.jsonl shard"),
    ],
)
def test_unreadable_sources_exit_2_with_one_line(files, make, message):
    source = make(files["tmp"])
    result = _run_cli(str(source), "-w", str(files["workspace"]))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert message in result.stderr
    assert str(source) in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_workspace_exits_2_naming_the_field(files):
    bad = files["tmp"] / "bad.toml"
    bad.write_text(WORKSPACE_TOML.replace('"confidential"', '"top-secret"'), encoding="utf-8")
    result = _run_cli(str(files["clean"]), "-w", str(bad))
    assert result.returncode == 2
    assert "data_classification" in result.stderr
    assert str(bad) in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b'{"trace_id": "a"', "DATASET_JSONL_TRUNCATED_LINE"),
        (b"\xff\xfe\n", "DATASET_JSONL_INVALID_UTF8"),
        (b"\xef\xbb\xbf", "DATASET_JSONL_BOM"),
        (b"[1, 2, 3]\n", "DATASET_JSONL_JSON_ARRAY"),
    ],
)
def test_malformed_lines_exit_1_with_a_located_finding(files, content, code):
    source = files["tmp"] / "malformed.jsonl"
    good = files["clean"].read_bytes()
    source.write_bytes(content + good if code.endswith(("BOM", "ARRAY")) else good + content)
    result = invoke(str(source), "-w", str(files["workspace"]), "--format", "json")
    assert result.exit_code == 1
    findings = json.loads(result.output)["findings"]
    located = [f for f in findings if f["code"] == code]
    assert len(located) == 1
    assert located[0]["location"].startswith(f"{source}:")


def test_a_50_mb_single_line_is_a_located_finding(files):
    source = files["tmp"] / "huge.jsonl"
    with open(source, "wb") as handle:
        handle.write(orjson.dumps(trace(1)) + b"\n")
        handle.write(b'{"prompt": "' + b"a" * (50 << 20) + b'"}\n')
        handle.write(orjson.dumps(trace(3)) + b"\n")
    result = invoke(str(source), "-w", str(files["workspace"]), "--format", "json")
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert [f["location"] for f in payload["findings"]] == [f"{source}:2"]
    assert payload["row_count"] == 2


def test_help_lists_the_options():
    result = CliRunner().invoke(_app.app, ["dataset", "validate", "--help"])
    assert result.exit_code == 0
    for option in ("--workspace", "--vertical", "--output", "--redacted-copy", "--format"):
        assert option in result.output


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "customer_model_factory", "dataset", "validate", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_progress_bar_only_on_a_terminal_outside_ci(monkeypatch):
    from customer_model_factory.cli import dataset as cli_dataset

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not _app.progress_wanted()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("CI", "true")
    assert not _app.progress_wanted()
    monkeypatch.delenv("CI")
    assert _app.progress_wanted()
    with cli_dataset._progress_bar(False) as progress:
        assert progress is None
    with cli_dataset._progress_bar(True) as progress:
        assert progress is not None
        progress(10, 100)
        progress(100, 100)
