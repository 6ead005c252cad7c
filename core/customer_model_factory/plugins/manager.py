"""The plugin manager: entry-point loading, the API version rule, and the state of every plugin.

A manager is built explicitly by :func:`create_plugin_manager` from a
:class:`~.switches.PluginSwitches` (the CLI builds one per run, inside its
:class:`~customer_model_factory.context.RunContext`); nothing happens at import time. Building it:

1. registers the core's built-in plugins (:mod:`customer_model_factory.builtins`);
2. loads the entry points of group ``customer_model_factory`` one at a time, sorted by name, each
   guarded, so a pack that fails to import becomes a ``PLUGIN_LOAD_FAILED`` error finding naming
   its distribution, and a pack whose ``CMF_PLUGIN_API`` this core does not provide a
   ``PLUGIN_API_MISMATCH`` error finding saying which core release supports it;
3. imports the extra modules of ``--plugin MODULE`` / ``CMF_PLUGINS``.

:meth:`CMFPluginManager.stage_findings` is what every stage run adds to its report: each load
problem, each contribution hook that raised or returned something invalid, each id two packs
claim (all errors, so the run fails closed), and an info finding per plugin the operator disabled.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Literal

import importlib_metadata
import orjson
import pluggy

from customer_model_factory.errors import PluginError
from customer_model_factory.findings import Finding, sort_findings
from customer_model_factory.plugin_api import hookspecs
from customer_model_factory.plugin_api.contracts import SectorPack
from customer_model_factory.plugin_api.hookspecs import PROJECT_NAME
from customer_model_factory.plugin_api.version import api_compatibility_problem, parse_api_version
from customer_model_factory.plugins.calling import call_each, describe_error, one_line
from customer_model_factory.plugins.switches import (
    ENV_DISABLE_PLUGINS,
    ENV_LOAD_PLUGINS,
    PluginSwitches,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "CMFPluginManager",
    "PluginAPIError",
    "PluginRecord",
    "PluginSource",
    "PluginStatus",
    "SectorDispatch",
    "create_plugin_manager",
    "hook_names",
]

ENTRY_POINT_GROUP: Final = PROJECT_NAME
"""The entry-point group sector packs register under."""
_HOOK_PREFIX: Final = "cmf_"

PluginSource = Literal["builtin", "entry-point", "module", "in-process"]
PluginStatus = Literal["ok", "failed", "api-mismatch", "disabled"]


class PluginAPIError(PluginError):
    """A plugin declares no ``CMF_PLUGIN_API``, or one this release does not provide (exit 2)."""


def hook_names() -> tuple[str, ...]:
    """Return the name of every hook spec, sorted."""
    return tuple(
        sorted(
            name
            for name in dir(hookspecs)
            if name.startswith(_HOOK_PREFIX) and callable(getattr(hookspecs, name))
        )
    )


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class PluginRecord:
    """What the manager knows of one plugin it has seen (loaded or not)."""

    name: str
    source: PluginSource
    distribution: str | None = None
    version: str | None = None
    api_version: str | None = None
    status: PluginStatus = "ok"
    error: str | None = None


@dataclass(frozen=True)
class SectorDispatch:
    """The resolved owner of a sector: its plugin, its pack, and its validator.

    Resolved once per sector and cached on the manager, so validating a million traces does not
    search the hook implementations a million times.
    """

    sector_id: str
    plugin_name: str
    pack: SectorPack | None
    distribution: str | None
    version: str | None
    validate: Callable[..., Any] | None
    argnames: tuple[str, ...]
    call: Callable[[str, Any, Any], Any] | None = None
    """``call(sector_id, trace, metadata)``: the validator adapted to the arguments it takes
    (pluggy lets an implementation accept a subset), or ``None`` without a validator."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "call", _adapt(self.validate, self.argnames))
        object.__setattr__(self, "_metadata_check", _metadata_checker(self.pack))

    def metadata_problems(self, metadata: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Check a row's metadata against the pack's declared model or JSON Schema.

        :returns: ``(field, problem)`` pairs, empty when it conforms or the pack declares none.
            Problems name the rule broken, never the value (a value may be a secret).
        """
        check = self._metadata_check  # type: ignore[attr-defined]
        return [] if check is None else check(metadata)


_MAX_SCHEMA_PROBLEMS: Final = 5


_VERDICT_CACHE_LIMIT: Final = 65_536


def _metadata_checker(
    pack: SectorPack | None,
) -> Callable[[Mapping[str, Any]], list[tuple[str, str]]] | None:
    """Build the check of a pack's declared metadata model or schema, with verdicts cached by
    the metadata's canonical bytes (a million rows mostly repeat a few thousand shapes)."""
    if pack is None:
        return None
    check: Callable[[Mapping[str, Any]], list[tuple[str, str]]]
    if pack.metadata_model is not None:
        from pydantic import ValidationError  # noqa: PLC0415

        model = pack.metadata_model

        def check_model(metadata: Mapping[str, Any]) -> list[tuple[str, str]]:
            try:
                model.model_validate(metadata)
            except ValidationError as error:
                return [
                    (
                        ".".join(["metadata", *(str(part) for part in item["loc"])]),
                        f"{item['type']}: {item['msg']}"[:200],
                    )
                    for item in error.errors(include_input=False)[:_MAX_SCHEMA_PROBLEMS]
                ]
            return []

        check = check_model
    elif pack.metadata_schema is not None:
        from jsonschema import Draft202012Validator  # noqa: PLC0415

        validator = Draft202012Validator(pack.metadata_schema)

        def check_schema(metadata: Mapping[str, Any]) -> list[tuple[str, str]]:
            problems: list[tuple[str, str]] = []
            for error in sorted(validator.iter_errors(metadata), key=lambda e: list(e.path)):
                where = ".".join(["metadata", *(str(part) for part in error.absolute_path)])
                if error.validator == "required" and isinstance(error.instance, Mapping):
                    missing = [k for k in error.validator_value if k not in error.instance]
                    problems += [(f"{where}.{key}", "required field is missing") for key in missing]
                else:
                    # The rule broken, never the value: a value may be a secret.
                    problems.append((where, f"violates {error.validator!r} of the schema"))
                if len(problems) >= _MAX_SCHEMA_PROBLEMS:
                    break
            return problems

        check = check_schema
    else:
        return None
    verdicts: dict[bytes, list[tuple[str, str]]] = {}

    def cached(metadata: Mapping[str, Any]) -> list[tuple[str, str]]:
        try:
            key = orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # not JSON (a caller passing objects): no cache
            return check(metadata)
        verdict = verdicts.get(key)
        if verdict is None:
            verdict = check(metadata)
            if len(verdicts) >= _VERDICT_CACHE_LIMIT:
                verdicts.clear()
            verdicts[key] = verdict
        return list(verdict)

    return cached


def _adapt(
    function: Callable[..., Any] | None, argnames: tuple[str, ...]
) -> Callable[[str, Any, Any], Any] | None:
    if function is None:
        return None
    if argnames == ("sector_id", "trace", "metadata"):
        return function
    order = {"sector_id": 0, "trace": 1, "metadata": 2}
    positions = tuple(order[name] for name in argnames)

    def call(sector_id: str, trace: Any, metadata: Any) -> Any:
        values = (sector_id, trace, metadata)
        return function(*[values[position] for position in positions])

    return call


class CMFPluginManager(pluggy.PluginManager):
    """A pluggy manager that applies the plugin API version rule, ignores unprefixed functions,
    records every plugin's state, owns the finding codes its packs declare, and caches
    contributions until a plugin is (un)registered.
    """

    def __init__(self, switches: PluginSwitches | None = None) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.switches = switches if switches is not None else PluginSwitches()
        self.findings: list[Finding] = []
        """Findings met while loading plugins (failures, API mismatches, deprecations, disabled)."""
        self.trace_calls = self.switches.trace
        self._records: dict[str, PluginRecord] = {}
        self._registration_findings: dict[str, list[Finding]] = {}
        self.cache: dict[Any, Any] = {}
        """Collected contributions, cleared whenever a plugin is registered or unregistered."""
        self.sector_dispatches: dict[str, SectorDispatch | None] = {}
        """Resolved sector owners (:meth:`sector_dispatch`), cleared when a plugin changes."""

    # ---- registration ----

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        """Only ``cmf_``-prefixed functions can be hook implementations."""
        if not name.startswith(_HOOK_PREFIX):
            return None
        return super().parse_hookimpl_opts(plugin, name)

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """Register ``plugin`` after checking its ``CMF_PLUGIN_API``.

        A hook argument on its way out (a spec's ``warn_on_impl_args``) or the integer form of
        API 1.0 adds a ``PLUGIN_DEPRECATED`` warning finding; the plugin still loads.

        :raises PluginAPIError: the plugin declares no plugin API, or one this core cannot load.
        :raises PluginError: it implements an unknown hook or wraps an isolated hook.
        :returns: the registered name, or ``None`` if the name is blocked.
        """
        label = name or self.get_canonical_name(plugin)
        record = self._records.get(label)
        who = (record.distribution if record else None) or label
        declared = getattr(plugin, "CMF_PLUGIN_API", None)
        problem = api_compatibility_problem(declared, core_version=_core_version())
        if problem is not None:
            raise PluginAPIError(problem, plugin=who)
        version, deprecated_form = parse_api_version(declared)
        assert version is not None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            registered = super().register(plugin, name)
        if registered is None:
            return None
        problem = self._hook_problem(plugin)
        if problem is not None:
            super().unregister(plugin)
            raise PluginError(problem, plugin=who)
        notes = [one_line(str(warning.message)) for warning in caught]
        if deprecated_form:
            notes.append(
                f'declares CMF_PLUGIN_API = {declared!r}; declare "{version[0]}.{version[1]}" '
                "(the integer form stops loading with plugin API 2.0)"
            )
        deprecations = [
            Finding(code="PLUGIN_DEPRECATED", severity="warning", message=f"plugin {who!r}: {n}")
            for n in notes
        ]
        self.findings.extend(deprecations)
        self._registration_findings[registered] = deprecations
        api_text = f"{version[0]}.{version[1]}"
        if record is None:
            self._records[registered] = PluginRecord(registered, "in-process", api_version=api_text)
        else:
            record.api_version = api_text
        self._invalidate()
        return registered

    def unregister(self, plugin: Any | None = None, name: str | None = None) -> Any | None:
        """Unregister a plugin (by object or name) and drop the cached contributions."""
        if name is None and plugin is not None:
            name = self.get_name(plugin)
        removed = super().unregister(plugin, name)
        record = self._records.get(name or "")
        if record is not None and record.source == "in-process":
            del self._records[record.name]
        gone = {id(finding) for finding in self._registration_findings.pop(name or "", [])}
        self.findings = [finding for finding in self.findings if id(finding) not in gone]
        self._invalidate()
        return removed

    def _hook_problem(self, plugin: Any) -> str | None:
        for caller in self.get_hookcallers(plugin) or ():
            impls = [impl for impl in caller.get_hookimpls() if impl.plugin is plugin]
            if not caller.has_spec() and not all(impl.optionalhook for impl in impls):
                return f"implements unknown hook {caller.name} (known: {', '.join(hook_names())})"
            if any(impl.wrapper or impl.hookwrapper for impl in impls):
                return f"wraps hook {caller.name}; cmf hooks are called in isolation, no wrappers"
        return None

    def _invalidate(self) -> None:
        self.cache.clear()
        self.sector_dispatches.clear()

    def choose_sector_owners(self, owners: Mapping[str, str]) -> None:
        """Add the operator's choice of owner for sectors two packs claim (a workspace's
        ``sector_owners``); cached ownership is recomputed."""
        if not owners:
            return
        self.switches = self.switches.adding(sector_owners=owners)
        self._invalidate()

    # ---- loading ----

    def _add_record(self, record: PluginRecord) -> PluginRecord:
        self._records[record.name] = record
        return record

    def _fail(self, record: PluginRecord, code: str, status: PluginStatus, message: str) -> None:
        record.status = status
        record.error = one_line(message)
        self.findings.append(Finding(code=code, severity="error", message=record.error))

    def _disable(self, record: PluginRecord, reason: str) -> None:
        record.status = "disabled"
        record.error = reason
        self.set_blocked(record.name)
        who = f"{record.name!r}" + (
            f" ({record.distribution} {record.version})" if record.distribution else ""
        )
        self.findings.append(
            Finding(
                code="PLUGIN_DISABLED",
                severity="info",
                message=f"plugin {who} is disabled by the operator ({reason})",
            )
        )

    def _register_loaded(self, plugin: Any, record: PluginRecord) -> None:
        who = record.distribution or record.name
        try:
            self.register(plugin, record.name)
        except PluginAPIError as error:
            self._fail(record, "PLUGIN_API_MISMATCH", "api-mismatch", str(error))
        except Exception as error:
            self._fail(
                record,
                "PLUGIN_LOAD_FAILED",
                "failed",
                f"plugin {who!r} cannot be registered: {describe_error(error)}",
            )

    def load_builtins(self) -> None:
        """Register the core's built-in plugins (unless the switches disable them)."""
        from customer_model_factory import builtins  # noqa: PLC0415

        for module in builtins.plugin_modules():
            record = self._add_record(
                PluginRecord(
                    module.PLUGIN_NAME,
                    "builtin",
                    distribution="customer-model-factory",
                    version=_core_version(),
                )
            )
            if self.is_listed(record, self.switches.disabled):
                self._disable(record, f"listed in {ENV_DISABLE_PLUGINS} or --disable-plugin")
                continue
            self._register_loaded(module, record)

    def load_entry_points(self) -> None:
        """Load the entry points of group ``customer_model_factory``, one at a time by name."""
        allow = self.switches.allow
        for entry_point, dist_name, dist_version in _discover_entry_points():
            if entry_point.name in self._records:
                other = self._records[entry_point.name]
                self.findings.append(
                    Finding(
                        code="PLUGIN_DUPLICATE_ID",
                        severity="error",
                        message=(
                            f"entry point {entry_point.name!r} is declared by both "
                            f"{other.distribution or other.name!r} and {dist_name!r}; only "
                            f"{other.distribution or other.name!r} was loaded: uninstall one"
                        ),
                    )
                )
                continue
            record = self._add_record(
                PluginRecord(entry_point.name, "entry-point", dist_name, dist_version)
            )
            if self.is_listed(record, self.switches.disabled):
                self._disable(record, f"listed in {ENV_DISABLE_PLUGINS} or --disable-plugin")
                continue
            if allow is not None and not self.is_listed(record, allow):
                self._disable(record, f"not listed in {ENV_LOAD_PLUGINS}")
                continue
            try:
                plugin = entry_point.load()
            except Exception as error:
                self._fail(
                    record,
                    "PLUGIN_LOAD_FAILED",
                    "failed",
                    f"plugin {dist_name or entry_point.name!r} (entry point "
                    f"{entry_point.name} = {entry_point.value}) failed to import: "
                    f"{describe_error(error)}",
                )
                continue
            self._register_loaded(plugin, record)

    def load_module(self, spec: str) -> None:
        """Import and register a plugin module that is not installed.

        :param spec: a dotted module name, or the path of a ``.py`` file.
        """
        is_file = spec.endswith(".py")
        name = Path(spec).stem if is_file else spec
        if name in self._records:
            return
        record = self._add_record(PluginRecord(name, "module"))
        if self.is_listed(record, self.switches.disabled):
            self._disable(record, f"listed in {ENV_DISABLE_PLUGINS} or --disable-plugin")
            return
        try:
            module = _import_file(spec, name) if is_file else importlib.import_module(spec)
        except Exception as error:
            self._fail(
                record,
                "PLUGIN_LOAD_FAILED",
                "failed",
                f"plugin module {spec!r} failed to import: {describe_error(error)}",
            )
            return
        self._register_loaded(module, record)

    # ---- calling ----

    def call_each(
        self,
        hook: str | pluggy.HookCaller,
        kwargs: Mapping[str, Any] | None = None,
        *,
        owner: str | None = None,
    ) -> tuple[list[tuple[str, Any]], list[Finding]]:
        """Call every implementation of ``hook`` in isolation (only ``owner``'s when given).

        :returns: ``([(plugin name, non-None result), ...], [PLUGIN_HOOK_FAILED findings])``.
        """
        caller = getattr(self.hook, hook) if isinstance(hook, str) else hook
        return call_each(caller, kwargs or {}, trace=self.trace_calls, owner=owner)

    def call_isolated(
        self, hook: str | pluggy.HookCaller, /, **kwargs: Any
    ) -> tuple[list[Any], list[Finding]]:
        """Call every implementation of ``hook`` in isolation.

        :returns: ``(non-None results in pluggy's call order, PLUGIN_HOOK_FAILED findings)``.
        """
        results, findings = self.call_each(hook, kwargs)
        return [value for _, value in results], findings

    # ---- introspection ----

    def plugin_records(self) -> dict[str, PluginRecord]:
        """Return the record of every plugin seen, keyed by name."""
        return dict(self._records)

    def display_name(self, plugin: str) -> str:
        """The distribution (with version) that ships ``plugin``, else its name."""
        record = self._records.get(plugin)
        if record is None or record.distribution is None:
            return plugin
        return f"{record.distribution} {record.version}" if record.version else record.distribution

    def is_named(self, plugin: str, name: str) -> bool:
        """Whether ``name`` designates ``plugin`` (its name or its distribution)."""
        record = self._records.get(plugin)
        if record is None:
            return _normalise(plugin) == _normalise(name)
        return self.is_listed(record, (name,))

    @staticmethod
    def is_listed(record: PluginRecord, names: Iterable[str] | None) -> bool:
        """Whether ``record``'s name or distribution is among ``names``."""
        wanted = {_normalise(name) for name in names or ()}
        return _normalise(record.name) in wanted or (
            record.distribution is not None and _normalise(record.distribution) in wanted
        )

    def has_errors(self) -> bool:
        """Return True when loading produced an error finding (the run must fail closed)."""
        return any(finding.severity == "error" for finding in self.findings)

    def sector_packs(self) -> dict[str, SectorPack]:
        """The sector packs with a settled owner, by sector id."""
        from customer_model_factory.plugins.table import collect, entry_for  # noqa: PLC0415

        return dict(collect(self, entry_for("cmf_sector_packs")).items)

    def finding_codes(self) -> dict[str, str]:
        """The finding codes the loaded packs declare (code → meaning); owned by this manager,
        not by the process, so two managers never see each other's packs."""
        codes: dict[str, str] = {}
        for pack in self.sector_packs().values():
            codes.update(pack.finding_codes)
        return dict(sorted(codes.items()))

    def stage_findings(self) -> list[Finding]:
        """Every plugin problem a stage run must report (it fails closed on any error).

        Load failures, API mismatches and deprecations, every contribution hook that raised or
        returned something invalid, ids two plugins claim, and one info finding per plugin the
        operator disabled. Computed once per manager state.
        """
        cached = self.cache.get(("stage-findings",))
        if cached is not None:
            return list(cached)
        from customer_model_factory.plugins.table import HOOKS, collect  # noqa: PLC0415

        findings = list(self.findings)
        for entry in HOOKS:
            if entry.model is not None:
                findings += collect(self, entry).findings
        ordered = list(sort_findings(findings))
        self.cache[("stage-findings",)] = ordered
        return list(ordered)

    def sector_dispatch(self, sector_id: str) -> SectorDispatch | None:
        """Return the owner of ``sector_id`` and its validator, resolved once and cached.

        :returns: ``None`` when no loaded pack owns the sector (none provides it, or two claim it
            and the operator chose neither).
        """
        try:
            return self.sector_dispatches[sector_id]
        except KeyError:
            pass
        from customer_model_factory.plugins.table import collect, entry_for  # noqa: PLC0415

        collected = collect(self, entry_for("cmf_sector_packs"))
        owner = collected.owners.get(sector_id)
        dispatch: SectorDispatch | None = None
        if owner is not None:
            impl = next(
                (
                    impl
                    for impl in self.hook.cmf_validate_sector_metadata.get_hookimpls()
                    if impl.plugin_name == owner
                ),
                None,
            )
            record = self._records.get(owner)
            dispatch = SectorDispatch(
                sector_id=sector_id,
                plugin_name=owner,
                pack=collected.items[sector_id],
                distribution=record.distribution if record else None,
                version=record.version if record else None,
                validate=impl.function if impl is not None else None,
                argnames=tuple(impl.argnames) if impl is not None else (),
            )
        self.sector_dispatches[sector_id] = dispatch
        return dispatch


def _core_version() -> str:
    from customer_model_factory._version import __version__  # noqa: PLC0415

    return __version__


def _import_file(path: str, name: str) -> Any:
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _discover_entry_points() -> list[tuple[Any, str | None, str | None]]:
    """Return ``(entry point, distribution name, version)`` of the group, sorted by name.

    Distributions are de-duplicated by normalised name (the first on ``sys.path`` wins), as
    ``importlib.metadata.entry_points`` does.
    """
    seen: set[str] = set()
    found: list[tuple[Any, str | None, str | None]] = []
    for dist in importlib_metadata.distributions():
        dist_name = dist.metadata["name"] if dist.metadata is not None else None
        key = _normalise(dist_name or "")
        if dist_name and key in seen:
            continue
        seen.add(key)
        for entry_point in dist.entry_points:
            if entry_point.group == ENTRY_POINT_GROUP:
                found.append((entry_point, dist_name, dist.version))
    return sorted(found, key=lambda item: (item[0].name, item[1] or ""))


def create_plugin_manager(
    switches: PluginSwitches | None = None,
    *,
    extra_modules: Iterable[str] = (),
    disabled: Iterable[str] = (),
    entry_points: bool | None = None,
    builtins: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> CMFPluginManager:
    """Build a new plugin manager.

    :param switches: the operator's switches (the CLI passes the ones its
        :class:`~customer_model_factory.context.RunContext` read); default: none set.
    :param extra_modules: plugin modules (or ``.py`` files) to load besides the entry points.
    :param disabled: plugin or distribution names not to load.
    :param entry_points: load the installed entry points (tests turn this off).
    :param builtins: register the core's built-in plugins.
    :param environ: read the ``CMF_*`` switches from this mapping instead of ``switches``
        (explicit: the process environment is never read here).
    """
    chosen = switches if switches is not None else PluginSwitches()
    if environ is not None:
        chosen = PluginSwitches.from_environ(environ)
    chosen = chosen.adding(extra_modules=extra_modules, disabled=disabled)
    if entry_points is not None:
        chosen = replace(chosen, entry_points=entry_points)
    if builtins is not None:
        chosen = replace(chosen, builtins=builtins)
    pm = CMFPluginManager(chosen)
    if chosen.builtins:
        pm.load_builtins()
    if chosen.entry_points:
        pm.load_entry_points()
    for module in dict.fromkeys(chosen.extra_modules):
        pm.load_module(module)
    if pm.trace_calls:
        pm.add_hookcall_monitoring(
            lambda hook, impls, kwargs: sys.stderr.write(
                f"cmf-plugins: call {hook} on "
                f"{', '.join(impl.plugin_name for impl in impls) or 'nobody'}\n"
            ),
            lambda outcome, hook, impls, kwargs: sys.stderr.write(f"cmf-plugins:   {hook} done\n"),
        )
    return pm
