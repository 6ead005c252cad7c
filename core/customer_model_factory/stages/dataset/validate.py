"""The dataset stage's entry point: one streaming pass over a dataset, then the report.

:func:`validate_customer_trace_dataset` reads a JSONL file, a directory of ``*.jsonl`` shards or an
iterable of dicts in **one streaming pass** and returns a :class:`CustomerDatasetValidationReport`
(a hashed manifest). Every rule (:mod:`.rules`) yields located findings (``DATASET_*``, plus
``SECTOR_*`` from the sector contract); nothing stops at the first bad row. The reading is done by
the fast engine (:mod:`.engine`).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from customer_model_factory.canonical import HASH_PREFIX
from customer_model_factory.context import RunContext
from customer_model_factory.errors import DataFormatError, InputError, ManifestIntegrityError
from customer_model_factory.findings import Finding, count_by_severity
from customer_model_factory.io import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_LINE_BYTES,
    MAX_DEPTH_LIMIT,
    list_jsonl_shards,
)
from customer_model_factory.plugin_api.contracts import SectorOwner
from customer_model_factory.stages.dataset.engine import (
    _INPUT_ROWS,
    _LINE_BITS,
    _LINE_MASK,
    _WORKER,
    _block_scanner,
    _check_range,
    _Chunk,
    _count_fields,
    _default_workers,
    _display_name,
    _hash_shards,
    _HashingWriter,
    _Merger,
    _plan_ranges,
    _Range,
    _RowChecker,
    _worker_check,
)
from customer_model_factory.stages.dataset.models import (
    CustomerDatasetValidationReport,
    CustomerWorkspace,
    RedactedCopy,
    ShardDigest,
)
from customer_model_factory.stages.dataset.outputs import check_outputs, copy_writer, staged_outputs
from customer_model_factory.stages.dataset.rules import _Settings

__all__ = ["validate_customer_trace_dataset", "validate_dataset_to_files"]


def _settings(
    workspace: CustomerWorkspace, vertical: str | None, redact: bool, pm: Any
) -> tuple[_Settings, list[Finding]]:
    from customer_model_factory.plugins import collect_retrieval_schemas  # noqa: PLC0415

    manager = pm
    schemas, _ = collect_retrieval_schemas(manager)
    # Fail closed: every plugin problem of the run is a finding of this report.
    plugin_findings = manager.stage_findings()
    settings = _Settings(
        workspace=workspace,
        vertical=vertical or workspace.vertical,
        redact=redact,
        schema_ids=frozenset(schemas),
        schemas=schemas,
        sector_pm=manager,
    )
    return settings, plugin_findings


def validate_customer_trace_dataset(
    source: str | Path | Iterable[Mapping[str, Any]],
    workspace: CustomerWorkspace,
    *,
    vertical: str | None = None,
    redacted_copy: str | Path | None = None,
    workers: int | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    progress: Callable[[int, int], None] | None = None,
    context: RunContext | None = None,
    pm: Any = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    follow_symlinks: bool = False,
) -> CustomerDatasetValidationReport:
    """Validate a trace dataset against its workspace in one streaming pass.

    :param source: a ``.jsonl`` file, a directory of ``*.jsonl`` shards, or an iterable of dicts.
    :param workspace: the workspace the traces must be bound to.
    :param vertical: a sector every row is validated against (overrides ``workspace.vertical``).
    :param redacted_copy: write a copy with every detected secret or personal datum replaced by a
        typed placeholder and ``redaction_status: "redacted"`` (atomically); lines that are not
        JSON objects are left out. Under ``secrets_policy = "redact"`` detections then become
        warnings. Not available for an iterable source.
    :param workers: processes for a large file (default: one per CPU from 32 MiB up; ``1``
        forces a single process). The report is the same whatever the number.
    :param max_line_bytes: longer lines are reported (``DATASET_JSONL_LINE_TOO_LONG``), not parsed.
    :param progress: called with ``(bytes_done, bytes_total)`` as the read advances.
    :param context: the run context (its plugin manager validates sectors); default: a context
        with the installed plugins and no operator switch.
    :param pm: a plugin manager to use instead of the context's.
    :param max_depth: lines nesting arrays and objects deeper are reported
        (``DATASET_NESTING_TOO_DEEP``), not parsed; at most 512.
    :param follow_symlinks: read a shard that is a symbolic link to a file outside the shard
        directory (otherwise it is ``DATASET_SHARD_OUTSIDE_DIRECTORY`` and not read).
    :returns: the sealed report; ``ready`` is false when any finding is an error.
    :raises DataFormatError: the source is missing, empty, or a directory without shards.
    """
    if not 1 <= max_depth <= MAX_DEPTH_LIMIT:
        raise InputError(f"max_depth must be between 1 and {MAX_DEPTH_LIMIT}, got {max_depth}")
    redact = workspace.secrets_policy == "redact" and redacted_copy is not None
    if pm is None:
        pm = (context if context is not None else RunContext()).plugin_manager
    settings, plugin_findings = _settings(workspace, vertical, redact, pm)
    if isinstance(source, str | Path):
        findings, fields = _validate_files(
            Path(source),
            settings,
            redacted_copy=redacted_copy,
            workers=workers,
            max_line_bytes=max_line_bytes,
            progress=progress,
            max_depth=max_depth,
            follow_symlinks=follow_symlinks,
        )
    else:
        if redacted_copy is not None:
            raise DataFormatError("--redacted-copy needs a file source, not in-memory rows")
        findings, fields = _validate_rows(source, settings)
    findings.extend(plugin_findings)
    fields["sector_owners"] = _sector_owners(pm, fields["sector_counts"])
    return CustomerDatasetValidationReport.seal(
        customer_id=workspace.customer_id,
        workspace_id=workspace.workspace_id,
        tenant_id=workspace.tenant_id,
        vertical=settings.vertical,
        secrets_policy=workspace.secrets_policy,
        findings=findings,
        finding_counts=count_by_severity(findings),
        **fields,
    )


def _sector_owners(pm: Any, sector_counts: Mapping[str, int]) -> dict[str, SectorOwner]:
    owners: dict[str, SectorOwner] = {}
    for sector_id in sorted(sector_counts):
        dispatch = pm.sector_dispatch(sector_id)
        if dispatch is not None and dispatch.pack is not None:
            owners[sector_id] = SectorOwner(
                plugin=dispatch.plugin_name,
                distribution=dispatch.distribution,
                version=dispatch.version,
                pack_version=dispatch.pack.version,
            )
    return owners


def _validate_files(
    source: Path,
    settings: _Settings,
    *,
    redacted_copy: str | Path | None,
    workers: int | None,
    max_line_bytes: int,
    progress: Callable[[int, int], None] | None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    follow_symlinks: bool = False,
) -> tuple[list[Finding], dict[str, Any]]:
    shards, screened = _screen_shards(source, list_jsonl_shards(source), follow_symlinks)
    total = sum(shard.stat().st_size for shard in shards)
    count = _default_workers(total) if workers is None else max(1, workers)
    if redacted_copy is not None or "fork" not in multiprocessing.get_all_start_methods():
        count = 1
    if threading.active_count() > 1:
        count = 1  # forking a multi-threaded process can deadlock
    ranges = _plan_ranges(shards, count)
    hashed: dict[str, Any] = {}
    done = [0]

    def advance(size: int) -> None:
        done[0] += size
        if progress is not None:
            progress(done[0], total)

    copy_digest: str | None = None
    # Chunks are merged in file order as they arrive: the locations of a range resolve once the
    # line counts of the ranges before it are known, so merging overlaps the workers.
    base_line: list[int] = []
    names: list[str] = []
    stopped: set[int] = set()
    lines_per_shard = [0] * len(shards)
    display = [_display_name(source, shard) for shard in shards]

    def resolve(packed: int) -> tuple[str, int]:
        index = packed >> _LINE_BITS
        return names[index], base_line[index] + (packed & _LINE_MASK)

    merger = _Merger(resolve, settings.workspace.allowed_splits)
    copy_totals = [0, 0, 0, 0]

    def merge(byte_range: _Range, chunk: _Chunk) -> None:
        base_line.append(lines_per_shard[byte_range.shard])
        names.append(display[byte_range.shard])
        if byte_range.shard in stopped:
            # Ranges after a JSON-array first line are dropped.
            return
        lines_per_shard[byte_range.shard] += chunk.lines
        if chunk.stopped:
            stopped.add(byte_range.shard)
        merger.add(chunk)
        copy_totals[0] += chunk.copy_rows
        copy_totals[1] += chunk.copy_redacted
        copy_totals[2] += chunk.copy_spans
        copy_totals[3] += chunk.copy_dropped

    if count == 1:
        _hash_shards(shards, hashed)
        if redacted_copy is not None:
            with copy_writer(redacted_copy) as raw_handle:
                handle = _HashingWriter(raw_handle)
                for byte_range in ranges:
                    merge(
                        byte_range,
                        _check_range(
                            settings, byte_range, max_line_bytes, handle, advance, max_depth
                        ),
                    )
                copy_digest = HASH_PREFIX + handle.digest.hexdigest()
        else:
            for byte_range in ranges:
                merge(
                    byte_range,
                    _check_range(settings, byte_range, max_line_bytes, None, advance, max_depth),
                )
    else:
        _WORKER["settings"] = settings
        _WORKER["max_line_bytes"] = max_line_bytes
        _WORKER["max_depth"] = max_depth
        _block_scanner()  # compile once here; the workers inherit it
        context = multiprocessing.get_context("fork")
        try:
            with context.Pool(count) as pool:
                pending = pool.imap(_worker_check, ranges)
                _hash_shards(shards, hashed)
                for byte_range, chunk in zip(ranges, pending, strict=True):
                    merge(byte_range, chunk)
                    advance(byte_range.end - byte_range.start)
        finally:
            _WORKER.clear()

    findings = _finish(merger, settings)
    findings.extend(screened)
    shard_digests = tuple(
        ShardDigest(
            name=display[index],
            sha256=hashed["digests"][index],
            size_bytes=shards[index].stat().st_size,
            line_count=lines_per_shard[index],
        )
        for index in range(len(shards))
    )
    fields: dict[str, Any] = {
        "source": str(source),
        "dataset_hash": hashed["dataset_hash"],
        "shards": shard_digests,
        **_count_fields(merger),
    }
    if redacted_copy is not None and copy_digest is not None:
        fields["redacted_copy"] = RedactedCopy(
            path=str(redacted_copy),
            sha256=copy_digest,
            rows_written=copy_totals[0],
            rows_redacted=copy_totals[1],
            redactions=copy_totals[2],
            lines_dropped=copy_totals[3],
        )
    return findings, fields


def _screen_shards(
    source: Path, shards: list[Path], follow_symlinks: bool
) -> tuple[list[Path], list[Finding]]:
    """Nothing in a shard directory is skipped silently: a file that is not a shard is a
    warning, and a shard that is a symbolic link to a file outside the directory is an error
    and is not read, unless ``follow_symlinks``."""
    if not source.is_dir():
        return shards, []
    findings: list[Finding] = []
    kept = set(shards)
    for entry in sorted(source.iterdir()):
        if entry not in kept:
            kind = "directory" if entry.is_dir() else "file"
            findings.append(
                Finding(
                    code="DATASET_FILE_IGNORED",
                    severity="warning",
                    message=f"this {kind} is not a *.jsonl or *.jsonl.gz shard; it was not read",
                    location=str(entry),
                )
            )
    root = source.resolve()
    read: list[Path] = []
    for shard in shards:
        if shard.is_symlink() and not follow_symlinks and not shard.resolve().is_relative_to(root):
            findings.append(
                Finding(
                    code="DATASET_SHARD_OUTSIDE_DIRECTORY",
                    severity="error",
                    message="shard is a symbolic link to a file outside the directory; it was not "
                    "read (--follow-symlinks reads it)",
                    location=str(shard),
                )
            )
            continue
        read.append(shard)
    return read, findings


def _validate_rows(
    rows: Iterable[Mapping[str, Any]], settings: _Settings
) -> tuple[list[Finding], dict[str, Any]]:
    from customer_model_factory.canonical import canonical_json  # noqa: PLC0415
    from customer_model_factory.errors import CanonicalizationError  # noqa: PLC0415

    checker = _RowChecker(settings, 0)
    detectors = checker.detectors
    combined = hashlib.sha256()
    line = 0
    for row in rows:
        line += 1
        if not isinstance(row, Mapping):
            checker.add(
                "DATASET_JSONL_NOT_OBJECT",
                "error",
                f"row is a {type(row).__name__}, expected an object",
                None,
                None,
                line,
            )
            continue
        try:
            encoded = canonical_json(dict(row))
        except CanonicalizationError as error:
            checker.add(
                "DATASET_JSONL_INVALID_JSON",
                "error",
                f"row has no JSON form: {error.message}",
                None,
                None,
                line,
            )
            continue
        combined.update(encoded + b"\n")
        value = orjson.loads(encoded)
        checker.check(value, line, detectors.has_candidate(encoded))
    checker.chunk.lines = line
    if line == 0:
        raise DataFormatError("no rows given", path=_INPUT_ROWS)
    merger = _Merger(
        lambda packed: (_INPUT_ROWS, packed & _LINE_MASK), settings.workspace.allowed_splits
    )
    merger.add(checker.chunk)
    findings = _finish(merger, settings)
    return findings, {
        "source": _INPUT_ROWS,
        "dataset_hash": HASH_PREFIX + combined.hexdigest(),
        "shards": (),
        **_count_fields(merger),
    }


def _finish(merger: _Merger, settings: _Settings) -> list[Finding]:
    """Apply the whole-dataset rules and turn finding tuples into located findings."""
    ws = settings.workspace
    merger.repeats()
    merger.temporal_findings()
    findings = [
        Finding.model_construct(
            code=code,
            severity=severity,
            message=message,
            trace_id=tid,
            field=field_name,
            location=merger.where(packed),
        )
        for code, severity, message, tid, field_name, packed in merger.findings
    ]
    splits = {value for (name, value) in merger.counts if name == "split"}
    for split in ws.required_splits:
        if split not in splits:
            findings.append(
                Finding(
                    code="DATASET_SPLIT_MISSING",
                    severity="error",
                    message=f"required split {split!r} holds no trace",
                    field="split",
                )
            )
    if merger.rows == 0:
        findings.append(
            Finding(
                code="DATASET_NO_ROWS",
                severity="error",
                message="the dataset holds no trace object",
            )
        )
    return findings


def validate_dataset_to_files(
    source: str | Path,
    workspace_file: str | Path,
    *,
    output: str | Path | None = None,
    redacted_copy: str | Path | None = None,
    vertical: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> CustomerDatasetValidationReport:
    """What ``cmf dataset validate`` does: check the outputs, validate, publish them together.

    Before anything is read, an output that is or resolves to an input (or the other output),
    or that cannot be written, is refused (:func:`~.outputs.check_outputs`). The report and the
    redacted copy are staged during the run and published together under a lock at its end.

    :param options: passed on to :func:`validate_customer_trace_dataset`.
    :raises OutputError: an output would overwrite an input or cannot be written (before any
        input is read), or publishing failed (then no output was changed).
    """
    check_outputs(source, workspace_file, {"--redacted-copy": redacted_copy, "--output": output})
    workspace = CustomerWorkspace.from_toml(workspace_file)
    targets = [Path(path) for path in (redacted_copy, output) if path is not None]
    with staged_outputs(targets) as staging:
        report = validate_customer_trace_dataset(
            source,
            workspace,
            vertical=vertical,
            redacted_copy=redacted_copy,
            progress=progress,
            **options,
        )
        if output is not None:
            actual = report.compute_hash()
            if actual != report.content_digest:  # as Manifest.write checks
                raise ManifestIntegrityError(
                    path=output,
                    hash_field=report.HASH_FIELD,
                    expected=report.content_digest,
                    actual=actual,
                )
            staging.write(Path(output), report.to_json_bytes())
    return report
