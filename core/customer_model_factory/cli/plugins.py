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
    from customer_model_factory.plugins import PluginCheckReport, PluginInfo

__all__ = ["app"]

app = command_group(
    "List and check plugins (sector packs). Operator switches: CMF_PLUGINS, CMF_LOAD_PLUGINS, "
    "CMF_DISABLE_PLUGINS, CMF_TRACE_PLUGINS, and the root options --plugin / --disable-plugin."
)


def _render_plugin(info: PluginInfo) -> list[str]:
    origin = info.distribution or info.source
    version = f" {info.version}" if info.version else ""
    api = f"api {info.api_version}" if info.api_version is not None else "api ?"
    lines = [f"{info.name} ({origin}{version}, {api}, {info.source}): {info.status}"]
    if info.error:
        lines.append(f"  error: {info.error}")
    for label, values in (
        ("hooks", info.hooks),
        ("sectors", info.sectors),
        ("retrieval schemas", info.retrieval_schemas),
        ("benchmark packages", info.benchmark_packages),
        ("lanes", info.lanes),
        ("objective profiles", info.objective_profiles),
    ):
        if values:
            lines.append(f"  {label}: {', '.join(values)}")
    return lines


def _render_list(infos: list[PluginInfo]) -> str:
    if not infos:
        return "no plugins (use --all to include the built-ins)\n"
    return "\n".join(line for info in infos for line in _render_plugin(info)) + "\n"


def _render_check(report: PluginCheckReport) -> str:
    lines = [
        f"{len(report.plugins)} plugin(s), {len(report.findings)} finding(s): "
        f"{'ok' if report.ok else 'BROKEN'}"
    ]
    lines += [
        f"{finding.severity}: {finding.code}: {finding.message}" for finding in report.findings
    ]
    return "\n".join(lines) + "\n"


@app.command("list")
def list_command(
    output_format: FormatOption = OutputFormat.text,
    include_builtins: Annotated[
        bool, typer.Option("--all", help="Also list the core's built-in plugins.")
    ] = False,
    hook: Annotated[
        str | None, typer.Option("--hook", help="Only plugins implementing this hook (cmf_...).")
    ] = None,
    output: OutputOption = None,
) -> None:
    """List plugins: distribution, version, API version, hooks, sectors, lanes, benchmarks."""
    from customer_model_factory.plugins import list_plugins  # noqa: PLC0415

    infos = list_plugins(include_builtins=include_builtins, hook=hook)
    if output_format is OutputFormat.json:
        emit(to_json_text([info.model_dump(mode="json") for info in infos]), output)
    else:
        emit(_render_list(infos), output)


@app.command("check")
def check_command(
    output_format: FormatOption = OutputFormat.text, output: OutputOption = None
) -> None:
    """Load every plugin and validate every contribution; exit 1 if any plugin is broken."""
    from customer_model_factory.plugins import check_plugins  # noqa: PLC0415

    report = check_plugins()
    if output_format is OutputFormat.json:
        emit(to_json_text(report.model_dump(mode="json")), output)
    else:
        emit(_render_check(report), output)
    if not report.ok:
        raise typer.Exit(1)
