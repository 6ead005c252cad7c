"""The training stage as a library: identity and idempotency, the refusals, lanes and imports."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from customer_model_factory.canonical import content_hash, sha256_bytes
from customer_model_factory.catalog import verify_chain
from customer_model_factory.context import RunContext
from customer_model_factory.errors import ArtefactIntegrityError, TrainingError
from customer_model_factory.ledger import RunLedger
from customer_model_factory.plugin_api import TrainingLaneSpec, hookimpl
from customer_model_factory.stages.dataset import (
    CustomerDatasetValidationReport,
    CustomerWorkspace,
    validate_customer_trace_dataset,
)
from customer_model_factory.stages.training import (
    BaseModelRef,
    CustomerTrainingManifest,
    TrainingImport,
    TrainingRequest,
    import_trained_model,
    is_immutable_base_model,
    train_customer_model,
    train_to_file,
)
from customer_model_factory.store import ArtefactStore, build_file_uri
from customer_model_factory.testing import fresh_plugin_manager, registered

from ..conftest import training_rows, training_trace, write_training_dataset

pytest.importorskip("sklearn")

_T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


def _context(tmp_path: Path, pm: Any = None) -> RunContext:
    return RunContext.for_plugin_manager(
        pm or fresh_plugin_manager(), home=tmp_path / "home", clock=lambda: _T0
    )


def _report(
    tmp_path: Path, rows: list[dict[str, Any]] | None = None, **workspace: Any
) -> tuple[Path, CustomerWorkspace]:
    traces = write_training_dataset(tmp_path, rows)
    ws = CustomerWorkspace.from_toml(tmp_path / "workspace.toml")
    if workspace:
        ws = ws.model_copy(update=workspace)
    report = validate_customer_trace_dataset(
        traces, ws, context=RunContext.for_plugin_manager(fresh_plugin_manager())
    )
    path = tmp_path / "report.json"
    report.write(path)
    return path, ws


_SMALL = {"word_features_log2": 12, "char_features_log2": 12}  # fast; the recipe is the same


def _request(report: Path, **fields: Any) -> TrainingRequest:
    lane = fields.pop("lane", "linear")
    if lane == "linear":
        fields["hyperparameters"] = {**_SMALL, **fields.get("hyperparameters", {})}
    return TrainingRequest(dataset_report=report, lane=lane, **fields)


# ---- identity and idempotency ----


def test_training_twice_gives_the_same_run_weights_and_manifest_bytes(tmp_path):
    report, _ = _report(tmp_path)
    context = _context(tmp_path)
    first = train_to_file(_request(report), tmp_path / "a.json", context=context)
    second = train_to_file(_request(report), tmp_path / "b.json", context=context)
    assert first.ready and first.model is not None
    assert first.train_run_id == second.train_run_id
    assert first.model == second.model
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert first.training_rows == 30  # the train split only (three in four of 40)
    assert first.label_class_counts == {"safe": 20, "unsafe": 10}
    with RunLedger(context.home) as ledger:
        detail = ledger.show(first.train_run_id)
    assert detail.state == "EVAL_READY"
    assert [e.state for e in detail.events] == ["QUEUED", "RUNNING", "EVAL_READY"]
    assert detail.counters["train_requested"] == 2
    assert detail.counters["train_completed"] == 1  # reused, not retrained
    assert detail.outputs["model"]["digest"] == first.model.digest


def test_a_new_home_retrains_to_the_same_digests(tmp_path):
    report, _ = _report(tmp_path)
    one = train_customer_model(_request(report), context=_context(tmp_path / "x"))
    two = train_customer_model(_request(report), context=_context(tmp_path / "y"))
    assert one.model == two.model
    assert one.manifest_hash == two.manifest_hash


def test_a_changed_hyperparameter_is_a_new_run_and_spelled_out_defaults_are_not(tmp_path):
    report, _ = _report(tmp_path)
    context = _context(tmp_path)
    base = train_customer_model(_request(report), context=context)
    defaults = train_customer_model(
        _request(report, hyperparameters={"c": 10, "classifier": "logistic"}), context=context
    )
    changed = train_customer_model(_request(report, hyperparameters={"c": 4.0}), context=context)
    reseeded = train_customer_model(_request(report, seed=1), context=context)
    assert defaults.train_run_id == base.train_run_id
    assert changed.train_run_id != base.train_run_id
    assert reseeded.train_run_id != base.train_run_id
    assert changed.model is not None and base.model is not None
    assert changed.model.files["weights.npz"] != base.model.files["weights.npz"]


def test_the_run_id_is_recomputable_from_the_manifest(tmp_path):
    report, _ = _report(tmp_path)
    manifest = train_customer_model(_request(report), context=_context(tmp_path))
    recipe = {
        "schema_version": "1",
        "dataset_hash": manifest.dataset_hash,
        "lane": manifest.lane,
        "base_model_id": manifest.base_model_id,
        "base_model_revision": manifest.base_model_revision,
        "base_model_digest": manifest.base_model_digest,
        "hyperparameters": manifest.hyperparameters,
        "objective_profile": manifest.objective_profile,
        "seed": manifest.seed,
    }
    assert content_hash(recipe) == "sha256:" + manifest.train_run_id
    assert manifest.hyperparameters["label_map"] == {"safe": "safe", "unsafe": "unsafe"}


def test_the_stored_model_loads_and_scores_unsafe_above_safe(tmp_path):
    from customer_model_factory.builtins.linear_lane import LinearModel
    from customer_model_factory.stages.training import export_model_files

    report, _ = _report(tmp_path)
    context = _context(tmp_path)
    manifest = train_customer_model(_request(report), context=context)
    assert manifest.model is not None
    store = ArtefactStore(context.home)
    index = orjson.loads(store.get_bytes(manifest.model.digest))
    assert index == {"files": manifest.model.files, "lane": "linear"}
    directory = export_model_files(store, manifest.model, tmp_path / "model")
    scorer = LinearModel.load(directory, digests=manifest.model.files)
    unsafe, safe = training_trace(999, "test", True), training_trace(998, "test", False)
    scores = scorer.score(
        [unsafe["prompt"], safe["prompt"]], [unsafe["response"], safe["response"]]
    )
    assert scores[0] > 0.5 > scores[1]


def test_the_manifest_links_the_report_and_verifies_as_a_chain(tmp_path):
    report, _ = _report(tmp_path)
    output = tmp_path / "out" / "training.json"
    output.parent.mkdir()
    manifest = train_to_file(_request(report), output, context=_context(tmp_path))
    loaded = CustomerDatasetValidationReport.load(report)
    assert [link.model_dump() for link in manifest.inputs] == [
        {"kind": "dataset-report", "hash": loaded.report_hash, "uri": "../report.json"}
    ]
    assert manifest.dataset_report_hash == loaded.report_hash
    assert CustomerTrainingManifest.load(output) == manifest
    chain = verify_chain([output])
    assert chain.exit_code == 0, chain.first_problem


# ---- refusals ----


def test_a_report_that_is_not_ready_gives_a_blocked_manifest_and_no_run(tmp_path):
    rows = training_rows()
    rows[0]["customer_id"] = "someone-else"
    report, _ = _report(tmp_path, rows)
    context = _context(tmp_path)
    manifest = train_customer_model(_request(report), context=context)
    assert not manifest.ready
    assert manifest.model is None
    assert [f.code for f in manifest.findings] == ["TRAIN_DATASET_NOT_READY"]
    assert not (context.home / "ledger.sqlite").exists()


def test_a_tampered_report_is_refused(tmp_path):
    report, _ = _report(tmp_path)
    payload = orjson.loads(report.read_bytes())
    payload["row_count"] = 41
    report.write_bytes(orjson.dumps(payload))
    with pytest.raises(TrainingError) as caught:
        train_customer_model(_request(report), context=_context(tmp_path))
    assert caught.value.code == "TRAIN_DATASET_REPORT_INVALID"
    assert caught.value.exit_code == 2
    assert "report_hash mismatch" in str(caught.value)


def test_traces_changed_since_the_report_are_refused(tmp_path):
    report, _ = _report(tmp_path)
    traces = tmp_path / "traces.jsonl"
    traces.write_bytes(traces.read_bytes().replace(b'"label":"safe"', b'"label":"unsafe"', 1))
    with pytest.raises(TrainingError) as caught:
        train_customer_model(_request(report), context=_context(tmp_path))
    assert caught.value.code == "TRAIN_DATASET_HASH_MISMATCH"
    assert str(traces) in str(caught.value)


def test_other_traces_given_explicitly_are_refused(tmp_path):
    report, _ = _report(tmp_path)
    other = tmp_path / "other.jsonl"
    other.write_bytes((tmp_path / "traces.jsonl").read_bytes() + b"\n")
    with pytest.raises(TrainingError, match="changed since the report") as caught:
        train_customer_model(_request(report, traces=other), context=_context(tmp_path))
    assert caught.value.code == "TRAIN_DATASET_HASH_MISMATCH"


@pytest.mark.parametrize(
    ("base", "immutable"),
    [
        (BaseModelRef(id="none", revision="none", artifact_uri=""), True),
        (BaseModelRef(id="org/enc", revision="a" * 40, artifact_uri=""), True),
        (BaseModelRef(id="org/enc", revision="v1.4.2", artifact_uri=""), True),
        (
            BaseModelRef(
                id="org/enc", revision="main", artifact_uri="", digest="sha256:" + "0" * 64
            ),
            True,
        ),
        (BaseModelRef(id="org/enc", revision="main", artifact_uri=""), False),
        (BaseModelRef(id="org/enc", revision="HEAD", artifact_uri=""), False),
        (BaseModelRef(id="org/enc", revision="latest", artifact_uri=""), False),
        (BaseModelRef(id="org/enc", revision="feature-x", artifact_uri=""), False),
        (BaseModelRef(id="org/enc", revision="abc1234", artifact_uri=""), False),
        (BaseModelRef(id="org/enc", revision="none", artifact_uri=""), False),
    ],
)
def test_only_a_digest_or_a_pinned_revision_is_immutable(base, immutable):
    assert is_immutable_base_model(base) is immutable


def test_a_floating_base_model_blocks_the_manifest(tmp_path):
    report, _ = _report(tmp_path)
    base = BaseModelRef(id="org/encoder", revision="main", artifact_uri="gs://models/enc")
    manifest = train_customer_model(_request(report, base_model=base), context=_context(tmp_path))
    assert not manifest.ready
    assert [f.code for f in manifest.findings] == ["TRAIN_BASE_MODEL_NOT_IMMUTABLE"]
    assert manifest.model is None


def test_a_base_model_this_host_can_read_is_verified_against_its_digest(tmp_path):
    report, _ = _report(tmp_path)
    weights = tmp_path / "base.bin"
    weights.write_bytes(b"base weights")
    good = BaseModelRef(
        id="org/enc", revision="v1.0.0", artifact_uri=build_file_uri(weights),
        digest=sha256_bytes(b"base weights"),
    )  # fmt: skip
    context = _context(tmp_path)
    assert train_customer_model(_request(report, base_model=good), context=context).ready
    bad = good.model_copy(update={"digest": sha256_bytes(b"other")})
    with pytest.raises(ArtefactIntegrityError):
        train_customer_model(_request(report, base_model=bad), context=context)


def test_an_unknown_lane_is_refused_naming_the_known_ones(tmp_path):
    report, _ = _report(tmp_path)
    with pytest.raises(TrainingError, match="known: customer_cloud, external, linear") as caught:
        train_customer_model(_request(report, lane="gpu-x"), context=_context(tmp_path))
    assert caught.value.code == "TRAIN_LANE_UNKNOWN"


def test_an_unknown_objective_is_refused(tmp_path):
    report, _ = _report(tmp_path)
    with pytest.raises(TrainingError) as caught:
        train_customer_model(_request(report, objective_profile="nope"), context=_context(tmp_path))
    assert caught.value.code == "TRAIN_OBJECTIVE_UNKNOWN"


def test_invalid_and_reserved_hyperparameters_are_refused(tmp_path):
    report, _ = _report(tmp_path)
    context = _context(tmp_path)
    for bad in ({"c": -1}, {"nope": 1}, {"label_map": {"a": "unsafe"}}, {"c": float("nan")}):
        with pytest.raises(TrainingError) as caught:
            train_customer_model(_request(report, hyperparameters=bad), context=context)
        assert caught.value.code == "TRAIN_CONFIG_INVALID"


def test_a_failing_plugin_blocks_training(tmp_path):
    class Broken:
        CMF_PLUGIN_API = "1.1"

        @hookimpl
        def cmf_objective_profiles(self):
            raise RuntimeError("boom")

    report, _ = _report(tmp_path)
    with registered(Broken(), name="broken-pack") as pm:
        context = _context(tmp_path, pm)
        manifest = train_customer_model(_request(report), context=context)
    assert not manifest.ready
    assert "PLUGIN_HOOK_FAILED" in [f.code for f in manifest.findings]
    assert manifest.model is None
    assert not (context.home / "ledger.sqlite").exists()


def test_a_train_split_of_one_class_blocks_the_manifest(tmp_path):
    rows = [training_trace(i, "train", unsafe=False) for i in range(6)]
    rows += [training_trace(i + 6, "test", unsafe=True) for i in range(3)]
    report, _ = _report(tmp_path, rows)
    manifest = train_customer_model(_request(report), context=_context(tmp_path))
    assert not manifest.ready
    assert [f.code for f in manifest.findings] == ["TRAIN_NO_TRAINING_ROWS"]
    assert manifest.training_rows == 6


def test_the_workspace_label_map_maps_customer_labels(tmp_path):
    rows = training_rows()
    for row in rows:
        row["label"] = {"unsafe": "escalate-me", "safe": "fine"}[row["label"]]
    report, ws = _report(tmp_path, rows, label_map={"escalate-me": "unsafe", "fine": "safe"})
    context = _context(tmp_path)
    with pytest.raises(TrainingError) as caught:
        train_customer_model(_request(report), context=context)
    assert caught.value.code == "TRAIN_WORKSPACE_MISMATCH"
    manifest = train_customer_model(_request(report, workspace=ws), context=context)
    assert manifest.ready
    assert manifest.label_class_counts == {"safe": 20, "unsafe": 10}
    swapped = ws.model_copy(update={"label_map": {"escalate-me": "safe", "fine": "unsafe"}})
    other = train_customer_model(_request(report, workspace=swapped), context=context)
    assert other.train_run_id != manifest.train_run_id
    foreign = ws.model_copy(update={"tenant_id": "other"})
    with pytest.raises(TrainingError, match="tenant_id"):
        train_customer_model(_request(report, workspace=foreign), context=context)


def test_a_report_with_a_redacted_copy_trains_on_the_copy(tmp_path):
    rows = training_rows()
    rows[0]["response"] += " Contact jane.doe" + "@" + "example.org for more."
    traces = write_training_dataset(tmp_path, rows)
    ws = CustomerWorkspace.from_toml(tmp_path / "workspace.toml").model_copy(
        update={"secrets_policy": "redact"}
    )
    copy = tmp_path / "redacted.jsonl"
    report = validate_customer_trace_dataset(
        traces, ws, redacted_copy=copy,
        context=RunContext.for_plugin_manager(fresh_plugin_manager()),
    )  # fmt: skip
    assert report.ready and report.redacted_copy is not None
    report.write(tmp_path / "report.json")
    context = _context(tmp_path)
    manifest = train_customer_model(_request(tmp_path / "report.json"), context=context)
    assert manifest.ready
    assert manifest.dataset_hash == report.redacted_copy.sha256 != report.dataset_hash
    with pytest.raises(TrainingError) as caught:
        train_customer_model(_request(tmp_path / "report.json", traces=traces), context=context)
    assert caught.value.code == "TRAIN_DATASET_HASH_MISMATCH"


def test_an_output_never_overwrites_an_input(tmp_path):
    report, _ = _report(tmp_path)
    context = _context(tmp_path)
    before = report.read_bytes()
    for target in (report, tmp_path / "traces.jsonl", tmp_path / "home" / "ledger.sqlite"):
        with pytest.raises(TrainingError) as caught:
            train_to_file(_request(report), target, context=context)
        assert caught.value.code == "TRAIN_OUTPUT_OVERWRITES_INPUT"
    assert report.read_bytes() == before
    link = tmp_path / "link.json"
    os.symlink(report, link)
    with pytest.raises(TrainingError, match="never overwrites"):
        train_to_file(_request(report), link, context=context)
    with pytest.raises(TrainingError, match="holds the dataset report"):
        train_to_file(
            _request(report, output_uri=build_file_uri(tmp_path)), tmp_path / "o.json",
            context=context,
        )  # fmt: skip


# ---- lanes and their URI rules ----


@pytest.mark.parametrize(
    ("lane", "uri", "ok"),
    [
        ("vertex", "gs://bucket/models/acme", True),
        ("vertex", "s3://bucket/models", False),
        ("customer_cloud", "s3://bucket/m", True),
        ("customer_cloud", "az://container/m", True),
        ("customer_cloud", "gs:///no-bucket", False),
        ("customer_cloud", "file:///models/m", False),
        ("on_prem", "file:///srv/models/acme", True),
        ("on_prem", "file://relative/path", False),
        ("on_prem", "gs://bucket/m", False),
        ("local_pilot", "file:///srv/pilot", True),
        ("local_pilot", "cmf://sha256/" + "a" * 64, True),
        ("external", None, False),
        ("vertex", None, False),
        ("linear", "cmf://sha256/" + "a" * 64, False),
        ("linear", "gs://bucket/m", False),
        ("linear", "not a uri", False),
    ],
)
def test_each_lane_keeps_its_output_uri_rules(tmp_path, lane, uri, ok):
    report, _ = _report(tmp_path)
    request = _request(report, lane=lane, output_uri=uri)
    if ok:
        manifest = train_customer_model(request, context=_context(tmp_path))
        assert manifest.ready and manifest.model is None
        assert manifest.output_uri == uri
        assert manifest.requires_private_execution is (lane != "vertex")
    else:
        with pytest.raises(TrainingError) as caught:
            train_customer_model(request, context=_context(tmp_path))
        assert caught.value.code == "TRAIN_OUTPUT_URI_INVALID"


def test_linear_exports_a_verified_copy_to_a_file_uri(tmp_path):
    report, _ = _report(tmp_path)
    target = tmp_path / "exported"
    manifest = train_customer_model(
        _request(report, output_uri=build_file_uri(target)), context=_context(tmp_path)
    )
    assert manifest.model is not None
    assert manifest.output_uri == build_file_uri(target)
    for name, digest in manifest.model.files.items():
        assert sha256_bytes((target / name).read_bytes()) == digest


def test_a_pack_lane_with_a_lane_object_trains_in_process(tmp_path):
    class MeanLane:
        def fit(self, examples, *, hyperparameters, seed):
            return MeanScorer(sum(e.unsafe for e in examples) / len(examples))

        def load(self, directory):
            return MeanScorer(float((Path(directory) / "mean.txt").read_text()))

    class MeanScorer:
        def __init__(self, mean):
            self.mean = mean

        def score(self, prompts, responses):
            return [self.mean] * len(prompts)

        def save(self, directory):
            (Path(directory) / "mean.txt").write_text(repr(self.mean))
            return {"mean.txt": sha256_bytes(repr(self.mean).encode())}

    class Pack:
        CMF_PLUGIN_API = "1.1"

        @hookimpl
        def cmf_training_lanes(self):
            return [TrainingLaneSpec(name="mean", requires_private_execution=True, lane=MeanLane())]

    report, _ = _report(tmp_path)
    with registered(Pack(), name="mean-pack") as pm:
        manifest = train_customer_model(
            _request(report, lane="mean", hyperparameters={"any": [1, 2]}),
            context=_context(tmp_path, pm),
        )
    assert manifest.ready and manifest.model is not None
    assert manifest.model.files == {"mean.txt": sha256_bytes(repr(10 / 30).encode())}
    assert manifest.requires_private_execution is True
    assert manifest.hyperparameters["any"] == [1, 2]


# ---- external training, imported by digest ----


def _external(tmp_path: Path) -> tuple[Path, RunContext, CustomerTrainingManifest]:
    report, _ = _report(tmp_path)
    context = _context(tmp_path)
    pending_path = tmp_path / "pending.json"
    pending = train_to_file(
        _request(report, lane="external", output_uri="s3://acme-private/models/run"),
        pending_path,
        context=context,
    )
    return pending_path, context, pending


def test_external_emits_a_pending_manifest_and_imports_the_model_by_digest(tmp_path):
    pending_path, context, pending = _external(tmp_path)
    assert pending.ready and pending.model is None
    with RunLedger(context.home) as ledger:
        assert ledger.show(pending.train_run_id).state == "QUEUED"
    produced = tmp_path / "produced"
    (produced / "tokenizer").mkdir(parents=True)
    (produced / "weights.safetensors").write_bytes(b"\x00weights")
    (produced / "tokenizer" / "vocab.json").write_bytes(b'{"a": 1}')
    files = {
        "tokenizer/vocab.json": sha256_bytes(b'{"a": 1}'),
        "weights.safetensors": sha256_bytes(b"\x00weights"),
    }
    index_digest = content_hash({"files": files, "lane": "external"})
    job = TrainingImport(pending_path, produced, expect_digest=index_digest)
    done = import_trained_model(job, tmp_path / "done.json", context=context)
    assert done.model is not None
    assert done.model.digest == index_digest and done.model.files == files
    assert done.train_run_id == pending.train_run_id
    assert pending.link("pending.json") in done.inputs
    assert verify_chain([tmp_path / "done.json"]).exit_code == 0
    with RunLedger(context.home) as ledger:
        detail = ledger.show(pending.train_run_id)
    assert [e.state for e in detail.events] == ["QUEUED", "RUNNING", "EVAL_READY"]
    again = import_trained_model(job, tmp_path / "again.json", context=context)
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "done.json").read_bytes()
    assert again == done
    (produced / "weights.safetensors").write_bytes(b"\x00other")
    with pytest.raises(TrainingError, match="already imported another model"):
        import_trained_model(
            TrainingImport(pending_path, produced), tmp_path / "x.json", context=context
        )


def test_an_import_with_the_wrong_digest_is_refused_and_records_nothing(tmp_path):
    pending_path, context, pending = _external(tmp_path)
    produced = tmp_path / "model.bin"
    produced.write_bytes(b"weights")
    job = TrainingImport(pending_path, produced, expect_digest=sha256_bytes(b"other"))
    with pytest.raises(ArtefactIntegrityError):
        import_trained_model(job, tmp_path / "done.json", context=context)
    assert not (tmp_path / "done.json").exists()
    with RunLedger(context.home) as ledger:
        assert ledger.show(pending.train_run_id).state == "QUEUED"
    good = TrainingImport(pending_path, produced, expect_digest=sha256_bytes(b"weights"))
    done = import_trained_model(good, tmp_path / "done.json", context=context)
    assert done.model is not None and done.model.files == {"model.bin": sha256_bytes(b"weights")}


def test_import_refuses_a_trained_manifest_a_symlink_and_an_output_over_an_input(tmp_path):
    pending_path, context, _ = _external(tmp_path)
    produced = tmp_path / "produced"
    produced.mkdir()
    os.symlink(tmp_path / "traces.jsonl", produced / "leak.jsonl")
    with pytest.raises(TrainingError, match="not a regular file") as caught:
        import_trained_model(
            TrainingImport(pending_path, produced), tmp_path / "d.json", context=context
        )
    assert caught.value.code == "TRAIN_IMPORT_REFUSED"
    with pytest.raises(TrainingError) as caught:
        import_trained_model(TrainingImport(pending_path, produced), pending_path, context=context)
    assert caught.value.code == "TRAIN_OUTPUT_OVERWRITES_INPUT"
    report, _ = (
        _report(tmp_path / "linear") if (tmp_path / "linear").mkdir() is None else (None, None)
    )
    trained = train_to_file(_request(report), tmp_path / "linear.json", context=context)
    assert trained.model is not None
    with pytest.raises(TrainingError) as caught:
        import_trained_model(
            TrainingImport(tmp_path / "linear.json", tmp_path / "traces.jsonl"),
            tmp_path / "d.json",
            context=context,
        )
    assert caught.value.code == "TRAIN_IMPORT_REFUSED"


def test_a_blocked_manifest_still_never_overwrites_the_default_traces(tmp_path):
    rows = training_rows()
    rows[0]["customer_id"] = "someone-else"
    report, _ = _report(tmp_path, rows)
    traces = tmp_path / "traces.jsonl"
    before = traces.read_bytes()
    with pytest.raises(TrainingError) as caught:
        train_to_file(_request(report), traces, context=_context(tmp_path))
    assert caught.value.code == "TRAIN_OUTPUT_OVERWRITES_INPUT"
    assert traces.read_bytes() == before


def test_traces_that_are_not_regular_files_are_refused_before_reading(tmp_path):
    report, _ = _report(tmp_path)
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(TrainingError, match="regular files") as caught:
        train_customer_model(_request(report, traces=fifo), context=_context(tmp_path))
    assert caught.value.code == "TRAIN_TRACES_UNAVAILABLE"


def test_output_uris_with_control_characters_and_oversized_seeds_are_refused(tmp_path):
    report, _ = _report(tmp_path)
    with pytest.raises(TrainingError, match="control character"):
        train_customer_model(
            _request(report, lane="vertex", output_uri="gs://bucket/\x1b[2Jx"),
            context=_context(tmp_path),
        )
    with pytest.raises(ValueError, match="seed"):
        _request(report, seed=2**32)


def test_an_import_whose_report_link_is_broken_is_refused(tmp_path):
    pending_path, context, pending = _external(tmp_path)
    (tmp_path / "report.json").unlink()
    produced = tmp_path / "model.bin"
    produced.write_bytes(b"weights")
    with pytest.raises(TrainingError, match="chain does not verify") as caught:
        import_trained_model(
            TrainingImport(pending_path, produced), tmp_path / "d.json", context=context
        )
    assert caught.value.code == "TRAIN_IMPORT_REFUSED"
    with RunLedger(context.home) as ledger:
        assert ledger.show(pending.train_run_id).state == "QUEUED"


def test_a_lane_that_raises_fails_the_run_without_a_manifest_and_it_resumes_later(tmp_path):
    from customer_model_factory.errors import TrainingFailedError

    class Failing:
        def fit(self, examples, *, hyperparameters, seed):
            raise RuntimeError("out of GPU memory")

        def load(self, directory):
            raise AssertionError("never loaded")

    class Pack:
        CMF_PLUGIN_API = "1.1"

        @hookimpl
        def cmf_training_lanes(self):
            return [
                TrainingLaneSpec(name="failing", requires_private_execution=False, lane=Failing())
            ]

    report, _ = _report(tmp_path)
    with registered(Pack(), name="failing-pack") as pm:
        context = _context(tmp_path, pm)
        with pytest.raises(TrainingFailedError, match="out of GPU memory") as caught:
            train_to_file(_request(report, lane="failing"), tmp_path / "m.json", context=context)
    assert caught.value.code == "TRAIN_LANE_FAILED" and caught.value.exit_code == 1
    assert not (tmp_path / "m.json").exists()
    # Once the owning process is gone the run reads as interrupted (never as passed).
    with RunLedger(context.home, liveness=lambda owner: False) as ledger:
        runs = ledger.list_runs()
    assert [(run.state, run.status) for run in runs] == [("RUNNING", "INTERRUPTED")]


def test_a_shard_directory_named_relative_to_the_report_is_found_and_verified(
    tmp_path, monkeypatch
):
    rows = training_rows()
    data = tmp_path / "data"
    (data / "shards").mkdir(parents=True)
    for number, part in enumerate((rows[:17], rows[17:])):
        (data / "shards" / f"part-{number}.jsonl").write_bytes(
            b"".join(orjson.dumps(r) + b"\n" for r in part)
        )
    write_training_dataset(tmp_path)  # the workspace file
    ws = CustomerWorkspace.from_toml(tmp_path / "workspace.toml")
    monkeypatch.chdir(data)
    report = validate_customer_trace_dataset(
        Path("shards"), ws, context=RunContext.for_plugin_manager(fresh_plugin_manager())
    )
    assert report.source == "shards" and len(report.shards) == 2
    report.write(data / "report.json")
    monkeypatch.chdir(tmp_path)
    manifest = train_customer_model(_request(Path("data/report.json")), context=_context(tmp_path))
    assert manifest.ready and manifest.dataset_hash == report.dataset_hash
    assert manifest.training_rows == 30
    (data / "shards" / "part-1.jsonl").write_bytes(b"")
    with pytest.raises(TrainingError):
        train_customer_model(_request(Path("data/report.json")), context=_context(tmp_path))


def test_a_plugin_failing_at_import_time_blocks_the_import(tmp_path):
    class Broken:
        CMF_PLUGIN_API = "1.1"

        @hookimpl
        def cmf_objective_profiles(self):
            raise RuntimeError("boom")

    pending_path, _, pending = _external(tmp_path)
    produced = tmp_path / "model.bin"
    produced.write_bytes(b"weights")
    with registered(Broken(), name="broken-pack") as pm:
        context = _context(tmp_path, pm)
        done = import_trained_model(
            TrainingImport(pending_path, produced), tmp_path / "d.json", context=context
        )
    assert not done.ready and done.model is None
    assert "PLUGIN_HOOK_FAILED" in [f.code for f in done.findings]
    with RunLedger(context.home) as ledger:
        assert ledger.show(pending.train_run_id).state == "QUEUED"
