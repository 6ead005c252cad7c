"""The plugin manager: entry-point loading, operator switches, failure isolation, listing.

One manager per process, built on first use by :func:`get_plugin_manager` (nothing happens at
import time). Building it:

1. registers the core's built-in plugin (:mod:`customer_model_factory._builtins`);
2. loads the entry points of group ``customer_model_factory`` one at a time, sorted by name, each
   guarded so a pack that fails to import becomes a ``PLUGIN_LOAD_FAILED`` error finding naming
   its distribution, and a pack declaring no or another ``CMF_PLUGIN_API`` a
   ``PLUGIN_API_MISMATCH`` error finding;
3. imports the extra modules of ``--plugin MODULE`` / ``CMF_PLUGINS`` (modules or ``.py`` files
   that are not installed).

Operator switches, one per concern (comma-separated lists)::

    CMF_PLUGINS=mod_a,path/to/b.py   extra plugin modules to load
    CMF_LOAD_PLUGINS=name,...        allowlist of entry points (set but empty: load none)
    CMF_DISABLE_PLUGINS=name,...     blocklist (entry-point, distribution or module names)
    CMF_TRACE_PLUGINS=1              log every hook call to stderr

Hooks are called through :func:`call_isolated`: one implementation at a time, so an
implementation that raises becomes a ``PLUGIN_HOOK_FAILED`` error finding (plugin, hook, exception
type and message) and the others still run; callers fail closed on any error finding. The
``collect_*`` accessors return validated, de-duplicated contributions sorted by id together with
the findings met on the way; two plugins claiming one id is a ``PLUGIN_DUPLICATE_ID`` error naming
both (the first plugin by name keeps the id).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import importlib_metadata
import pluggy
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from customer_model_factory import hookspecs
from customer_model_factory.contributions import (
    HASHED_IDENTIFIER_RE,
    IDENTIFIER_HASH_SCHEME,
    BenchmarkPackage,
    ObjectiveProfile,
    ProprietaryIdentifiers,
    RetrievalSchema,
    SectorPack,
    TrainingLaneSpec,
)
from customer_model_factory.errors import InputError, PluginError
from customer_model_factory.findings import Finding, register_finding_codes, sort_findings
from customer_model_factory.hookspecs import CMF_PLUGIN_API, PROJECT_NAME
from customer_model_factory.manifest import Manifest, manifest_classes

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_DISABLE_PLUGINS",
    "ENV_LOAD_PLUGINS",
    "ENV_PLUGINS",
    "ENV_TRACE_PLUGINS",
    "CMFPluginManager",
    "PluginAPIError",
    "PluginCheckReport",
    "PluginInfo",
    "PluginSource",
    "PluginStatus",
    "SectorDispatch",
    "call_isolated",
    "check_plugins",
    "collect_benchmark_packages",
    "collect_evidence_mappings",
    "collect_objective_profiles",
    "collect_proprietary_identifiers",
    "collect_release_checks",
    "collect_retrieval_schemas",
    "collect_sector_packs",
    "collect_training_lanes",
    "create_plugin_manager",
    "get_plugin_manager",
    "hook_names",
    "list_plugins",
    "reset_plugin_manager",
]

ENTRY_POINT_GROUP: Final = PROJECT_NAME
"""The entry-point group sector packs register under."""
ENV_PLUGINS: Final = "CMF_PLUGINS"
ENV_LOAD_PLUGINS: Final = "CMF_LOAD_PLUGINS"
ENV_DISABLE_PLUGINS: Final = "CMF_DISABLE_PLUGINS"
ENV_TRACE_PLUGINS: Final = "CMF_TRACE_PLUGINS"
_ENV_VARS: Final = (ENV_PLUGINS, ENV_LOAD_PLUGINS, ENV_DISABLE_PLUGINS, ENV_TRACE_PLUGINS)
_HOOK_PREFIX: Final = "cmf_"
_MAX_MESSAGE: Final = 300

PluginSource = Literal["builtin", "entry-point", "module", "in-process"]
PluginStatus = Literal["ok", "failed", "api-mismatch", "disabled"]

_M = TypeVar("_M", bound=BaseModel)


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


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_MESSAGE else flat[: _MAX_MESSAGE - 3] + "..."


def _describe(error: BaseException) -> str:
    message = _one_line(str(error))
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _split(value: str | None) -> list[str]:
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def _hook_failed(plugin: str, hook: str, error: BaseException, **where: Any) -> Finding:
    return Finding(
        code="PLUGIN_HOOK_FAILED",
        severity="error",
        message=f"plugin {plugin!r} hook {hook} raised {_describe(error)}",
        **where,
    )


def _invalid(plugin: str, hook: str, problem: str) -> Finding:
    return Finding(
        code="PLUGIN_INVALID_CONTRIBUTION",
        severity="error",
        message=f"plugin {plugin!r} hook {hook}: {_one_line(problem)}",
    )


def _trace(line: str) -> None:
    sys.stderr.write(f"cmf-plugins: {line}\n")


def _call_impls(
    caller: pluggy.HookCaller, kwargs: Mapping[str, Any], *, trace: bool = False
) -> tuple[list[tuple[str, Any]], list[Finding]]:
    """Call each implementation of ``caller`` in pluggy's order (LIFO), isolating failures."""
    results: list[tuple[str, Any]] = []
    findings: list[Finding] = []
    for impl in reversed(caller.get_hookimpls()):
        if impl.wrapper or impl.hookwrapper:
            continue  # rejected at registration; kept out of isolated calls regardless
        args = [kwargs[name] for name in impl.argnames]
        if trace:
            _trace(f"call {caller.name} on {impl.plugin_name} ({', '.join(impl.argnames)})")
        try:
            value = impl.function(*args)
        except Exception as error:
            if trace:
                _trace(f"  {caller.name} on {impl.plugin_name} raised {_describe(error)}")
            findings.append(_hook_failed(impl.plugin_name, caller.name, error))
            continue
        if trace:
            _trace(f"  {caller.name} on {impl.plugin_name} returned {type(value).__name__}")
        if value is not None:
            results.append((impl.plugin_name, value))
    return results, findings


