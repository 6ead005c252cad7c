"""``cmf deploy``: bind the selected model to a runtime policy and an environment (stage 4)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from customer_model_factory.cli._output import FormatOption, OutputFormat, emit, to_json_text

if TYPE_CHECKING:
    from customer_model_factory.stages.deployment.models import CustomerDeploymentManifest

__all__ = ["deploy", "render_text"]


def render_text(manifest: CustomerDeploymentManifest, output: Path) -> str:
    """A terminal summary of a deployment manifest (non-printable characters escaped)."""
    from customer_model_factory.cli._paths import printable  # noqa: PLC0415

    policy = manifest.policy
    lines = [
        f"{'READY' if manifest.ready else 'BLOCKED'}  deployment {manifest.deployment_id} "
        f"({manifest.environment}) -> {output}",
        f"  deployment  {manifest.deployment_hash}",
        f"  selected    {manifest.selected_benchmark_id} {manifest.selected_result_hash}",
        f"  model       {manifest.model.lane} {manifest.model.digest}",
        f"  thresholds  block >= {policy.threshold:g}, abstain >= "
        f"{policy.abstention_threshold:g}, escalate >= {policy.escalation_threshold:g} "
        f"({policy.thresholds_source})",
    ]
    lines += [f"{f.severity} {f.code}: {f.message}" for f in manifest.findings]
    return "\n".join(printable(line) for line in lines) + "\n"


def deploy(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    selection: Annotated[
        Path,
        typer.Option(
            "--selection", "-s", help="The selection report.", dir_okay=False, show_default=False
        ),
    ],
    result: Annotated[
        Path,
        typer.Option(
            "--result",
            help="The selected candidate's test result.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    deployment_id: Annotated[
        str, typer.Option("--deployment-id", help="The deployment's id.", show_default=False)
    ],
    environment: Annotated[
        str,
        typer.Option(
            "--environment",
            metavar="development|staging|production",
            help="Where the package is deployed.",
            show_default=False,
        ),
    ],
    audit_log_uri: Annotated[
        str,
        typer.Option(
            "--audit-log-uri", help="Where the runtime appends decisions.", show_default=False
        ),
    ],
    evidence_pack_uri: Annotated[
        str,
        typer.Option(
            "--evidence-pack-uri", help="Where the evidence pack goes.", show_default=False
        ),
    ],
    retention_days: Annotated[
        int,
        typer.Option(
            "--retention-days", min=1, help="Days decision logs are kept.", show_default=False
        ),
    ],
    telemetry_mode: Annotated[
        str,
        typer.Option(
            "--telemetry-mode",
            metavar="disabled|customer_controlled|internal_only",
            help="Where runtime telemetry may go.",
            show_default=False,
        ),
    ],
    package_uri: Annotated[
        str,
        typer.Option("--package-uri", help="Where the deployable package is.", show_default=False),
    ],
    package_version: Annotated[
        str,
        typer.Option(
            "--package-version", help="Recorded by every runtime decision.", show_default=False
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Write the deployment manifest here.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            dir_okay=False,
            help="The validation result the thresholds were calibrated on (default: from the "
            "artefact store, through the result's link).",
        ),
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", help="The published model bundle.", dir_okay=False),
    ] = None,
    rollback_package_uri: Annotated[
        str,
        typer.Option("--rollback-package-uri", help="Package to roll back to (production)."),
    ] = "",
    require_citations: Annotated[
        bool,
        typer.Option(
            "--require-citations", help="Never approve a request without citations: escalate."
        ),
    ] = False,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="Block at or above (with the two others)."),
    ] = None,
    abstention_threshold: Annotated[
        float | None, typer.Option("--abstention-threshold", help="Abstain at or above.")
    ] = None,
    escalation_threshold: Annotated[
        float | None, typer.Option("--escalation-threshold", help="Escalate at or above.")
    ] = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Deploy the model a selection chose: thresholds, policy, environment and package.

    Identity (benchmark, result, model, training run) comes from the selection's selected
    candidate; --result must be that candidate. Thresholds default to the selected run's
    calibration; --threshold, --abstention-threshold and --escalation-threshold override all
    three together. Exits 0 ready; 1 blocked (the manifest is written with error findings: a
    selection not ready or whose run has no PASS gate, thresholds out of order, production
    without rollback, a bundle of another run, mismatched bindings); 2 bad input (tampered or
    unreadable files, a selection that chose nothing, a result that is not the selected one,
    partial thresholds).
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.cli._paths import (  # noqa: PLC0415
        refuse_clobbering,
        refuse_overwrite,
    )
    from customer_model_factory.errors import InputError  # noqa: PLC0415
    from customer_model_factory.stages.deployment.build import (  # noqa: PLC0415
        DeployRequest,
        build_deployment,
        request_or_usage_error,
    )
    from customer_model_factory.stages.deployment.models import (  # noqa: PLC0415
        ENVIRONMENTS,
        TELEMETRY_MODES,
    )

    if environment not in ENVIRONMENTS:
        raise InputError(f"--environment must be one of {', '.join(ENVIRONMENTS)}")
    if telemetry_mode not in TELEMETRY_MODES:
        raise InputError(f"--telemetry-mode must be one of {', '.join(TELEMETRY_MODES)}")
    refuse_overwrite({"--output": output}, [selection, result, calibration, bundle])
    refuse_clobbering(output, "deployment")
    request = request_or_usage_error(
        DeployRequest,
        selection=selection,
        result=result,
        calibration=calibration,
        bundle=bundle,
        deployment_id=deployment_id,
        environment=environment,  # type: ignore[arg-type]
        audit_log_uri=audit_log_uri,
        evidence_pack_uri=evidence_pack_uri,
        rollback_package_uri=rollback_package_uri,
        retention_days=retention_days,
        telemetry_mode=telemetry_mode,  # type: ignore[arg-type]
        require_citations=require_citations,
        threshold=threshold,
        abstention_threshold=abstention_threshold,
        escalation_threshold=escalation_threshold,
        package_uri=package_uri,
        package_version=package_version,
    )
    manifest = build_deployment(request, run_context(ctx))
    manifest.write(output)
    if output_format is OutputFormat.json:
        emit(to_json_text(manifest.payload()))
    else:
        emit(render_text(manifest, output))
    raise typer.Exit(0 if manifest.ready else 1)
