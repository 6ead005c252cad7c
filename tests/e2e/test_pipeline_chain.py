"""The whole chain through the pipeline, on the deterministic fixture: the release gate allows
promotion and every manifest validates against its committed schema; then each of these breaks
it, with a named blocker: a tampered artefact of every stage in turn, a mismatched tenant, an
expired risk, a monitoring breach (a false-negative incident)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from ..conftest import validate_against_committed_schema

pytest.importorskip("sklearn")
pytest.importorskip("customer_model_factory.stages.release.build")
pytestmark = pytest.mark.slow

from customer_model_factory.context import RunContext  # noqa: E402
from customer_model_factory.errors import CMFError  # noqa: E402
from customer_model_factory.fixture import FIXTURE_AS_OF, generate_fixture  # noqa: E402
from customer_model_factory.pipeline import run_pipeline  # noqa: E402
from customer_model_factory.plugins.switches import PluginSwitches  # noqa: E402
from customer_model_factory.stages.release.build import (  # noqa: E402
    ReleaseRequest,
    assemble_release,
)

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


def _context(root: Path) -> RunContext:
    return RunContext(switches=PluginSwitches(entry_points=False), home=root / ".cmf")


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chain") / "fixture"
    outcome = generate_fixture(root)
    assert outcome.exit_code == 0, outcome
    assert outcome.promotion_allowed is True
    return root


@pytest.fixture(scope="module")
def base(fixture_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture run once more, so its ledger knows every step (copies then reuse them)."""
    root = tmp_path_factory.mktemp("base") / "run"
    shutil.copytree(fixture_dir, root)
    outcome = run_pipeline(root / "factory.toml", context=_context(root))
    assert outcome.exit_code == 0 and outcome.promotion_allowed is True
    return root


@pytest.fixture
def work(base: Path, tmp_path: Path) -> Path:
    root = tmp_path / "work"
    shutil.copytree(base, root)
    return root


def _gate_request(root: Path) -> ReleaseRequest:
    return ReleaseRequest(
        release_id="release-fixture-20260518",
        generated_at=FIXTURE_AS_OF,
        enterprise_readiness=root / "enterprise_readiness.json",
        runtime_package=root / "runtime_package.json",
        evidence_pack=root / "evidence_pack.json",
        monitoring_manifest=root / "monitoring_manifest.json",
        risk_register=root / "risk_register.json",
        domain_evidence=(root / "domain_evidence",),
    )


def _codes(gate: Any) -> set[tuple[str, str]]:
    return {(blocker.code, blocker.source) for blocker in gate.blockers}


def test_the_fixture_allows_promotion_and_every_manifest_validates(fixture_dir: Path) -> None:
    gate = json.loads((fixture_dir / "release_gate.json").read_text())
    assert gate["promotion_allowed"] is True and gate["blockers"] == []
    assert gate["chain_verified"] is True and gate["monitoring_health"] == "within_control"
    record = json.loads((fixture_dir / "pipeline_run.json").read_text())
    assert record["release_hash"] == gate["release_hash"]
    assert record["promotion_allowed"] is True
    assert [step["step"] for step in record["steps"]][-1] == "release"
    seen = set()
    for path in sorted(fixture_dir.glob("*.json")):
        payload = json.loads(path.read_text())
        if payload.get("kind") in _SCHEMAS:
            validate_against_committed_schema(_SCHEMAS[payload["kind"]], payload)
            seen.add(payload["kind"])
    assert seen == set(_SCHEMAS)
    for name in (
        "enterprise_readiness.json",
        "runtime_package.json",
        "evidence_pack.json",
        "monitoring_manifest.json",
        "risk_register.json",
        "release_gate.json",
    ):
        assert (fixture_dir / name).is_file(), name


def test_the_gate_assembled_again_from_the_fixture_is_the_same_decision(fixture_dir: Path) -> None:
    gate = assemble_release(_gate_request(fixture_dir), _context(fixture_dir))
    assert gate.promotion_allowed is True and gate.blockers == ()


_DIRECT = (
    "runtime_package.json",
    "evidence_pack.json",
    "monitoring_manifest.json",
    "risk_register.json",
)


@pytest.mark.parametrize("name", _DIRECT)
def test_a_tampered_input_of_the_gate_is_refused_naming_the_file(work: Path, name: str) -> None:
    path = work / name
    payload = orjson.loads(path.read_bytes())
    payload["deployment_id"] = "another-deployment"
    path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    with pytest.raises(CMFError) as raised:
        assemble_release(_gate_request(work), _context(work))
    assert raised.value.exit_code == 2
    assert name in str(raised.value) and "mismatch" in str(raised.value)


def _stored(root: Path, uri: str) -> Path:
    digest = uri.removeprefix("cmf://sha256/")
    return root / ".cmf" / "objects" / "sha256" / digest[:2] / digest[2:]