class PluginInfo(BaseModel):
    """One plugin as ``cmf plugins list`` shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="The name the plugin is registered under (entry-point name).")
    distribution: str | None = Field(default=None, description="Distribution that ships it.")
    version: str | None = Field(default=None, description="Version of that distribution.")
    api_version: int | None = Field(default=None, description="CMF_PLUGIN_API it declares.")
    source: PluginSource = Field(description="How it was loaded.")
    status: PluginStatus = Field(description="ok, failed, api-mismatch or disabled.")
    builtin: bool = Field(default=False, description="True for the core's own plugins.")
    hooks: tuple[str, ...] = Field(default=(), description="The cmf_ hooks it implements.")
    sectors: tuple[str, ...] = Field(default=(), description="Sector ids it provides.")
    retrieval_schemas: tuple[str, ...] = Field(default=(), description="Retrieval schema ids.")
    benchmark_packages: tuple[str, ...] = Field(default=(), description="Benchmark package ids.")
    lanes: tuple[str, ...] = Field(default=(), description="Training lane names.")
    objective_profiles: tuple[str, ...] = Field(default=(), description="Objective profiles.")
    error: str | None = Field(default=None, description="Why it is broken or disabled.")


class PluginCheckReport(BaseModel):
    """The outcome of ``cmf plugins check``: every plugin and every problem found."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool = Field(description="True when no finding has severity error.")
    plugins: tuple[PluginInfo, ...] = Field(description="Every plugin, built-ins included.")
    findings: tuple[Finding, ...] = Field(description="Load and contribution findings, sorted.")


@dataclass
class _Record:
    name: str
    source: PluginSource
    distribution: str | None = None
    version: str | None = None
    api_version: int | None = None
    status: PluginStatus = "ok"
    error: str | None = None


