"""The example sector pack's traces through ``cmf pipeline run`` (subprocess, the pack installed):
a production release of the bank reaches ``promotion_allowed: true``; then a failing plugin
release check and a missing evidence kind each block it by name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ..conftest import validate_against_committed_schema
from ..stage3_support import WORKSPACE_TOML, example_traces, write_jsonl

pytest.importorskip("sklearn")
pytest.importorskip("cmf_example_retail_banking", reason="the example pack is not installed")
pytest.importorskip("customer_model_factory.stages.release.build")
pytestmark = pytest.mark.slow

PACKAGE = "example-retail-banking.conduct-v1"
_OPERATOR_EVIDENCE = (
    "effective_challenge_report",
    "model_validation_report",
    "rate_sheet_version",
    "vulnerability_review_log",
)
_CONFIG = f"""\
[pipeline]
output_dir = "run"
home = ".cmf"
reproducible = true
as_of = "2026-05-18T18:45:00Z"

[dataset]
traces = "traces.jsonl"
workspace = "workspace.toml"

[train]
seeds = [0]
objective = "zero_silent_unsafe_pass"

[train.hyperparameters]
classifier = "sgd"

[benchmark]
package = "{PACKAGE}"

[select]
objective = "zero_silent_unsafe_pass"

[publish]
bundle_id = "retail-scorer"

[deploy]
deployment_id = "retail-deployment"
environment = "production"
audit_log_uri = "run/decision_log.jsonl"
evidence_pack_uri = "run/evidence_export"
rollback_package_uri = "rollback_package.json"
retention_days = 2555
telemetry_mode = "customer_controlled"
package_uri = "run/runtime_package.json"
package_version = "1.0.0"

[evidence]
audit_log = "audit_log.jsonl"
rollback_package = "rollback_package.json"
telemetry = "telemetry.json"
classification = "confidential"
export_uri = "run/evidence_export"
package_id = "retail-evidence"

[evidence.evidence]
{chr(10).join(f'{kind} = "operator/{kind}.txt"' for kind in _OPERATOR_EVIDENCE)}

[runtime]
runtime_id = "retail-runtime"
runtime_mode = "customer_cloud_private"

[monitor]
reviews = "reviews.jsonl"
incidents = "incidents.jsonl"

[risk]
risks = "risks.toml"

[release]
release_id = "release-retail-1"
enterprise_readiness = "enterprise_readiness.json"
domain_evidence = ["domain_evidence"]
"""
_RISKS = """\
[[risks]]
risk_id = "R-1"
status = "mitigated"
severity = "medium"
owner = "conduct-risk"
accepted_at = ""
expires_at = ""
compensating_controls = []
rationale = "vulnerable-customer prompts always escalate"

