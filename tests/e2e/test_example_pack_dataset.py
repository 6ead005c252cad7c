"""End to end on the installed example sector pack: its benchmark traces go through
``cmf dataset validate`` with the pack loaded from its real entry point, the report verifies and
matches its committed schema, and a broken trace is caught by the pack's own rules."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import orjson
import pytest

from ..conftest import validate_against_committed_schema

pytest.importorskip("cmf_example_retail_banking", reason="the example pack is not installed")

WORKSPACE = """\
[workspace]
customer_id = "example-retail-bank"
workspace_id = "retail-banking-benchmark"
tenant_id = "retail-uk"
data_classification = "confidential"
allowed_splits = ["train", "validation", "test"]
required_splits = ["test"]
vertical = "example-retail-banking"
"""


def _cmf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "customer_model_factory", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


@pytest.fixture
def pack_traces(tmp_path: Path) -> Path:
    source = resources.files("cmf_example_retail_banking") / "data" / "benchmark_traces.jsonl"
    target = tmp_path / "traces.jsonl"
    target.write_bytes(source.read_bytes())
    (tmp_path / "workspace.toml").write_text(WORKSPACE)
    return target


def test_the_packs_benchmark_traces_validate_ready_through_the_entry_point(pack_traces):
    root = pack_traces.parent
    result = _cmf(
        "dataset", "validate", str(pack_traces), "--workspace", "workspace.toml",
        "-o", "report.json", "--format", "json", cwd=root,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    payload = json.loads((root / "report.json").read_text())
    assert payload["ready"] is True
    assert payload["row_count"] == 200
    assert payload["sector_counts"] == {"example-retail-banking": 200}
    assert payload["dataset_hash"].startswith("sha256:")
    validate_against_committed_schema("dataset-report", payload)
    verified = _cmf("manifest", "verify", "report.json", cwd=root)
    assert verified.returncode == 0, verified.stderr


def test_a_trace_breaking_a_pack_rule_blocks_the_dataset(pack_traces):
    root = pack_traces.parent
    rows = [orjson.loads(line) for line in pack_traces.read_bytes().splitlines()]
    broken = next(r for r in rows if r["metadata"].get("requires_citation"))
    broken["metadata"]["evidence_refs"] = []
    mistyped = rows[-1]
    mistyped["metadata"]["product_line"] = "crypto-casino"
    pack_traces.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    result = _cmf(
        "dataset", "validate", str(pack_traces), "--workspace", "workspace.toml",
        "--format", "json", cwd=root,
    )  # fmt: skip
    assert result.returncode == 1
    report = json.loads(result.stdout)
    codes = {finding["code"] for finding in report["findings"]}
    assert "SECTOR_CITATION_REQUIRED" in codes  # the core's generic sector contract
    assert "SECTOR_METADATA_SCHEMA" in codes  # the model the pack declares, enforced by the core
    located = [f for f in report["findings"] if f["trace_id"] == broken["trace_id"]]
    assert located and all(f["location"].endswith(f":{rows.index(broken) + 1}") for f in located)


def test_a_tampered_report_is_rejected_naming_both_hashes(pack_traces):
    root = pack_traces.parent
    _cmf("dataset", "validate", str(pack_traces), "--workspace", "workspace.toml",
         "-o", "report.json", cwd=root)  # fmt: skip
    report = root / "report.json"
    stored = json.loads(report.read_text())["report_hash"]
    report.write_text(report.read_text().replace('"row_count": 200', '"row_count": 201'))
    verified = _cmf("manifest", "verify", "report.json", cwd=root)
    assert verified.returncode == 2
    assert stored in verified.stderr and "report.json" in verified.stderr
    assert "Traceback" not in verified.stderr