@dataclass(frozen=True)
class SectorDispatch:
    """The resolved owner of a sector: its plugin and its ``cmf_validate_sector_metadata``.

    Resolved once per sector and cached on the manager, so validating a million traces does not
    search the hook implementations a million times.
    """

    sector_id: str
    plugin_name: str
    validate: Callable[..., Any] | None
    argnames: tuple[str, ...]
    call: Callable[[str, Any, Any], Any] | None = None
    """``call(sector_id, trace, metadata)``: the validator adapted to the arguments it takes
    (pluggy lets an implementation accept a subset), or ``None`` without a validator."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "call", _adapt(self.validate, self.argnames))


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
    """A pluggy manager that checks ``CMF_PLUGIN_API``, ignores unprefixed functions, keeps the
    load findings in :attr:`findings` and caches contributions until a plugin is (un)registered.
    """

    def __init__(self, *, trace: bool = False) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.findings: list[Finding] = []
        """Findings met while loading plugins (load failures, API mismatches, disabled ones)."""
        self.trace_calls = trace
        self._records: dict[str, _Record] = {}
        self._cache: dict[Any, Any] = {}
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

        :raises PluginAPIError: the plugin declares no or another plugin API version.
        :raises PluginError: it implements an unknown hook or wraps an isolated hook.
        :returns: the registered name, or ``None`` if the name is blocked.
        """
        label = name or self.get_canonical_name(plugin)
        record = self._records.get(label)
        who = (record.distribution if record else None) or label
        api = getattr(plugin, "CMF_PLUGIN_API", None)
        if api is None:
            raise PluginAPIError(
                f"declares no CMF_PLUGIN_API; this release provides plugin API "
                f"{CMF_PLUGIN_API} (add `CMF_PLUGIN_API = {CMF_PLUGIN_API}` to the module)",
                plugin=who,
            )
        if isinstance(api, bool) or api != CMF_PLUGIN_API:
            raise PluginAPIError(
                f"targets plugin API {api!r}; this release provides plugin API {CMF_PLUGIN_API}",
                plugin=who,
            )
        registered = super().register(plugin, name)
        if registered is None:
            return None
        problem = self._hook_problem(plugin)
        if problem is not None:
            super().unregister(plugin)
            raise PluginError(problem, plugin=who)
        if record is None:
            self._records[registered] = _Record(registered, "in-process", api_version=api)
        else:
            record.api_version = api
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
        self._cache.clear()
        self.sector_dispatches.clear()

    # ---- loading ----

    def _add_record(self, record: _Record) -> _Record:
        self._records[record.name] = record
        return record

    def _fail(self, record: _Record, code: str, status: PluginStatus, message: str) -> None:
        record.status = status
        record.error = _one_line(message)
        self.findings.append(Finding(code=code, severity="error", message=record.error))

    def _disable(self, record: _Record, reason: str) -> None:
        record.status = "disabled"
        record.error = reason
        self.set_blocked(record.name)
        self.findings.append(
            Finding(
                code="PLUGIN_DISABLED",
                severity="info",
                message=f"plugin {record.name!r} is disabled ({reason})",
            )
        )

    def _register_loaded(self, plugin: Any, record: _Record) -> None:
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
                f"plugin {who!r} cannot be registered: {_describe(error)}",
            )

    def load_builtins(self, blocked: Iterable[str] = ()) -> None:
        """Register the core's built-in plugin (unless ``blocked`` names it)."""
        from customer_model_factory import _builtins  # noqa: PLC0415

        record = self._add_record(
            _Record(
                _builtins.PLUGIN_NAME,
                "builtin",
                distribution="customer-model-factory",
                version=_core_version(),
            )
        )
        if _matches(record, set(blocked)):
            self._disable(record, f"listed in {ENV_DISABLE_PLUGINS}")
            return
        self._register_loaded(_builtins, record)

    def load_entry_points(
        self, *, allow: Iterable[str] | None = None, blocked: Iterable[str] = ()
    ) -> None:
        """Load the entry points of group ``customer_model_factory``, one at a time by name.

        :param allow: when given, only entry points (or distributions) named here are loaded.
        :param blocked: entry-point or distribution names that are not loaded.
        """
        allowed = None if allow is None else set(allow)
        blocked_set = set(blocked)
        for entry_point, dist_name, dist_version in _discover_entry_points():
            if entry_point.name in self._records:
                other = self._records[entry_point.name]
                self.findings.append(
                    Finding(
                        code="PLUGIN_DUPLICATE_ID",
                        severity="error",
                        message=(
                            f"entry point {entry_point.name!r} is declared by both "
                            f"{other.distribution or other.name!r} and {dist_name!r}; "
                            f"keeping {other.distribution or other.name!r}"
                        ),
                    )
                )
                continue
            record = self._add_record(
                _Record(entry_point.name, "entry-point", dist_name, dist_version)
            )
            if _matches(record, blocked_set):
                self._disable(record, f"listed in {ENV_DISABLE_PLUGINS}")
                continue
            if allowed is not None and not _matches(record, allowed):
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
                    f"{_describe(error)}",
                )
                continue
            self._register_loaded(plugin, record)

    def load_module(self, spec: str, *, blocked: Iterable[str] = ()) -> None:
        """Import and register a plugin module that is not installed.

        :param spec: a dotted module name, or the path of a ``.py`` file.
        """
        is_file = spec.endswith(".py")
        name = Path(spec).stem if is_file else spec
        if name in self._records:
            return
        record = self._add_record(_Record(name, "module"))
        if _matches(record, set(blocked)):
            self._disable(record, f"listed in {ENV_DISABLE_PLUGINS}")
            return
        try:
            module = _import_file(spec, name) if is_file else importlib.import_module(spec)
        except Exception as error:
            self._fail(
                record,
                "PLUGIN_LOAD_FAILED",
                "failed",
                f"plugin module {spec!r} failed to import: {_describe(error)}",
            )
            return
        self._register_loaded(module, record)

    # ---- calling ----

    def call_each(
        self, hook: str | pluggy.HookCaller, kwargs: Mapping[str, Any] | None = None
    ) -> tuple[list[tuple[str, Any]], list[Finding]]:
        """Call every implementation of ``hook`` in isolation.

        :returns: ``([(plugin name, non-None result), ...], [PLUGIN_HOOK_FAILED findings])``.
        """
        caller = getattr(self.hook, hook) if isinstance(hook, str) else hook
        return _call_impls(caller, kwargs or {}, trace=self.trace_calls)

    def call_isolated(
        self, hook: str | pluggy.HookCaller, /, **kwargs: Any
    ) -> tuple[list[Any], list[Finding]]:
        """Like :func:`call_isolated`, on this manager."""
        results, findings = self.call_each(hook, kwargs)
        return [value for _, value in results], findings

    # ---- introspection ----

    def plugin_records(self) -> dict[str, _Record]:
        """Return the load record of every plugin seen, keyed by name."""
        return dict(self._records)

    def has_errors(self) -> bool:
        """Return True when loading produced an error finding (the run must fail closed)."""
        return any(finding.severity == "error" for finding in self.findings)

    def sector_dispatch(self, sector_id: str) -> SectorDispatch | None:
        """Return the owner of ``sector_id`` and its validator, resolved once and cached.

        :returns: ``None`` when no loaded pack provides the sector.
        """
        try:
            return self.sector_dispatches[sector_id]
        except KeyError:
            pass
        _, _, owners = _collect(self, "cmf_sector_packs", SectorPack, "id", "sector pack")
        # Only packs that passed collect_sector_packs' checks own a sector.
        owner = owners.get(sector_id) if sector_id in collect_sector_packs(self)[0] else None
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
            dispatch = SectorDispatch(
                sector_id=sector_id,
                plugin_name=owner,
                validate=impl.function if impl is not None else None,
                argnames=tuple(impl.argnames) if impl is not None else (),
            )
        self.sector_dispatches[sector_id] = dispatch
        return dispatch


