"""``cmf plugins list`` and ``cmf plugins check``, driven by the contribution table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.errors import InputError
from customer_model_factory.findings import Finding, sort_findings
from customer_model_factory.plugins.calling import invalid_contribution
from customer_model_factory.plugins.manager import PluginSource, hook_names
from customer_model_factory.plugins.table import HOOKS, collect, seal_evidence_mapping

if TYPE_CHECKING:
    from customer_model_factory.plugins.manager import CMFPluginManager

__all__ = ["PluginCheckReport", "PluginInfo", "PluginListing", "check_plugins", "list_plugins"]

ListedStatus = Literal["ok", "failed", "api-mismatch", "disabled", "shadowed"]


class PluginInfo(BaseModel):
    """One plugin as ``cmf plugins list`` shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="The name the plugin is registered under (entry-point name).")
    distribution: str | None = Field(default=None, description="Distribution that ships it.")
    version: str | None = Field(default=None, description="Version of that distribution.")
    api_version: str | None = Field(default=None, description="The plugin API it targets.")
    source: PluginSource = Field(description="How it was loaded.")
    status: ListedStatus = Field(
        description="ok, failed, api-mismatch, disabled, or shadowed (a sector it claims is "
        "owned by another pack the operator chose)."
    )
    builtin: bool = Field(default=False, description="True for the core's own plugins.")
    hooks: tuple[str, ...] = Field(default=(), description="The cmf_ hooks it implements.")
    contributions: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="What it contributes, by kind (sectors, lanes, ...)."
    )
    shadowed_sectors: tuple[str, ...] = Field(
        default=(), description="Sectors it claims that another pack owns by operator choice."
    )
    error: str | None = Field(default=None, description="Why it is broken or disabled.")

    @property
    def sectors(self) -> tuple[str, ...]:
        """The sector ids it owns."""
        return self.contributions.get("sectors", ())


class PluginListing(BaseModel):
    """What ``cmf plugins list`` returns: the plugins, and whether every one of them loaded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool = Field(description="False when a plugin failed to load or mismatches the API.")
    plugins: tuple[PluginInfo, ...]
    findings: tuple[Finding, ...] = Field(description="Every plugin problem, sorted.")


class PluginCheckReport(BaseModel):
    """The outcome of ``cmf plugins check``: every plugin and every problem found."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool = Field(description="True when no finding has severity error.")
    plugins: tuple[PluginInfo, ...] = Field(description="Every plugin, built-ins included.")
    findings: tuple[Finding, ...] = Field(description="Load, contribution and call findings.")


def _infos(pm: CMFPluginManager, *, include_builtins: bool, hook: str | None) -> list[PluginInfo]:
    owners: dict[str, dict[str, str]] = {}
    shadowed: dict[str, list[str]] = {}
    for entry in HOOKS:
        if entry.listing is None:
            continue
        collected = collect(pm, entry)
        if entry.key is None:
            owners[entry.listing] = {
                f"{item.source}#{index}": collected.owners[index]
                for index, item in collected.items.items()
            }
        else:
            owners[entry.listing] = collected.owners
        for ident, plugins in collected.shadowed.items():
            for plugin in plugins:
                shadowed.setdefault(plugin, []).append(ident)
    infos: list[PluginInfo] = []
    for name, record in sorted(pm.plugin_records().items()):
        if record.source == "builtin" and not include_builtins:
            continue
        plugin = pm.get_plugin(name)
        hooks = (
            tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))
            if plugin is not None
            else ()
        )
        if hook is not None and hook not in hooks:
            continue
        contributed = {
            label: tuple(sorted({ident.split("#")[0] for ident, o in by.items() if o == name}))
            for label, by in owners.items()
        }
        status: ListedStatus = record.status
        if status == "ok" and name in shadowed:
            status = "shadowed"
        infos.append(
            PluginInfo(
                name=name,
                distribution=record.distribution,
                version=record.version,
                api_version=record.api_version,
                source=record.source,
                status=status,
                builtin=record.source == "builtin",
                hooks=hooks,
                contributions={label: ids for label, ids in contributed.items() if ids},
                shadowed_sectors=tuple(sorted(shadowed.get(name, ()))),
                error=record.error,
            )
        )
    return infos


def list_plugins(
    pm: CMFPluginManager, *, include_builtins: bool = False, hook: str | None = None
) -> PluginListing:
    """Describe every plugin seen, sorted by name; ``ok`` is false when any failed to load.

    :param include_builtins: also list the core's own plugins.
    :param hook: only plugins implementing this hook.
    :raises InputError: ``hook`` is not a hook name.
    """
    if hook is not None and hook not in hook_names():
        raise InputError(f"unknown hook {hook!r}; known: {', '.join(hook_names())}")
    findings = pm.stage_findings()
    infos = _infos(pm, include_builtins=include_builtins, hook=hook)
    failed = any(
        record.status in ("failed", "api-mismatch") for record in pm.plugin_records().values()
    )
    return PluginListing(ok=not failed, plugins=tuple(infos), findings=tuple(findings))


def _call_hook_findings(pm: CMFPluginManager) -> list[Finding]:
    """Call every call hook of the table with its samples; collect every problem."""
    findings: list[Finding] = []
    for entry in HOOKS:
        if entry.samples is None:
            continue
        for kwargs in entry.samples(pm):
            results, failed = pm.call_each(entry.hook, kwargs)
            findings += failed
            for plugin, value in results:
                if not isinstance(value, list | tuple):
                    findings.append(
                        invalid_contribution(
                            plugin, entry.hook, f"returned {type(value).__name__}, not a list"
                        )
                    )
                    continue
                for item in value:
                    if entry.returns is Finding and not isinstance(item, Finding):
                        findings.append(
                            invalid_contribution(
                                plugin, entry.hook, f"returned a {type(item).__name__} item"
                            )
                        )
                    elif entry.hook == "cmf_evidence_mappings":
                        problem = seal_evidence_mapping(item, kwargs["sector_id"])
                        if isinstance(problem, str):
                            findings.append(invalid_contribution(plugin, entry.hook, problem))
    return findings


def check_plugins(pm: CMFPluginManager) -> PluginCheckReport:
    """Load every plugin, collect every contribution hook, and call every validation, evidence
    and release-check hook with a sample (the pack's own benchmark traces when it has them).

    The report is ``ok`` when no finding has severity error (``cmf plugins check`` exits 1 else).
    """
    findings = pm.stage_findings() + _call_hook_findings(pm)
    ordered = sort_findings(dict.fromkeys(findings))
    return PluginCheckReport(
        ok=not any(finding.severity == "error" for finding in ordered),
        plugins=tuple(_infos(pm, include_builtins=True, hook=None)),
        findings=ordered,
    )
