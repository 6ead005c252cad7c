"""Stage 6: the evidence pack manifest built over a real chain (stages 1-4 run in-process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from customer_model_factory.errors import InputError, ManifestIntegrityError
from customer_model_factory.plugin_api import SectorPack, hookimpl
from customer_model_factory.plugin_api.contracts import (
    DEFAULT_CONTROL_EVIDENCE,
    build_sector_evidence_mapping,
)
from customer_model_factory.stages.benchmark.models import CustomerBenchmarkResult
from customer_model_factory.stages.dataset.models import CustomerDatasetValidationReport
from customer_model_factory.stages.deployment.models import CustomerDeploymentManifest
from customer_model_factory.stages.evidence.build import (
    BUILTIN_EVIDENCE,
    DEFERRED_EVIDENCE,
    EvidenceRequest,
    build_evidence_pack,
    check_callbacks,
    control_coverage,
)
from customer_model_factory.stages.evidence.models import CustomerEvidencePackManifest
from customer_model_factory.stages.training.models import CustomerTrainingManifest
from customer_model_factory.store import ArtefactStore
from customer_model_factory.testing import registered

from ..conftest import validate_against_committed_schema
from ..stage_deploy_evidence_support import (
    PACK_EVIDENCE,
    SECTOR,
    Chain,
    build_chain,
    evidence_fields,
    reseal,
    write_deployment,
    write_operational_files,
)

pytest.importorskip("cmf_example_retail_banking", reason="the example pack is not installed")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Chain, Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("evidence-chain")
    chain = build_chain(root)
    deployment = write_deployment(chain, root / "deployment.json")
    return chain, deployment, write_operational_files(root / "ops")


def _build(setup, **overrides: object) -> CustomerEvidencePackManifest:
    chain, deployment, files = setup
    request = EvidenceRequest(**evidence_fields(chain, deployment, files, **overrides))
    return build_evidence_pack(request, chain.context())


def _errors(manifest: CustomerEvidencePackManifest) -> list[tuple[str, str | None]]:
    return [(f.code, f.field) for f in manifest.findings if f.severity == "error"]


def test_a_ready_pack_binds_the_whole_chain_by_digest(setup):
    chain, deployment_path, _ = setup
    pack = _build(setup)
    assert pack.ready, pack.findings
    validate_against_committed_schema("evidence-pack", pack.payload())
    deployment = CustomerDeploymentManifest.load(deployment_path)
    result = CustomerBenchmarkResult.load(chain.test)
    training = CustomerTrainingManifest.load(chain.training)
    report = CustomerDatasetValidationReport.load(chain.report)
    roles = {a.role: a for a in pack.artefact_files}
    assert {
        "deployment", "selection", "benchmark", "calibration", "bundle", "training_manifest",
        "dataset_report", "model", "raw_results", "gate_receipt", "audit_log", "rollback",
        "telemetry", f"sector_mapping.{SECTOR}",
    } <= set(roles)  # fmt: skip
    assert roles["deployment"].manifest_hash == deployment.deployment_hash
    assert roles["training_manifest"].manifest_hash == training.manifest_hash  # from the chain
    assert roles["dataset_report"].manifest_hash == report.report_hash
    assert roles["model"].digest == deployment.model.digest
    assert {f"model_file.{name}" for name in deployment.model.files} <= set(roles)
    assert roles["raw_results"].digest == result.raw_result_digest
    assert pack.artefacts == {role: a.digest for role, a in roles.items()}
    assert pack.deployment_hash == deployment.deployment_hash
    store = ArtefactStore(chain.home)
    for artefact in pack.artefact_files:  # every artefact is stored, so export needs nothing else
        assert store.verify(artefact.digest).size == artefact.size_bytes
    linked = {(link.kind, link.hash) for link in pack.inputs}
    assert ("deployment", deployment.deployment_hash) in linked
    assert ("model", deployment.model.digest) in linked
    mapping = pack.sector_mappings[0]
    assert (mapping.sector_id, mapping.plugin) == (SECTOR, "example-retail-banking")
    assert mapping.distribution == "cmf-example-retail-banking"


def test_every_control_has_its_kinds_and_downstream_kinds_are_deferred(setup):
    pack = _build(setup)
    for row in pack.control_coverage:
        assert row.missing == ()
        assert set(row.present) | set(row.deferred) == set(row.required)
    model_risk = next(r for r in pack.control_coverage if r.control == "model_risk")
    assert model_risk.deferred == ("risk_register_hash",)
    assert pack.evidence_kinds["risk_register_hash"] == "deferred:risk-register"
    assert pack.evidence_kinds["dataset_hash"] == "dataset_report"
    assert pack.evidence_kinds["model_validation_report"] == "evidence.model_validation_report"
    assert "risk_register_hash" not in pack.control_evidence["model_risk"]
    assert any(f.code == "EVIDENCE_CONTROL_EVIDENCE_DEFERRED" for f in pack.findings)


def test_a_missing_evidence_kind_names_sector_control_and_kind(setup):
    files = setup[2]
    evidence = {k: str(files[k]) for k in PACK_EVIDENCE if k != "model_validation_report"}
    pack = _build(setup, evidence=evidence)
    assert not pack.ready
    missing = [f for f in pack.findings if f.code == "EVIDENCE_CONTROL_EVIDENCE_MISSING"]
    assert len(missing) == 1
    assert SECTOR in missing[0].message and "'model_risk'" in missing[0].message
    assert "'model_validation_report'" in missing[0].message
    row = next(r for r in pack.control_coverage if r.control == "model_risk")
    assert row.missing == ("model_validation_report",)


def test_the_same_inputs_give_the_same_evidence_hash(setup):
    assert _build(setup).evidence_hash == _build(setup).evidence_hash


def test_a_core_kind_cannot_be_proved_by_an_operator_file(setup):
    _, _, files = setup
    with pytest.raises(InputError, match="dataset_hash"):
        _build(setup, evidence={"dataset_hash": str(files["telemetry"])})
    with pytest.raises(InputError, match="risk-register"):
        _build(setup, evidence={"risk_register_hash": str(files["telemetry"])})


def test_an_operator_file_no_control_needs_is_a_warning(setup):
    _, _, files = setup
    evidence = {k: str(files[k]) for k in PACK_EVIDENCE} | {
        "board_minutes": str(files["telemetry"])
    }
    pack = _build(setup, evidence=evidence)
    assert pack.ready
    assert any(f.code == "EVIDENCE_KIND_UNUSED" for f in pack.findings)


def test_a_selection_that_is_not_the_deployments_blocks(setup, tmp_path):
    chain, _, _ = setup
    from customer_model_factory.stages.selection.models import CustomerModelSelectionReport

    other = reseal(CustomerModelSelectionReport.load(chain.selection), selection_id="other")
    pack = _build(setup, selection=other.write(tmp_path / "selection.json"))
    assert ("EVIDENCE_CHAIN_MISMATCH", "deployment.selection_hash") in _errors(pack)
    assert ("EVIDENCE_GATE_RECEIPT_MISSING", "gate_receipt") in _errors(pack)


def test_a_result_that_is_not_the_selected_one_blocks(setup):
    chain, _, _ = setup
    pack = _build(setup, result=chain.validation)
    assert ("EVIDENCE_CHAIN_MISMATCH", "deployment.selected_result_hash") in _errors(pack)


def test_a_training_manifest_the_chain_does_not_link_blocks(setup, tmp_path):
    chain, _, _ = setup
    other = reseal(CustomerTrainingManifest.load(chain.training), package_id="other")
    pack = _build(setup, training_manifest=other.write(tmp_path / "training.json"))
    assert ("EVIDENCE_CHAIN_MISMATCH", "training_manifest") in _errors(pack)


def test_a_dataset_report_of_another_tenant_blocks(setup, tmp_path):
    chain, _, _ = setup
    report = reseal(CustomerDatasetValidationReport.load(chain.report), tenant_id="retail-ie")
    pack = _build(setup, dataset_report=report.write(tmp_path / "report.json"))
    codes = {code for code, _ in _errors(pack)}
    assert {"EVIDENCE_BINDING_MISMATCH", "EVIDENCE_CHAIN_MISMATCH"} <= codes


def test_a_deployment_that_is_not_ready_blocks(setup, tmp_path):
    chain, _, _ = setup
    blocked = write_deployment(chain, tmp_path / "deployment.json", rollback_package_uri="")
    pack = _build(setup, deployment=blocked)
    assert ("EVIDENCE_INPUT_NOT_READY", "deployment") in _errors(pack)


def test_a_tampered_deployment_is_bad_input(setup, tmp_path):
    _, deployment, _ = setup
    text = deployment.read_text().replace('"retention_days": 365', '"retention_days": 1')
    (tmp_path / "deployment.json").write_text(text)
    with pytest.raises(ManifestIntegrityError):
        _build(setup, deployment=tmp_path / "deployment.json")


def test_an_artefact_that_cannot_be_read_is_bad_input(setup, tmp_path):
    with pytest.raises(InputError):
        _build(setup, audit_log=str(tmp_path / "absent.jsonl"))
    with pytest.raises(InputError, match="only a local file"):
        _build(setup, telemetry="s3://bucket/telemetry.json")


def test_a_file_uri_and_a_store_uri_are_read_and_hashed(setup):
    chain, _, files = setup
    stored = ArtefactStore(chain.home).put_file(files["telemetry"])
    pack = _build(setup, audit_log=files["audit_log"].as_uri(), telemetry=stored.uri)
    roles = {a.role: a for a in pack.artefact_files}
    assert roles["telemetry"].digest == stored.digest
    assert roles["audit_log"].source_uri == files["audit_log"].as_uri()


def test_a_report_the_chain_cannot_reach_leaves_the_sectors_unknown(setup, tmp_path):
    chain, _, _ = setup
    # A training manifest linking its dataset report by hash only (no store URI), and no
    # --dataset-report: the data's sectors, hence their mappings, are unknown.
    training = CustomerTrainingManifest.load(chain.training)
    unlinked = reseal(
        training, inputs=[{"kind": link.kind, "hash": link.hash} for link in training.inputs]
    )
    result = CustomerBenchmarkResult.load(chain.test)
    assert result.training_manifest_hash == training.manifest_hash
    pack = _build(setup, training_manifest=unlinked.write(tmp_path / "training.json"))
    assert ("EVIDENCE_SECTORS_UNKNOWN", "dataset_report") in _errors(pack)
    assert pack.sector_mappings == () and not pack.ready


def test_data_without_sectors_is_checked_against_the_default_mapping(setup, tmp_path):
    chain, _, _ = setup
    report = CustomerDatasetValidationReport.load(chain.report)
    plain = reseal(report, sector_counts={}, sector_owners={}, vertical=None)
    pack = _build(setup, dataset_report=plain.write(tmp_path / "report.json"))
    assert [m.sector_id for m in pack.sector_mappings] == ["default"]
    assert pack.sector_mappings[0].plugin is None
    assert {r.control for r in pack.control_coverage} == set(DEFAULT_CONTROL_EVIDENCE)
    assert any(f.code == "EVIDENCE_SECTOR_DEFAULT_MAPPING" for f in pack.findings)


def test_a_sector_no_pack_owns_gets_the_default_mapping(setup, tmp_path):
    chain, _, _ = setup
    report = CustomerDatasetValidationReport.load(chain.report)
    counts = dict(report.sector_counts) | {"unowned-sector": 3}
    other = reseal(report, sector_counts=counts)
    pack = _build(setup, dataset_report=other.write(tmp_path / "report.json"))
    sectors = {m.sector_id: m.plugin for m in pack.sector_mappings}
    assert sectors == {SECTOR: "example-retail-banking", "unowned-sector": None}


def test_a_reviewed_mapping_is_checked_in_addition(setup, tmp_path):
    mapping = build_sector_evidence_mapping(
        sector_id=SECTOR,
        jurisdiction="UK",
        evidence_pack_uri="file:///srv/cmf/evidence/",
        control_evidence={"board_oversight": ("board_minutes",)},
    )
    path = mapping.write(tmp_path / "mapping.json")
    pack = _build(setup, sector_mappings=(path,))
    assert not pack.ready
    assert any("board_minutes" in f.message for f in pack.findings)
    assert len(pack.sector_mappings) == 2


def test_callbacks_are_off_by_default_and_endpoints_then_block(setup):
    pack = _build(setup, callback_endpoints=("https://hooks.example.com/cmf",))
    assert ("EVIDENCE_CALLBACKS_NOT_ALLOWED", "callback_endpoints") in _errors(pack)
    assert pack.external_callbacks_allowed is False


def test_allowed_callbacks_need_https_and_a_listed_host(setup):
    pack = _build(
        setup,
        allow_callbacks=True,
        callback_endpoints=("https://hooks.example.com/cmf",),
        callback_hosts=("Hooks.Example.com",),
    )
    assert pack.ready and pack.callback_allowlist == ("hooks.example.com",)


@pytest.mark.parametrize(
    ("endpoint", "code"),
    [
        ("http://hooks.example.com/cmf", "EVIDENCE_CALLBACK_NOT_HTTPS"),
        ("https://evil.example.net/cmf", "EVIDENCE_CALLBACK_HOST_NOT_ALLOWED"),
        ("https://hooks.example.com.evil.net/cmf", "EVIDENCE_CALLBACK_HOST_NOT_ALLOWED"),
        ("ftp://hooks.example.com/", "EVIDENCE_CALLBACK_NOT_HTTPS"),
    ],
)
def test_a_callback_endpoint_outside_the_policy_blocks(endpoint, code):
    findings, _ = check_callbacks(True, (endpoint,), ("hooks.example.com",))
    assert code in {f.code for f in findings}


@pytest.mark.parametrize(
    "endpoint",
    ["https://user:s3cret@hooks.example.com/", "https://hooks.example.com/a b", "https://[::1"],
)
def test_a_malformed_or_credentialed_endpoint_is_bad_input_and_never_echoed(endpoint):
    with pytest.raises(InputError) as caught:
        check_callbacks(True, (endpoint,), ("hooks.example.com",))
    assert "s3cret" not in str(caught.value)


def test_control_coverage_splits_required_kinds():
    mapping = build_sector_evidence_mapping(
        sector_id="s",
        jurisdiction="UK",
        evidence_pack_uri="file:///e/",
        control_evidence={"c": ("dataset_hash", "risk_register_hash", "unknown_kind")},
    )
    rows, findings = control_coverage(mapping, {"dataset_hash": "dataset_report"})
    assert (rows[0].present, rows[0].deferred, rows[0].missing) == (
        ("dataset_hash",),
        ("risk_register_hash",),
        ("unknown_kind",),
    )
    assert [f.code for f in findings] == ["EVIDENCE_CONTROL_EVIDENCE_MISSING"]


def test_every_default_kind_is_built_in_or_deferred():
    kinds = {k for kinds in DEFAULT_CONTROL_EVIDENCE.values() for k in kinds}
    assert kinds <= set(BUILTIN_EVIDENCE) | set(DEFERRED_EVIDENCE)
    assert not set(BUILTIN_EVIDENCE) & set(DEFERRED_EVIDENCE)


def test_a_kind_that_is_not_a_plain_id_gets_a_safe_file_name(setup, tmp_path):
    _, _, files = setup
    kind = "ISO 27001 A.5.1/../x"
    mapping = build_sector_evidence_mapping(
        sector_id=SECTOR,
        jurisdiction="UK",
        evidence_pack_uri="file:///srv/cmf/evidence/",
        control_evidence={"board_oversight": (kind,)},
    )
    evidence = {k: str(files[k]) for k in PACK_EVIDENCE} | {kind: str(files["telemetry"])}
    pack = _build(setup, sector_mappings=(mapping.write(tmp_path / "m.json"),), evidence=evidence)
    assert pack.ready, pack.findings
    artefact = next(a for a in pack.artefact_files if a.role == f"evidence.{kind}")
    assert artefact.path.startswith("evidence/kind-") and ".." not in artefact.path


@pytest.mark.parametrize("kind", ["", "a\nb", "x" * 129])
def test_a_malformed_evidence_kind_is_bad_input(setup, kind):
    _, _, files = setup
    with pytest.raises(InputError):
        _build(setup, evidence={kind: str(files["telemetry"])})


class _Pack:
    """A test pack owning one sector; its evidence mapping hook can raise."""

    CMF_PLUGIN_API = "1.1"

    def __init__(self, sector: str, *, raises: bool = False) -> None:
        self.sector = sector
        self.raises = raises

    @hookimpl
    def cmf_sector_packs(self) -> list[SectorPack]:
        return [SectorPack(id=self.sector, version="1", title="T", jurisdiction="UK")]

    @hookimpl
    def cmf_evidence_mappings(self, sector_id: str) -> list[Any] | None:
        if self.raises:
            raise RuntimeError("mapping store unreachable")
        if sector_id != self.sector:
            return None
        return [
            build_sector_evidence_mapping(
                sector_id=sector_id, jurisdiction="UK", evidence_pack_uri="file:///e/"
            )
        ]


def _build_with(setup, pm, **overrides: object) -> CustomerEvidencePackManifest:
    from customer_model_factory.context import RunContext

    chain, deployment, files = setup
    request = EvidenceRequest(**evidence_fields(chain, deployment, files, **overrides))
    return build_evidence_pack(request, RunContext.for_plugin_manager(pm, home=chain.home))


def test_a_mapping_hook_that_raises_fails_closed(setup, tmp_path):
    chain, _, _ = setup
    report = CustomerDatasetValidationReport.load(chain.report)
    insured = reseal(report, sector_counts={"acme-insurance": 3}, sector_owners={}, vertical=None)
    with registered(_Pack("acme-insurance", raises=True)) as pm:
        pack = _build_with(setup, pm, dataset_report=insured.write(tmp_path / "r.json"))
    assert not pack.ready
    assert "PLUGIN_HOOK_FAILED" in {code for code, _ in _errors(pack)}


def test_the_pack_that_validated_a_sector_must_still_own_it(setup):
    with registered(_Pack("other-sector")) as pm:  # the example pack is not loaded here
        pack = _build_with(setup, pm)
    assert ("EVIDENCE_SECTOR_OWNER_MISSING", "sector_mappings") in _errors(pack)
    with registered(_Pack(SECTOR), name="impostor-pack") as pm:
        pack = _build_with(setup, pm)
    assert ("EVIDENCE_SECTOR_OWNER_CHANGED", "sector_mappings") in _errors(pack)


@pytest.mark.parametrize("value", ["decisions\x00.jsonl", "file:///tmp/a\nb", "cmf://sha256/zz"])
def test_a_location_with_a_control_character_or_a_bad_digest_is_bad_input(setup, value):
    with pytest.raises(InputError):
        _build(setup, audit_log=value)