def _core_version() -> str:
    from customer_model_factory._version import __version__  # noqa: PLC0415

    return __version__


def _matches(record: _Record, names: set[str]) -> bool:
    if not names:
        return False
    wanted = {_normalise(name) for name in names}
    return _normalise(record.name) in wanted or (
        record.distribution is not None and _normalise(record.distribution) in wanted
    )


def _import_file(path: str, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such file: {path}")
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
    *,
    extra_modules: Sequence[str] = (),
    disabled: Sequence[str] = (),
    entry_points: bool = True,
    builtins: bool = True,
    environ: Mapping[str, str] | None = None,
) -> CMFPluginManager:
    """Build a new plugin manager (uncached; most code wants :func:`get_plugin_manager`).

    :param extra_modules: plugin modules (or ``.py`` files) to load besides the entry points.
    :param disabled: plugin or distribution names not to load.
    :param entry_points: load the installed entry points (tests turn this off).
    :param builtins: register the core's built-in plugin.
    :param environ: where the ``CMF_*`` switches are read (default ``os.environ``).
    """
    env = os.environ if environ is None else environ
    pm = CMFPluginManager(trace=_truthy(env.get(ENV_TRACE_PLUGINS)))
    blocked = [*_split(env.get(ENV_DISABLE_PLUGINS)), *disabled]
    if builtins:
        pm.load_builtins(blocked)
    if entry_points:
        allow = _split(env[ENV_LOAD_PLUGINS]) if ENV_LOAD_PLUGINS in env else None
        pm.load_entry_points(allow=allow, blocked=blocked)
    for module in dict.fromkeys([*_split(env.get(ENV_PLUGINS)), *extra_modules]):
        pm.load_module(module, blocked=blocked)
    if pm.trace_calls:
        pm.add_hookcall_monitoring(
            lambda hook, impls, kwargs: _trace(
                f"call {hook} on {', '.join(impl.plugin_name for impl in impls) or 'nobody'}"
            ),
            lambda outcome, hook, impls, kwargs: _trace(f"  {hook} done"),
        )
    return pm


