"""``cmf monitor`` and ``cmf risk`` on real files: exit codes, schemas, hostile inputs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from customer_model_factory.cli import _app
from customer_model_factory.stages.monitoring.models import CustomerMonitoringManifest
from customer_model_factory.stages.risk.models import CustomerRiskRegister

from ..conftest import validate_against_committed_schema
from ..stage_monitoring_support import (
    decision,
    evidence_pack,
    write_json,
    write_jsonl,
    write_log,
    write_runtime,
)


def cmf(*args: str):
    return CliRunner().invoke(_app.app, list(args))


@pytest.fixture
def chain(tmp_path: Path) -> dict[str, Any]:
    evidence = evidence_pack()
    evidence.write(tmp_path / "evidence.json")
    package = write_runtime(tmp_path / "rt", evidence_hash=evidence.evidence_hash)
    log = write_log(tmp_path / "decisions.jsonl", package, 400)
    return {"dir": tmp_path, "package": package, "log": log, "evidence": evidence}


def monitor(chain: dict[str, Any], *extra: str, log: Path | None = None, out: str = "mon.json"):
    directory = chain["dir"]
    return cmf(
        "monitor",
        "--runtime",
        str(directory / "rt"),
        "--decision-log",
        str(log or chain["log"]),
        "-o",
        str(directory / out),
        *extra,
    )


def test_monitor_within_control_writes_a_schema_valid_manifest(chain: dict[str, Any]) -> None:
    result = monitor(chain)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("WITHIN_CONTROL  400 decisions")
    manifest = CustomerMonitoringManifest.load(chain["dir"] / "mon.json")
    validate_against_committed_schema("monitoring", manifest.payload())
    links = {link.kind: link for link in manifest.inputs}
    assert links["runtime-package"].hash == chain["package"].runtime_hash
    assert links["decision-log"].uri == "decisions.jsonl"  # relative to the manifest
    assert manifest.ready and manifest.metrics.total_decisions == 400
    assert manifest.evidence_hash == chain["evidence"].evidence_hash


def test_monitor_queues_thresholds_and_breaches(chain: dict[str, Any]) -> None:
    directory = chain["dir"]
    rows = [decision(chain["package"], i) for i in range(400)]
    flagged = next(r for r in rows if r["decision"] == "block")
    approved = next(r for r in rows if r["decision"] == "approve")
    reviews = write_jsonl(
        directory / "reviews.jsonl",
        [
            {
                "trace_id": flagged["trace_id"],
                "reviewed_at": "2026-05-18T12:00:00Z",
                "outcome": "false_positive",
            },
            {
                "trace_id": "trace-unknown",
                "reviewed_at": "2026-05-18T12:00:00Z",
                "outcome": "false_positive",
            },
        ],
    )
    incidents = write_jsonl(
        directory / "incidents.jsonl",
        [
            {
                "incident_id": "INC-1",
                "trace_id": approved["trace_id"],
                "reported_at": "2026-05-18T13:00:00+02:00",
                "severity": "critical",
            }
        ],
    )
    limits = directory / "limits.toml"
    limits.write_text("max_latency_p95_ms = 5.0\n", encoding="utf-8")
    result = monitor(
        chain,
        "--reviews",
        str(reviews),
        "--incidents",
        str(incidents),
        "--thresholds",
        str(limits),
        "--format",
        "json",
    )
    assert result.exit_code == 1, result.output
    payload = json.loads(result.output)
    validate_against_committed_schema("monitoring", payload)
    assert payload["health_status"] == "review_required"
    assert payload["metrics"]["false_positive_review_count"] == 1
    assert payload["metrics"]["false_negative_incident_count"] == 1
    assert payload["metrics"]["high_severity_incident_count"] == 1
    codes = {f["code"]: f for f in payload["findings"]}
    assert codes["MONITOR_FALSE_NEGATIVE_BREACH"]["severity"] == "error"
    assert codes["MONITOR_LATENCY_BREACH"]["severity"] == "warning"
    assert codes["MONITOR_REVIEW_UNKNOWN_TRACE"]["location"].endswith("reviews.jsonl:2")
    assert payload["ready"] is False  # the false-negative breach blocks the release
    assert payload["retraining_recommended"] is True
    kinds = {link["kind"] for link in payload["inputs"]}
    assert {"review-queue", "incident-queue"} <= kinds


@pytest.mark.parametrize(
    "content",
    [
        b"",  # 0 rows
        b'{"trace_id": "t", "score": NaN}\n',
        b"other-runtime",  # built in the test
        b"half-line",  # built in the test
    ],
    ids=["empty", "nan", "other-runtime", "half-line"],
)
def test_monitor_blocks_on_untrustworthy_logs(
    chain: dict[str, Any], content: bytes | None, request: pytest.FixtureRequest
) -> None:
    directory = chain["dir"]
    log = directory / "bad.jsonl"
    case = request.node.callspec.id
    if case == "other-runtime":
        other = write_runtime(directory / "other", runtime_id="rt-other")
        write_log(log, other, 10)
    elif case == "half-line":
        good = chain["log"].read_bytes()
        log.write_bytes(good + good.splitlines()[0][:30])
    else:
        log.write_bytes(content or b"")
    result = monitor(chain, log=log)
    assert result.exit_code == 1, result.output
    manifest = CustomerMonitoringManifest.load(directory / "mon.json")
    assert manifest.health_status == "evidence_blocked"
    assert not manifest.ready
    expected = {
        "empty": "MONITOR_LOG_EMPTY",
        "nan": "MONITOR_LOG_LINE_INVALID",
        "other-runtime": "MONITOR_LOG_FOREIGN_RUNTIME",
        "half-line": "MONITOR_LOG_TRUNCATED_LINE",
    }[case]
    assert expected in {f.code for f in manifest.findings}
    validate_against_committed_schema("monitoring", manifest.payload())


def test_monitor_bad_input_is_exit_2_with_one_line(chain: dict[str, Any]) -> None:
    directory = chain["dir"]
    missing = monitor(chain, log=directory / "nope.jsonl")
    assert missing.exit_code == 2
    assert "nope.jsonl: file not found" in missing.output
    tampered = json.loads((directory / "rt" / "runtime_package.json").read_text())
    tampered["runtime_config"]["package_version"] = "9.9.9"
    write_json(directory / "rt" / "runtime_package.json", tampered)
    result = monitor(chain)
    assert result.exit_code == 2
    assert "runtime_hash mismatch" in result.output
    assert "Traceback" not in result.output


def test_monitor_refuses_a_bad_thresholds_file_and_overwriting_an_input(
    chain: dict[str, Any],
) -> None:
    limits = chain["dir"] / "limits.json"
    limits.write_text('{"max_latency_p95": 5}', encoding="utf-8")
    result = monitor(chain, "--thresholds", str(limits))
    assert result.exit_code == 2
    assert "unknown key" in result.output
    overwrite = monitor(chain, out="decisions.jsonl")
    assert overwrite.exit_code == 2
    assert "is also an input" in overwrite.output
    other = chain["dir"] / "traces.jsonl"  # a file of the chain this command does not read
    other.write_text("{}\n", encoding="utf-8")
    clobber = monitor(chain, out="traces.jsonl")
    assert clobber.exit_code == 2 and "not a monitoring manifest" in clobber.output
    assert other.read_text(encoding="utf-8") == "{}\n"


def _risks(path: Path, evidence: str, monitoring: str, **over: Any) -> Path:
    entry = {
        "risk_id": "R-1",
        "status": "accepted",
        "severity": "high",
        "owner": "ml-platform",
        "accepted_at": "2026-05-01T00:00:00Z",
        "expires_at": "2099-01-01T00:00:00+05:00",
        "compensating_controls": ["human review"],
        "linked_artifact_hashes": {"evidence-pack": evidence, "monitoring": monitoring},
        "rationale": "r",
    }
    entry.update(over)
    return write_json(path, {"risks": [entry]})


def risk(directory: Path, risks: Path, *extra: str):
    return cmf(
        "risk",
        "--risks",
        str(risks),
        "--evidence-pack",
        str(directory / "evidence.json"),
        "--monitoring",
        str(directory / "mon.json"),
        "-o",
        str(directory / "register.json"),
        *extra,
    )


def test_risk_ready_then_blocked_by_expiry_stale_link_and_duplicates(
    chain: dict[str, Any],
) -> None:
    directory = chain["dir"]
    assert monitor(chain).exit_code == 0
    current = CustomerMonitoringManifest.load(directory / "mon.json").monitoring_hash
    evidence = chain["evidence"].evidence_hash
    ok = risk(directory, _risks(directory / "risks.json", evidence, current))
    assert ok.exit_code == 0, ok.output
    register = CustomerRiskRegister.load(directory / "register.json")
    validate_against_committed_schema("risk-register", register.payload())
    kinds = {link.kind for link in register.inputs}
    assert kinds == {"evidence-pack", "monitoring", "risk-decisions"}
    # Expired behind a timezone trick: "10:00+05:00" is 05:00Z, before the run clock.
    now = dt.datetime.now(dt.UTC)
    trick = (now - dt.timedelta(hours=1)).astimezone(dt.timezone(dt.timedelta(hours=5)))
    expired = risk(
        directory,
        _risks(directory / "expired.json", evidence, current, expires_at=trick.isoformat()),
    )
    assert expired.exit_code == 1
    assert "RISK_EXPIRED" in expired.output
    # A new monitoring run makes the risk's link stale.
    write_log(chain["log"], chain["package"], 401)
    assert monitor(chain).exit_code == 0
    stale = risk(directory, directory / "risks.json")
    assert stale.exit_code == 1
    assert "RISK_LINK_STALE" in stale.output
    newest = CustomerMonitoringManifest.load(directory / "mon.json").monitoring_hash
    duplicated = _risks(directory / "dup.json", evidence, newest)
    payload = json.loads(duplicated.read_text())
    payload["risks"].append(dict(payload["risks"][0]))
    write_json(duplicated, payload)
    dup = risk(directory, duplicated, "--format", "json")
    assert dup.exit_code == 1
    assert [f["code"] for f in json.loads(dup.output)["findings"]] == ["RISK_DUPLICATE_ID"]


def test_risk_blocks_a_mismatched_binding_and_refuses_bad_files(chain: dict[str, Any]) -> None:
    directory = chain["dir"]
    assert monitor(chain).exit_code == 0
    current = CustomerMonitoringManifest.load(directory / "mon.json").monitoring_hash
    other = evidence_pack(binding={"customer_id": "acme", "workspace_id": "ws", "tenant_id": "x"})
    other.write(directory / "evidence.json")
    risks = _risks(directory / "risks.json", other.evidence_hash, current)
    result = risk(directory, risks, "--format", "json")
    assert result.exit_code == 1
    codes = {f["code"] for f in json.loads(result.output)["findings"]}
    assert codes == {"RISK_BINDING_MISMATCH", "RISK_EVIDENCE_MISMATCH"}
    broken = directory / "broken.toml"
    broken.write_text("[[risks]]\nrisk_id = \n", encoding="utf-8")
    bad = risk(directory, broken)
    assert bad.exit_code == 2
    assert "invalid TOML" in bad.output and "Traceback" not in bad.output


def test_monitor_malformed_or_ambiguous_queues_block_the_evidence(chain: dict[str, Any]) -> None:
    directory = chain["dir"]
    empty_reviews = directory / "reviews.jsonl"
    empty_reviews.write_bytes(b"")
    incident = {
        "incident_id": "INC-1",
        "trace_id": "trace-000001",
        "reported_at": "2026-05-18T13:00:00Z",
        "severity": "low",
    }
    incidents = write_jsonl(
        directory / "incidents.jsonl",
        [incident, incident, b'{"incident_id": "INC-2", "severity": "urgent"}', b"{half"],
    )
    result = monitor(
        chain, "--reviews", str(empty_reviews), "--incidents", str(incidents), "--format", "json"
    )
    assert result.exit_code == 1, result.output
    payload = json.loads(result.output)
    assert payload["health_status"] == "evidence_blocked"
    found = {(f["code"], (f["location"] or "").rsplit(":", 1)[-1]) for f in payload["findings"]}
    assert ("MONITOR_INCIDENT_DUPLICATE", "2") in found
    assert ("MONITOR_INCIDENT_LINE_INVALID", "3") in found
    assert ("MONITOR_INCIDENT_LINE_INVALID", "4") in found
    assert payload["metrics"]["false_negative_incident_count"] == 1
    assert payload["review_queue_digest"] == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
