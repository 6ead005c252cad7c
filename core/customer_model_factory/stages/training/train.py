"""Stage 2's entry points: train a customer scorer from a ready dataset report, or import one.

:func:`train_customer_model` re-verifies the dataset report (its hash is recomputed on load) and
the traces (their bytes must still hash to the report's ``dataset_hash``, or to the redacted
copy's digest when the report wrote one), maps labels with the workspace's label map, trains the
lane on the ``train`` split only, stores every model file in the artefact store by digest, records
the run in the ledger (QUEUED → RUNNING → EVAL_READY) and returns the
:class:`~.models.CustomerTrainingManifest`, linked to the report by its ``report_hash``.

Refusals (see ``docs/training.md``): a problem of the request itself raises
:class:`~customer_model_factory.errors.TrainingError` (exit 2: unknown lane or objective, a bad
output URI, a tampered report, traces that changed); a request that was checked and is blocked
gives a manifest that is not ready (exit 1: report not ready, base model not immutable, no train
rows of both classes, a plugin that failed), and nothing is trained or recorded.

Identity: the run id hashes the dataset digest, lane, base model, hyperparameters (the lane's,
defaults filled in, plus the ``label_map``), objective profile and seed. The same request again
converges on the same run, reuses the stored model when the run reached EVAL_READY, and returns
the same manifest bytes; an interrupted run (its process died while RUNNING) is resumed.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import orjson

from customer_model_factory.canonical import canonical_json
from customer_model_factory.context import RunContext
from customer_model_factory.errors import (
    ArtefactError,
    ArtefactIntegrityError,
    CMFError,
    TrainingError,
    TrainingFailedError,
)
from customer_model_factory.findings import Finding
from customer_model_factory.io import list_jsonl_shards, same_file
from customer_model_factory.ledger import (
    RunDetail,
    RunLedger,
    RunOwner,
    TrainRunRequest,
    train_run_id,
)
from customer_model_factory.manifest import InputLink
from customer_model_factory.plugin_api.contracts import (
    TrainedScorer,
    TrainingExample,
    TrainingLaneSpec,
)
from customer_model_factory.stages.dataset.models import (
    CustomerDatasetValidationReport,
    CustomerWorkspace,
    hash_dataset_files,
)
from customer_model_factory.stages.training.models import (
    BaseModelRef,
    CustomerTrainingManifest,
    ModelArtefact,
    export_model_files,
    model_index_bytes,
)
from customer_model_factory.stages.training.request import TrainingRequest
from customer_model_factory.store import ArtefactStore, build_file_uri, parse_artefact_uri

__all__ = [
    "LABEL_MAP_KEY",
    "TrainingImport",
    "import_trained_model",
    "is_immutable_base_model",
    "train_customer_model",
    "train_to_file",
]

LABEL_MAP_KEY: Final = "label_map"
"""The hyperparameter key the core reserves for the label map (part of the run identity)."""
_DEFAULT_LABEL_MAP: Final = {"safe": "safe", "unsafe": "unsafe"}
_FLOATING_REVISIONS: Final = frozenset(
    {"", "main", "master", "trunk", "develop", "dev", "latest", "head", "default", "stable"}
    | {"nightly", "current", "release", "edge", "tip", "none"}
)
_COMMIT_RE: Final = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_VERSION_TAG_RE: Final = re.compile(r"^v?\d+(?:\.\d+){1,3}(?:[-+][0-9A-Za-z.]+)?$")
_DIGEST_RE: Final = re.compile(r"^sha256:[0-9a-f]{64}$")
_URI_RE: Final = re.compile(r"^([a-z][a-z0-9+.-]*)://([^\s/?#]*)(/[^\s?#]*)?$")
_MAX_IMPORT_FILES: Final = 10_000
_SEVERITIES: Final = frozenset({"low", "medium", "high", "critical"})
_LEDGER_FILES: Final = ("ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm")


# ---- checks of the request ----


def is_immutable_base_model(base: BaseModelRef) -> bool:
    """Whether a base model is pinned: ``none`` (training from scratch), a digest, or a revision
    that is a full commit id (40 or 64 hex) or a version tag (``v1.2.0``); branch names and
    ``main`` / ``latest`` / ``HEAD`` float and are not pinned."""
    if base.id == "none" and base.revision == "none" and not base.artifact_uri:
        return True
    if base.digest is not None:
        return True
    revision = base.revision.strip()
    if revision.lower() in _FLOATING_REVISIONS:
        return False
    return bool(_COMMIT_RE.match(revision) or _VERSION_TAG_RE.match(revision))


def _check_output_uri(spec: TrainingLaneSpec, uri: str | None) -> None:
    schemes = spec.output_uri_schemes
    if uri is None:
        if spec.lane is None:
            raise TrainingError(
                f"lane {spec.name!r} trains elsewhere: give --output-uri "
                f"({', '.join(s + '://' for s in schemes)})",
                code="TRAIN_OUTPUT_URI_INVALID",
                field="output_uri",
            )
        return
    if any(ord(char) < 0x20 or char == "\x7f" for char in uri):
        raise TrainingError(
            "the output URI holds a control character",
            code="TRAIN_OUTPUT_URI_INVALID",
            field="output_uri",
        )
    match = _URI_RE.match(uri) if len(uri) <= 2048 else None
    if match is None:
        raise TrainingError(
            f"{uri[:120]!r} is not a URI of the form scheme://location",
            code="TRAIN_OUTPUT_URI_INVALID",
            field="output_uri",
        )
    scheme, host = match.group(1), match.group(2)
    if scheme not in schemes:
        raise TrainingError(
            f"lane {spec.name!r} writes to {', '.join(s + '://' for s in schemes)} only, "
            f"not {scheme}://",
            code="TRAIN_OUTPUT_URI_INVALID",
            field="output_uri",
        )
    if scheme in {"s3", "gs", "az"} and not host:
        raise TrainingError(
            f"{uri[:120]!r} names no bucket or container",
            code="TRAIN_OUTPUT_URI_INVALID",
            field="output_uri",
        )
    if scheme == "cmf" and spec.lane is not None:
        raise TrainingError(
            "the store URI of a model trained here is named by its digest; omit --output-uri "
            "(or give file:///dir to export a copy)",
            code="TRAIN_OUTPUT_URI_INVALID",
            field="output_uri",
        )
    if scheme in {"cmf", "file"} and (scheme == "file" or spec.lane is None):
        try:
            parsed = parse_artefact_uri(uri) if scheme == "file" else None
        except ArtefactError as error:
            raise TrainingError(
                error.message, code="TRAIN_OUTPUT_URI_INVALID", field="output_uri"
            ) from None
        del parsed


def _label_map(
    workspace: CustomerWorkspace | None,
    report: CustomerDatasetValidationReport,
    path: Path | None,
) -> dict[str, str]:
    """The label map, checked against the report: same binding, same labels, same class counts."""
    if workspace is not None:
        for name in ("customer_id", "workspace_id", "tenant_id"):
            if getattr(workspace, name) != getattr(report, name):
                raise TrainingError(
                    f"the workspace's {name} differs from the dataset report's",
                    code="TRAIN_WORKSPACE_MISMATCH",
                    path=path,
                    field=name,
                )
        mapping = dict(workspace.label_map)
    else:
        mapping = dict(_DEFAULT_LABEL_MAP)
    unknown = sorted(label for label in report.label_counts if label not in mapping)
    if unknown:
        raise TrainingError(
            f"{len(unknown)} label(s) of the report are not in the label map (give the "
            "workspace the report was validated with: --workspace)",
            code="TRAIN_WORKSPACE_MISMATCH",
            path=path,
            field="label_map",
        )
    counts: dict[str, int] = {}
    for label, count in report.label_counts.items():
        counts[mapping[label]] = counts.get(mapping[label], 0) + count
    if {k: v for k, v in counts.items() if v} != {
        k: v for k, v in report.label_class_counts.items() if v
    }:
        raise TrainingError(
            "the label map gives other class counts than the dataset report's "
            "label_class_counts (give the workspace the report was validated with)",
            code="TRAIN_WORKSPACE_MISMATCH",
            path=path,
            field="label_map",
        )
    return dict(sorted(mapping.items()))


def _resolve_hyperparameters(
    spec: TrainingLaneSpec, given: Mapping[str, Any], label_map: dict[str, str]
) -> dict[str, Any]:
    if LABEL_MAP_KEY in given:
        raise TrainingError(
            f"'{LABEL_MAP_KEY}' is reserved: the label map comes from the workspace",
            code="TRAIN_CONFIG_INVALID",
            field=f"hyperparameters.{LABEL_MAP_KEY}",
        )
    resolve = getattr(spec.lane, "resolve_hyperparameters", None)
    resolved = dict(resolve(given)) if callable(resolve) else dict(given)
    try:
        canonical_json(resolved)
    except CMFError as error:
        raise TrainingError(
            f"hyperparameters have no JSON form: {error.message}",
            code="TRAIN_CONFIG_INVALID",
            field="hyperparameters",
        ) from None
    return {**resolved, LABEL_MAP_KEY: label_map}


def _load_report(path: Path) -> CustomerDatasetValidationReport:
    try:
        return CustomerDatasetValidationReport.load(path)
    except CMFError as error:
        raise TrainingError(
            f"dataset report: {error.message}",
            code="TRAIN_DATASET_REPORT_INVALID",
            path=error.path or path,
            line=error.line,
            field=error.field,
        ) from None


def _traces_source(
    request: TrainingRequest, report: CustomerDatasetValidationReport
) -> tuple[Path, str]:
    """The traces to read and the digest their bytes must have."""
    if report.redacted_copy is not None:
        expected, recorded = report.redacted_copy.sha256, report.redacted_copy.path
    else:
        expected, recorded = report.dataset_hash, report.source
    if request.traces is not None:
        return request.traces, expected
    if recorded == "<rows>":
        raise TrainingError(
            "the report was made from rows in memory: give the traces with --traces",
            code="TRAIN_TRACES_UNAVAILABLE",
            path=request.dataset_report,
        )
    candidate = Path(recorded)
    if not candidate.is_absolute() and not candidate.exists():
        beside = request.dataset_report.parent / candidate
        if beside.exists():
            candidate = beside
    if not candidate.exists():
        raise TrainingError(
            f"the traces the report names ({'redacted copy' if report.redacted_copy else 'source'}"
            f" {recorded[:200]!r}) are not there; give them with --traces",
            code="TRAIN_TRACES_UNAVAILABLE",
            path=request.dataset_report,
        )
    return candidate, expected


def _read_verified_traces(source: Path, expected: str) -> tuple[list[Path], list[bytearray]]:
    """Read the traces' bytes once, check their digest, and return them (parse these bytes)."""
    with contextlib.suppress(OSError):
        if not (source.is_dir() or stat.S_ISREG(source.stat().st_mode)):
            raise TrainingError(
                "the traces must be regular files (not a FIFO or a device)",
                code="TRAIN_TRACES_UNAVAILABLE",
                path=source,
            )
    try:
        shards = list_jsonl_shards(source)
    except CMFError as error:
        raise TrainingError(
            f"traces: {error.message}", code="TRAIN_TRACES_UNAVAILABLE", path=error.path
        ) from None
    for shard in shards:
        if not stat.S_ISREG(shard.stat().st_mode):
            raise TrainingError(
                "the traces must be regular files (not a FIFO or a device)",
                code="TRAIN_TRACES_UNAVAILABLE",
                path=shard,
            )
    kept: list[bytearray] = []
    try:
        actual, _ = hash_dataset_files(shards, keep=kept)
    except OSError as error:
        raise TrainingError(
            f"cannot read the traces: {error.strerror}",
            code="TRAIN_TRACES_UNAVAILABLE",
            path=source,
        ) from None
    if actual != expected:
        raise TrainingError(
            f"the traces hash to {actual}, not {expected} as the dataset report recorded: they "
            "changed since the report (validate them again) or are not the data it describes",
            code="TRAIN_DATASET_HASH_MISMATCH",
            path=source,
        )
    return shards, kept