_LOCK: Final = threading.Lock()
_STATE: dict[str, Any] = {"pm": None, "key": None}


def get_plugin_manager(
    *, extra_modules: Sequence[str] = (), disabled: Sequence[str] = (), reload: bool = False
) -> CMFPluginManager:
    """Return the process's plugin manager, building it on first use.

    The manager is rebuilt when ``reload`` is true, or when the arguments or the ``CMF_*``
    switches differ from the ones it was built with. Its load findings are in
    :attr:`CMFPluginManager.findings`.
    """
    key = (tuple(extra_modules), tuple(disabled), *(os.environ.get(var) for var in _ENV_VARS))
    pm = _STATE["pm"]
    if pm is not None and not reload and _STATE["key"] == key:
        return pm
    with _LOCK:
        if _STATE["pm"] is None or reload or _STATE["key"] != key:
            _STATE["pm"] = create_plugin_manager(extra_modules=extra_modules, disabled=disabled)
            _STATE["key"] = key
        return _STATE["pm"]


def reset_plugin_manager() -> None:
    """Forget the process's plugin manager (tests); the next call builds a new one."""
    with _LOCK:
        _STATE["pm"] = None
        _STATE["key"] = None


def call_isolated(
    hook_name_or_caller: str | pluggy.HookCaller, /, **kwargs: Any
) -> tuple[list[Any], list[Finding]]:
    """Call every implementation of a hook one at a time, isolating failures.

    :param hook_name_or_caller: a hook name (called on :func:`get_plugin_manager`) or a
        ``pm.hook.<name>`` caller.
    :param kwargs: the hook's arguments, by name.
    :returns: ``(non-None results in pluggy's call order, PLUGIN_HOOK_FAILED findings)``.
    """
    if isinstance(hook_name_or_caller, str):
        return get_plugin_manager().call_isolated(hook_name_or_caller, **kwargs)
    results, findings = _call_impls(
        hook_name_or_caller, kwargs, trace=_truthy(os.environ.get(ENV_TRACE_PLUGINS))
    )
    return [value for _, value in results], findings


# ---- contributions ----


