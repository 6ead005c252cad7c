"""The release gate (stage 10): one test per blocker class, on sealed chains written to disk so
chain verification runs for real."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory import Finding, SectorPack, hookimpl
from customer_model_factory.catalog import verify_chain
from customer_model_factory.context import RunContext
from customer_model_factory.errors import DataFormatError, InputError, ManifestIntegrityError
from customer_model_factory.findings import FINDING_CODES
from customer_model_factory.plugin_api import ReleaseCheckInput, ReleaseDomain
from customer_model_factory.stages.benchmark.models import CustomerBenchmarkResult
from customer_model_factory.stages.dataset import CustomerDatasetValidationReport
from customer_model_factory.stages.deployment.models import CustomerDeploymentManifest
from customer_model_factory.stages.monitoring.models import ThresholdBreach
from customer_model_factory.stages.release.build import (
    assemble_release,
    load_domain_records,
    write_domain_record,
)
from customer_model_factory.stages.release.domains import CORE_DOMAINS
from customer_model_factory.stages.release.models import CustomerReleaseGateManifest
from customer_model_factory.stages.selection.models import CustomerModelSelectionReport
from customer_model_factory.stages.training.models import CustomerTrainingManifest
from customer_model_factory.store import ArtefactStore
from customer_model_factory.testing import fresh_plugin_manager, registered

from ..conftest import validate_against_committed_schema
from ..stage_release_support import (
    BINDING,
    FILES,
    ReleaseChain,
    breach_fn,
    build_release_chain,
    not_ready,
    write_all_domain_records,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "release.md"
PRODUCTION_DOMAINS = ["deployment_hardening", "observability", "provenance", "rollback"]


def _context(root: Path, pm: Any = None) -> RunContext:
    return RunContext.for_plugin_manager(
        pm if pm is not None else fresh_plugin_manager(),
        home=root / ".cmf",
        clock=lambda: dt.datetime(2026, 5, 18, 18, 45, tzinfo=dt.UTC),
    )


def _assemble(chain: ReleaseChain, pm: Any = None, **request: Any) -> CustomerReleaseGateManifest:
    gate = assemble_release(chain.request(**request), _context(chain.root, pm))
    for blocker in gate.blockers:  # a core code, or one the blocking plugin declares
        assert blocker.code in FINDING_CODES or blocker.source.startswith("plugin."), blocker
    assert gate.promotion_allowed == (not gate.blockers) == gate.ready
    errors = [f for f in gate.findings if f.severity == "error"]
    assert len(errors) == len(gate.blockers)
    validate_against_committed_schema("release-gate", gate.payload())
    return gate


def _blocked(gate: CustomerReleaseGateManifest) -> set[tuple[str, str]]:
    return {(blocker.code, blocker.source) for blocker in gate.blockers}


def _tamper(path: Path, **changes: Any) -> None:
    payload = json.loads(path.read_text())
    payload.update(changes)
    path.write_text(json.dumps(payload))


@pytest.fixture
def chain(tmp_path: Path) -> ReleaseChain:
    return build_release_chain(tmp_path / "chain")


# ---- a clean chain ----


def test_a_consistent_chain_is_promoted_with_every_hash_verified(chain: ReleaseChain) -> None:
    gate = _assemble(chain)
    assert gate.promotion_allowed and gate.chain_verified and gate.blockers == ()
    assert (gate.environment, gate.monitoring_health) == ("staging", "within_control")
    assert gate.generated_at == "2026-05-18T18:45:00Z"
    for kind in FILES:
        assert gate.artifact_hashes[kind] == chain.manifests[kind].content_digest
    assert {"raw-results", "decision-log", "enterprise-readiness"} <= set(gate.artifact_hashes)
    assert {link.kind for link in gate.inputs} == {
        "enterprise-readiness",
        "evidence-pack",
        "monitoring",
        "risk-register",
        "runtime-package",
    }
    assert (gate.customer_id, gate.tenant_id) == (BINDING["customer_id"], BINDING["tenant_id"])


def test_the_written_gate_verifies_as_a_chain_and_is_byte_deterministic(
    chain: ReleaseChain,
) -> None:
    out = chain.root / "out" / "release_gate.json"
    _assemble(chain).write(out)
    first = out.read_bytes()
    _assemble(chain).write(out)
    assert out.read_bytes() == first
    assert CustomerReleaseGateManifest.load(out).promotion_allowed
    report = verify_chain([out])
    assert report.ready, report.first_problem
    assert {link.kind for link in report.links} >= {"dataset-report", "enterprise-readiness"}


def test_generated_at_is_parsed_and_normalised_to_utc(chain: ReleaseChain) -> None:
    gate = _assemble(chain, generated_at="2026-05-18T20:45:00+02:00")
    assert gate.generated_at == "2026-05-18T18:45:00Z"
    assert _assemble(chain, generated_at=None).generated_at == "2026-05-18T18:45:00Z"
    with pytest.raises(InputError, match="RFC 3339"):
        _assemble(chain, generated_at="18 May 2026")


# ---- tampering: direct inputs are exit 2, upstream artefacts are blockers ----


@pytest.mark.parametrize(
    "kind", ["runtime-package", "evidence-pack", "monitoring", "risk-register"]
)
def test_a_tampered_input_is_refused_naming_the_file(chain: ReleaseChain, kind: str) -> None:
    _tamper(chain.path(kind), deployment_id="deploy-other")
    with pytest.raises(ManifestIntegrityError) as caught:
        _assemble(chain)
    assert caught.value.exit_code == 2
    assert FILES[kind] in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("dataset-report", {"row_count": 7}),
        ("training-manifest", {"seed": 9}),
        ("benchmark-result", {"trace_count": 60}),
        ("selection-report", {"selection_id": "other"}),
        ("deployment", {"package_version": "9.9.9"}),
    ],
)
def test_a_tampered_upstream_artefact_is_a_chain_blocker_naming_its_kind(
    chain: ReleaseChain, kind: str, change: dict[str, Any]
) -> None:
    _tamper(chain.path(kind), **change)
    gate = _assemble(chain)
    assert not gate.promotion_allowed and not gate.chain_verified
    assert ("RELEASE_CHAIN_BROKEN", kind) in _blocked(gate)
    (blocker,) = [b for b in gate.blockers if b.source == kind]
    assert blocker.source_hash == chain.manifests[kind].content_digest
    assert "tampered" in blocker.message


@pytest.mark.parametrize(
    ("name", "kind"), [("raw_results.jsonl", "raw-results"), ("decisions.jsonl", "decision-log")]
)
def test_a_tampered_plain_artefact_is_a_chain_blocker(
    chain: ReleaseChain, name: str, kind: str
) -> None:
    (chain.root / name).write_bytes(b"{}\n")
    gate = _assemble(chain)
    assert ("RELEASE_CHAIN_BROKEN", kind) in _blocked(gate)


def test_a_replaced_upstream_manifest_that_verifies_is_still_caught(
    chain: ReleaseChain, tmp_path: Path
) -> None:
    other = build_release_chain(tmp_path / "other", overrides={"dataset-report": {"row_count": 9}})
    chain.path("dataset-report").write_bytes(other.path("dataset-report").read_bytes())
    gate = _assemble(chain)
    (blocker,) = [b for b in gate.blockers if b.source == "dataset-report"]
    assert blocker.code == "RELEASE_CHAIN_BROKEN" and "replaced or rebuilt" in blocker.message


def test_an_upstream_manifest_swapped_after_the_walk_is_caught(
    chain: ReleaseChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from customer_model_factory.stages.release import build

    other = build_release_chain(tmp_path / "other", overrides={"dataset-report": {"row_count": 9}})
    real = build.verify_chain

    def walk_then_swap(*args: Any, **kwargs: Any) -> Any:
        report = real(*args, **kwargs)
        chain.path("dataset-report").write_bytes(other.path("dataset-report").read_bytes())
        return report

    monkeypatch.setattr(build, "verify_chain", walk_then_swap)
    gate = _assemble(chain)
    (blocker,) = gate.blockers
    assert (blocker.code, blocker.source) == ("RELEASE_CHAIN_BROKEN", "dataset-report")
    assert "changed while the release was assembled" in blocker.message
    assert not gate.chain_verified


def test_a_missing_upstream_manifest_and_a_chain_that_never_reaches_the_data(
    chain: ReleaseChain, tmp_path: Path
) -> None:
    chain.path("training-manifest").unlink()
    gate = _assemble(chain)
    (blocker,) = [b for b in gate.blockers if b.source == "training-manifest"]
    assert blocker.code == "RELEASE_CHAIN_BROKEN" and "missing" in blocker.message
    # A chain whose training manifest links nothing upstream never reaches a dataset report.
    short = build_release_chain(tmp_path / "short", overrides={"training-manifest": {"inputs": []}})
    gate = _assemble(short)
    assert _blocked(gate) == {("RELEASE_CHAIN_BROKEN", "dataset-report")}
    assert not gate.chain_verified


# ---- one customer, workspace, tenant and deployment ----


@pytest.mark.parametrize("kind", ["monitoring", "dataset-report", "deployment"])
def test_a_mismatched_tenant_names_the_artefact_and_field_not_the_value(
    tmp_path: Path, kind: str
) -> None:
    chain = build_release_chain(tmp_path, overrides={kind: {"tenant_id": "tenant-xx-secret"}})
    gate = _assemble(chain)
    (blocker,) = [b for b in gate.blockers if b.code == "RELEASE_BINDING_MISMATCH"]
    assert blocker.source == kind and "tenant_id" in blocker.message
    assert "tenant-xx-secret" not in gate.model_dump_json(include={"blockers", "findings"})


def test_a_register_for_another_deployment_is_a_binding_blocker(tmp_path: Path) -> None:
    chain = build_release_chain(tmp_path, overrides={"risk-register": {"deployment_id": "dep-2"}})
    gate = _assemble(chain)
    assert ("RELEASE_BINDING_MISMATCH", "risk-register") in _blocked(gate)


def test_stale_cross_links_are_blockers(tmp_path: Path) -> None:
    stale = "sha256:" + "9" * 64
    chain = build_release_chain(
        tmp_path,
        overrides={
            "risk-register": {"monitoring_hash": stale},
            "monitoring": {"evidence_hash": stale},
        },
    )
    gate = _assemble(chain)
    assert ("RELEASE_LINK_MISMATCH", "risk-register") in _blocked(gate)
    assert ("RELEASE_LINK_MISMATCH", "monitoring") in _blocked(gate)
    messages = " ".join(b.message for b in gate.blockers)
    assert "monitoring_hash" in messages and "evidence_hash" in messages


def test_an_environment_mismatch_between_deployment_and_runtime_blocks(tmp_path: Path) -> None:
    chain = build_release_chain(tmp_path, overrides={"deployment": {"environment": "production"}})
    gate = _assemble(chain)
    assert ("RELEASE_LINK_MISMATCH", "deployment") in _blocked(gate)


# ---- readiness, risk, enterprise, monitoring ----


@pytest.mark.parametrize(
    "kind", ["risk-register", "monitoring", "evidence-pack", "runtime-package", "deployment"]
)
def test_an_input_not_ready_blocks_naming_its_kind(tmp_path: Path, kind: str) -> None:
    chain = build_release_chain(tmp_path, overrides={kind: {"findings": not_ready("RISK_X")}})
    gate = _assemble(chain)
    (blocker,) = [b for b in gate.blockers if b.code == "RELEASE_INPUT_NOT_READY"]
    assert blocker.source == kind and "RISK_X" in blocker.message


def test_an_expired_risk_register_blocks(tmp_path: Path) -> None:
    chain = build_release_chain(
        tmp_path, overrides={"risk-register": {"findings": not_ready("RISK_EXPIRED")}}
    )
    assert ("RELEASE_INPUT_NOT_READY", "risk-register") in _blocked(_assemble(chain))


def test_an_accepted_risk_expired_by_generated_at_blocks_compared_as_instants(
    chain: ReleaseChain,
) -> None:
    gate = _assemble(chain, generated_at="2026-08-01T00:00:00Z")
    assert _blocked(gate) == {("RELEASE_RISK_EXPIRED", "risk-register")}
    # 01:00+02:00 is 23:00Z the day before the expiry: as text it sorts after, as an instant
    # it is before.
    assert _assemble(chain, generated_at="2026-08-01T01:00:00+02:00").promotion_allowed


def test_a_risk_accepted_against_an_older_evidence_pack_blocks(tmp_path: Path) -> None:
    chain = build_release_chain(tmp_path)
    register = chain.manifests["risk-register"]
    (risk,) = register.risks
    stale = risk.model_copy(
        update={"linked_artifact_hashes": {**risk.linked_artifact_hashes,
                                           "evidence-pack": "sha256:" + "1" * 64}}
    )  # fmt: skip
    fields = register.model_dump(exclude={"kind", "ready", "register_hash"})
    fields["risks"] = (stale,)
    type(register).seal(**fields).write(chain.path("risk-register"))
    gate = _assemble(chain)
    (blocker,) = gate.blockers
    assert (blocker.code, blocker.source) == ("RELEASE_LINK_MISMATCH", "risk-register")
    assert "RISK-001" in blocker.message and "evidence-pack" in blocker.message


@pytest.fixture(scope="module")
def shared_chain(tmp_path_factory: pytest.TempPathFactory) -> ReleaseChain:
    """One chain for the property test (it is only read)."""
    return build_release_chain(tmp_path_factory.mktemp("shared") / "chain")


@settings(max_examples=20, deadline=None)
@given(
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
    delta_seconds=st.integers(min_value=-3 * 86400, max_value=3 * 86400),
)
def test_risk_expiry_is_judged_on_instants_whatever_the_offset(
    shared_chain: ReleaseChain, offset_minutes: int, delta_seconds: int
) -> None:
    expiry = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
    moment = expiry + dt.timedelta(seconds=delta_seconds)
    local = moment.astimezone(dt.timezone(dt.timedelta(minutes=offset_minutes)))
    gate = _assemble(shared_chain, generated_at=local.isoformat())
    expired = ("RELEASE_RISK_EXPIRED", "risk-register") in _blocked(gate)
    assert expired == (moment >= expiry)


def test_enterprise_debt_and_not_ready_block_without_echoing_debt_ids(tmp_path: Path) -> None:
    chain = build_release_chain(
        tmp_path, readiness={"ready": False, "blocking_debt_ids": ["DEBT-91-secret", "DEBT-2"]}
    )
    gate = _assemble(chain)
    assert _blocked(gate) == {
        ("RELEASE_ENTERPRISE_NOT_READY", "enterprise-readiness"),
        ("RELEASE_ENTERPRISE_DEBT", "enterprise-readiness"),
    }
    assert gate.enterprise_blocking_debt_ids == ("DEBT-2", "DEBT-91-secret")
    assert "DEBT-91" not in " ".join(b.message for b in gate.blockers)
    only_debt = build_release_chain(
        tmp_path / "b", readiness={"ready": True, "blocking_debt_ids": ["D-1"]}
    )
    assert _blocked(_assemble(only_debt)) == {("RELEASE_ENTERPRISE_DEBT", "enterprise-readiness")}


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ('{"ready": "yes"}', "ready"),
        ('{"ready": true, "extra": 1}', "extra"),
        ("[]", None),
        ('{"ready": false, "ready": true}', "ready"),
    ],
)
def test_a_malformed_enterprise_readiness_is_bad_input(
    chain: ReleaseChain, content: str, field: str | None
) -> None:
    assert chain.readiness is not None
    chain.readiness.write_text(content)
    with pytest.raises(DataFormatError) as caught:
        _assemble(chain)
    assert caught.value.exit_code == 2 and "enterprise_readiness.json" in str(caught.value)
    assert caught.value.field == field


def test_missing_inputs_are_bad_input_naming_the_file(chain: ReleaseChain) -> None:
    chain.path("monitoring").unlink()
    with pytest.raises(DataFormatError, match=r"monitoring_manifest\.json: file not found"):
        _assemble(chain)
    with pytest.raises(DataFormatError, match=r"nowhere\.json: domain evidence record: file not"):
        load_domain_records([chain.root / "nowhere.json"])
    assert chain.readiness is not None
    chain.readiness.unlink()
    with pytest.raises(DataFormatError, match="enterprise readiness: file not found"):
        _assemble(chain)


def test_a_false_negative_incident_breach_blocks(tmp_path: Path) -> None:
    chain = build_release_chain(tmp_path, overrides={"monitoring": breach_fn(2)})
    gate = _assemble(chain)
    assert ("RELEASE_MONITORING_FN_BREACH", "monitoring") in _blocked(gate)
    assert gate.monitoring_health == "review_required"


def test_a_false_negative_count_over_the_limit_blocks_even_unrecorded(tmp_path: Path) -> None:
    overrides = breach_fn(1)
    overrides["threshold_breaches"] = ()
    chain = build_release_chain(tmp_path, overrides={"monitoring": overrides})
    assert ("RELEASE_MONITORING_FN_BREACH", "monitoring") in _blocked(_assemble(chain))


def test_evidence_blocked_monitoring_blocks(tmp_path: Path) -> None:
    chain = build_release_chain(
        tmp_path, overrides={"monitoring": {"health_status": "evidence_blocked"}}
    )
    assert _blocked(_assemble(chain)) == {("RELEASE_MONITORING_EVIDENCE_BLOCKED", "monitoring")}


def test_other_monitoring_breaches_are_a_warning_not_a_blocker(tmp_path: Path) -> None:
    breach = ThresholdBreach(metric="input_drift_score", observed=0.4, limit=0.25)
    chain = build_release_chain(
        tmp_path,
        overrides={
            "monitoring": {"health_status": "review_required", "threshold_breaches": (breach,)}
        },
    )
    gate = _assemble(chain)
    assert gate.promotion_allowed
    (warning,) = [f for f in gate.findings if f.code == "RELEASE_MONITORING_REVIEW"]
    assert warning.severity == "warning" and "input_drift_score" in warning.message


# ---- plugins ----


class _SeesEverything:
    CMF_PLUGIN_API = "1.2"

    def __init__(self) -> None:
        self.seen: list[ReleaseCheckInput] = []

    @hookimpl
    def cmf_sector_packs(self) -> list[SectorPack]:
        return [
            SectorPack(
                id="zeta",
                version="1",
                title="Zeta",
                jurisdiction="EU",
                finding_codes={"RELEASE_ZETA_REFUSED": "Zeta refuses this release."},
            )
        ]

    @hookimpl
    def cmf_release_checks(self, release: ReleaseCheckInput) -> list[Finding]:
        self.seen.append(release)
        return [
            Finding(code="RELEASE_ZETA_REFUSED", severity="error", message="zeta says no"),
            Finding(code="RELEASE_ZETA_UNDECLARED", severity="error", message="also no"),
            Finding(code="RELEASE_ZETA_NOTE", severity="warning", message="a note"),
        ]


def test_a_failing_plugin_release_check_blocks_with_a_fully_typed_input(
    chain: ReleaseChain,
) -> None:
    plugin = _SeesEverything()
    with registered(plugin, name="zeta-pack") as pm:
        gate = _assemble(chain, pm)
    assert _blocked(gate) == {
        ("RELEASE_ZETA_REFUSED", "plugin.zeta-pack"),
        ("RELEASE_PLUGIN_CHECK_FAILED", "plugin.zeta-pack"),
    }
    assert any(f.code == "RELEASE_ZETA_NOTE" and f.severity == "warning" for f in gate.findings)
    (release,) = plugin.seen
    assert isinstance(release.dataset_report.manifest, CustomerDatasetValidationReport)
    assert isinstance(release.training_manifest.manifest, CustomerTrainingManifest)
    assert isinstance(release.selection.manifest, CustomerModelSelectionReport)
    assert isinstance(release.deployment.manifest, CustomerDeploymentManifest)
    (result,) = release.benchmark_results
    assert isinstance(result.manifest, CustomerBenchmarkResult)
    for name in ("evidence_pack", "runtime_package", "monitoring", "risk_register"):
        ref = getattr(release, name)
        assert ref.manifest is not None and ref.hash == ref.manifest.content_digest
    assert release.dataset_report.uri == chain.path("dataset-report").resolve().as_uri()
    assert release.sector_ids == ("example-retail-banking",)
    assert (release.environment, release.deployment_id) == ("staging", "deploy-retail-uk-1")
    assert release.tenant_id == BINDING["tenant_id"]


def test_a_raising_release_check_is_a_hook_failed_blocker(chain: ReleaseChain) -> None:
    class Raises:
        CMF_PLUGIN_API = "1.2"

        @hookimpl
        def cmf_release_checks(self, release: ReleaseCheckInput) -> list[Finding]:
            raise RuntimeError("boom")

    with registered(Raises(), name="raiser") as pm:
        gate = _assemble(chain, pm)
    (blocker,) = gate.blockers
    assert (blocker.code, blocker.source) == ("PLUGIN_HOOK_FAILED", "plugin.raiser")
    assert "RuntimeError: boom" in blocker.message


def test_plugin_problems_fail_the_gate_closed(chain: ReleaseChain) -> None:
    class BadDomains:
        CMF_PLUGIN_API = "1.2"

        @hookimpl
        def cmf_release_domains(self) -> list[Any]:
            return [{"name": "no-requirements"}]

    with registered(BadDomains(), name="bad-domains") as pm:
        gate = _assemble(chain, pm)
    assert ("PLUGIN_INVALID_CONTRIBUTION", "plugins") in _blocked(gate)


def test_a_plugin_reusing_a_core_domain_name_is_a_conflict(chain: ReleaseChain) -> None:
    class Shadow:
        CMF_PLUGIN_API = "1.2"

        @hookimpl
        def cmf_release_domains(self) -> list[ReleaseDomain]:
            return [ReleaseDomain(name="rollback", required_checks=("nothing",))]

    with registered(Shadow(), name="shadow") as pm:
        gate = _assemble(chain, pm)
    assert _blocked(gate) == {("RELEASE_DOMAIN_CONFLICT", "plugin.shadow")}


# ---- domain evidence ----


def test_production_requires_its_domain_records(tmp_path: Path) -> None:
    chain = build_release_chain(tmp_path / "c", environment="production")
    gate = _assemble(chain)
    assert _blocked(gate) == {("RELEASE_DOMAIN_MISSING", f"domain.{n}") for n in PRODUCTION_DOMAINS}
    records = write_all_domain_records(tmp_path / "records", "production")
    gate = _assemble(chain, domain_evidence=(tmp_path / "records",))
    assert gate.promotion_allowed, gate.blockers
    assert [r.domain for r in gate.domain_evidence] == sorted(records)
    assert all(r.status == "pass" and r.recomputed_hash == r.evidence_hash
               for r in gate.domain_evidence)  # fmt: skip
    assert gate.artifact_hashes["domain.rollback.evidence"].startswith("sha256:")
    assert {link.kind for link in gate.inputs} >= {"release-domain-record"}


def test_a_domain_evidence_hash_is_recomputed_not_trusted(tmp_path: Path) -> None:
    chain = build_release_chain(tmp_path / "c")
    paths = write_all_domain_records(tmp_path / "r", "staging", ["observability"])
    (tmp_path / "r" / "evidence" / "observability.txt").write_text("edited after the record\n")
    gate = _assemble(chain, domain_evidence=(paths["observability"],))
    assert _blocked(gate) == {("RELEASE_DOMAIN_EVIDENCE_MISMATCH", "domain.observability")}
    (result,) = gate.domain_evidence
    assert result.status == "blocked" and result.recomputed_hash != result.evidence_hash


def _record(directory: Path, name: str, **changes: Any) -> Path:
    paths = write_all_domain_records(directory, "staging", [name])
    _tamper(paths[name], **changes)
    return paths[name]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"checks": {"rollback_tested": False, "previous_version_available": True}},
         "RELEASE_DOMAIN_CHECK_FAILED"),
        ({"checks": {"rollback_tested": True}}, "RELEASE_DOMAIN_CHECK_FAILED"),
        ({"uris": {"rollback_package_uri": "https://x/p"}}, "RELEASE_DOMAIN_URI_MISSING"),
        ({"uris": {"rollback_package_uri": "https://x/p", "rollback_runbook_uri": "runbook"}},
         "RELEASE_DOMAIN_URI_MISSING"),
        ({"environment": "production"}, "RELEASE_DOMAIN_ENVIRONMENT_MISMATCH"),
        ({"evidence_uri": "../outside.txt"}, "RELEASE_DOMAIN_EVIDENCE_UNREADABLE"),
        ({"evidence_uri": "evidence/missing.txt"}, "RELEASE_DOMAIN_EVIDENCE_UNREADABLE"),
        ({"evidence_uri": "https://evidence.example/x"}, "RELEASE_DOMAIN_EVIDENCE_UNREADABLE"),
        ({"evidence_uri": "file:///etc/../etc/hostname"}, "RELEASE_DOMAIN_EVIDENCE_UNREADABLE"),
        ({"domain": "nobody-declares-this"}, "RELEASE_DOMAIN_UNKNOWN"),
    ],
)  # fmt: skip
def test_each_domain_record_problem_blocks(
    tmp_path: Path, changes: dict[str, Any], code: str
) -> None:
    chain = build_release_chain(tmp_path / "c")
    record = _record(tmp_path / "r", "rollback", **changes)
    gate = _assemble(chain, domain_evidence=(record,))
    assert code in {b.code for b in gate.blockers}, gate.blockers


def test_two_records_for_one_domain_are_refused(tmp_path: Path) -> None:
    chain = build_release_chain(tmp_path / "c")
    # The same file named twice (its directory and itself) is one record, not two.
    edge = write_all_domain_records(tmp_path / "d", "staging", ["edge"])["edge"]
    assert _assemble(chain, domain_evidence=(tmp_path / "d", edge)).promotion_allowed
    first = write_all_domain_records(tmp_path / "a", "staging", ["edge"])["edge"]
    second = write_all_domain_records(tmp_path / "b", "staging", ["edge"])["edge"]
    gate = _assemble(chain, domain_evidence=(first, second))
    assert _blocked(gate) == {("RELEASE_DOMAIN_DUPLICATE", "domain.edge")}


def test_store_evidence_is_read_from_the_factory_home(tmp_path: Path) -> None:
    chain = build_release_chain(tmp_path / "c")
    stored = ArtefactStore(chain.root / ".cmf").put_bytes(b"formal proof report\n")
    record = _record(tmp_path / "r", "formal", evidence_uri=stored.uri, evidence_hash=stored.digest)
    gate = _assemble(chain, domain_evidence=(record,))
    assert gate.promotion_allowed, gate.blockers
    missing = _record(
        tmp_path / "s", "formal", evidence_uri="cmf://sha256/" + "0" * 64,
        evidence_hash="sha256:" + "0" * 64,
    )  # fmt: skip
    assert "RELEASE_DOMAIN_EVIDENCE_UNREADABLE" in {
        b.code for b in _assemble(chain, domain_evidence=(missing,)).blockers
    }


def test_a_pack_domain_is_required_where_it_says(tmp_path: Path) -> None:
    class Duty:
        CMF_PLUGIN_API = "1.2"

        @hookimpl
        def cmf_release_domains(self) -> list[ReleaseDomain]:
            return [
                ReleaseDomain(
                    name="zeta.duty", required_checks=("reviewed",), required_in=("staging",)
                )
            ]

    chain = build_release_chain(tmp_path / "c")
    with registered(Duty(), name="duty") as pm:
        gate = _assemble(chain, pm)
        assert _blocked(gate) == {("RELEASE_DOMAIN_MISSING", "domain.zeta.duty")}
        evidence = tmp_path / "r" / "duty.txt"
        evidence.parent.mkdir()
        evidence.write_text("reviewed\n")
        record = tmp_path / "r" / "duty.json"
        write_domain_record(
            record, domain="zeta.duty", environment="staging", uris={},
            checks={"reviewed": True}, evidence_file=evidence,
        )  # fmt: skip
        gate = _assemble(chain, pm, domain_evidence=(tmp_path / "r",))
    assert gate.promotion_allowed
    (result,) = gate.domain_evidence
    assert result.definition_source == "plugin.duty"


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ('{"domain": "edge"}', "environment"),
        ("not json", None),
        ('{"domain": "edge", "environment": "staging", "checks": {"a": "true"}, '
         '"evidence_uri": "x", "evidence_hash": "sha256:' + "0" * 64 + '"}', "checks.a"),
    ],
)  # fmt: skip
def test_a_malformed_domain_record_is_bad_input(
    tmp_path: Path, content: str, field: str | None
) -> None:
    path = tmp_path / "record.json"
    path.write_text(content)
    with pytest.raises(DataFormatError) as caught:
        load_domain_records([path])
    assert caught.value.exit_code == 2 and caught.value.field == field


# ---- docs stay in step ----


def test_the_docs_list_every_core_domain_and_release_code() -> None:
    text = DOCS.read_text()
    for domain in CORE_DOMAINS:
        row = re.search(rf"^\| `{domain.name}` \|(.*)$", text, re.MULTILINE)
        assert row is not None, f"docs/release.md lacks a row for {domain.name}"
        cells = row.group(1)
        for name in (*domain.required_uris, *domain.required_checks):
            assert f"`{name}`" in cells, (domain.name, name)
        required = ", ".join(domain.required_in) or "—"
        assert cells.rstrip().rstrip("|").rstrip().endswith(required), domain.name
    for code in FINDING_CODES:
        if code.startswith("RELEASE_"):
            assert f"`{code}`" in text, code


# ---- evidence the pack deferred to later stages ----


def _deferring(**monitoring: Any) -> dict[str, dict[str, Any]]:
    from customer_model_factory.stages.evidence.models import ControlCoverage

    coverage = ControlCoverage(
        sector_id="default",
        control="human_escalation",
        required=("escalation_policy", "review_queue_uri"),
        present=("escalation_policy",),
        missing=(),
        deferred=("review_queue_uri",),
    )
    return {"evidence-pack": {"control_coverage": (coverage,)}, "monitoring": monitoring}


def test_a_deferred_review_queue_with_no_review_file_read_blocks(tmp_path: Path) -> None:
    chain = build_release_chain(tmp_path, overrides=_deferring())
    gate = _assemble(chain)
    assert ("RELEASE_DEFERRED_EVIDENCE_MISSING", "evidence-pack") in _blocked(gate)
    (blocker,) = [b for b in gate.blockers if b.code == "RELEASE_DEFERRED_EVIDENCE_MISSING"]
    assert "review_queue_uri" in blocker.message and "human_escalation" in blocker.message


def test_a_deferred_review_queue_proved_by_monitoring_passes(tmp_path: Path) -> None:
    proved = _deferring(review_queue_uri="reviews.jsonl", review_queue_digest="sha256:" + "c" * 64)
    gate = _assemble(build_release_chain(tmp_path, overrides=proved))
    assert "RELEASE_DEFERRED_EVIDENCE_MISSING" not in {b.code for b in gate.blockers}


# ---- a register or a date the gate must not take on trust ----


def test_a_resealed_register_with_an_unbacked_accepted_risk_still_blocks(tmp_path: Path) -> None:
    chain = build_release_chain(tmp_path)
    register = chain.manifests["risk-register"]
    (risk,) = register.risks
    bare = risk.model_copy(update={"owner": "", "compensating_controls": (), "accepted_at": ""})
    fields = register.model_dump(exclude={"kind", "ready", "register_hash"})
    fields["risks"] = (bare,)
    fields["findings"] = ()  # a forger also clears the register's own findings
    type(register).seal(**fields).write(chain.path("risk-register"))
    blocked = _blocked(_assemble(chain))
    for code in ("RISK_OWNER_MISSING", "RISK_CONTROLS_MISSING", "RISK_ACCEPTED_AT_MISSING"):
        assert (code, "risk-register") in blocked


def test_a_backdated_release_is_refused(chain: ReleaseChain) -> None:
    gate = _assemble(chain, generated_at="2000-01-01T00:00:00Z")
    assert ("RELEASE_GENERATED_AT_TOO_EARLY", "risk-register") in _blocked(gate)
