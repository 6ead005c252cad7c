"""``cmf plugins``: list the loaded plugins and check that every one of them works."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from customer_model_factory.cli._output import (
    FormatOption,
    OutputFormat,
    OutputOption,
    command_group,
    emit,
    to_json_text,
)

if TYPE_CHECKING:
    from customer_model_factory.findings import Finding
    from customer_model_factory.plugins import PluginCheckReport, PluginInfo, PluginListing
    from customer_model_factory.plugins.hooks import HookDescription

__all__ = ["app"]

app = command_group(
    "List, check and create plugins (sector packs), and list the hooks they can implement. "
    "Operator switches: CMF_PLUGINS, CMF_LOAD_PLUGINS, "
    "CMF_DISABLE_PLUGINS, CMF_TRACE_PLUGINS, CMF_SECTOR_OWNERS, and the root options --plugin, "
    "--disable-plugin and --sector-owner."
)


def _render_plugin(info: PluginInfo) -> list[str]:
    origin = info.distribution or info.source
    version = f" {info.version}" if info.version else ""
    api = f"api {info.api_version}" if info.api_version is not None else "api ?"
    status = info.status.upper() if info.status != "ok" else "ok"
    lines = [f"{info.name} ({origin}{version}, {api}, {info.source}): {status}"]
    if info.error:
        lines.append(f"  error: {info.error}")
    if info.hooks:
        lines.append(f"  hooks: {', '.join(info.hooks)}")
    lines += [f"  {label}: {', '.join(ids)}" for label, ids in info.contributions.items()]
    if info.shadowed_sectors:
        lines.append(f"  shadowed sectors: {', '.join(info.shadowed_sectors)}")
    return lines


def _render_findings(findings: tuple[Finding, ...]) -> list[str]:
    return [f"{finding.severity}: {finding.code}: {finding.message}" for finding in findings]


def _render_list(listing: PluginListing) -> str:
    lines = [line for info in listing.plugins for line in _render_plugin(info)]
    if not listing.plugins:
        lines.append("no plugins (use --all to include the built-ins)")
    problems = tuple(f for f in listing.findings if f.severity != "info")
    if problems:
        lines += ["", *_render_findings(problems)]
    return "\n".join(lines) + "\n"


def _render_check(report: PluginCheckReport) -> str:
    lines = [
        f"{len(report.plugins)} plugin(s), {len(report.findings)} finding(s): "
        f"{'ok' if report.ok else 'BROKEN'}",
        *_render_findings(report.findings),
    ]
    return "\n".join(lines) + "\n"


@app.command("list")
def list_command(
    ctx: typer.Context,
    output_format: FormatOption = OutputFormat.text,
    include_builtins: Annotated[
        bool, typer.Option("--all", help="Also list the core's built-in plugins.")
    ] = False,
    hook: Annotated[
        str | None, typer.Option("--hook", help="Only plugins implementing this hook (cmf_...).")
    ] = None,
    output: OutputOption = None,
) -> None:
    """List plugins: distribution, version, API version, status (ok, FAILED, API-MISMATCH,
    DISABLED, SHADOWED), hooks and contributions. Exits 1 when a plugin failed to load."""
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.plugins import list_plugins  # noqa: PLC0415

    listing = list_plugins(
        run_context(ctx).plugin_manager, include_builtins=include_builtins, hook=hook
    )
    if output_format is OutputFormat.json:
        emit(to_json_text([info.model_dump(mode="json") for info in listing.plugins]), output)
    else:
        emit(_render_list(listing), output)
    if not listing.ok:
        raise typer.Exit(1)


@app.command("check")
def check_command(
    ctx: typer.Context, output_format: FormatOption = OutputFormat.text, output: OutputOption = None
) -> None:
    """Load every plugin, validate every contribution, and call every validation, evidence and
    release-check hook with a sample (the pack's own benchmark traces); exit 1 if any plugin is
    broken."""
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.plugins import check_plugins  # noqa: PLC0415

    report = check_plugins(run_context(ctx).plugin_manager)
    if output_format is OutputFormat.json:
        emit(to_json_text(report.model_dump(mode="json")), output)
    else:
        emit(_render_check(report), output)
    if not report.ok:
        raise typer.Exit(1)


def _render_hooks(hooks: list[HookDescription]) -> str:
    lines: list[str] = []
    for hook in hooks:
        calling = "firstresult" if hook.firstresult else "every implementation is called"
        if hook.historic:
            calling += ", historic"
        added = f", since API {hook.version_added}" if hook.version_added else ""
        lines += [
            f"{hook.name}  [stage: {hook.stage}; {calling}{added}]",
            f"  {hook.signature}",
            f"  {hook.summary}",
        ]
        if hook.deprecated_arguments:
            lines.append(f"  deprecated arguments: {', '.join(hook.deprecated_arguments)}")
        lines.append("")
    return "\n".join(lines)


@app.command("hooks")
def hooks_command(
    output_format: FormatOption = OutputFormat.text, output: OutputOption = None
) -> None:
    """List every hook a plugin can implement, in stage order: its signature, return type,
    whether it is firstresult, what it is for, and the stage that calls it."""
    from customer_model_factory.plugins.hooks import describe_hooks  # noqa: PLC0415

    hooks = describe_hooks()
    if output_format is OutputFormat.json:
        emit(to_json_text([hook.model_dump(mode="json") for hook in hooks]), output)
    else:
        emit(_render_hooks(hooks), output)


@app.command("new")
def new_command(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="Distribution name of the pack (lower case, dashes), e.g. acme-health-pack.",
            show_default=False,
        ),
    ],
    sector: Annotated[
        str,
        typer.Option(
            "--sector",
            metavar="ID",
            help="Sector id the pack provides (lower case, dashes), e.g. acme-health.",
            show_default=False,
        ),
    ],
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            metavar="DIR",
            help="Create the pack in DIR/NAME (default: the current directory).",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    force_inside: Annotated[
        bool,
        typer.Option(
            "--force-inside",
            help="Allow writing inside the customer-model-factory work tree.",
        ),
    ] = False,
) -> None:
    """Create a private sector pack in DIR/NAME, outside this repository: a standalone
    pyproject.toml, metadata model, rules, evidence mapping, retrieval schema, benchmark
    traces, hashed identifiers and tests that pass as created. Exits 2 on an invalid NAME or
    ID (or one an installed plugin already provides), or a target that exists and is not
    empty."""
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.plugins.scaffold import scaffold_pack  # noqa: PLC0415

    taken = run_context(ctx).plugin_manager.sector_packs()
    result = scaffold_pack(
        name, sector, output_dir, force_inside=force_inside, taken_sectors=set(taken)
    )
    root = result.root
    typer.echo(
        f"created {result.names.name} (sector {result.names.sector_id}, module "
        f"{result.names.module}) in {root}: {len(result.files)} files\n"
        "next:\n"
        f"  cd {root}\n"
        "  python -m pip install -e '.[test]'\n"
        "  python -m pytest\n"
        "  cmf plugins list"
    )
