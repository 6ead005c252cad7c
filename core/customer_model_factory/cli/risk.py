"""``cmf risk``: the risk register, every risk decision checked against the current evidence
(stage 9)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from customer_model_factory.cli._output import FormatOption, OutputFormat, emit, to_json_text

if TYPE_CHECKING:
    from customer_model_factory.stages.risk.models import CustomerRiskRegister

__all__ = ["render_text", "risk"]


def render_text(register: CustomerRiskRegister) -> str:
    """A terminal summary of a risk register (non-printable characters escaped)."""
    from customer_model_factory.cli._paths import printable  # noqa: PLC0415

    statuses = dict.fromkeys(("accepted", "mitigated", "rejected"), 0)
    for entry in register.risks:
        statuses[entry.status] += 1
    lines = [
        f"{'READY' if register.ready else 'BLOCKED'}  {len(register.risks)} risks "
        f"({', '.join(f'{count} {name}' for name, count in statuses.items())}) at "
        f"{register.generated_at}",
        f"  register   {register.register_hash}",
        f"  evidence   {register.evidence_hash}",
        f"  monitoring {register.monitoring_hash}",
    ]
    for finding in register.findings:
        where = f" ({finding.location})" if finding.location else ""
        lines.append(f"{finding.severity} {finding.code}{where}: {finding.message}")
    return "\n".join(printable(line) for line in lines) + "\n"


def risk(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    risks: Annotated[
        Path,
        typer.Option(
            "--risks",
            help="Risk decisions: TOML ([[risks]] tables) or JSON (a list of risks).",
            dir_okay=False,
            show_default=False,
        ),
    ],
    evidence_pack: Annotated[
        Path,
        typer.Option(
            "--evidence-pack",
            help="The current evidence pack manifest.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    monitoring: Annotated[
        Path,
        typer.Option(
            "--monitoring",
            help="The current monitoring manifest.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Write the risk register here.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    register_id: Annotated[
        str | None, typer.Option("--register-id", help="Default: derived from the inputs.")
    ] = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Build the risk register and check every accepted risk against the current evidence.

    An accepted risk blocks when it has no owner, no acceptance time, no expiry (or one at or
    before now, compared as UTC instants), no compensating control, or does not link the
    current evidence-pack and monitoring hashes. Exits 0 when the register is ready, 1 when a
    risk or the evidence/monitoring binding blocks it, 2 for bad input (a missing, malformed or
    tampered file).
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.cli._paths import (  # noqa: PLC0415
        refuse_clobbering,
        refuse_overwrite,
    )
    from customer_model_factory.stages.risk.build import (  # noqa: PLC0415
        RiskRequest,
        build_risk_register,
    )

    if register_id is not None and not register_id.strip():
        raise typer.BadParameter("must not be blank", param_hint="--register-id")
    refuse_overwrite({"--output": output}, [risks, evidence_pack, monitoring])
    refuse_clobbering(output, "risk-register")
    request = RiskRequest(
        risks=risks,
        evidence_pack=evidence_pack,
        monitoring=monitoring,
        register_id=register_id,
        output=output,
    )
    register = build_risk_register(request, run_context(ctx))
    register.write(output)
    if output_format is OutputFormat.json:
        emit(to_json_text(register.payload()))
    else:
        emit(render_text(register))
    raise typer.Exit(0 if register.ready else 1)