def _training_examples(
    shards: list[Path], blobs: list[bytearray], label_map: Mapping[str, str]
) -> list[TrainingExample]:
    """The ``train`` split as :class:`TrainingExample` objects, labels mapped to unsafe/safe."""
    examples: list[TrainingExample] = []
    for shard, blob in zip(shards, blobs, strict=True):
        for number, line in enumerate(blob.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                row = None  # a ready report has no such line: fail closed, never skip it
            if not isinstance(row, dict):
                raise TrainingError(
                    "not a JSON object, yet the report was ready",
                    code="TRAIN_DATASET_REPORT_INVALID",
                    path=shard,
                    line=number,
                )
            if row.get("split") != "train":
                continue
            label, prompt, response = row.get("label"), row.get("prompt"), row.get("response")
            severity, trace_id = row.get("severity"), row.get("trace_id")
            if not all(isinstance(v, str) for v in (label, prompt, response, trace_id, severity)):
                raise TrainingError(
                    "a train row lacks a string trace_id, prompt, response, label or severity",
                    code="TRAIN_DATASET_REPORT_INVALID",
                    path=shard,
                    line=number,
                )
            if label not in label_map:
                raise TrainingError(
                    "a train row's label is not in the label map",
                    code="TRAIN_WORKSPACE_MISMATCH",
                    path=shard,
                    line=number,
                    field="label",
                )
            if severity not in _SEVERITIES:
                raise TrainingError(
                    "a train row's severity is not low, medium, high or critical",
                    code="TRAIN_DATASET_REPORT_INVALID",
                    path=shard,
                    line=number,
                    field="severity",
                )
            vertical = row.get("vertical")
            # Every field was checked above; building without re-validation keeps 200,000 rows
            # at a fraction of a second.
            examples.append(
                TrainingExample.model_construct(
                    trace_id=trace_id,
                    prompt=prompt,
                    response=response,
                    unsafe=label_map[label] == "unsafe",
                    severity=severity,
                    vertical=vertical if isinstance(vertical, str) else None,
                )
            )
    return examples


# ---- training ----


class _Heartbeat:
    """Extends the run's lease while the lane trains (a thread with its own ledger connection)."""

    def __init__(self, home: Path, run_id: str, owner: RunOwner, context: RunContext) -> None:
        self._stop = threading.Event()
        self._interval = max(1.0, owner.lease_seconds / 3)
        self._thread = threading.Thread(
            target=self._beat, args=(home, run_id, owner, context), daemon=True
        )

    def _beat(self, home: Path, run_id: str, owner: RunOwner, context: RunContext) -> None:
        # A missed heartbeat only lets the lease run out (the run then reads as interrupted,
        # the safe side), so a failing write never stops the training.
        with contextlib.suppress(Exception), RunLedger(home) as ledger:
            while not self._stop.wait(self._interval):
                with contextlib.suppress(Exception):
                    ledger.heartbeat(run_id, at=context.now(), owner=owner)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def _store_directory(store: ArtefactStore, lane: str, directory: Path) -> ModelArtefact:
    """Put every regular file under ``directory`` into the store; return the model artefact."""
    files: dict[str, str] = {}
    for path in sorted(directory.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            continue
        name = path.relative_to(directory).as_posix()
        if not stat.S_ISREG(mode):
            raise TrainingError(
                f"{name[:120]!r} is not a regular file (symbolic links and devices are refused)",
                code="TRAIN_IMPORT_REFUSED",
                path=path,
            )
        if any(ord(char) < 0x20 or char == "\x7f" for char in name):
            raise TrainingError(
                "a file name holds a control character", code="TRAIN_IMPORT_REFUSED", path=path
            )
        files[name] = store.put_file(path).digest
        if len(files) > _MAX_IMPORT_FILES:
            raise TrainingError(
                f"more than {_MAX_IMPORT_FILES} files", code="TRAIN_IMPORT_REFUSED", path=directory
            )
    if not files:
        raise TrainingError("no file to store", code="TRAIN_IMPORT_REFUSED", path=directory)
    model = ModelArtefact.build(lane, files)
    stored = store.put_bytes(model_index_bytes(lane, model.files))
    assert stored.digest == model.digest
    return model


def _fit_and_store(
    spec: TrainingLaneSpec,
    *,
    examples: list[TrainingExample],
    hyperparameters: dict[str, Any],
    seed: int,
    store: ArtefactStore,
    run_id: str,
) -> ModelArtefact:
    lane = spec.lane
    assert lane is not None
    lane_hyperparameters = {k: v for k, v in hyperparameters.items() if k != LABEL_MAP_KEY}
    store.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".train.", dir=store.home) as scratch:
        directory = Path(scratch)
        try:
            scorer = lane.fit(examples, hyperparameters=lane_hyperparameters, seed=seed)
            if not isinstance(scorer, TrainedScorer):
                raise TypeError(f"fit returned {type(scorer).__name__}, not a TrainedScorer")
            reported = dict(scorer.save(directory))
        except CMFError:
            raise
        except Exception as error:
            raise TrainingFailedError(
                f"lane {spec.name!r} failed: {type(error).__name__}: {str(error)[:200]}",
                code="TRAIN_LANE_FAILED",
                run_id=run_id,
            ) from None
        model = _store_directory(store, spec.name, directory)
    if reported and reported != model.files:
        raise TrainingFailedError(
            f"lane {spec.name!r} reported digests that differ from the files it wrote",
            code="TRAIN_LANE_FAILED",
            run_id=run_id,
        )
    return model


def _stored_model(store: ArtefactStore, detail: RunDetail) -> ModelArtefact:
    """The model a finished run recorded, every object re-verified in the store."""
    recorded = detail.outputs.get("model")
    if not isinstance(recorded, dict):
        raise TrainingError(
            f"run {detail.run_id} is {detail.state} but recorded no model",
            code="TRAIN_ARTEFACT_UNAVAILABLE",
        )
    model = ModelArtefact.model_validate(recorded)
    store.verify(model.digest)
    for digest in model.files.values():
        store.verify(digest)
    return model


def _link_uri(target: Path, manifest_path: Path | None) -> str:
    """A link's uri: relative to the linking manifest's directory, else a file:// URI."""
    absolute = Path(os.path.abspath(target))
    if manifest_path is None:
        return build_file_uri(absolute)
    base = Path(os.path.abspath(manifest_path)).parent
    return Path(os.path.relpath(absolute, base)).as_posix()


def _run_request(
    dataset_hash: str, lane: str, base: BaseModelRef, hyper: dict[str, Any], request: Any
) -> TrainRunRequest:
    return TrainRunRequest(
        dataset_hash=dataset_hash,
        lane=lane,
        base_model_id=base.id,
        base_model_revision=base.revision,
        base_model_digest=base.digest,
        hyperparameters=hyper,
        objective_profile=request.objective_profile,
        seed=request.seed,
    )


def train_customer_model(
    request: TrainingRequest, *, context: RunContext, manifest_path: Path | None = None
) -> CustomerTrainingManifest:
    """Train (or, for a manifest-only lane, describe) a customer scorer; return its manifest.

    :param manifest_path: where the manifest will be written, so the dataset report's link is
        a path relative to it (``None``: an absolute ``file://`` URI).
    :raises TrainingError: the request is refused (exit 2; ``TRAIN_*`` code on the error).
    :raises TrainingFailedError: the lane raised (exit 1); the run stays resumable.
    :raises LedgerError: the run is being trained right now by a live process.
    """
    from customer_model_factory.plugins import (  # noqa: PLC0415
        collect_objective_profiles,
        collect_training_lanes,
    )

    report = _load_report(request.dataset_report)
    pm = context.plugin_manager
    lanes, lane_findings = collect_training_lanes(pm)
    profiles, _ = collect_objective_profiles(pm)
    # Fail closed: every plugin problem of the run is a finding of this manifest.
    findings: list[Finding] = list(dict.fromkeys([*pm.stage_findings(), *lane_findings]))
    spec = lanes.get(request.lane)
    if spec is None:
        raise TrainingError(
            f"unknown lane {request.lane[:80]!r} (known: {', '.join(sorted(lanes)) or 'none'})",
            code="TRAIN_LANE_UNKNOWN",
            field="lane",
        )
    if request.objective_profile not in profiles:
        raise TrainingError(
            f"unknown objective profile {request.objective_profile[:80]!r} "
            f"(known: {', '.join(sorted(profiles)) or 'none'})",
            code="TRAIN_OBJECTIVE_UNKNOWN",
            field="objective_profile",
        )
    _check_output_uri(spec, request.output_uri)
    label_map = _label_map(request.workspace, report, request.workspace_file)
    try:
        hyperparameters = _resolve_hyperparameters(spec, request.hyperparameters, label_map)
    except TrainingError as error:  # name the config file the hyperparameters came from
        raise TrainingError(
            error.message, code=error.code, path=request.config_file, field=error.field
        ) from None
    base = request.base_model
    if not is_immutable_base_model(base):
        findings.append(
            Finding(
                code="TRAIN_BASE_MODEL_NOT_IMMUTABLE",
                severity="error",
                message=f"base model revision {base.revision[:80]!r} floats and no digest is "
                "given: pin a commit id or version tag, or give the artefact's sha256",
                field="base_model",
            )
        )
    elif base.digest is not None and base.artifact_uri.startswith(("cmf:", "file:")):
        # A base model this host can read is verified now, not trusted.
        ArtefactStore(context.home).resolve(base.artifact_uri, expected_digest=base.digest)
    if not report.ready:
        findings.append(
            Finding(
                code="TRAIN_DATASET_NOT_READY",
                severity="error",
                message=f"the dataset report {report.report_hash} is not ready "
                f"({report.finding_counts.get('error', 0)} errors); fix the data and validate "
                "it again",
                location=str(request.dataset_report),
            )
        )
    expected = report.redacted_copy.sha256 if report.redacted_copy else report.dataset_hash
    try:
        named_traces: Path | None = _traces_source(request, report)[0]
    except TrainingError:
        named_traces = None  # refused below when it is needed
    _refuse_overwrite(request, manifest_path, named_traces, context)
    examples: list[TrainingExample] = []
    blocked = any(finding.severity == "error" for finding in findings)
    if not blocked:
        traces, expected = _traces_source(request, report)
        shards, blobs = _read_verified_traces(traces, expected)
        examples = _training_examples(shards, blobs, label_map)
        classes = {example.unsafe for example in examples}
        if len(classes) < 2:
            findings.append(
                Finding(
                    code="TRAIN_NO_TRAINING_ROWS",
                    severity="error",
                    message=f"the train split holds {len(examples)} rows "
                    f"({'only one class' if examples else 'none'}); training needs unsafe and "
                    "safe rows in split 'train'",
                    field="split",
                )
            )
    run_request = _run_request(expected, spec.name, base, hyperparameters, request)
    run_id = train_run_id(run_request)
    class_counts = {
        "safe": sum(1 for e in examples if not e.unsafe),
        "unsafe": sum(1 for e in examples if e.unsafe),
    }
    model: ModelArtefact | None = None
    if not any(finding.severity == "error" for finding in findings):
        model, rows, class_counts = _run(
            spec,
            run_request=run_request,
            examples=examples,
            class_counts=class_counts,
            request=request,
            context=context,
        )
    else:
        rows = len(examples)
    output_uri = request.output_uri or (model.uri if model is not None else "")
    if model is not None and request.output_uri and request.output_uri.startswith("file:"):
        path = parse_artefact_uri(request.output_uri).path
        assert path is not None
        export_model_files(ArtefactStore(context.home), model, path)
    return CustomerTrainingManifest.seal(
        customer_id=report.customer_id,
        workspace_id=report.workspace_id,
        tenant_id=report.tenant_id,
        inputs=[report.link(_link_uri(request.dataset_report, manifest_path))],
        findings=findings,
        package_id=request.package_id or f"cmf-train-{run_id[:16]}",
        dataset_hash=expected,
        dataset_report_hash=report.report_hash,
        dataset_ready=report.ready,
        lane=spec.name,
        base_model_id=base.id,
        base_model_revision=base.revision,
        base_model_artifact_uri=base.artifact_uri,
        base_model_digest=base.digest,
        output_uri=output_uri,
        hyperparameters=hyperparameters,
        objective_profile=request.objective_profile,
        requires_private_execution=spec.requires_private_execution,
        seed=request.seed,
        train_run_id=run_id,
        training_rows=rows,
        label_class_counts=class_counts,
        model=model,
    )


def _run(
    spec: TrainingLaneSpec,
    *,
    run_request: TrainRunRequest,
    examples: list[TrainingExample],
    class_counts: dict[str, int],
    request: TrainingRequest,
    context: RunContext,
) -> tuple[ModelArtefact | None, int, dict[str, int]]:
    """Record the run and train it when it needs training; return the model and its counts."""
    store = ArtefactStore(context.home)
    with RunLedger(context.home) as ledger:
        run = ledger.request(run_request, at=context.now(), actor=request.actor)
        if spec.lane is None:
            return None, len(examples), class_counts  # trained elsewhere; imported later
        if not run.needs_training and run.state != "RUNNING":
            return _stored_model(store, run), len(examples), class_counts
        owner = RunOwner.current(lease_seconds=request.lease_seconds)
        ledger.start(run.run_id, at=context.now(), actor=request.actor, owner=owner)
        with _Heartbeat(context.home, run.run_id, owner, context):
            model = _fit_and_store(
                spec,
                examples=examples,
                hyperparameters=run_request.hyperparameters,
                seed=request.seed,
                store=store,
                run_id=run.run_id,
            )
        ledger.mark_eval_ready(
            run.run_id,
            at=context.now(),
            actor=request.actor,
            owner=owner,
            outputs={
                "model": model.model_dump(mode="json"),
                "training_rows": len(examples),
                "label_class_counts": class_counts,
            },
        )
    return model, len(examples), class_counts


def _refuse_overwrite(
    request: TrainingRequest, manifest_path: Path | None, traces: Path | None, context: RunContext
) -> None:
    """Refuse a manifest path that is an input, or an export directory that holds one."""
    inputs: list[tuple[str, Path]] = [("the dataset report", request.dataset_report)]
    if traces is not None and traces.is_dir():
        inputs += [("a trace shard", shard) for shard in sorted(traces.glob("*.jsonl"))]
    elif traces is not None:
        inputs.append(("the traces", traces))
    for what, path in (("workspace", request.workspace_file), ("config", request.config_file)):
        if path is not None:
            inputs.append((f"the {what} file", path))
    inputs += [("the run ledger", context.home / name) for name in _LEDGER_FILES]
    objects = ArtefactStore(context.home).root.parent
    if manifest_path is not None and _inside(manifest_path, objects):
        raise TrainingError(
            f"--output {manifest_path} lies in the artefact store {objects}; write manifests "
            "elsewhere",
            code="TRAIN_OUTPUT_OVERWRITES_INPUT",
            path=manifest_path,
        )
    for what, other in inputs:
        if manifest_path is not None and same_file(manifest_path, other):
            raise TrainingError(
                f"--output {manifest_path} is {what} ({other}); an output never overwrites an "
                "input",
                code="TRAIN_OUTPUT_OVERWRITES_INPUT",
                path=manifest_path,
            )
        if request.output_uri and request.output_uri.startswith("file:"):
            directory = Path(parse_artefact_uri(request.output_uri).path or "/")
            if _inside(other, directory) or _inside(directory, objects):
                raise TrainingError(
                    f"--output-uri {directory} holds {what} ({other}) or lies in the artefact "
                    "store; export the model to a directory of its own",
                    code="TRAIN_OUTPUT_OVERWRITES_INPUT",
                    path=directory,
                )


def _inside(path: Path, directory: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(directory))
    except ValueError:
        return False
    return True


def train_to_file(
    request: TrainingRequest, output: Path, *, context: RunContext
) -> CustomerTrainingManifest:
    """What ``cmf train`` does: refuse an output over an input, train, write the manifest.

    :raises TrainingError: ``TRAIN_OUTPUT_OVERWRITES_INPUT`` before anything is read, and every
        refusal of :func:`train_customer_model`.
    """
    _refuse_manifest_over_inputs(output, [request.dataset_report, request.traces], request)
    manifest = train_customer_model(request, context=context, manifest_path=output)
    manifest.write(output)
    return manifest


def _refuse_manifest_over_inputs(output: Path, paths: list[Path | None], request: Any) -> None:
    candidates = [p for p in [*paths, request.workspace_file, request.config_file] if p]
    for path in candidates:
        shards = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
        for other in shards:
            if same_file(output, other):
                raise TrainingError(
                    f"--output {output} is an input ({other}); an output never overwrites an input",
                    code="TRAIN_OUTPUT_OVERWRITES_INPUT",
                    path=output,
                )


# ---- importing a model trained elsewhere ----


class TrainingImport:
    """What ``cmf train import`` is given: the pending manifest, the artefact and its digest.

    :param training_manifest: the manifest a manifest-only lane emitted (``model`` is null).
    :param artefact: a file, or a directory of files, produced by the external training.
    :param expect_digest: for a file, its sha256; for a directory, the model index digest
        (``sha256(rfc8785.dumps({"files": {name: digest}, "lane": lane}))``).
    :param actor: who imports, for the run ledger.
    """

    def __init__(
        self,
        training_manifest: Path,
        artefact: Path,
        *,
        expect_digest: str | None = None,
        actor: str = "cmf",
    ) -> None:
        self.training_manifest = training_manifest
        self.artefact = artefact
        self.expect_digest = expect_digest
        self.actor = actor


def import_trained_model(
    job: TrainingImport, output: Path, *, context: RunContext
) -> CustomerTrainingManifest:
    """Import a model trained elsewhere into the store by digest; write the completed manifest.

    The completed manifest repeats the pending one's fields with ``model`` filled in, and links
    both the dataset report and the pending manifest. The run moves QUEUED → RUNNING →
    EVAL_READY; importing the same artefact again gives the same manifest.

    :raises TrainingError: ``TRAIN_IMPORT_REFUSED`` (a manifest that is not a pending
        manifest-only run, an artefact that is not regular files), ``TRAIN_LANE_UNKNOWN``,
        ``TRAIN_OUTPUT_OVERWRITES_INPUT``.
    :raises ArtefactIntegrityError: the artefact's digest differs from ``expect_digest``.
    """
    from customer_model_factory.plugins import collect_training_lanes  # noqa: PLC0415

    for other in (job.training_manifest, job.artefact):
        if same_file(output, other) or (job.artefact.is_dir() and _inside(output, job.artefact)):
            raise TrainingError(
                f"--output {output} is an input ({other}); an output never overwrites an input",
                code="TRAIN_OUTPUT_OVERWRITES_INPUT",
                path=output,
            )
    objects = ArtefactStore(context.home).root.parent
    if _inside(output, objects) or any(
        same_file(output, context.home / name) for name in _LEDGER_FILES
    ):
        raise TrainingError(
            f"--output {output} lies in the factory home's store or ledger",
            code="TRAIN_OUTPUT_OVERWRITES_INPUT",
            path=output,
        )
    if job.expect_digest is not None and not _DIGEST_RE.match(job.expect_digest):
        raise TrainingError(
            "--expect-digest must be sha256:<64 lower-case hex>",
            code="TRAIN_IMPORT_REFUSED",
            field="expect_digest",
        )
    pending = CustomerTrainingManifest.load(job.training_manifest)
    from customer_model_factory.catalog import verify_chain  # noqa: PLC0415

    chain = verify_chain([job.training_manifest], home=context.home)
    if chain.exit_code != 0:
        raise TrainingError(
            f"the pending manifest's chain does not verify: {chain.first_problem}",
            code="TRAIN_IMPORT_REFUSED",
            path=job.training_manifest,
        )
    if pending.model is not None or not pending.ready:
        raise TrainingError(
            "only a ready manifest of a manifest-only lane, with no model yet, can import one",
            code="TRAIN_IMPORT_REFUSED",
            path=job.training_manifest,
        )
    lanes, _ = collect_training_lanes(context.plugin_manager)
    spec = lanes.get(pending.lane)
    if spec is None:
        raise TrainingError(
            f"unknown lane {pending.lane[:80]!r}", code="TRAIN_LANE_UNKNOWN", field="lane"
        )
    if spec.lane is not None:
        raise TrainingError(
            f"lane {pending.lane!r} trains here; run cmf train again instead of importing",
            code="TRAIN_IMPORT_REFUSED",
            path=job.training_manifest,
        )
    run_request = TrainRunRequest(
        dataset_hash=pending.dataset_hash,
        lane=pending.lane,
        base_model_id=pending.base_model_id,
        base_model_revision=pending.base_model_revision,
        base_model_digest=pending.base_model_digest,
        hyperparameters=pending.hyperparameters,
        objective_profile=pending.objective_profile,
        seed=pending.seed,
    )
    if train_run_id(run_request) != pending.train_run_id:
        raise TrainingError(
            "train_run_id does not derive from the manifest's fields",
            code="TRAIN_IMPORT_REFUSED",
            path=job.training_manifest,
            field="train_run_id",
        )
    # Fail closed at import time too: a plugin problem of this run blocks the import (exit 1),
    # and nothing is stored or recorded.
    findings = list(dict.fromkeys([*pending.findings, *context.plugin_manager.stage_findings()]))
    if any(finding.severity == "error" for finding in findings):
        blocked = CustomerTrainingManifest.seal(
            **pending.model_dump(
                exclude={"kind", "ready", "findings", "manifest_hash", "schema_version", "inputs"}
            ),
            inputs=[_relink(link, job.training_manifest, output) for link in pending.inputs]
            + [pending.link(_link_uri(job.training_manifest, output))],
            findings=findings,
        )
        blocked.write(output)
        return blocked
    mode = job.artefact.lstat().st_mode if job.artefact.exists() else 0
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise TrainingError(
            "the artefact must be a regular file or a directory of regular files",
            code="TRAIN_IMPORT_REFUSED",
            path=job.artefact,
        )
    store = ArtefactStore(context.home)
    if stat.S_ISREG(mode):
        name = job.artefact.name
        if any(ord(char) < 0x20 or char == "\x7f" for char in name):
            raise TrainingError(
                "the file name holds a control character",
                code="TRAIN_IMPORT_REFUSED",
                path=job.artefact,
            )
        stored = store.put_file(job.artefact)
        if job.expect_digest is not None and stored.digest != job.expect_digest:
            raise ArtefactIntegrityError(
                digest=job.expect_digest, actual=stored.digest, path=job.artefact
            )
        model = ModelArtefact.build(pending.lane, {name: stored.digest})
        store.put_bytes(model_index_bytes(pending.lane, model.files))
    else:
        model = _store_directory(store, pending.lane, job.artefact)
        if job.expect_digest is not None and model.digest != job.expect_digest:
            raise ArtefactIntegrityError(
                digest=job.expect_digest, actual=model.digest, path=job.artefact
            )
    outputs = {
        "model": model.model_dump(mode="json"),
        "training_rows": pending.training_rows,
        "label_class_counts": pending.label_class_counts,
    }
    with RunLedger(context.home) as ledger:
        run = ledger.request(run_request, at=context.now(), actor=job.actor)
        if run.needs_training:
            owner = RunOwner.current()
            ledger.start(run.run_id, at=context.now(), actor=job.actor, owner=owner)
            ledger.mark_eval_ready(
                run.run_id, at=context.now(), actor=job.actor, owner=owner, outputs=outputs
            )
        elif run.state == "RUNNING":
            raise TrainingError(
                f"run {run.run_id} is RUNNING under a live process",
                code="TRAIN_IMPORT_REFUSED",
            )
        elif run.outputs.get("model", {}).get("digest") != model.digest:
            raise TrainingError(
                f"run {run.run_id} already imported another model "
                f"({run.outputs.get('model', {}).get('digest')}); it is never replaced",
                code="TRAIN_IMPORT_REFUSED",
            )
    links = [_relink(link, job.training_manifest, output) for link in pending.inputs]
    links.append(pending.link(_link_uri(job.training_manifest, output)))
    fields = pending.model_dump(
        exclude={"kind", "inputs", "ready", "findings", "manifest_hash", "schema_version", "model"}
    )
    completed = CustomerTrainingManifest.seal(
        **fields, inputs=links, findings=findings, model=model
    )
    completed.write(output)
    return completed


def _relink(link: InputLink, source_manifest: Path, output: Path) -> InputLink:
    """Carry a link over to a manifest written elsewhere: a relative uri is re-based."""
    uri = link.uri
    if uri is None or "://" in uri or uri.startswith("/"):
        return link
    target = Path(os.path.abspath(source_manifest)).parent / uri
    return InputLink(kind=link.kind, hash=link.hash, uri=_link_uri(target, output))
