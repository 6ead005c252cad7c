"""Stage 7: the runtime package (bound to one deployment, its evidence pack and its selected
result), the reference runtime that loads it byte-verified and scores by the policy, and the
decision log it appends to."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_model_factory.errors import (
    DataFormatError,
    InputError,
    ManifestIntegrityError,
    StageInputError,
)
from customer_model_factory.findings import Finding
from customer_model_factory.stages.benchmark.calibration import CalibratedThresholds
from customer_model_factory.stages.deployment.models import (
    CustomerDeploymentManifest,
    DeploymentPolicy,
)
from customer_model_factory.stages.runtime.build import (
    PACKAGE_FILE,
    RuntimeRequest,
    build_runtime_package,
    write_runtime_package,
)
from customer_model_factory.stages.runtime.decision_log import append_lines
from customer_model_factory.stages.runtime.models import CustomerRuntimePackage, DecisionRecord
from customer_model_factory.stages.runtime.policy import decide
from customer_model_factory.stages.runtime.score import load_runtime, score_file

from ..conftest import validate_against_committed_schema
from ..stage3_support import write_jsonl
from ..stage_runtime_support import (
    Ticks,
    build_chain,
    build_runtime,
    requests_of,
    seal_deployment,
    seal_evidence_pack,
    write_inputs,
)

pytest.importorskip("cmf_example_retail_banking", reason="the example pack is not installed")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    chain = build_chain(tmp_path_factory.mktemp("runtime"))
    chain["runtime"] = build_runtime(chain, chain["root"] / "built")
    return chain


def _copy_runtime(chain: dict[str, Any], tmp_path: Path) -> Path:
    target = tmp_path / "runtime"
    shutil.copytree(chain["runtime"], target)
    return target


def _request(inputs: dict[str, Path], **fields: Any) -> RuntimeRequest:
    return RuntimeRequest(**inputs, runtime_id="rt", runtime_mode="offline_private", **fields)


# ---- build ----


def test_the_package_binds_deployment_evidence_result_and_model(chain):
    package = CustomerRuntimePackage.load(chain["runtime"] / PACKAGE_FILE)
    validate_against_committed_schema("runtime-package", package.payload())
    assert package.ready and package.runtime_mode == "on_prem"
    kinds = {link.kind: link for link in package.inputs}
    assert set(kinds) == {"deployment", "evidence-pack", "benchmark-result", "model"}
    test = chain["test"]
    assert kinds["benchmark-result"].hash == test.result_hash
    assert kinds["model"].hash == chain["training"].model.digest
    config = package.runtime_config
    assert config.reference_histograms == test.reference_histograms
    assert config.reference_result_hash == test.result_hash
    assert config.cost_model.per_decision == 0.0001
    assert config.package_version == "2026.03.1"
    # Every link to a manifest resolves from the store by its uri.
    for link in package.inputs:
        assert link.uri is not None and link.uri.startswith("cmf://sha256/")


def test_model_files_are_copied_and_match_their_digests(chain):
    package = CustomerRuntimePackage.load(chain["runtime"] / PACKAGE_FILE)
    model_dir = chain["runtime"] / package.runtime_config.model_dir
    from customer_model_factory.canonical import sha256_file

    for name, digest in package.runtime_config.model.files.items():
        assert sha256_file(model_dir / name) == digest
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(package.runtime_config.model.files)


def test_building_twice_gives_the_same_bytes(chain, tmp_path):
    again = build_runtime(chain, tmp_path)
    assert (again / PACKAGE_FILE).read_bytes() == (chain["runtime"] / PACKAGE_FILE).read_bytes()


def test_a_stale_file_in_the_model_dir_is_removed_on_rebuild(chain, tmp_path):
    runtime = build_runtime(chain, tmp_path)
    (runtime / "model" / "stale.bin").write_bytes(b"old")
    build_runtime(chain, tmp_path)
    assert not (runtime / "model" / "stale.bin").exists()


def test_a_model_dir_holding_other_data_or_an_input_is_never_deleted(chain, tmp_path):
    inputs = write_inputs(chain, tmp_path / "in")
    package = build_runtime_package(_request(inputs), chain["context"])
    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)
    (out / "model" / "precious.txt").write_text("keep me")
    with pytest.raises(InputError, match="not an earlier runtime package"):
        write_runtime_package(package, out, context=chain["context"])
    assert (out / "model" / "precious.txt").read_text() == "keep me"
    inside = tmp_path / "inside"
    (inside / "model").mkdir(parents=True)
    moved = inside / "model" / "deployment.json"
    shutil.copy(inputs["deployment"], moved)
    (inside / PACKAGE_FILE).write_text("{}")
    with pytest.raises(InputError, match="inside the package's model directory"):
        write_runtime_package(package, inside, context=chain["context"], inputs=[moved])
    assert moved.is_file()


def _codes(package: CustomerRuntimePackage) -> set[str]:
    return {finding.code for finding in package.findings}


def test_an_evidence_pack_of_another_deployment_is_an_error_finding(chain, tmp_path):
    inputs = write_inputs(chain, tmp_path)
    other = seal_deployment(chain, deployment_id="another-deployment")
    seal_evidence_pack(other).write(inputs["evidence_pack"])
    package = build_runtime_package(_request(inputs), chain["context"])
    assert not package.ready
    assert "RUNTIME_EVIDENCE_OTHER_DEPLOYMENT" in _codes(package)


def test_an_evidence_pack_of_another_tenant_is_an_error_finding(chain, tmp_path):
    inputs = write_inputs(chain, tmp_path)
    deployment = CustomerDeploymentManifest.load(inputs["deployment"])
    seal_evidence_pack(deployment, tenant_id="retail-ie").write(inputs["evidence_pack"])
    package = build_runtime_package(_request(inputs), chain["context"])
    findings = [f for f in package.findings if f.code == "RUNTIME_BINDING_MISMATCH"]
    assert [f.field for f in findings] == ["tenant_id"]
    assert "retail-ie" not in findings[0].message  # identifiers are never echoed


def test_a_result_other_than_the_selected_one_is_an_error_finding(chain, tmp_path):
    inputs = write_inputs(chain, tmp_path)
    chain["validation"].write(inputs["result"])
    package = build_runtime_package(_request(inputs), chain["context"])
    assert "RUNTIME_RESULT_NOT_SELECTED" in _codes(package)


def test_a_deployment_of_another_model_is_an_error_finding(chain, tmp_path):
    model = chain["training"].model
    files = dict(model.files)
    files["config.json"] = "sha256:" + "0" * 64
    forged = model.model_copy(update={"files": files})
    inputs = write_inputs(chain, tmp_path, model=forged)
    package = build_runtime_package(_request(inputs), chain["context"])
    assert "RUNTIME_MODEL_INDEX_INVALID" in _codes(package)


def test_a_result_without_reference_histograms_is_refused(chain, tmp_path):
    payload = chain["test"].payload()
    payload.pop("result_hash")
    payload["reference_histograms"] = None
    from customer_model_factory.stages.benchmark.models import CustomerBenchmarkResult

    bare = CustomerBenchmarkResult.seal(**{k: v for k, v in payload.items() if k != "ready"})
    inputs = write_inputs(chain, tmp_path, result=bare)
    bare.write(inputs["result"])
    with pytest.raises(StageInputError) as caught:
        build_runtime_package(_request(inputs), chain["context"])
    assert caught.value.code == "RUNTIME_REFERENCE_HISTOGRAMS_MISSING"
    assert caught.value.exit_code == 2


def test_a_tampered_deployment_is_refused(chain, tmp_path):
    inputs = write_inputs(chain, tmp_path)
    text = inputs["deployment"].read_text().replace('"retail-uk"', '"retail-ie"', 1)
    inputs["deployment"].write_text(text)
    with pytest.raises(ManifestIntegrityError):
        build_runtime_package(_request(inputs), chain["context"])


@pytest.mark.parametrize("model_dir", ["../outside", "/abs", "a/../b", "", "a\\b"])
def test_a_model_dir_outside_the_package_is_refused(chain, tmp_path, model_dir):
    inputs = write_inputs(chain, tmp_path)
    with pytest.raises(ValueError, match="model_dir"):
        build_runtime_package(_request(inputs, model_dir=model_dir), chain["context"])


def test_a_corrupted_store_object_writes_no_package(chain, tmp_path):
    inputs = write_inputs(chain, tmp_path / "in")
    package = build_runtime_package(_request(inputs), chain["context"])
    from customer_model_factory.store import ArtefactStore

    home = tmp_path / "home"
    shutil.copytree(chain["home"], home)
    store = ArtefactStore(home)
    digest = package.runtime_config.model.files["weights.npz"]
    os.chmod(store.path_for(digest), 0o644)
    store.path_for(digest).write_bytes(b"corrupted")
    from customer_model_factory.context import RunContext
    from customer_model_factory.errors import ArtefactIntegrityError

    context = RunContext.for_plugin_manager(chain["context"].plugin_manager, home=home)
    with pytest.raises(ArtefactIntegrityError):
        write_runtime_package(package, tmp_path / "out", context=context)
    assert not (tmp_path / "out" / PACKAGE_FILE).exists()


# ---- loading ----


def test_a_tampered_model_file_is_refused(chain, tmp_path):
    runtime = _copy_runtime(chain, tmp_path)
    weights = runtime / "model" / "weights.npz"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(StageInputError) as caught:
        load_runtime(runtime, context=chain["context"])
    assert caught.value.code == "RUNTIME_MODEL_FILE_INVALID" and caught.value.exit_code == 2


def test_a_tampered_package_file_is_refused(chain, tmp_path):
    runtime = _copy_runtime(chain, tmp_path)
    path = runtime / PACKAGE_FILE
    payload = json.loads(path.read_text())
    payload["runtime_config"]["policy"]["threshold"] = 0.99
    path.write_text(json.dumps(payload))
    with pytest.raises(ManifestIntegrityError):
        load_runtime(path, context=chain["context"])


def test_a_swapped_model_dir_is_refused(chain, tmp_path):
    runtime = _copy_runtime(chain, tmp_path)
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.json").write_bytes((runtime / "model" / "config.json").read_bytes())
    (other / "weights.npz").write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    shutil.rmtree(runtime / "model")
    (runtime / "model").symlink_to(other)
    with pytest.raises(StageInputError) as caught:
        load_runtime(runtime, context=chain["context"])
    assert caught.value.code == "RUNTIME_MODEL_FILE_INVALID"


def test_a_missing_model_file_and_a_fifo_are_refused(chain, tmp_path):
    runtime = _copy_runtime(chain, tmp_path)
    (runtime / "model" / "weights.npz").unlink()
    with pytest.raises(StageInputError, match="cannot be read"):
        load_runtime(runtime, context=chain["context"])
    os.mkfifo(runtime / "model" / "weights.npz")
    with pytest.raises(StageInputError, match="not a regular file"):
        load_runtime(runtime, context=chain["context"])


def test_a_package_that_is_not_ready_never_scores(chain, tmp_path):
    runtime = _copy_runtime(chain, tmp_path)
    package = CustomerRuntimePackage.load(runtime / PACKAGE_FILE)
    payload = package.payload()
    payload.pop("runtime_hash")
    payload.pop("ready")
    payload["findings"] = [
        Finding(code="RUNTIME_RESULT_NOT_SELECTED", severity="error", message="x")
    ]
    CustomerRuntimePackage.seal(**payload).write(runtime / PACKAGE_FILE)
    with pytest.raises(StageInputError) as caught:
        load_runtime(runtime, context=chain["context"])
    assert caught.value.code == "RUNTIME_PACKAGE_NOT_READY"


# ---- scoring ----


def _score(chain, tmp_path, rows, **kwargs):
    runtime = load_runtime(kwargs.pop("runtime", chain["runtime"]), context=chain["context"])
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    return score_file(
        runtime,
        source,
        output=tmp_path / "out.jsonl",
        context=chain["context"],
        decision_log=kwargs.pop("log", tmp_path / "log.jsonl"),
        timer=Ticks(),
        **kwargs,
    )


def test_scoring_gives_the_benchmark_decisions_and_logs_them(chain, tmp_path):
    rows = requests_of(chain)
    outcome = _score(chain, tmp_path, rows, batch_size=64)
    assert outcome.scored == len(rows) == 200
    out = (tmp_path / "out.jsonl").read_bytes()
    assert (tmp_path / "log.jsonl").read_bytes() == out
    records = [orjson.loads(line) for line in out.splitlines()]
    for record in records:
        DecisionRecord.model_validate(record)
        validate_against_committed_schema("decision-record", record)
    assert [r["trace_id"] for r in records] == [r["trace_id"] for r in rows]
    # The same model and thresholds: the benchmark's scores and decisions on the same traces.
    from customer_model_factory.stages.benchmark.models import parse_raw_results
    from customer_model_factory.store import ArtefactStore

    raw = parse_raw_results(
        ArtefactStore(chain["home"]).get_bytes(chain["test"].raw_result_digest), source="raw"
    )
    by_id = {r.trace_id: r for r in raw}
    for record in records:
        assert record["score"] == pytest.approx(by_id[record["trace_id"]].score, abs=1e-12)
        assert record["decision"] == by_id[record["trace_id"]].decision
    assert sum(outcome.decisions.values()) == 200
    # Latency: each batch's time (1 ms with the ticking timer) shared by its requests.
    assert records[0]["latency_ms"] == pytest.approx(1.0 / 64)
    assert records[-1]["latency_ms"] == pytest.approx(1.0 / (200 - 3 * 64))
    assert {r["package_version"] for r in records} == {"2026.03.1"}


def test_trace_ids_with_quotes_escapes_and_unicode_round_trip_in_the_log(chain, tmp_path):
    rows = requests_of(chain)[:4]
    ids = ['a"b', "c\\d", "caf\u00e9-\u2603", "x</script>"]
    for row, trace_id in zip(rows, ids, strict=True):
        row["trace_id"] = trace_id
    _score(chain, tmp_path, rows)
    lines = (tmp_path / "out.jsonl").read_bytes().splitlines()
    records = [DecisionRecord.model_validate(orjson.loads(line)) for line in lines]
    assert [r.trace_id for r in records] == ids
    assert all(line.startswith(b'{"decided_at":') and line.endswith(b"}") for line in lines)


def test_a_trace_id_with_a_newline_is_refused(chain, tmp_path):
    rows = requests_of(chain)[:2]
    rows[1]["trace_id"] = 'forged\n{"trace_id": "x"}'
    with pytest.raises(DataFormatError) as caught:
        _score(chain, tmp_path, rows)
    assert caught.value.field == "trace_id" and caught.value.line == 2


def test_the_log_is_appended_never_truncated(chain, tmp_path):
    rows = requests_of(chain)[:5]
    _score(chain, tmp_path, rows)
    first = (tmp_path / "log.jsonl").read_bytes()
    _score(chain, tmp_path, rows)
    assert (tmp_path / "log.jsonl").read_bytes() == first * 2


def test_citations_required_turns_an_approval_into_an_escalation(chain, tmp_path):
    runtime = build_runtime(chain, tmp_path / "cited", require_citations=True)
    rows = requests_of(chain)
    for row in rows:
        row["source_refs"] = []
    rows[0]["citations"] = ["kb://policy/overdraft"]
    outcome = _score(chain, tmp_path, rows, runtime=runtime)
    records = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert outcome.decisions["approve"] <= 1
    assert all(r["decision"] != "approve" for r in records[1:])
    escalated = [r for r in records if r["reason"] == "citations_required"]
    assert escalated and all(r["decision"] == "escalate" for r in escalated)
    assert outcome.citations_required == len(escalated)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (b'{"trace_id": "", "prompt": "p", "response": "r"}', "trace_id"),
        (b'{"trace_id": "t9", "prompt": 3, "response": "r"}', "prompt"),
        (b'{"trace_id": "t9", "prompt": "p"}', "response"),
        (b'{"trace_id": "t9", "prompt": "p", "response": "r", "source_refs": "kb"}', "source_refs"),
        (b'{"trace_id": "t9", "prompt": "p", "response": "r", "citations": [""]}', "citations"),
        (b'{"trace_id": "t0", "prompt": "p", "response": "r"}', "trace_id"),  # duplicate
        (b'{"trace_id": "t9", "prompt": "p", "response": "r"', None),  # truncated
        (b"[1, 2]", None),
        (b'{"trace_id": "t9", "prompt": "\xff", "response": "r"}', None),
    ],
)
def test_a_bad_line_names_file_line_and_field_and_writes_nothing(chain, tmp_path, line, field):
    runtime = load_runtime(chain["runtime"], context=chain["context"])
    source = tmp_path / "in.jsonl"
    good = b'{"trace_id": "t0", "prompt": "secret-prompt", "response": "r"}\n'
    source.write_bytes(good + line + b"\n" + good.replace(b"t0", b"t1"))
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"")
    with pytest.raises(DataFormatError) as caught:
        score_file(runtime, source, output=tmp_path / "out.jsonl", context=chain["context"],
                   decision_log=log)  # fmt: skip
    assert caught.value.line == 2 and caught.value.path == str(source)
    assert caught.value.field == field
    assert "secret-prompt" not in str(caught.value)
    assert log.read_bytes() == b"" and not (tmp_path / "out.jsonl").exists()


def test_the_log_or_output_naming_an_input_is_refused(chain, tmp_path):
    runtime = load_runtime(chain["runtime"], context=chain["context"])
    source = write_jsonl(tmp_path / "in.jsonl", requests_of(chain)[:3])
    before = source.read_bytes()
    cases = [
        {"output": tmp_path / "out.jsonl", "decision_log": source},
        {"output": source, "decision_log": tmp_path / "log.jsonl"},
        {"output": tmp_path / "same.jsonl", "decision_log": tmp_path / "same.jsonl"},
        {"output": tmp_path / "o.jsonl", "decision_log": chain["runtime"] / PACKAGE_FILE},
        {"output": tmp_path / "o.jsonl", "decision_log": chain["runtime"] / "model/config.json"},
    ]
    for case in cases:
        with pytest.raises(InputError):
            score_file(runtime, source, context=chain["context"], **case)
    assert source.read_bytes() == before


def test_a_decision_log_that_is_a_symlink_is_refused(chain, tmp_path):
    runtime = load_runtime(chain["runtime"], context=chain["context"])
    source = write_jsonl(tmp_path / "in.jsonl", requests_of(chain)[:3])
    before = source.read_bytes()
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_bytes(b"")
    for target in (source, elsewhere):
        link = tmp_path / f"log-{target.name}"
        link.symlink_to(target)
        with pytest.raises(InputError):
            score_file(runtime, source, output=tmp_path / "o.jsonl", context=chain["context"],
                       decision_log=link)  # fmt: skip
    assert source.read_bytes() == before and elsewhere.read_bytes() == b""


def test_a_log_that_cannot_be_appended_leaves_the_output_untouched(chain, tmp_path):
    runtime = load_runtime(chain["runtime"], context=chain["context"])
    source = write_jsonl(tmp_path / "in.jsonl", requests_of(chain)[:3])
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"half"')
    (tmp_path / "out.jsonl").write_bytes(b"previous\n")
    with pytest.raises(StageInputError):
        score_file(runtime, source, output=tmp_path / "out.jsonl", context=chain["context"],
                   decision_log=log)  # fmt: skip
    assert (tmp_path / "out.jsonl").read_bytes() == b"previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "log.jsonl", "out.jsonl"]


def test_a_log_ending_mid_line_is_refused(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"trace_id": "a"}\n{"trace_id"')
    with pytest.raises(StageInputError) as caught:
        append_lines(log, b"{}\n")
    assert caught.value.code == "RUNTIME_DECISION_LOG_INVALID"
    assert log.read_bytes() == b'{"trace_id": "a"}\n{"trace_id"'


def test_the_default_log_is_the_policy_audit_log(chain, tmp_path):
    runtime_dir = build_runtime(chain, tmp_path, audit_log=tmp_path / "audit" / "decisions.log")
    runtime = load_runtime(runtime_dir, context=chain["context"])
    source = write_jsonl(tmp_path / "in.jsonl", requests_of(chain)[:4])
    outcome = score_file(runtime, source, output=tmp_path / "o.jsonl", context=chain["context"])
    assert outcome.decision_log == str(tmp_path / "audit" / "decisions.log")
    assert len((tmp_path / "audit" / "decisions.log").read_bytes().splitlines()) == 4


# ---- policy ----


@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=50),
    st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
)
def test_policy_bands_equal_the_benchmark_decisions(scores, cuts):
    escalation, abstention, threshold = sorted(cuts)
    policy = DeploymentPolicy(
        threshold=threshold,
        abstention_threshold=abstention,
        escalation_threshold=escalation,
        require_citations=False,
        audit_log_uri="file:///log",
        evidence_pack_uri="",
        rollback_package_uri="",
        retention_days=1,
        telemetry_mode="disabled",
        thresholds_source="operator",
    )
    values = np.array(scores)
    decisions, reasons = decide(values, policy, np.ones(len(scores), dtype=bool))
    reference = CalibratedThresholds.model_construct(
        threshold=threshold, abstention_threshold=abstention, escalation_threshold=escalation
    ).decide(values)
    assert decisions.tolist() == reference.tolist() == reasons.tolist()
    cited = policy.model_copy(update={"require_citations": True})
    uncited, why = decide(values, cited, np.zeros(len(scores), dtype=bool))
    assert "approve" not in uncited.tolist()
    for before, after, reason in zip(decisions, uncited, why, strict=True):
        if before == "approve":
            assert (after, reason) == ("escalate", "citations_required")
        else:
            assert after == before == reason