def _validate_item(item: Any, model: type[_M]) -> _M:
    if isinstance(item, model):
        return item
    return model.model_validate(item)


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _collect(
    pm: CMFPluginManager, hook: str, model: type[_M], key: str, kind: str
) -> tuple[dict[str, _M], list[Finding], dict[str, str]]:
    """Collect a no-argument contribution hook: ``(items by id, findings, owner by id)``."""
    cache_key = ("collect", hook)
    cached = pm._cache.get(cache_key)
    if cached is not None:
        items, findings, owners = cached
        return dict(items), list(findings), dict(owners)
    results, findings = pm.call_each(hook)
    items: dict[str, _M] = {}
    owners: dict[str, str] = {}
    for plugin, value in sorted(results, key=lambda result: result[0]):
        if not isinstance(value, list | tuple):
            findings.append(
                _invalid(plugin, hook, f"returned {type(value).__name__}, not a list of {kind}s")
            )
            continue
        for raw in value:
            try:
                item = _validate_item(raw, model)
            except ValidationError as error:
                findings.append(_invalid(plugin, hook, f"invalid {kind}: {_first_error(error)}"))
                continue
            ident = str(getattr(item, key))
            if ident in owners:
                findings.append(
                    Finding(
                        code="PLUGIN_DUPLICATE_ID",
                        severity="error",
                        message=(
                            f"{kind} {ident!r} is claimed by both plugin {owners[ident]!r} and "
                            f"plugin {plugin!r}; keeping {owners[ident]!r}"
                        ),
                    )
                )
                continue
            items[ident] = item
            owners[ident] = plugin
    items = dict(sorted(items.items()))
    pm._cache[cache_key] = (items, findings, owners)
    return dict(items), list(findings), dict(owners)


def _manager(pm: CMFPluginManager | None) -> CMFPluginManager:
    return get_plugin_manager() if pm is None else pm


def collect_sector_packs(
    pm: CMFPluginManager | None = None,
) -> tuple[dict[str, SectorPack], list[Finding]]:
    """Return ``({sector id: SectorPack}, findings)``.

    The finding codes each pack declares are registered; a pack whose metadata JSON Schema is
    not a valid Draft 2020-12 schema is reported and left out.
    """
    manager = _manager(pm)
    packs, findings, owners = _collect(manager, "cmf_sector_packs", SectorPack, "id", "sector pack")
    if ("sector-checked",) in manager._cache:
        checked, extra = manager._cache[("sector-checked",)]
        return dict(checked), findings + list(extra)
    from jsonschema import Draft202012Validator, SchemaError  # noqa: PLC0415

    extra: list[Finding] = []
    for sector_id, pack in list(packs.items()):
        owner = owners[sector_id]
        try:
            register_finding_codes(pack.finding_codes, owner=owner)
            schema = pack.trace_metadata_schema()
            if schema is not None:
                Draft202012Validator.check_schema(schema)
        except (ValueError, SchemaError) as error:
            message = error.message if isinstance(error, SchemaError) else str(error)
            extra.append(_invalid(owner, "cmf_sector_packs", f"sector {sector_id!r}: {message}"))
            del packs[sector_id]
    manager._cache[("sector-checked",)] = (packs, extra)
    return dict(packs), findings + extra


def collect_retrieval_schemas(
    pm: CMFPluginManager | None = None,
) -> tuple[dict[str, RetrievalSchema], list[Finding]]:
    """Return ``({schema id: RetrievalSchema}, findings)``; invalid JSON Schemas are left out."""
    manager = _manager(pm)
    schemas, findings, owners = _collect(
        manager, "cmf_retrieval_schemas", RetrievalSchema, "id", "retrieval schema"
    )
    from jsonschema import Draft202012Validator, SchemaError  # noqa: PLC0415

    for schema_id, schema in list(schemas.items()):
        try:
            Draft202012Validator.check_schema(schema.json_schema)
        except SchemaError as error:
            findings.append(
                _invalid(
                    owners[schema_id],
                    "cmf_retrieval_schemas",
                    f"retrieval schema {schema_id!r} is not a valid JSON Schema: {error.message}",
                )
            )
            del schemas[schema_id]
    return schemas, findings


def collect_benchmark_packages(
    pm: CMFPluginManager | None = None,
) -> tuple[dict[str, BenchmarkPackage], list[Finding]]:
    """Return ``({package id: BenchmarkPackage}, findings)``."""
    packages, findings, _ = _collect(
        _manager(pm), "cmf_benchmark_packages", BenchmarkPackage, "id", "benchmark package"
    )
    return packages, findings


def collect_training_lanes(
    pm: CMFPluginManager | None = None,
) -> tuple[dict[str, TrainingLaneSpec], list[Finding]]:
    """Return ``({lane name: TrainingLaneSpec}, findings)``."""
    lanes, findings, _ = _collect(
        _manager(pm), "cmf_training_lanes", TrainingLaneSpec, "name", "training lane"
    )
    return lanes, findings


