"""Stage 4: the deployment manifest built from a real selection (stages 1-3 run in-process)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_model_factory.errors import ManifestIntegrityError, StageInputError
from customer_model_factory.stages.benchmark.models import CustomerBenchmarkResult
from customer_model_factory.stages.deployment.build import (
    DeployRequest,
    build_deployment,
    check_threshold_order,
)
from customer_model_factory.stages.deployment.models import CustomerDeploymentManifest
from customer_model_factory.stages.selection.models import (
    CustomerModelSelectionReport,
    ModelBundle,
)

from ..conftest import validate_against_committed_schema
from ..stage_deploy_evidence_support import Chain, build_chain, deploy_fields, reseal

pytest.importorskip("cmf_example_retail_banking", reason="the example pack is not installed")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return build_chain(tmp_path_factory.mktemp("deploy-chain"))


def _deploy(chain: Chain, **overrides: object) -> CustomerDeploymentManifest:
    return build_deployment(DeployRequest(**deploy_fields(chain, **overrides)), chain.context())


def _codes(manifest: CustomerDeploymentManifest) -> set[str]:
    return {f.code for f in manifest.findings if f.severity == "error"}


def test_identity_and_thresholds_come_from_the_selected_candidate_and_its_calibration(chain):
    manifest = _deploy(chain)
    assert manifest.ready, manifest.findings
    selection = CustomerModelSelectionReport.load(chain.selection)
    result = CustomerBenchmarkResult.load(chain.test)
    validation = CustomerBenchmarkResult.load(chain.validation)
    bundle = ModelBundle.load(chain.bundle)
    assert manifest.selection_hash == selection.selection_hash
    assert manifest.selected_result_hash == selection.selected_result_hash == result.result_hash
    assert manifest.selected_benchmark_id == result.benchmark_id
    assert manifest.selected_train_run_id == result.train_run_id
    assert manifest.model.digest == result.model_digest
    assert manifest.model.uri == manifest.selected_model_artifact_uri
    assert manifest.bundle_hash == bundle.bundle_hash
    assert manifest.policy.thresholds_source == "calibration"
    assert manifest.policy.calibration_result_hash == validation.result_hash
    assert validation.calibration is not None
    assert manifest.policy.threshold == validation.calibration.threshold
    assert manifest.policy.escalation_threshold == validation.calibration.escalation_threshold
    links = {(link.kind, link.hash) for link in manifest.inputs}
    assert links == {
        ("selection-report", selection.selection_hash),
        ("benchmark-result", result.result_hash),
        ("benchmark-result", validation.result_hash),
        ("model-bundle", bundle.bundle_hash),
        ("model", result.model_digest),
    }
    assert all(link.uri and link.uri.startswith("cmf://sha256/") for link in manifest.inputs)
    validate_against_committed_schema("deployment", manifest.payload())


def test_the_same_inputs_give_the_same_deployment_hash(chain):
    assert _deploy(chain).deployment_hash == _deploy(chain).deployment_hash


def test_a_result_that_is_not_the_selected_candidate_is_refused(chain):
    with pytest.raises(StageInputError) as caught:
        _deploy(chain, result=chain.validation)
    assert caught.value.code == "DEPLOY_RESULT_NOT_SELECTED"


def test_a_selection_whose_selected_candidate_differs_from_the_result_is_refused(chain, tmp_path):
    selection = CustomerModelSelectionReport.load(chain.selection)
    other = CustomerBenchmarkResult.load(chain.validation)
    forged = reseal(selection, selected_result_hash=other.result_hash)
    forged.write(tmp_path / "selection.json")
    with pytest.raises(StageInputError) as caught:
        _deploy(chain, selection=tmp_path / "selection.json")
    assert caught.value.code == "DEPLOY_RESULT_NOT_SELECTED"


def test_a_selection_that_chose_nothing_is_refused(chain, tmp_path):
    selection = CustomerModelSelectionReport.load(chain.selection)
    empty = reseal(
        selection,
        selected_result_hash=None,
        selected_benchmark_id=None,
        selected_model_artifact_uri=None,
        selected_train_run_id=None,
    )
    empty.write(tmp_path / "selection.json")
    with pytest.raises(StageInputError) as caught:
        _deploy(chain, selection=tmp_path / "selection.json")
    assert caught.value.code == "DEPLOY_SELECTION_EMPTY"


def test_a_selection_that_is_not_ready_blocks_and_its_run_has_no_gate_for_it(chain, tmp_path):
    selection = CustomerModelSelectionReport.load(chain.selection)
    blocked = reseal(
        selection,
        findings=[
            {"code": "SELECT_BINDING_MISMATCH", "severity": "error", "message": "two tenants"}
        ],
    )
    blocked.write(tmp_path / "selection.json")
    manifest = _deploy(chain, selection=tmp_path / "selection.json", bundle=None)
    assert not manifest.ready
    assert {"DEPLOY_SELECTION_NOT_READY", "DEPLOY_GATE_NOT_PASSED"} <= _codes(manifest)


def test_a_tampered_selection_is_bad_input(chain, tmp_path):
    text = chain.selection.read_text().replace('"zero_silent', '"one_silent')
    (tmp_path / "selection.json").write_text(text)
    with pytest.raises(ManifestIntegrityError):
        _deploy(chain, selection=tmp_path / "selection.json")


def test_production_without_a_rollback_package_blocks(chain):
    manifest = _deploy(chain, rollback_package_uri="")
    assert _codes(manifest) == {"DEPLOY_ROLLBACK_REQUIRED"}
    assert _deploy(chain, rollback_package_uri="", environment="staging").ready


def test_rolling_back_to_the_deployed_package_blocks(chain):
    fields = deploy_fields(chain)
    manifest = _deploy(chain, rollback_package_uri=fields["package_uri"])
    assert _codes(manifest) == {"DEPLOY_ROLLBACK_IS_PACKAGE"}


def test_operator_thresholds_override_all_three_together(chain):
    manifest = _deploy(chain, threshold=0.8, abstention_threshold=0.6, escalation_threshold=0.4)
    assert manifest.ready
    assert manifest.policy.thresholds_source == "operator"
    assert manifest.policy.calibration_result_hash is None
    assert (manifest.policy.threshold, manifest.policy.escalation_threshold) == (0.8, 0.4)


def test_thresholds_out_of_order_block(chain):
    manifest = _deploy(chain, threshold=0.5, abstention_threshold=0.6, escalation_threshold=0.4)
    assert _codes(manifest) == {"DEPLOY_THRESHOLDS_OUT_OF_ORDER"}


@pytest.mark.parametrize(
    "given_thresholds",
    [{"threshold": 0.8}, {"threshold": 0.8, "abstention_threshold": 0.5}],
)
def test_a_partial_threshold_override_is_bad_input(chain, given_thresholds):
    with pytest.raises(StageInputError) as caught:
        _deploy(chain, **given_thresholds)
    assert caught.value.code == "DEPLOY_THRESHOLDS_PARTIAL"


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan")])
def test_a_threshold_outside_zero_one_is_bad_input(chain, bad):
    with pytest.raises(StageInputError):
        _deploy(chain, threshold=bad, abstention_threshold=0.5, escalation_threshold=0.1)


def test_a_bundle_of_another_run_blocks(chain, tmp_path):
    bundle = ModelBundle.load(chain.bundle)
    other = reseal(bundle, train_run_id="f" * 64)
    other.write(tmp_path / "bundle.json")
    manifest = _deploy(chain, bundle=tmp_path / "bundle.json")
    assert _codes(manifest) == {"DEPLOY_BUNDLE_MISMATCH", "DEPLOY_BUNDLE_NOT_PUBLISHED"}
    assert any(f.field == "bundle.train_run_id" for f in manifest.findings)


def test_a_bundle_of_another_tenant_blocks(chain, tmp_path):
    bundle = ModelBundle.load(chain.bundle)
    reseal(bundle, tenant_id="retail-ie").write(tmp_path / "bundle.json")
    manifest = _deploy(chain, bundle=tmp_path / "bundle.json")
    assert _codes(manifest) == {"DEPLOY_BINDING_MISMATCH", "DEPLOY_BUNDLE_NOT_PUBLISHED"}


def test_a_calibration_result_that_did_not_calibrate_the_run_blocks(chain):
    manifest = _deploy(chain, calibration=chain.test)
    assert _codes(manifest) == {"DEPLOY_CALIBRATION_MISMATCH"}
    assert _deploy(chain, calibration=chain.validation).ready


def test_credentials_in_a_declared_uri_are_refused_and_never_echoed(chain):
    with pytest.raises(StageInputError) as caught:
        _deploy(chain, audit_log_uri="https://ops:hunter2@logs.example.com/decisions")
    assert caught.value.code == "DEPLOY_URI_INVALID"
    assert "hunter2" not in str(caught.value)


def test_a_selection_the_gate_receipt_was_not_given_for_blocks(chain, tmp_path):
    selection = CustomerModelSelectionReport.load(chain.selection)
    reseal(selection, selection_id="another-selection").write(tmp_path / "selection.json")
    manifest = _deploy(chain, selection=tmp_path / "selection.json", bundle=None)
    assert _codes(manifest) == {"DEPLOY_GATE_NOT_PASSED"}


unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(unit, unit, unit)
def test_threshold_order_holds_exactly_when_the_bands_nest(t, a, e):
    assert (check_threshold_order(t, a, e) == []) == (t >= a >= e)


def test_a_selection_that_is_not_json_is_bad_input_located_by_line(chain, tmp_path):
    from customer_model_factory.errors import DataFormatError

    (tmp_path / "selection.json").write_text('{\n  "kind": "selection-report",\n  oops\n}\n')
    with pytest.raises(DataFormatError) as caught:
        _deploy(chain, selection=tmp_path / "selection.json")
    assert caught.value.line == 3
    with pytest.raises(DataFormatError, match="file not found"):
        _deploy(chain, selection=tmp_path / "absent.json")


def test_a_bundle_sealed_but_never_published_blocks(chain, tmp_path):
    bundle = ModelBundle.load(chain.bundle)
    reseal(bundle, version="9.9.9").write(tmp_path / "bundle.json")
    manifest = _deploy(chain, bundle=tmp_path / "bundle.json")
    assert _codes(manifest) == {"DEPLOY_BUNDLE_NOT_PUBLISHED"}


def test_a_forged_selection_of_a_validation_result_blocks(chain, tmp_path):
    selection = CustomerModelSelectionReport.load(chain.selection)
    validation = CustomerBenchmarkResult.load(chain.validation)
    forged = reseal(selection, selected_result_hash=validation.result_hash)
    forged.write(tmp_path / "selection.json")
    manifest = _deploy(
        chain,
        selection=tmp_path / "selection.json",
        result=chain.validation,
        bundle=None,
        threshold=0.9,
        abstention_threshold=0.5,
        escalation_threshold=0.1,
    )
    assert {"DEPLOY_RESULT_NOT_READY", "DEPLOY_GATE_NOT_PASSED"} <= _codes(manifest)


def test_a_result_carrying_thresholds_outside_zero_one_is_bad_input_not_a_crash(chain, tmp_path):
    result = CustomerBenchmarkResult.load(chain.test)
    thresholds = result.thresholds.model_dump(mode="json") | {"threshold": 2.0}
    forged = reseal(result, thresholds=thresholds).write(tmp_path / "test.json")
    selection = CustomerModelSelectionReport.load(chain.selection)
    reseal(selection, selected_result_hash=CustomerBenchmarkResult.load(forged).result_hash).write(
        tmp_path / "selection.json"
    )
    with pytest.raises(StageInputError) as caught:
        _deploy(chain, selection=tmp_path / "selection.json", result=forged, bundle=None)
    assert caught.value.code == "DEPLOY_THRESHOLDS_OUT_OF_ORDER"
