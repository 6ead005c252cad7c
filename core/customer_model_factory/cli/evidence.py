"""``cmf evidence``: build the evidence pack manifest (stage 6), export the pack, verify a pack."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from customer_model_factory.cli._output import (
    FormatOption,
    OutputFormat,
    command_group,
    emit,
    to_json_text,
)

if TYPE_CHECKING:
    from customer_model_factory.stages.evidence.export import PackVerification
    from customer_model_factory.stages.evidence.models import CustomerEvidencePackManifest

__all__ = ["app", "render_build", "render_verification"]

app = command_group(
    "Build the customer-reviewable evidence pack of a deployment (stage 6), export it as a "
    "directory or a deterministic .tar.gz with SHA256SUMS and an in-toto statement, and verify "
    "an exported pack."
)


def render_build(manifest: CustomerEvidencePackManifest, output: Path) -> str:
    """A terminal summary of an evidence pack manifest (non-printable characters escaped)."""
    from customer_model_factory.cli._paths import printable  # noqa: PLC0415

    lines = [
        f"{'READY' if manifest.ready else 'BLOCKED'}  evidence pack {manifest.package_id} for "
        f"deployment {manifest.deployment_id} -> {output}",
        f"  evidence   {manifest.evidence_hash}",
        f"  artefacts  {len(manifest.artefact_files)}; mappings "
        + ", ".join(f"{m.sector_id} ({m.plugin or 'default'})" for m in manifest.sector_mappings),
    ]
    for row in manifest.control_coverage:
        state = "MISSING " + ", ".join(row.missing) if row.missing else "ok"
        if row.deferred and not row.missing:
            state = "ok (deferred: " + ", ".join(row.deferred) + ")"
        lines.append(f"  {row.sector_id}/{row.control}: {state}")
    lines += [f"{f.severity} {f.code}: {f.message}" for f in manifest.findings]
    return "\n".join(printable(line) for line in lines) + "\n"


def render_verification(outcome: PackVerification) -> str:
    """A terminal summary of a pack verification."""
    from customer_model_factory.cli._paths import printable  # noqa: PLC0415

    head = "ok" if outcome.ok else ("MISMATCH" if outcome.exit_code == 1 else "UNREADABLE")
    lines = [
        f"{head}  {outcome.source}: {outcome.files_checked} files, {outcome.links_checked} links "
        f"checked ({outcome.links_outside_pack} name artefacts outside the pack)"
    ]
    if outcome.evidence_hash:
        lines.append(f"  evidence  {outcome.evidence_hash}")
    lines += [f"  {p.check}: {p.path}: {p.message}" for p in outcome.problems]
    return "\n".join(printable(line) for line in lines) + "\n"


def _local_path(value: str) -> Path | None:
    """The file a FILE_OR_URI names on this machine (``None`` for a store or remote URI)."""
    if value.startswith("file:"):
        from customer_model_factory.errors import ArtefactError  # noqa: PLC0415
        from customer_model_factory.store import parse_artefact_uri  # noqa: PLC0415

        try:
            path = parse_artefact_uri(value).path
        except ArtefactError:
            return None  # the library refuses it with the reason
        return Path(path) if path else None
    return None if "://" in value else Path(value)


def _evidence_files(items: list[str]) -> dict[str, str]:
    files: dict[str, str] = {}
    for item in items:
        kind, sep, value = item.partition("=")
        if not sep or not kind.strip() or not value:
            raise typer.BadParameter(f"--evidence {item[:60]!r}: write KIND=FILE_OR_URI")
        if kind.strip() in files:
            raise typer.BadParameter(f"--evidence {kind.strip()[:60]!r} is given twice")
        files[kind.strip()] = value
    return files


@app.command("build")
def build(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    deployment: Annotated[
        Path,
        typer.Option(
            "--deployment", help="The deployment manifest.", dir_okay=False, show_default=False
        ),
    ],
    selection: Annotated[
        Path,
        typer.Option(
            "--selection", help="The selection report.", dir_okay=False, show_default=False
        ),
    ],
    result: Annotated[
        Path,
        typer.Option(
            "--result", help="The selected benchmark result.", dir_okay=False, show_default=False
        ),
    ],
    audit_log: Annotated[
        str,
        typer.Option(
            "--audit-log",
            metavar="FILE_OR_URI",
            help="The audit (decision) log: FILE, file:// or cmf://.",
            show_default=False,
        ),
    ],
    rollback_package: Annotated[
        str,
        typer.Option(
            "--rollback-package",
            metavar="FILE_OR_URI",
            help="The rollback package: FILE, file:// or cmf://.",
            show_default=False,
        ),
    ],
    telemetry: Annotated[
        str,
        typer.Option(
            "--telemetry",
            metavar="FILE_OR_URI",
            help="The telemetry file: FILE, file:// or cmf://.",
            show_default=False,
        ),
    ],
    classification: Annotated[
        str,
        typer.Option(
            "--classification",
            metavar="internal|confidential|restricted",
            help="The pack's classification.",
            show_default=False,
        ),
    ],
    export_uri: Annotated[
        str,
        typer.Option("--export-uri", help="Where the pack will be exported.", show_default=False),
    ],
    package_id: Annotated[
        str, typer.Option("--package-id", help="The evidence pack's id.", show_default=False)
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Write the manifest here.", dir_okay=False, show_default=False
        ),
    ],
    dataset_report: Annotated[
        Path | None,
        typer.Option(
            "--dataset-report", dir_okay=False, help="Default: from the chain (artefact store)."
        ),
    ] = None,
    training_manifest: Annotated[
        Path | None,
        typer.Option(
            "--training-manifest",
            dir_okay=False,
            help="Default: from the chain (artefact store).",
        ),
    ] = None,
    sector_mapping: Annotated[
        list[Path] | None,
        typer.Option(
            "--sector-mapping",
            metavar="FILE",
            dir_okay=False,
            help="A reviewed sector evidence mapping, checked in addition (repeatable).",
        ),
    ] = None,
    evidence: Annotated[
        list[str] | None,
        typer.Option(
            "--evidence",
            metavar="KIND=FILE_OR_URI",
            help="A file proving an evidence kind a sector mapping needs and the core does not "
            "produce (repeatable).",
        ),
    ] = None,
    allow_callbacks: Annotated[
        bool, typer.Option("--allow-callbacks", help="Allow external callbacks (off by default).")
    ] = False,
    callback_endpoint: Annotated[
        list[str] | None,
        typer.Option(
            "--callback-endpoint", metavar="URL", help="An https:// endpoint (repeatable)."
        ),
    ] = None,
    callback_host: Annotated[
        list[str] | None,
        typer.Option(
            "--callback-host", metavar="HOST", help="A host endpoints may name (repeatable)."
        ),
    ] = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Bind a deployment's whole chain into one evidence pack manifest and check its controls.

    Every artefact is read, hashed and put in the artefact store; every control of the sector
    evidence mappings (from the packs owning the data's sectors, else the core default) must have
    its evidence kinds present. Exits 0 ready; 1 blocked (the manifest is written with error
    findings: a missing evidence kind, a chain or binding mismatch, a callback not allowed); 2 bad
    input (tampered or unreadable files, a URI that cannot be read, a malformed option).
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.cli._paths import (  # noqa: PLC0415
        refuse_clobbering,
        refuse_overwrite,
    )
    from customer_model_factory.errors import InputError  # noqa: PLC0415
    from customer_model_factory.stages.deployment.build import (  # noqa: PLC0415
        request_or_usage_error,
    )
    from customer_model_factory.stages.evidence.build import (  # noqa: PLC0415
        EvidenceRequest,
        build_evidence_pack,
    )
    from customer_model_factory.stages.evidence.models import CLASSIFICATIONS  # noqa: PLC0415

    if classification not in CLASSIFICATIONS:
        raise InputError(f"--classification must be one of {', '.join(CLASSIFICATIONS)}")
    files = _evidence_files(evidence or [])
    local = [
        _local_path(value) for value in (audit_log, rollback_package, telemetry, *files.values())
    ]
    refuse_overwrite(
        {"--output": output},
        [deployment, selection, result, dataset_report, training_manifest,
         *(sector_mapping or []), *local],
    )  # fmt: skip
    refuse_clobbering(output, "evidence-pack")
    request = request_or_usage_error(
        EvidenceRequest,
        deployment=deployment,
        selection=selection,
        result=result,
        dataset_report=dataset_report,
        training_manifest=training_manifest,
        sector_mappings=tuple(sector_mapping or ()),
        audit_log=audit_log,
        rollback_package=rollback_package,
        telemetry=telemetry,
        evidence=files,
        classification=classification,
        export_uri=export_uri,
        allow_callbacks=allow_callbacks,
        callback_endpoints=tuple(callback_endpoint or ()),
        callback_hosts=tuple(callback_host or ()),
        package_id=package_id,
    )
    manifest = build_evidence_pack(request, run_context(ctx))
    manifest.write(output)
    if output_format is OutputFormat.json:
        emit(to_json_text(manifest.payload()))
    else:
        emit(render_build(manifest, output))
    raise typer.Exit(0 if manifest.ready else 1)


@app.command("export")
def export(
    ctx: typer.Context,
    manifest: Annotated[
        Path,
        typer.Argument(
            help="The evidence pack manifest.",
            metavar="EVIDENCE",
            dir_okay=False,
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="DIR|PACK.tar.gz",
            help="A new directory, or a file ending in .tar.gz (deterministic archive).",
            show_default=False,
        ),
    ],
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Write the pack: every artefact (from the artefact store, verified), the manifest,
    SHA256SUMS and statement.intoto.json, as a directory or a byte-deterministic .tar.gz.

    Exits 0 written; 1 the pack is not ready (EVIDENCE_NOT_READY); 2 bad input (a tampered
    manifest, an artefact missing or corrupted in the store, an output that exists).
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.cli._paths import refuse_overwrite  # noqa: PLC0415
    from customer_model_factory.stages.evidence.export import (  # noqa: PLC0415
        export_evidence_pack,
    )

    refuse_overwrite({"--output": output}, [manifest])
    outcome = export_evidence_pack(manifest, output, run_context(ctx))
    if output_format is OutputFormat.json:
        emit(to_json_text(outcome.model_dump(mode="json")))
        return
    digest = f" sha256 {outcome.archive_sha256}" if outcome.archive_sha256 else ""
    emit(f"EXPORTED {outcome.files} files to {outcome.output} ({outcome.form}){digest}\n")


@app.command("verify")
def verify(
    pack: Annotated[
        Path,
        typer.Argument(
            help="An exported pack: a directory or a .tar.gz.", metavar="PACK", show_default=False
        ),
    ],
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Re-check every digest of an exported pack: SHA256SUMS (an unlisted file is an error), the
    statement's subjects, the manifest's artefacts and its own hash, and every input link the
    pack can resolve. An archive is unpacked safely first (no absolute path, '..', link or
    device). Exits 0 clean; 1 a mismatch (naming the file); 2 unreadable or malformed.
    """
    from customer_model_factory.stages.evidence.export import (  # noqa: PLC0415
        verify_evidence_pack,
    )

    outcome = verify_evidence_pack(pack)
    if output_format is OutputFormat.json:
        emit(to_json_text(outcome.model_dump(mode="json")))
    else:
        emit(render_verification(outcome))
    raise typer.Exit(outcome.exit_code)