@pytest.mark.parametrize(
    "kind",
    [
        "dataset-report",
        "training-manifest",
        "benchmark-result",
        "selection-report",
        "model-bundle",
        "deployment",
    ],
)
def test_a_tampered_upstream_artefact_breaks_the_chain_naming_its_kind(
    work: Path, kind: str
) -> None:
    evidence = json.loads((work / "evidence_pack.json").read_text())
    link = next(x for x in evidence["inputs"] if x["kind"] == kind)
    target = _stored(work, link["uri"])
    payload = orjson.loads(target.read_bytes())
    payload["tenant_id"] = "tampered-tenant"
    target.chmod(0o644)
    target.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    gate = assemble_release(_gate_request(work), _context(work))
    assert gate.promotion_allowed is False
    assert any(code == "RELEASE_CHAIN_BROKEN" for code, _ in _codes(gate)), _codes(gate)


def test_a_tampered_domain_evidence_file_is_a_named_blocker(work: Path) -> None:
    (work / "domain_evidence" / "evidence" / "observability.txt").write_text("edited\n")
    gate = assemble_release(_gate_request(work), _context(work))
    assert gate.promotion_allowed is False
    assert ("RELEASE_DOMAIN_EVIDENCE_MISMATCH", "domain.observability") in _codes(gate)


def test_a_tampered_output_is_restored_by_the_pipeline_and_promotion_stands(work: Path) -> None:
    gate = (work / "release_gate.json").read_bytes()
    for name in (*_DIRECT, "deployment_manifest.json", "decision_log.jsonl"):
        path = work / name
        path.write_bytes(path.read_bytes().replace(b"fixture", b"fixturX", 1))
    outcome = run_pipeline(work / "factory.toml", context=_context(work))
    assert outcome.promotion_allowed is True
    how = {step.step: step.how for step in outcome.steps}
    assert how["dataset"] == "reused"
    assert how["deploy"] == "restored" and how["score"] == "restored"
    # Restored byte for byte from the store (digest-verified), so the gate's inputs are
    # unchanged and the gate itself is reused.
    assert how["release"] == "reused"
    assert (work / "release_gate.json").read_bytes() == gate


def test_a_mismatched_tenant_is_a_named_blocker(work: Path) -> None:
    from customer_model_factory.stages.risk.models import CustomerRiskRegister

    register = CustomerRiskRegister.load(work / "risk_register.json")
    fields = register.model_dump(exclude={"register_hash"})
    fields["tenant_id"] = "another-tenant"
    CustomerRiskRegister.seal(**fields).write(work / "risk_register.json")
    gate = assemble_release(_gate_request(work), _context(work))
    assert gate.promotion_allowed is False
    assert ("RELEASE_BINDING_MISMATCH", "risk-register") in _codes(gate), _codes(gate)


def _blocked(outcome: Any) -> tuple[str | None, str]:
    step = next((s for s in outcome.steps if s.status == "blocked"), None)
    return (step.step, step.message) if step is not None else (None, "")


def test_an_expired_risk_blocks_the_run_by_name(work: Path) -> None:
    risks = (work / "risks.toml").read_text()
    (work / "risks.toml").write_text(
        risks.replace('expires_at = "2027-05-18T00:00:00Z"', 'expires_at = "2026-05-18T18:44:59Z"')
    )
    outcome = run_pipeline(work / "factory.toml", context=_context(work))
    assert outcome.exit_code == 1 and outcome.promotion_allowed is not True
    step, message = _blocked(outcome)
    assert step in {"risk", "release"}
    assert "EXPIRED" in message, message
    assert {s.step: s.how for s in outcome.steps}["monitor"] == "reused"


def test_a_monitoring_breach_blocks_the_run_by_name(work: Path) -> None:
    incident = {
        "incident_id": "INC-1",
        "trace_id": "fx-00562",
        "reported_at": "2026-05-18T12:00:00Z",
        "severity": "critical",
        "kind": "false_negative",
    }
    (work / "incidents.jsonl").write_text(json.dumps(incident) + "\n")
    # The accepted risk was decided against the monitoring before the incident; mark it
    # mitigated so the register does not block first and the gate sees the breach itself.
    risks = (work / "risks.toml").read_text()
    mitigated = risks.split("[[risks]]")[2]
    (work / "risks.toml").write_text("[[risks]]" + mitigated)
    outcome = run_pipeline(work / "factory.toml", context=_context(work))
    assert outcome.exit_code == 1 and outcome.promotion_allowed is not True
    step, message = _blocked(outcome)
    monitoring = json.loads((work / "monitoring_manifest.json").read_text())
    assert monitoring["metrics"]["false_negative_incident_count"] == 1
    assert monitoring["threshold_breaches"], monitoring
    assert step in {"monitor", "release"}, (step, message)
    assert "MONITOR" in message, message


