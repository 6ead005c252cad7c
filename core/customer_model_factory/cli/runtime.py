"""``cmf runtime``: build a runtime package (stage 7) and the REST payload of its runtime."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from customer_model_factory.cli._output import (
    FormatOption,
    OutputFormat,
    command_group,
    emit,
    to_json_text,
)

if TYPE_CHECKING:
    from customer_model_factory.stages.runtime.models import CustomerRuntimePackage

__all__ = ["app", "render_text", "request_or_input_error"]

app = command_group(
    "Build a runtime package from a deployment, its evidence pack and its selected benchmark "
    "result (stage 7); build the POST /v1/score payload of its runtime."
)


class RuntimeModeChoice(enum.StrEnum):
    """Where the runtime runs (the reference's runtime modes)."""

    offline_private = "offline_private"
    customer_cloud_private = "customer_cloud_private"
    on_prem = "on_prem"


RuntimeOption = Annotated[
    Path,
    typer.Option(
        "--runtime",
        help="The runtime package: its directory or its runtime_package.json.",
        show_default=False,
    ),
]


def request_or_input_error(model: Any, **fields: Any) -> Any:
    """Validate a request model, turning a validation error into an InputError (exit 2)."""
    from pydantic import ValidationError  # noqa: PLC0415

    from customer_model_factory.errors import InputError  # noqa: PLC0415

    try:
        return model(**fields)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or None
        raise InputError(str(first["msg"]).removeprefix("Value error, "), field=where) from None


def render_text(package: CustomerRuntimePackage, directory: Path) -> str:
    """A terminal summary of a runtime package (non-printable characters escaped)."""
    from customer_model_factory.cli._paths import printable  # noqa: PLC0415

    config = package.runtime_config
    policy = config.policy
    lines = [
        f"{'READY' if package.ready else 'NOT READY'}  runtime {package.runtime_id} "
        f"({package.runtime_mode}, {config.environment}) -> {directory}",
        f"  runtime_hash  {package.runtime_hash}",
        f"  deployment    {package.deployment_id} {package.deployment_hash}",
        f"  model         {config.model.lane} {config.model.digest} "
        f"({len(config.model.files)} files in {config.model_dir}/)",
        f"  policy        block >= {policy.threshold:.4g}, abstain >= "
        f"{policy.abstention_threshold:.4g}, escalate >= {policy.escalation_threshold:.4g}"
        f"{', citations required' if policy.require_citations else ''}",
        f"  decision log  {policy.audit_log_uri}",
    ]
    for finding in package.findings:
        lines.append(f"{finding.severity} {finding.code}: {finding.message}")
    return "\n".join(printable(line) for line in lines) + "\n"


@app.command("build")
def build(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    deployment: Annotated[
        Path, typer.Option("--deployment", help="The deployment manifest.", show_default=False)
    ],
    evidence_pack: Annotated[
        Path,
        typer.Option("--evidence-pack", help="Its evidence pack manifest.", show_default=False),
    ],
    result: Annotated[
        Path,
        typer.Option(
            "--result",
            help="The deployment's selected benchmark result (it carries the reference "
            "histograms).",
            show_default=False,
        ),
    ],
    runtime_id: Annotated[
        str, typer.Option("--runtime-id", help="The runtime package id.", show_default=False)
    ],
    runtime_mode: Annotated[
        RuntimeModeChoice,
        typer.Option("--runtime-mode", help="Where the runtime runs.", show_default=False),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="The package directory (runtime_package.json and the model files).",
            file_okay=False,
            show_default=False,
        ),
    ],
    cost_per_decision: Annotated[
        float, typer.Option("--cost-per-decision", min=0.0, help="Fixed cost of one decision.")
    ] = 0.0,
    cost_per_compute_second: Annotated[
        float,
        typer.Option("--cost-per-compute-second", min=0.0, help="Cost of a second of scoring."),
    ] = 0.0,
    currency: Annotated[str, typer.Option("--currency", help="Currency of the costs.")] = "USD",
    model_dir: Annotated[
        str, typer.Option("--model-dir", help="Model directory inside the package.")
    ] = "model",
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Build a runtime package: check the deployment, its evidence pack and its selected result
    belong together, copy the model files (digest-verified) and write runtime_package.json.

    Exits 0 when the package is ready, 1 when it holds error findings (it is still written), 2
    for bad input (a tampered manifest, a result without reference histograms, a model file
    whose stored bytes differ from its digest, an output that names an input).
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.cli._paths import refuse_overwrite  # noqa: PLC0415
    from customer_model_factory.stages.runtime.build import (  # noqa: PLC0415
        PACKAGE_FILE,
        RuntimeRequest,
        build_runtime_package,
        write_runtime_package,
    )

    request = request_or_input_error(
        RuntimeRequest,
        deployment=deployment,
        evidence_pack=evidence_pack,
        result=result,
        runtime_id=runtime_id,
        runtime_mode=runtime_mode.value,
        cost_per_decision=cost_per_decision,
        cost_per_compute_second=cost_per_compute_second,
        currency=currency,
        model_dir=model_dir,
    )
    refuse_overwrite({"--output": output / PACKAGE_FILE}, [deployment, evidence_pack, result])
    context = run_context(ctx)
    package = build_runtime_package(request, context)
    write_runtime_package(
        package, output, context=context, inputs=[deployment, evidence_pack, result]
    )
    if output_format is OutputFormat.json:
        emit(to_json_text(package.payload()))
    else:
        emit(render_text(package, output))
    raise typer.Exit(0 if package.ready else 1)


@app.command("payload")
def payload(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    runtime: RuntimeOption,
    prompt_file: Annotated[
        Path | None,
        typer.Option("--prompt-file", help="The prompt (UTF-8 text file).", dir_okay=False),
    ] = None,
    response_file: Annotated[
        Path | None,
        typer.Option("--response-file", help="The response (UTF-8 text file).", dir_okay=False),
    ] = None,
    trace_id: Annotated[
        str | None, typer.Option("--trace-id", help="The request's trace id.")
    ] = None,
    source_ref: Annotated[
        list[str] | None,
        typer.Option("--source-ref", help="A source the response cites (repeatable)."),
    ] = None,
    from_jsonl: Annotated[
        Path | None,
        typer.Option(
            "--from-jsonl",
            help="Take the request from this JSONL file (a scoring input) instead of files.",
            dir_okay=False,
        ),
    ] = None,
    line: Annotated[
        int, typer.Option("--line", min=1, help="With --from-jsonl: the line to take.")
    ] = 1,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the body here (atomically).", dir_okay=False),
    ] = None,
) -> None:
    """Build the POST /v1/score body of the reference guide for one request.

    It preserves the customer, workspace, tenant, deployment, model artefact, thresholds,
    telemetry, audit-log, evidence and callback-policy fields of the runtime package (its hash
    verified; the model is not loaded) and adds the request. Give --prompt-file and
    --response-file (and --trace-id; default: the sha256 of prompt and response), or
    --from-jsonl FILE [--line N]. Exits 0, or 2 for bad input.
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.cli._paths import refuse_overwrite  # noqa: PLC0415
    from customer_model_factory.stages.runtime.payload import (  # noqa: PLC0415
        payload_from_files,
        payload_from_jsonl,
    )

    run_context(ctx)
    refuse_overwrite(
        {"--output": output},
        [runtime, runtime / "runtime_package.json", prompt_file, response_file, from_jsonl],
    )
    if from_jsonl is not None:
        if prompt_file or response_file or trace_id or source_ref:
            raise typer.BadParameter("--from-jsonl takes the whole request from the file")
        body = payload_from_jsonl(runtime, from_jsonl, line=line)
    else:
        if prompt_file is None or response_file is None:
            raise typer.BadParameter("give --prompt-file and --response-file, or --from-jsonl")
        body = payload_from_files(
            runtime,
            prompt_file=prompt_file,
            response_file=response_file,
            trace_id=trace_id,
            source_refs=tuple(source_ref or ()),
        )
    emit(to_json_text(body), output)