def collect_objective_profiles(
    pm: CMFPluginManager | None = None,
) -> tuple[dict[str, ObjectiveProfile], list[Finding]]:
    """Return ``({profile name: ObjectiveProfile}, findings)``, built-in profiles included."""
    profiles, findings, _ = _collect(
        _manager(pm), "cmf_objective_profiles", ObjectiveProfile, "name", "objective profile"
    )
    return profiles, findings


def collect_proprietary_identifiers(
    pm: CMFPluginManager | None = None,
) -> tuple[list[ProprietaryIdentifiers], list[Finding]]:
    """Return ``(identifier rule sets sorted by source, findings)``.

    A rule set with a malformed hash, hashes without a salt, or an unknown hash scheme is
    reported as an error and left out (the boundary run fails closed on the error).
    """
    manager = _manager(pm)
    results, findings = manager.call_each("cmf_proprietary_identifiers")
    rule_sets: list[ProprietaryIdentifiers] = []
    hook = "cmf_proprietary_identifiers"
    for plugin, value in sorted(results, key=lambda result: result[0]):
        if not isinstance(value, list | tuple):
            findings.append(_invalid(plugin, hook, f"returned {type(value).__name__}, not a list"))
            continue
        for raw in value:
            try:
                rules = _validate_item(raw, ProprietaryIdentifiers)
            except ValidationError as error:
                findings.append(_invalid(plugin, hook, _first_error(error)))
                continue
            problem = _identifier_problem(rules)
            if problem is not None:
                findings.append(_invalid(plugin, hook, f"source {rules.source!r}: {problem}"))
                continue
            if rules not in rule_sets:
                rule_sets.append(rules)
    rule_sets.sort(key=lambda rules: (rules.source, rules.model_dump_json()))
    return rule_sets, findings


def _identifier_problem(rules: ProprietaryIdentifiers) -> str | None:
    if rules.hash_scheme != IDENTIFIER_HASH_SCHEME:
        return f"unknown hash scheme {rules.hash_scheme!r} (expected {IDENTIFIER_HASH_SCHEME})"
    if rules.hashed and not rules.salt:
        return "hashed identifiers need a salt"
    bad = sum(1 for value in rules.hashed if not HASHED_IDENTIFIER_RE.match(value))
    if bad:
        return f"{bad} hashed identifier(s) are not 'sha256:' + 64 lower-case hex digits"
    return None


def collect_release_checks(
    context: Mapping[str, Any], pm: CMFPluginManager | None = None
) -> tuple[list[Finding], list[Finding]]:
    """Run every plugin's release checks.

    :returns: ``(the release findings the plugins raised, sorted; plugin problems)``.
    """
    results, problems = _manager(pm).call_each("cmf_release_checks", {"context": context})
    blockers: list[Finding] = []
    for plugin, value in results:
        if not isinstance(value, list | tuple):
            problems.append(
                _invalid(plugin, "cmf_release_checks", f"returned {type(value).__name__}")
            )
            continue
        for raw in value:
            try:
                blockers.append(_validate_item(raw, Finding))
            except ValidationError as error:
                problems.append(_invalid(plugin, "cmf_release_checks", _first_error(error)))
    return list(sort_findings(blockers)), problems


def collect_evidence_mappings(
    sector_id: str, pm: CMFPluginManager | None = None
) -> tuple[list[Manifest], list[Finding]]:
    """Return ``(the SectorEvidenceMappings plugins give for sector_id, findings)``.

    Each mapping must be a sealed :class:`~customer_model_factory.sector.SectorEvidenceMapping`
    (or its JSON form) for ``sector_id`` whose hash verifies; others are reported and left out.
    Sorted by mapping hash.
    """
    hook = "cmf_evidence_mappings"
    results, findings = _manager(pm).call_each(hook, {"sector_id": sector_id})
    mapping_class = manifest_classes().get("mapping_hash")
    mappings: dict[str, Manifest] = {}
    for plugin, value in sorted(results, key=lambda result: result[0]):
        if not isinstance(value, list | tuple):
            findings.append(_invalid(plugin, hook, f"returned {type(value).__name__}, not a list"))
            continue
        for raw in value:
            mapping = _evidence_mapping(raw, mapping_class)
            if isinstance(mapping, str):
                findings.append(_invalid(plugin, hook, mapping))
                continue
            if getattr(mapping, "sector_id", None) != sector_id:
                findings.append(
                    _invalid(
                        plugin, hook, f"returned a mapping for another sector than {sector_id!r}"
                    )
                )
                continue
            mappings[mapping.content_digest] = mapping
    return [mappings[digest] for digest in sorted(mappings)], findings