def test_readiness_with_blocking_debt_blocks_the_release_by_name(work: Path) -> None:
    (work / "enterprise_readiness.json").write_text(
        json.dumps({"ready": False, "blocking_debt_ids": ["DEBT-7"]}) + "\n"
    )
    outcome = run_pipeline(work / "factory.toml", context=_context(work))
    assert outcome.exit_code == 1 and outcome.promotion_allowed is False
    step, message = _blocked(outcome)
    assert step == "release" and "RELEASE_ENTERPRISE" in message
    record = json.loads((work / "pipeline_run.json").read_text())
    assert record["promotion_allowed"] is False and record["completed"] is False


def test_an_input_inside_the_directory_the_runtime_replaces_is_refused(work: Path) -> None:
    from customer_model_factory.errors import ConfigError

    (work / "model").mkdir(exist_ok=True)
    shutil.move(work / "reviews.jsonl", work / "model" / "reviews.jsonl")
    config = (work / "factory.toml").read_text()
    (work / "factory.toml").write_text(config.replace('"reviews.jsonl"', '"model/reviews.jsonl"'))
    with pytest.raises(ConfigError, match="replaces the directory model"):
        run_pipeline(work / "factory.toml", context=_context(work))
    assert (work / "model" / "reviews.jsonl").is_file()


def test_a_store_object_altered_after_a_run_blocks_the_next_run_instead_of_reusing(
    work: Path,
) -> None:
    # Every step's own outputs still verify, so each is reused; the gate is not: an artefact
    # upstream of it (the raw results, reached only through the chain) no longer matches.
    result = json.loads((work / "benchmark_test-seed0.json").read_text())
    target = _stored(work, result["raw_result_uri"])
    target.chmod(0o644)
    target.write_bytes(target.read_bytes() + b"x")
    outcome = run_pipeline(work / "factory.toml", context=_context(work))
    assert outcome.promotion_allowed is False
    assert {step.step: step.how for step in outcome.steps}["release"] == "ran"
    gate = json.loads((work / "release_gate.json").read_text())
    assert "RELEASE_CHAIN_BROKEN" in {b["code"] for b in gate["blockers"]}


def _reseal(path: Path, cls: Any, **changes: Any) -> Any:
    payload = json.loads(path.read_text())
    payload.update(changes)
    fields = {k: v for k, v in payload.items() if k not in {"kind", "ready", cls.HASH_FIELD}}
    manifest = cls.seal(**fields)
    manifest.write(path)
    return manifest


def test_a_resealed_monitoring_that_hides_an_incident_is_caught_from_the_queue(
    work: Path,
) -> None:
    from customer_model_factory.stages.monitoring.models import CustomerMonitoringManifest
    from customer_model_factory.stages.risk.models import CustomerRiskRegister

    approved = next(
        json.loads(line)["trace_id"]
        for line in (work / "decision_log.jsonl").read_text().splitlines()
        if json.loads(line)["decision"] == "approve"
    )
    (work / "incidents.jsonl").write_text(
        json.dumps(
            {
                "incident_id": "INC-1",
                "trace_id": approved,
                "reported_at": "2026-05-18T13:00:00Z",
                "severity": "high",
            }
        )
        + "\n"
    )
    monitoring_path = work / "monitoring_manifest.json"
    payload = json.loads(monitoring_path.read_text())
    digest = "sha256:" + hashlib.sha256((work / "incidents.jsonl").read_bytes()).hexdigest()
    inputs = [
        {**link, "hash": digest} if link["kind"] == "incident-queue" else link
        for link in payload["inputs"]
    ]
    # The forger records the queue it read, but a count of zero and a clean bill of health.
    metrics = {**payload["metrics"], "false_negative_incident_count": 0}
    forged = _reseal(
        monitoring_path,
        CustomerMonitoringManifest,
        inputs=inputs,
        incident_queue_digest=digest,
        metrics=metrics,
        threshold_breaches=[],
        findings=[],
        health_status="within_control",
    )
    register = json.loads((work / "risk_register.json").read_text())
    for risk in register["risks"]:
        risk["linked_artifact_hashes"]["monitoring"] = forged.monitoring_hash
    _reseal(
        work / "risk_register.json",
        CustomerRiskRegister,
        monitoring_hash=forged.monitoring_hash,
        risks=register["risks"],
        inputs=[
            {**link, "hash": forged.monitoring_hash} if link["kind"] == "monitoring" else link
            for link in register["inputs"]
        ],
    )
    gate = assemble_release(_gate_request(work), _context(work))
    assert gate.promotion_allowed is False
    assert {
        ("RELEASE_MONITORING_MISMATCH", "monitoring"),
        ("RELEASE_MONITORING_FN_BREACH", "monitoring"),
    } <= _codes(gate)