[risks.linked_artifact_hashes]
"""


def _cmf(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "customer_model_factory", *args],
        capture_output=True, text=True, check=False, cwd=root, timeout=600,
        env={**os.environ, "CI": "1"},
    )  # fmt: skip


def _domain_records(root: Path) -> None:
    from customer_model_factory.context import RunContext
    from customer_model_factory.plugins import collect_release_domains
    from customer_model_factory.stages.release.build import write_domain_record
    from customer_model_factory.stages.release.domains import core_domains

    domains = dict(core_domains())
    contributed, findings = collect_release_domains(RunContext().plugin_manager)
    assert not findings
    domains.update(contributed)
    assert "example-retail-banking.consumer-duty" in domains
    directory = root / "domain_evidence"
    (directory / "evidence").mkdir(parents=True)
    for name, contributed_domain in sorted(domains.items()):
        domain = getattr(contributed_domain, "domain", contributed_domain)
        evidence = directory / "evidence" / f"{name}.txt"
        evidence.write_text(f"evidence of the {name} domain\n")
        write_domain_record(
            directory / f"{name}.json",
            domain=name,
            environment="production",
            uris={uri: f"https://evidence.invalid/{name}/{uri}" for uri in domain.required_uris},
            checks=dict.fromkeys(domain.required_checks, True),
            evidence_file=evidence,
        )


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bank")
    write_jsonl(root / "traces.jsonl", example_traces())
    (root / "workspace.toml").write_text(WORKSPACE_TOML)
    (root / "factory.toml").write_text(_CONFIG)
    (root / "risks.toml").write_text(_RISKS)
    for name, text in {
        "audit_log.jsonl": "",
        "rollback_package.json": '{"bundle_id": "retail-scorer", "version": "0.9.0"}\n',
        "telemetry.json": '{"mode": "customer_controlled"}\n',
        "reviews.jsonl": "",
        "incidents.jsonl": "",
        "enterprise_readiness.json": '{"ready": true, "blocking_debt_ids": []}\n',
    }.items():
        (root / name).write_text(text)
    (root / "operator").mkdir()
    for kind in _OPERATOR_EVIDENCE:
        (root / "operator" / f"{kind}.txt").write_text(f"the bank's {kind}\n")
    _domain_records(root)
    ran = _cmf(root, "pipeline", "run", "factory.toml", "--format", "json")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr
    return root


@pytest.fixture
def copy(bank: Path, tmp_path: Path) -> Path:
    root = tmp_path / "bank"
    shutil.copytree(bank, root)
    return root


def test_the_banks_traces_reach_promotion_with_every_manifest_valid(bank: Path) -> None:
    gate = json.loads((bank / "run" / "release_gate.json").read_text())
    assert gate["promotion_allowed"] is True, gate["blockers"]
    assert gate["environment"] == "production"
    assert "example-retail-banking.consumer-duty" in {d["domain"] for d in gate["domain_evidence"]}
    evidence = json.loads((bank / "run" / "evidence_pack.json").read_text())
    assert [m["sector_id"] for m in evidence["sector_mappings"]] == ["example-retail-banking"]
    kinds = {
        "deployment_manifest.json": "deployment",
        "evidence_pack.json": "evidence-pack",
        "runtime_package.json": "runtime-package",
        "monitoring_manifest.json": "monitoring",
        "risk_register.json": "risk-register",
        "release_gate.json": "release-gate",
        "dataset_report.json": "dataset-report",
        "training_manifest-seed0.json": "training-manifest",
        "benchmark_test-seed0.json": "benchmark-result",
        "selection_report.json": "selection-report",
        "model_bundle.json": "model-bundle",
    }
    for name, schema in kinds.items():
        validate_against_committed_schema(schema, json.loads((bank / "run" / name).read_text()))
    status = _cmf(bank, "pipeline", "status", "factory.toml", "--format", "json")
    assert status.returncode == 0, status.stdout
    report = json.loads(status.stdout)
    assert report["counters"]["traces_validated"] == 800
    assert {row["state"] for row in report["steps"]} == {"DONE"}


def test_a_failing_plugin_release_check_blocks_by_name(copy: Path) -> None:
    config = (copy / "factory.toml").read_text()
    # Another seed and version: the ledger holds one gate decision per training run (seed 0's
    # was decided under the package's thresholds) and one bundle per version.
    config = config.replace(
        f'package = "{PACKAGE}"', 'claim_boundary = "Ad hoc: no package claim."'
    )
    config = config.replace("seeds = [0]", "seeds = [1]")
    config = config.replace(
        'bundle_id = "retail-scorer"', 'bundle_id = "retail-scorer"\nversion = "1.0.1"'
    )
    (copy / "factory.toml").write_text(config)
    ran = _cmf(copy, "pipeline", "run", "factory.toml", "--format", "json")
    assert ran.returncode == 1, ran.stdout[-2000:] + ran.stderr
    outcome = json.loads(ran.stdout)
    assert outcome["blocked_step"] == "release" and outcome["promotion_allowed"] is False
    gate = json.loads((copy / "run" / "release_gate.json").read_text())
    assert ("RELEASE_RETAIL_BANKING_BENCHMARK_MISSING", "plugin.example-retail-banking") in {
        (b["code"], b["source"]) for b in gate["blockers"]
    }, gate["blockers"]
    assert (
        "RELEASE_RETAIL_BANKING_BENCHMARK_MISSING" in outcome["record"]["findings"][-1]["message"]
    )


def test_a_missing_evidence_kind_blocks_by_name(copy: Path) -> None:
    config = tomllib.loads((copy / "factory.toml").read_text())
    assert "model_validation_report" in config["evidence"]["evidence"]
    text = (copy / "factory.toml").read_text()
    (copy / "factory.toml").write_text(
        text.replace('model_validation_report = "operator/model_validation_report.txt"\n', "")
    )
    ran = _cmf(copy, "pipeline", "run", "factory.toml")
    assert ran.returncode == 1, ran.stdout[-2000:] + ran.stderr
    assert "BLOCKED at step evidence" in ran.stdout
    assert "EVIDENCE_CONTROL_EVIDENCE_MISSING" in ran.stdout
    how = {line.split()[0]: line.split()[4] for line in ran.stdout.splitlines()[1:13]}
    assert how["train"] == "reused" and how["deploy"] == "reused"
