"""``cmf release``: assemble the release gate over the whole chain (stage 10)."""

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
    from customer_model_factory.stages.release.models import CustomerReleaseGateManifest

__all__ = ["app", "render_text"]

app = command_group(
    "Assemble the release gate (stage 10): verify the whole chain back to the dataset report, "
    "then allow promotion only when nothing blocks it."
)


def render_text(gate: CustomerReleaseGateManifest) -> str:
    """A terminal summary of a release gate (non-printable characters escaped)."""
    from customer_model_factory.cli._paths import printable  # noqa: PLC0415

    verdict = "PROMOTION ALLOWED" if gate.promotion_allowed else "BLOCKED"
    lines = [
        f"{verdict}  release {gate.release_id} ({gate.environment}, monitoring "
        f"{gate.monitoring_health}, chain {'verified' if gate.chain_verified else 'BROKEN'})",
        f"  release    {gate.release_hash}",
    ]
    for result in gate.domain_evidence:
        lines.append(f"  domain     {result.domain}: {result.status} ({result.definition_source})")
    for blocker in gate.blockers:
        lines.append(f"blocker {blocker.code} [{blocker.source}]: {blocker.message}")
    for finding in gate.findings:
        if finding.severity != "error":
            lines.append(f"{finding.severity} {finding.code}: {finding.message}")
    return "\n".join(printable(line) for line in lines) + "\n"


def _file(flag: str, help_text: str) -> typer.models.OptionInfo:
    return typer.Option(flag, help=help_text, show_default=False, dir_okay=False)


@app.command("assemble")
def assemble(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    release_id: Annotated[
        str, typer.Option("--release-id", help="The release's id.", show_default=False)
    ],
    enterprise_readiness: Annotated[
        Path,
        _file("--enterprise-readiness", 'JSON: {"ready": bool, "blocking_debt_ids": [...]}.'),
    ],
    runtime_package: Annotated[Path, _file("--runtime-package", "The runtime package.")],
    evidence_pack: Annotated[Path, _file("--evidence-pack", "The evidence pack manifest.")],
    monitoring_manifest: Annotated[
        Path, _file("--monitoring-manifest", "The monitoring manifest.")
    ],
    risk_register: Annotated[Path, _file("--risk-register", "The risk register.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Write the release gate here.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    generated_at: Annotated[
        str | None,
        typer.Option(
            "--generated-at",
            help="RFC 3339 instant of the decision (default: now). Accepted risks must not "
            "have expired by then.",
        ),
    ] = None,
    domain_evidence: Annotated[
        list[Path] | None,
        typer.Option(
            "--domain-evidence",
            metavar="FILE_OR_DIR",
            help="A domain evidence record, or a directory of *.json records (repeatable).",
        ),
    ] = None,
    search: Annotated[
        list[Path] | None,
        typer.Option(
            "--search",
            metavar="DIR",
            help="Where chain links without a resolvable uri are looked up by hash "
            "(repeatable; the inputs' directories and --home are always used).",
        ),
    ] = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Assemble the release gate from the runtime package, evidence pack, monitoring manifest,
    risk register and enterprise readiness, verifying the chain behind them back to the dataset
    report.

    Exits 0 when promotion is allowed, 1 when a blocker stops it (the gate is written either
    way), 2 for bad input (a missing, malformed or tampered input file, a bad --generated-at).
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.cli._paths import (  # noqa: PLC0415
        refuse_clobbering,
        refuse_overwrite,
    )
    from customer_model_factory.errors import InputError  # noqa: PLC0415
    from customer_model_factory.stages.release.build import (  # noqa: PLC0415
        ReleaseRequest,
        assemble_release,
    )

    records = list(domain_evidence or [])
    refuse_overwrite(
        {"--output": output},
        [enterprise_readiness, runtime_package, evidence_pack, monitoring_manifest, risk_register]
        + [path for path in records if not path.is_dir()],
    )
    refuse_clobbering(output, "release-gate")
    for directory in (path for path in records if path.is_dir()):
        if output.resolve().parent == directory.resolve():
            raise InputError(
                f"--output {output} lies in the --domain-evidence directory {directory}; a later "
                "run would read it as a record: write it elsewhere"
            )
    request = ReleaseRequest(
        release_id=release_id,
        generated_at=generated_at,
        enterprise_readiness=enterprise_readiness,
        runtime_package=runtime_package,
        evidence_pack=evidence_pack,
        monitoring_manifest=monitoring_manifest,
        risk_register=risk_register,
        domain_evidence=tuple(records),
        search=tuple(search or ()),
        output=output,
    )
    gate = assemble_release(request, run_context(ctx))
    gate.write(output)
    if output_format is OutputFormat.json:
        emit(to_json_text(gate.payload()))
    else:
        emit(render_text(gate))
    raise typer.Exit(0 if gate.promotion_allowed else 1)
