"""``cmf plugins``: list the loaded plugins and check that every one of them works."""

from __future__ import annotations

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

__all__ = ["app"]

app = command_group(
    "List and check plugins (sector packs). Operator switches: CMF_PLUGINS, CMF_LOAD_PLUGINS, "
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