def _evidence_mapping(raw: Any, mapping_class: type[Manifest] | None) -> Manifest | str:
    if mapping_class is None:
        return "no SectorEvidenceMapping class is loaded (import customer_model_factory.sector)"
    if isinstance(raw, Mapping):
        try:
            return mapping_class.from_payload(dict(raw))
        except InputError as error:
            return f"invalid evidence mapping: {error}"
    if not isinstance(raw, mapping_class):
        return f"returned {type(raw).__name__}, not a SectorEvidenceMapping"
    if raw.compute_hash() != raw.content_digest:
        return "evidence mapping hash does not verify (build it with build_sector_evidence_mapping)"
    return raw


# ---- listing and checking ----


def list_plugins(
    pm: CMFPluginManager | None = None, *, include_builtins: bool = False, hook: str | None = None
) -> list[PluginInfo]:
    """Describe every plugin seen, sorted by name.

    :param include_builtins: also list the core's own plugins.
    :param hook: only plugins implementing this hook.
    :raises InputError: ``hook`` is not a hook name.
    """
    manager = _manager(pm)
    if hook is not None and hook not in hook_names():
        raise InputError(f"unknown hook {hook!r}; known: {', '.join(hook_names())}")
    owners = {
        "sectors": _collect(manager, "cmf_sector_packs", SectorPack, "id", "sector pack")[2],
        "retrieval_schemas": _collect(
            manager, "cmf_retrieval_schemas", RetrievalSchema, "id", "retrieval schema"
        )[2],
        "benchmark_packages": _collect(
            manager, "cmf_benchmark_packages", BenchmarkPackage, "id", "benchmark package"
        )[2],
        "lanes": _collect(manager, "cmf_training_lanes", TrainingLaneSpec, "name", "training lane")[
            2
        ],
        "objective_profiles": _collect(
            manager, "cmf_objective_profiles", ObjectiveProfile, "name", "objective profile"
        )[2],
    }
    infos: list[PluginInfo] = []
    for name, record in sorted(manager.plugin_records().items()):
        plugin = manager.get_plugin(name)
        hooks = (
            tuple(sorted(caller.name for caller in manager.get_hookcallers(plugin) or ()))
            if plugin is not None
            else ()
        )
        if record.source == "builtin" and not include_builtins:
            continue
        if hook is not None and hook not in hooks:
            continue
        contributed = {
            field: tuple(sorted(ident for ident, owner in by_id.items() if owner == name))
            for field, by_id in owners.items()
        }
        infos.append(
            PluginInfo(
                name=name,
                distribution=record.distribution,
                version=record.version,
                api_version=record.api_version,
                source=record.source,
                status=record.status,
                builtin=record.source == "builtin",
                hooks=hooks,
                error=record.error,
                **contributed,
            )
        )
    return infos


def check_plugins(pm: CMFPluginManager | None = None) -> PluginCheckReport:
    """Load every plugin and call every contribution hook; collect every problem.

    Evidence mappings are asked for each declared sector. The report is ``ok`` when no finding
    has severity error (a broken plugin makes ``cmf plugins check`` exit 1).
    """
    manager = _manager(pm)
    findings = list(manager.findings)
    packs, pack_findings = collect_sector_packs(manager)
    findings += pack_findings
    for collect in (
        collect_retrieval_schemas,
        collect_benchmark_packages,
        collect_training_lanes,
        collect_objective_profiles,
        collect_proprietary_identifiers,
    ):
        findings += collect(manager)[1]
    for sector_id in packs:
        findings += collect_evidence_mappings(sector_id, manager)[1]
    ordered = sort_findings(findings)
    return PluginCheckReport(
        ok=not any(finding.severity == "error" for finding in ordered),
        plugins=tuple(list_plugins(manager, include_builtins=True)),
        findings=ordered,
    )
