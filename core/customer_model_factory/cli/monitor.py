"""``cmf monitor``: a monitoring manifest computed from a runtime's decision log (stage 8)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from customer_model_factory.cli._output import FormatOption, OutputFormat, emit, to_json_text

if TYPE_CHECKING:
    from customer_model_factory.stages.monitoring.models import CustomerMonitoringManifest

__all__ = ["monitor", "render_text"]


def render_text(manifest: CustomerMonitoringManifest) -> str:
    """A terminal summary of a monitoring manifest (non-printable characters escaped)."""
    from customer_model_factory.cli._paths import printable  # noqa: PLC0415

    m = manifest.metrics
    lines = [
        f"{manifest.health_status.upper()}  {m.total_decisions} decisions, window "
        f"{manifest.observation_window or 'none'}",
        f"  monitoring {manifest.monitoring_hash}",
        f"  drift      input PSI {m.input_drift_score:.4f}, score PSI "
        f"{m.source_corpus_drift_score:.4f}",
        f"  rates      abstain {m.abstention_rate:.4f}, escalate {m.escalation_rate:.4f}, "
        f"block {m.block_rate:.4f}",
        f"  latency    p95 {m.latency_p95_ms:.3f} ms; cost per 1k {m.cost_per_1k_decisions:.6g}",
        f"  queues     {m.false_positive_review_count} false-positive reviews, "
        f"{m.false_negative_incident_count} false-negative incidents "
        f"({m.high_severity_incident_count} high/critical)",
    ]
    for breach in manifest.threshold_breaches:
        lines.append(f"  breach     {breach.metric} {breach.observed:.6g} > {breach.limit:.6g}")
    for recommendation in manifest.recommendations:
        lines.append(f"  {recommendation.action:<10} {recommendation.message}")
    for finding in manifest.findings:
        where = f" ({finding.location})" if finding.location else ""
        lines.append(f"{finding.severity} {finding.code}{where}: {finding.message}")
    return "\n".join(printable(line) for line in lines) + "\n"


def monitor(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    runtime: Annotated[
        Path,
        typer.Option(
            "--runtime",
            help="The runtime package directory (or its runtime_package.json).",
            show_default=False,
        ),
    ],
    decision_log: Annotated[
        Path,
        typer.Option(
            "--decision-log",
            help="The decision log the runtime wrote (JSONL, one decision a line).",
            dir_okay=False,
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Write the monitoring manifest here.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    reviews: Annotated[
        Path | None,
        typer.Option(
            "--reviews", help="Review file (JSONL: trace_id, reviewed_at, outcome).", dir_okay=False
        ),
    ] = None,
    incidents: Annotated[
        Path | None,
        typer.Option(
            "--incidents",
            help="Incident file (JSONL: incident_id, trace_id, reported_at, severity).",
            dir_okay=False,
        ),
    ] = None,
    thresholds: Annotated[
        Path | None,
        typer.Option(
            "--thresholds",
            help="TOML or JSON file of limits overriding the defaults.",
            dir_okay=False,
        ),
    ] = None,
    monitoring_id: Annotated[
        str | None,
        typer.Option("--monitoring-id", help="Default: derived from the runtime and the log."),
    ] = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Compute a monitoring manifest from a runtime's decision log, streaming.

    Measures drift (PSI of scores and input lengths against the runtime package's reference
    histograms), abstention, escalation and block rates, the p95 latency, cost per 1,000
    decisions, false-positive reviews and false-negative incidents, then checks them against
    the thresholds. Exits 0 when health is within_control, 1 when it is review_required (a
    threshold is breached) or evidence_blocked (an empty or malformed log or queue, lines another
    runtime wrote), 2 for bad input (a missing file, a tampered runtime package, a malformed
    thresholds file). The manifest is written in every case but 2.
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.cli._paths import (  # noqa: PLC0415
        refuse_clobbering,
        refuse_overwrite,
    )
    from customer_model_factory.stages.monitoring.build import (  # noqa: PLC0415
        RUNTIME_PACKAGE_FILE,
        MonitorRequest,
        build_monitoring,
    )

    package_file = runtime / RUNTIME_PACKAGE_FILE if runtime.is_dir() else runtime
    if monitoring_id is not None and not monitoring_id.strip():
        raise typer.BadParameter("must not be blank", param_hint="--monitoring-id")
    refuse_overwrite(
        {"--output": output}, [package_file, decision_log, reviews, incidents, thresholds]
    )
    refuse_clobbering(output, "monitoring")
    request = MonitorRequest(
        runtime=runtime,
        decision_log=decision_log,
        reviews=reviews,
        incidents=incidents,
        thresholds_file=thresholds,
        monitoring_id=monitoring_id,
        output=output,
    )
    manifest = build_monitoring(request, run_context(ctx))
    manifest.write(output)
    if output_format is OutputFormat.json:
        emit(to_json_text(manifest.payload()))
    else:
        emit(render_text(manifest))
    raise typer.Exit(0 if manifest.health_status == "within_control" else 1)
