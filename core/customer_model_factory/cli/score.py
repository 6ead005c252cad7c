"""``cmf score`` and ``cmf serve``: the reference runtime, on a file of requests or over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from customer_model_factory.cli._output import FormatOption, OutputFormat, emit, to_json_text

if TYPE_CHECKING:
    from customer_model_factory.stages.runtime.score import ScoreOutcome

__all__ = ["render_text", "score", "serve"]

RuntimeOption = Annotated[
    Path,
    typer.Option(
        "--runtime",
        help="The runtime package: its directory or its runtime_package.json.",
        show_default=False,
    ),
]
DecisionLogOption = Annotated[
    Path | None,
    typer.Option(
        "--decision-log",
        help="Append decisions here (default: the policy's audit_log_uri when it is file://).",
        dir_okay=False,
    ),
]


def _is_loopback(host: str) -> bool:
    import ipaddress  # noqa: PLC0415

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def render_text(outcome: ScoreOutcome) -> str:
    """A terminal summary of a scoring run (non-printable characters escaped)."""
    from customer_model_factory.cli._paths import printable  # noqa: PLC0415

    counts = ", ".join(f"{name} {count}" for name, count in outcome.decisions.items())
    speed = (
        f"{outcome.throughput_traces_per_s:,.0f} traces/s"
        if outcome.throughput_traces_per_s
        else "n/a"
    )
    lines = [
        f"scored {outcome.scored} requests with runtime {outcome.runtime_id} "
        f"(package {outcome.package_version}): {counts}",
        f"  citations_required  {outcome.citations_required}",
        f"  decisions           {outcome.output}",
        f"  decision log        {outcome.decision_log} (appended)",
        f"  model time          {outcome.scoring_seconds:.3f}s ({speed})",
    ]
    return "\n".join(printable(line) for line in lines) + "\n"


def score(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    requests: Annotated[
        Path,
        typer.Argument(
            help="Requests (JSONL: trace_id, prompt, response, optional source_refs/citations).",
            dir_okay=False,
            show_default=False,
            metavar="INPUT.jsonl",
        ),
    ],
    runtime: RuntimeOption,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Write the decisions here (JSONL, one DecisionRecord a line, input order).",
            dir_okay=False,
            show_default=False,
        ),
    ],
    decision_log: DecisionLogOption = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=1 << 20, help="Requests per model call.")
    ] = 4096,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Score requests with a runtime package and decide by its policy.

    The package's hash and every model file's digest are verified before anything is scored.
    Every input line is validated first: a bad line is one error naming file, line and field,
    and nothing is written. The decisions are appended to the decision log (one locked, fsynced
    write of complete lines) and then written to -o. Exits 0 when every request was scored,
    2 for bad input (a tampered package or model file, a bad line, an output or log that names
    an input, a log that is a symbolic link).
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.stages.runtime.score import (  # noqa: PLC0415
        load_runtime,
        score_file,
    )

    context = run_context(ctx)
    loaded = load_runtime(runtime, context=context)
    outcome = score_file(
        loaded,
        requests,
        output=output,
        context=context,
        decision_log=decision_log,
        batch_size=batch_size,
    )
    if output_format is OutputFormat.json:
        emit(to_json_text(outcome.model_dump(mode="json")))
    else:
        emit(render_text(outcome))


def serve(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    runtime: RuntimeOption,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless told).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")
    ] = 8080,
    decision_log: DecisionLogOption = None,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Largest request body read.")
    ] = 1 << 20,
) -> None:
    """Answer POST /v1/score with the runtime package's decisions (and append them to the same
    decision log as cmf score).

    The body is what `cmf runtime payload` builds; a body bound to another customer, workspace,
    tenant or deployment is refused with 403, one over --max-body-bytes with 413, one that is not
    JSON with 400, one whose preserved fields differ from the package with 422. Runs until
    interrupted (Ctrl-C: exit 0). Exits 2 for bad input (a tampered package, a port in use).
    """
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.stages.runtime.score import load_runtime  # noqa: PLC0415
    from customer_model_factory.stages.runtime.serve import make_server  # noqa: PLC0415

    context = run_context(ctx)
    loaded = load_runtime(runtime, context=context)
    server = make_server(
        loaded,
        context=context,
        host=host,
        port=port,
        decision_log=decision_log,
        max_body_bytes=max_body_bytes,
    )
    bound_host, bound_port = server.server_address[:2]
    if not _is_loopback(str(bound_host)):
        typer.echo(
            "warning: listening beyond loopback; this server has no TLS and no authentication, "
            "put it behind the customer's gateway",
            err=True,
        )
    typer.echo(
        f"serving runtime {loaded.package.runtime_id} on http://{bound_host}:{bound_port}"
        f"/v1/score (decision log {server.decision_log}); Ctrl-C stops",
        err=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
